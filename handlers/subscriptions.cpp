#include "handlers/subscriptions.hpp"

#include <utility>

#include <boost/beast/http/field.hpp>

#include "handlers/errors.hpp"

namespace reqctx {

namespace {

using nlohmann::json;

Response json_response(const Request& req, http::status status, std::string body) {
    Response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
    return res;
}

json view_json(const SubscriptionView& v) {
    return json{{"id", v.id},
                {"name", v.name},
                {"topic", v.topic},
                {"state", to_string(v.state)},
                {"processed", v.processed},
                {"failed", v.failed},
                {"dropped", v.dropped},
                {"queue_depth", v.queue_depth},
                {"origin_request_id", v.origin_request_id},
                {"origin_trace_id", v.origin_trace_id},
                {"created_at", v.created_at}};
}

Response not_found(const Context& ctx, const Request& req) {
    return error_response(ctx, req, http::status::not_found, "not_found",
                          "No subscription has this id.");
}

}  // namespace

bool is_valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64) return false;
    for (const char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

std::string_view to_string(SubscriptionState s) noexcept {
    switch (s) {
        case SubscriptionState::running:
            return "running";
        case SubscriptionState::stopping:
            return "stopping";
        case SubscriptionState::stopped:
            return "stopped";
    }
    return "stopped";
}

SubscriptionsParse parse_subscriptions(std::string_view body) {
    SubscriptionsParse out;
    JsonParse parsed = parse_json_object(body, "with a \"consumers\" array");
    if (parsed.error) {
        out.error = std::move(parsed.error);
        return out;
    }
    const json& doc = parsed.value;
    const auto consumers = doc.find("consumers");
    if (consumers == doc.end() || !consumers->is_array() || consumers->empty() ||
        consumers->size() > kMaxConsumersPerCall) {
        out.error = InputError{"invalid_request",
                               "Field \"consumers\" must be an array of 1..100 consumers."};
        return out;
    }
    for (std::size_t i = 0; i < consumers->size(); ++i) {
        const json& c = (*consumers)[i];
        const std::string field = "consumers[" + std::to_string(i) + "]";
        if (!c.is_object()) {
            out.error = InputError{"invalid_request", "Field \"" + field + "\" must be an object."};
            return out;
        }
        const auto name = c.find("name");
        if (name == c.end() || !name->is_string() || !is_valid_name(name->get<std::string>())) {
            out.error = InputError{"invalid_request",
                                   "Field \"" + field + ".name\" must be 1..64 of [A-Za-z0-9_.-]."};
            return out;
        }
        const auto topic = c.find("topic");
        if (topic == c.end() || !topic->is_string() || !is_valid_name(topic->get<std::string>())) {
            out.error =
                InputError{"invalid_request",
                           "Field \"" + field + ".topic\" must be 1..64 of [A-Za-z0-9_.-]."};
            return out;
        }
        out.consumers.push_back({name->get<std::string>(), topic->get<std::string>()});
    }
    return out;
}

std::string subscription_json(const SubscriptionView& view) {
    return view_json(view).dump();
}

net::awaitable<Response> SubscriptionsHandler::create(Context ctx, const Request& req,
                                                      const RouteParams& /*params*/) {
    SubscriptionsParse parsed = parse_subscriptions(req.body());
    if (parsed.error) {
        co_return error_response(ctx, req, http::status::bad_request, parsed.error->code,
                                 parsed.error->message);
    }
    std::vector<SubscriptionView> created;
    if (const std::error_code ec = service_.create(ctx, parsed.consumers, created)) {
        co_return error_response(ctx, req, ec);
    }
    json subs = json::array();
    for (const auto& v : created) {
        subs.push_back(json{
            {"id", v.id}, {"name", v.name}, {"topic", v.topic}, {"state", to_string(v.state)}});
    }
    co_return json_response(req, http::status::created, json{{"subscriptions", subs}}.dump());
}

net::awaitable<Response> SubscriptionsHandler::list(Context /*ctx*/, const Request& req,
                                                    const RouteParams& /*params*/) {
    json subs = json::array();
    for (const auto& v : service_.list()) subs.push_back(view_json(v));
    co_return json_response(req, http::status::ok, json{{"subscriptions", subs}}.dump());
}

net::awaitable<Response> SubscriptionsHandler::get(Context ctx, const Request& req,
                                                   const RouteParams& params) {
    const auto view = service_.find(params.get("id"));
    if (!view) co_return not_found(ctx, req);
    co_return json_response(req, http::status::ok, view_json(*view).dump());
}

net::awaitable<Response> SubscriptionsHandler::remove(Context ctx, const Request& req,
                                                      const RouteParams& params) {
    const std::error_code ec = co_await service_.stop(ctx, std::string(params.get("id")));
    if (ec == std::errc::no_such_file_or_directory) co_return not_found(ctx, req);
    if (ec) {
        if (ctx.done()) co_return context_error_response(ctx, req);
        co_return error_response(ctx, req, ec);
    }
    Response res{http::status::no_content, req.version()};
    co_return res;
}

}  // namespace reqctx
