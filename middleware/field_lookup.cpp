#include "middleware/field_lookup.hpp"

namespace reqctx {

bool field_name_equals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        // ASCII letters differ from their other case in bit 0x20 only; every other byte must match.
        const char x = a[i];
        const char y = b[i];
        if (x == y) continue;
        if ((x | 0x20) != (y | 0x20)) return false;
        const char lower = static_cast<char>(x | 0x20);
        if (lower < 'a' || lower > 'z') return false;
    }
    return true;
}

namespace {

void add(FieldValues& found, std::string_view value) noexcept {
    if (found.count++ == 0) found.first = value;
}

}  // namespace

KnownFields scan_known_fields(const Request& req) {
    using namespace std::string_view_literals;
    KnownFields known;
    for (const Request::Field field : req.fields()) {
        const std::string_view name = field.name_string;
        const std::string_view value = field.value;
        // The length picks the one candidate name worth comparing.
        switch (name.size()) {
            case 12:
                if (field_name_equals(name, "X-Request-ID"sv)) add(known.request_id, value);
                break;
            case 9:
                if (field_name_equals(name, "X-User-ID"sv)) add(known.user_id, value);
                break;
            case 20:
                if (field_name_equals(name, "X-Request-Timeout-Ms"sv)) {
                    add(known.request_timeout, value);
                }
                break;
            case 11:
                if (field_name_equals(name, "traceparent"sv)) known.traceparent.push_back(value);
                break;
            case 10:
                if (field_name_equals(name, "tracestate"sv)) known.tracestate.push_back(value);
                break;
            case 4:
                known.host += field.name == boost::beast::http::field::host;
                break;
            case 17:
                known.transfer_encoding |=
                    field.name == boost::beast::http::field::transfer_encoding;
                break;
            default:
                break;
        }
    }
    return known;
}

FieldValues find_field_values(const Request& req, std::string_view name) {
    FieldValues found;
    for_each_field_value(req, name, [&found](std::string_view value) {
        if (found.count++ == 0) found.first = value;
    });
    return found;
}

}  // namespace reqctx
