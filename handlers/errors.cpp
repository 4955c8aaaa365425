#include "handlers/errors.hpp"

#include <cstdio>
#include <string>

#include <boost/beast/http/field.hpp>

#include "clients/memcache/errors.hpp"
#include "clients/propagation.hpp"

namespace reqctx {
namespace {

class CancelReasonCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "reqctx.cancel_reason"; }
    std::string message(int value) const override {
        switch (static_cast<CancelReason>(value)) {
            case CancelReason::client_disconnect:
                return "the client closed the connection";
            case CancelReason::deadline:
                return "the request deadline passed";
            case CancelReason::shutdown:
                return "the server is shutting down";
        }
        return "unknown cancel reason";
    }
};

}  // namespace

const std::error_category& cancel_reason_category() noexcept {
    static const CancelReasonCategory category;
    return category;
}

std::error_code make_error_code(CancelReason e) noexcept {
    return {static_cast<int>(e), cancel_reason_category()};
}

std::string_view cancel_reason_name(const Context& ctx) noexcept {
    const std::error_code err = ctx.err();
    if (!err) return {};
    std::error_code cause;
    try {
        cause = ctx.cause();
    } catch (...) {
        cause = err;
    }
    if (cause == CancelReason::client_disconnect) return "client_disconnect";
    if (cause == CancelReason::deadline || cause == ContextErrc::deadline_exceeded) {
        return "deadline";
    }
    return "shutdown";
}

HttpError http_error_for(std::error_code ec) noexcept {
    if (ec == CancelReason::deadline || ec == ContextErrc::deadline_exceeded) {
        return {http::status::gateway_timeout, "deadline_exceeded",
                "The request deadline passed before the work finished."};
    }
    if (ec == CancelReason::shutdown || ec == ContextErrc::canceled) {
        return {http::status::service_unavailable, "shutting_down", "The server is shutting down."};
    }
    if (ec == CancelReason::client_disconnect) {
        return {static_cast<http::status>(kStatusClientClosedRequest), "client_closed_request",
                "The client closed the connection."};
    }
    // Memcache (business routes).
    if (ec == memcache::MemcacheErrc::server_unreachable ||
        ec == memcache::MemcacheErrc::no_servers || ec == memcache::MemcacheErrc::closed) {
        return {http::status::service_unavailable, "cache_unavailable",
                "The cache is unreachable."};
    }
    if (ec == memcache::MemcacheErrc::value_too_large) {
        return {http::status::payload_too_large, "value_too_large",
                "The value is larger than the cache item size limit."};
    }
    if (ec == memcache::MemcacheErrc::invalid_key) {
        return {http::status::bad_request, "invalid_key",
                "The key must be 1..250 bytes without whitespace or control characters."};
    }
    if (ec.category() == memcache::memcache_category()) {
        return {http::status::bad_gateway, "cache_error", "The cache answered with an error."};
    }
    return {http::status::internal_server_error, "internal", "Internal server error."};
}

void append_json_escaped(std::string& out, std::string_view text) {
    // Fast path: most text needs no escaping.
    std::size_t clean = 0;
    while (clean < text.size()) {
        const auto c = static_cast<unsigned char>(text[clean]);
        if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) break;
        ++clean;
    }
    out.append(text.data(), clean);
    text.remove_prefix(clean);
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out.push_back(ch);
                }
        }
    }
}

std::string error_body(std::string_view code, std::string_view message,
                       std::string_view request_id) {
    std::string body;
    body.reserve(64 + code.size() + message.size() + request_id.size());
    body += R"({"error":{"code":")";
    append_json_escaped(body, code);
    body += R"(","message":")";
    append_json_escaped(body, message);
    body += R"("},"request_id":")";
    append_json_escaped(body, request_id);
    body += "\"}";
    return body;
}

Response error_response(const Context& ctx, const Request& req, http::status status,
                        std::string_view code, std::string_view message) {
    const RequestId* id = ctx.value(kRequestIdKey);
    Response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = error_body(code, message, id != nullptr ? std::string_view(id->value) : "");
    return res;
}

Response error_response(const Context& ctx, const Request& req, std::error_code ec) {
    const HttpError e = http_error_for(ec);
    return error_response(ctx, req, e.status, e.code, e.message);
}

Response context_error_response(const Context& ctx, const Request& req) {
    std::error_code cause = ctx.err();
    try {
        if (std::error_code c = ctx.cause()) cause = c;
    } catch (...) {
    }
    return error_response(ctx, req, cause);
}

}  // namespace reqctx
