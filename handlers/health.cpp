#include "handlers/health.hpp"

#include <chrono>
#include <utility>

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

namespace reqctx {
namespace {

constexpr auto kReadyzBound = std::chrono::milliseconds(500);

net::awaitable<Response> serve_healthz(Context, const Request& req, const RouteParams&) {
    // No Content-Type field: the server writes application/json (handlers/handler.hpp).
    Response res{http::status::ok, req.version()};
    res.body() = R"({"status":"ok"})";
    co_return res;
}

struct ReadyzDeps {
    ReadinessProbe probe;
    const std::atomic<bool>* draining;
};

net::awaitable<Response> serve_readyz(std::shared_ptr<const ReadyzDeps> deps, Context ctx,
                                      const Request& req) {
    auto [bounded, cancel] = with_timeout(ctx, kReadyzBound);
    std::vector<DependencyStatus> results;
    if (deps->probe) results = co_await deps->probe(bounded);

    const bool draining = deps->draining->load(std::memory_order_acquire);
    bool ready = !draining;
    nlohmann::json servers = nlohmann::json::array();
    for (const auto& r : results) {
        nlohmann::json item{{"server", r.server}, {"ok", r.ok}};
        if (r.ok) {
            item["latency_ms"] = r.latency_ms;
        } else {
            item["error"] = r.error;
            ready = false;
        }
        servers.push_back(std::move(item));
    }
    nlohmann::json body{{"status", ready ? "ready" : "not_ready"}, {"memcache", servers}};
    if (draining) body["draining"] = true;

    Response res{ready ? http::status::ok : http::status::service_unavailable, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    co_return res;
}

}  // namespace

Handler make_healthz_handler() {
    return &serve_healthz;
}

Handler make_readyz_handler(ReadinessProbe probe, const std::atomic<bool>& draining) {
    auto deps = std::make_shared<const ReadyzDeps>(ReadyzDeps{std::move(probe), &draining});
    return [deps](Context ctx, const Request& req, const RouteParams&) {
        return serve_readyz(deps, std::move(ctx), req);
    };
}

}  // namespace reqctx
