#include "handlers/whoami.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include "clients/propagation.hpp"
#include "handlers/errors.hpp"
#include "handlers/fixed_text.hpp"

namespace reqctx {
namespace {

std::int64_t remaining_ms(Clock::time_point deadline, Clock::time_point now) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    return left.count() < 0 ? 0 : left.count();
}

// The general form: every string escaped, no length limit.
std::string escaped_whoami_body(const RequestId* id, const TraceContext* trace, const User* user,
                                std::optional<Clock::time_point> deadline, Clock::time_point now) {
    nlohmann::ordered_json body{
        {"request_id", id != nullptr ? nlohmann::ordered_json(id->value) : nullptr},
        {"trace_id", nullptr},
        {"span_id", nullptr},
        {"parent_span_id", nullptr},
        {"user", nullptr},
        {"deadline_remaining_ms", nullptr}};
    if (trace != nullptr) {
        body["trace_id"] = to_hex(trace->trace_id);
        body["span_id"] = to_hex(trace->span_id);
        if (trace->parent_span_id) body["parent_span_id"] = to_hex(*trace->parent_span_id);
    }
    if (user != nullptr) body["user"] = {{"id", user->id}};
    if (deadline) body["deadline_remaining_ms"] = remaining_ms(*deadline, now);
    return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

net::awaitable<Response> serve_whoami(Context ctx, const Request& req, const RouteParams&) {
    // No Content-Type field: the server writes application/json (handlers/handler.hpp).
    Response res{http::status::ok, req.version()};
    res.body() = whoami_body(ctx, Clock::now());
    co_return res;
}

// Request IDs are at most 128 characters and user IDs 64 (validated on the way in); longer
// values (put on a context by other code) take the general path.
constexpr std::size_t kMaxFastId = 128;
constexpr std::size_t kMaxFastUser = 64;
// Everything else in the fast body: names and punctuation, three hex IDs, a 20-digit number.
constexpr std::size_t kFastBodyCapacity = kMaxFastId + kMaxFastUser + 256;

}  // namespace

std::string whoami_body(const Context& ctx, Clock::time_point now) {
    // Request and user IDs are validated on the way in ([A-Za-z0-9._:-], [A-Za-z0-9_-]); the
    // check below keeps the body valid JSON should a caller put anything else in the context.
    const RequestId* id = ctx.value(kRequestIdKey);
    const TraceContext* trace = ctx.value(kTraceKey);
    const User* user = ctx.value(kUserKey);
    const auto deadline = ctx.deadline();
    if ((id != nullptr && (id->value.size() > kMaxFastId || !json_safe(id->value))) ||
        (user != nullptr && (user->id.size() > kMaxFastUser || !json_safe(user->id)))) {
        return escaped_whoami_body(id, trace, user, deadline, now);
    }
    using namespace std::string_view_literals;
    std::string body(kFastBodyCapacity, '\0');
    TextCursor out(body.data());
    if (id != nullptr) {
        out.put(R"({"request_id":")"sv);
        out.put(id->value);
        out.put(R"(","trace_id":)"sv);
    } else {
        out.put(R"({"request_id":null,"trace_id":)"sv);
    }
    if (trace != nullptr) {
        out.put("\""sv);
        out.put_hex(trace->trace_id);
        out.put(R"(","span_id":")"sv);
        out.put_hex(trace->span_id);
        if (trace->parent_span_id) {
            out.put(R"(","parent_span_id":")"sv);
            out.put_hex(*trace->parent_span_id);
            out.put(R"(","user":)"sv);
        } else {
            out.put(R"(","parent_span_id":null,"user":)"sv);
        }
    } else {
        out.put(R"(null,"span_id":null,"parent_span_id":null,"user":)"sv);
    }
    if (user != nullptr) {
        out.put(R"({"id":")"sv);
        out.put(user->id);
        out.put(R"("},"deadline_remaining_ms":)"sv);
    } else {
        out.put(R"(null,"deadline_remaining_ms":)"sv);
    }
    if (deadline) {
        out.put_number(static_cast<std::uint64_t>(remaining_ms(*deadline, now)));
    } else {
        out.put("null"sv);
    }
    out.put("}"sv);
    body.resize(static_cast<std::size_t>(out.at() - body.data()));
    return body;
}

Handler make_whoami_handler() {
    return &serve_whoami;
}

}  // namespace reqctx
