#pragma once

// Finding a request's header fields by name: the middleware reads several names per request,
// all found in one pass over the request's fields.

#include <cstddef>
#include <string_view>

#include <boost/container/small_vector.hpp>

#include "handlers/request.hpp"

namespace reqctx {

struct FieldValues {
    std::size_t count = 0;  // how many fields carry the name
    std::string_view first;
};

// Every line of a field, in the order received (requests carry one or two; more spill to the
// heap).
using FieldLines = boost::container::small_vector<std::string_view, 4>;

// The fields the middleware reads, found in one pass over the request's header.
struct KnownFields {
    FieldValues request_id;       // X-Request-ID
    FieldValues user_id;          // X-User-ID
    FieldValues request_timeout;  // X-Request-Timeout-Ms
    FieldLines traceparent;
    FieldLines tracestate;
    std::size_t host = 0;            // Host lines (HTTP/1.1 requires exactly one)
    bool transfer_encoding = false;  // any Transfer-Encoding line
};
KnownFields scan_known_fields(const Request& req);

// `name` is compared ASCII case-insensitively, as field names are.
FieldValues find_field_values(const Request& req, std::string_view name);

// Calls fn(value) for every field named `name`, in the order received.
template <class Fn>
void for_each_field_value(const Request& req, std::string_view name, Fn fn);

bool field_name_equals(std::string_view a, std::string_view b) noexcept;

template <class Fn>
void for_each_field_value(const Request& req, std::string_view name, Fn fn) {
    for (const Request::Field field : req.fields()) {
        if (field_name_equals(field.name_string, name)) fn(field.value);
    }
}

}  // namespace reqctx
