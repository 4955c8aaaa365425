#include "handlers/events.hpp"

#include <utility>

#include <boost/beast/http/field.hpp>

#include "clients/propagation.hpp"
#include "handlers/errors.hpp"
#include "handlers/subscriptions.hpp"

namespace reqctx {

EventParse parse_event(std::string_view body) {
    EventParse out;
    JsonParse parsed = parse_json_object(body, "with \"topic\" and \"payload\"");
    if (parsed.error) {
        out.error = std::move(parsed.error);
        return out;
    }
    const nlohmann::json& doc = parsed.value;
    const auto topic = doc.find("topic");
    if (topic == doc.end() || !topic->is_string() || !is_valid_name(topic->get<std::string>())) {
        out.error =
            InputError{"invalid_request", "Field \"topic\" must be 1..64 of [A-Za-z0-9_.-]."};
        return out;
    }
    const auto payload = doc.find("payload");
    if (payload == doc.end()) {
        out.error = InputError{"invalid_request", "Field \"payload\" is required."};
        return out;
    }
    out.topic = topic->get<std::string>();
    // Invalid UTF-8 cannot reach here (the parser rejects it), so dump cannot throw.
    out.payload = payload->dump();
    if (out.payload.size() > kMaxEventPayloadBytes) {
        out.error = InputError{"payload_too_large",
                               "Field \"payload\" must be at most 65536 bytes serialized."};
        out.too_large = true;
    }
    return out;
}

net::awaitable<Response> EventsHandler::post(Context ctx, const Request& req,
                                             const RouteParams& /*params*/) {
    EventParse parsed = parse_event(req.body());
    if (parsed.error) {
        co_return error_response(
            ctx, req,
            parsed.too_large ? http::status::payload_too_large : http::status::bad_request,
            parsed.error->code, parsed.error->message);
    }
    Event event;
    event.topic = std::move(parsed.topic);
    event.payload = std::move(parsed.payload);
    if (const TraceContext* trace = ctx.value(kTraceKey)) event.trace_id = to_hex(trace->trace_id);
    if (const RequestId* id = ctx.value(kRequestIdKey)) event.request_id = id->value;
    const PublishResult r = publisher_.publish(std::move(event));

    Response res{http::status::accepted, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = "{\"delivered\":" + std::to_string(r.delivered) +
                 ",\"dropped\":" + std::to_string(r.dropped) + "}";
    co_return res;
}

}  // namespace reqctx
