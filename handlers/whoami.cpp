#include "handlers/whoami.hpp"

#include <chrono>

#include <boost/beast/http/field.hpp>

#include "clients/propagation.hpp"
#include "handlers/errors.hpp"

namespace reqctx {
namespace {

void append_hex(std::string& out, const std::uint8_t* bytes, std::size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(kHex[bytes[i] >> 4]);
        out.push_back(kHex[bytes[i] & 0xf]);
    }
}

net::awaitable<Response> serve_whoami(Context ctx, const Request& req, const RouteParams&) {
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = whoami_body(ctx, Clock::now());
    res.prepare_payload();
    co_return res;
}

}  // namespace

std::string whoami_body(const Context& ctx, Clock::time_point now) {
    std::string body;
    body.reserve(256);
    body += R"({"request_id":)";
    if (const RequestId* id = ctx.value(kRequestIdKey)) {
        body += '"';
        append_json_escaped(body, id->value);
        body += '"';
    } else {
        body += "null";
    }
    const TraceContext* trace = ctx.value(kTraceKey);
    body += R"(,"trace_id":)";
    if (trace != nullptr) {
        body += '"';
        append_hex(body, trace->trace_id.data(), trace->trace_id.size());
        body += R"(","span_id":")";
        append_hex(body, trace->span_id.data(), trace->span_id.size());
        body += R"(","parent_span_id":)";
        if (trace->parent_span_id) {
            body += '"';
            append_hex(body, trace->parent_span_id->data(), trace->parent_span_id->size());
            body += '"';
        } else {
            body += "null";
        }
    } else {
        body += R"(null,"span_id":null,"parent_span_id":null)";
    }
    body += R"(,"user":)";
    if (const User* user = ctx.value(kUserKey)) {
        body += R"({"id":")";
        append_json_escaped(body, user->id);
        body += "\"}";
    } else {
        body += "null";
    }
    body += R"(,"deadline_remaining_ms":)";
    if (auto deadline = ctx.deadline()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now);
        body += std::to_string(left.count() < 0 ? 0 : left.count());
    } else {
        body += "null";
    }
    body += '}';
    return body;
}

Handler make_whoami_handler() {
    return &serve_whoami;
}

}  // namespace reqctx
