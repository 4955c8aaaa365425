#include "handlers/whoami.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

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
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = whoami_body(ctx, Clock::now());
    co_return res;
}

}  // namespace

std::string whoami_body(const Context& ctx, Clock::time_point now) {
    // Request and user IDs are validated on the way in ([A-Za-z0-9._:-], [A-Za-z0-9_-]); the
    // check below keeps the body valid JSON should a caller put anything else in the context.
    const RequestId* id = ctx.value(kRequestIdKey);
    const TraceContext* trace = ctx.value(kTraceKey);
    const User* user = ctx.value(kUserKey);
    if ((id != nullptr && !json_safe(id->value)) || (user != nullptr && !json_safe(user->id))) {
        return escaped_whoami_body(id, trace, user, ctx.deadline(), now);
    }
    std::array<char, 512> storage;
    FixedText out(storage);
    out.put(R"({"request_id":)");
    if (id != nullptr) {
        out.put("\"");
        out.put(id->value);
        out.put("\"");
    } else {
        out.put("null");
    }
    out.put(R"(,"trace_id":)");
    if (trace != nullptr) {
        out.put("\"");
        out.put_hex(trace->trace_id);
        out.put(R"(","span_id":")");
        out.put_hex(trace->span_id);
        out.put(R"(","parent_span_id":)");
        if (trace->parent_span_id) {
            out.put("\"");
            out.put_hex(*trace->parent_span_id);
            out.put("\"");
        } else {
            out.put("null");
        }
    } else {
        out.put(R"(null,"span_id":null,"parent_span_id":null)");
    }
    out.put(R"(,"user":)");
    if (user != nullptr) {
        out.put(R"({"id":")");
        out.put(user->id);
        out.put("\"}");
    } else {
        out.put("null");
    }
    out.put(R"(,"deadline_remaining_ms":)");
    if (auto deadline = ctx.deadline()) {
        out.put_number(remaining_ms(*deadline, now));
    } else {
        out.put("null");
    }
    out.put("}");
    if (out.overflow()) return escaped_whoami_body(id, trace, user, ctx.deadline(), now);
    return std::string(out.text());
}

Handler make_whoami_handler() {
    return &serve_whoami;
}

}  // namespace reqctx
