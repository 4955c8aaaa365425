#pragma once

// Errors as HTTP: the service-level cancel causes (CancelReason), the JSON error body of
// docs/api.md, and the ONE place that maps error codes to HTTP statuses (http_error_for).
// Handlers return error_response(ctx, req, ec) or error_response(ctx, req, status, code, msg);
// the request ID in the body is read from the context.

#include <string>
#include <string_view>
#include <system_error>

#include "context/context.hpp"
#include "handlers/handler.hpp"

namespace reqctx {

// Why a request context was cancelled; used as the cause of CancelHandle::cancel(cause) and of
// with_deadline_cause, and reported by the access log and http_requests_cancelled_total.
enum class CancelReason {
    client_disconnect = 1,  // the client closed or reset the connection mid-request
    deadline = 2,           // the request's deadline passed
    shutdown = 3,           // the server root was cancelled after the shutdown grace
};

const std::error_category& cancel_reason_category() noexcept;
std::error_code make_error_code(CancelReason e) noexcept;

}  // namespace reqctx

template <>
struct std::is_error_code_enum<reqctx::CancelReason> : std::true_type {};

namespace reqctx {

// "client_disconnect", "deadline", "shutdown" for a done context's cause (a plain
// deadline_exceeded counts as "deadline", a plain canceled as "shutdown"); "" when not done.
std::string_view cancel_reason_name(const Context& ctx) noexcept;

// 499 (nginx's "client closed request"): what the access log records when the client left.
inline constexpr unsigned kStatusClientClosedRequest = 499;

struct HttpError {
    http::status status;
    std::string_view code;     // snake_case, api.md
    std::string_view message;  // human sentence
};

// The mapping. Known: CancelReason and ContextErrc (504 deadline_exceeded, 503 shutting_down,
// 499 client_closed_request). Owners of other error enums add their cases in errors.cpp.
// Anything unknown is 500 internal.
HttpError http_error_for(std::error_code ec) noexcept;

// {"error":{"code":..,"message":..},"request_id":..} (JSON-escaped).
std::string error_body(std::string_view code, std::string_view message,
                       std::string_view request_id);

// A complete error response (status, Content-Type: application/json, body with the request ID
// from ctx, keep-alive and version copied from req). The server adds X-Request-ID/X-Trace-ID.
Response error_response(const Context& ctx, const Request& req, http::status status,
                        std::string_view code, std::string_view message);
Response error_response(const Context& ctx, const Request& req, std::error_code ec);

// The error for a done context (its cause mapped by http_error_for); for handlers that stop
// because ctx is done.
Response context_error_response(const Context& ctx, const Request& req);

// JSON string escaping (without the surrounding quotes) appended to out.
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace reqctx
