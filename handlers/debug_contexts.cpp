#include "handlers/debug_contexts.hpp"

#include <memory>
#include <utility>

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

namespace reqctx {
namespace {

net::awaitable<Response> serve_debug_contexts(std::shared_ptr<const DebugSources> sources,
                                              Context /*ctx*/, const Request& req) {
    nlohmann::json body{
        {"requests_in_flight", sources->requests_in_flight ? sources->requests_in_flight() : 0},
        {"contexts_live", live_contexts()},
        {"background_tasks",
         sources->background_tasks ? sources->background_tasks() : nlohmann::json::array()},
        {"semaphore", sources->semaphore ? sources->semaphore() : nlohmann::json(nullptr)},
    };
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    co_return res;
}

}  // namespace

Handler make_debug_contexts_handler(DebugSources sources) {
    auto shared = std::make_shared<const DebugSources>(std::move(sources));
    return [shared](Context ctx, const Request& req, const RouteParams&) {
        return serve_debug_contexts(shared, std::move(ctx), req);
    };
}

}  // namespace reqctx
