#include "service/app.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "clients/http/client.hpp"
#include "clients/memcache/client.hpp"
#include "context/semaphore.hpp"
#include "context/task_registry.hpp"
#include "handlers/debug_contexts.hpp"
#include "handlers/fanout.hpp"
#include "handlers/health.hpp"
#include "handlers/log.hpp"
#include "handlers/metrics.hpp"
#include "handlers/whoami.hpp"
#include "middleware/access_log.hpp"
#include "middleware/http_metrics.hpp"
#include "middleware/load_shed.hpp"
#include "service/business.hpp"
#include "service/memcache_metrics.hpp"
#include "service/router.hpp"
#include "service/server.hpp"

namespace reqctx {
namespace {

spdlog::level::level_enum parse_level(const std::string& level) {
    return spdlog::level::from_str(level == "warn" ? "warning" : level);
}

ServerOptions server_options(const Config& c, bool handle_signals) {
    ServerOptions o;
    o.host = c.listen_host;
    o.port = c.listen_port;
    o.threads = c.threads;
    o.max_body_bytes = c.max_body_bytes;
    o.idle_timeout = c.idle_timeout;
    o.header_timeout = c.header_timeout;
    o.request_timeout = c.request_timeout;
    o.max_request_timeout = c.max_request_timeout;
    o.shutdown_grace = c.shutdown_grace;
    o.handle_signals = handle_signals;
    return o;
}

std::vector<std::string> memcache_labels(const Config& c) {
    std::vector<std::string> labels;
    for (const auto& s : c.memcache) {
        labels.push_back(memcache::ServerAddress{s.host, s.port}.label());
    }
    return labels;
}

memcache::ClientConfig memcache_config(const Config& c,
                                       std::shared_ptr<memcache::Observer> observer) {
    memcache::ClientConfig mc;
    for (const auto& s : c.memcache) mc.servers.push_back({s.host, s.port, s.weight});
    mc.pool_size = c.memcache_pool_size;
    mc.connect_timeout = c.memcache_connect_timeout;
    // A dead server's keys fail fast (503 cache_unavailable) instead of moving to another server:
    // moved writes would be lost, and stale values read, once it comes back.
    mc.eject_dead_servers = false;
    mc.observer = std::move(observer);
    return mc;
}

// /readyz: pings every memcache server concurrently-enough (in turn; each bounded by ctx).
net::awaitable<std::vector<DependencyStatus>> probe_memcache(memcache::Client* client,
                                                             Context ctx) {
    std::vector<DependencyStatus> out;
    const auto& servers = client->servers();
    for (std::size_t i = 0; i < servers.size(); ++i) {
        DependencyStatus st;
        st.server = servers[i].label();
        auto r = co_await client->ping(ctx, i);
        if (r) {
            st.ok = true;
            st.latency_ms = std::chrono::duration<double, std::milli>(*r).count();
        } else {
            st.error = r.error().message();
        }
        out.push_back(std::move(st));
    }
    co_return out;
}

}  // namespace

// Declaration order is construction order; destruction runs backwards, so the server (and its
// io_contexts) outlives every client built on its executors.
struct App::Parts {
    Config config;
    Logger logger;
    Metrics metrics;
    InflightLimiter limiter;
    AccessLog access_log;
    HttpMetrics http_metrics;
    Router router;
    Server server;
    TaskRegistry tasks;
    Semaphore bulk_semaphore;
    std::shared_ptr<MemcacheMetrics> memcache_metrics;  // fed by the client's observer
    memcache::Client memcache;
    HttpClient http_client;   // outgoing calls of /v1/fanout
    BusinessRoutes business;  // cache, bulk-sync, subscriptions, events

    Parts(Config c, const AppOptions& o)
        : config(std::move(c)),
          logger(config.log_format, parse_level(config.log_level), o.log_sink),
          limiter(config.max_inflight),
          access_log(logger),
          http_metrics(metrics, [this] { return limiter.in_flight(); }),
          server(server_options(config, o.handle_signals), router, logger, access_log, http_metrics,
                 limiter),
          bulk_semaphore(static_cast<std::int64_t>(config.bulk_max_inflight)),
          memcache_metrics(std::make_shared<MemcacheMetrics>(metrics)),
          memcache(server.executor(),
                   memcache_config(config, std::make_shared<MemcacheObserver>(
                                               memcache_metrics, logger, memcache_labels(config)))),
          business(config, server.executor(), memcache, bulk_semaphore, tasks, logger, metrics) {
        track_memcache_pool(metrics, memcache);
    }
};

App::App(Config config, AppOptions options)
    : parts_(std::make_unique<Parts>(std::move(config), options)) {
    Parts& p = *parts_;
    Router& r = p.router;

    // Operations.
    r.add(http::verb::get, "/healthz", make_healthz_handler());
    r.add(http::verb::get, "/readyz",
          make_readyz_handler([client = &p.memcache](
                                  Context ctx) { return probe_memcache(client, std::move(ctx)); },
                              p.server.draining()));
    r.add(http::verb::get, "/metrics", make_metrics_handler(p.metrics));
    r.add(http::verb::get, "/v1/whoami", make_whoami_handler());
    if (p.config.enable_debug) {
        DebugSources sources;
        sources.requests_in_flight = [&p] { return p.limiter.in_flight(); };
        sources.background_tasks = [&p] {
            nlohmann::json tasks = nlohmann::json::array();
            const auto now = std::chrono::system_clock::now();
            for (const auto& t : p.tasks.snapshot()) {
                tasks.push_back({{"id", t.id},
                                 {"name", t.name},
                                 {"age_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                                now - t.started_at)
                                                .count()},
                                 {"origin_request_id", t.origin.request_id},
                                 {"origin_trace_id", t.origin.trace_id}});
            }
            return tasks;
        };
        sources.semaphore = [&p] {
            return nlohmann::json{{"capacity", p.bulk_semaphore.capacity()},
                                  {"in_use", p.bulk_semaphore.in_use()},
                                  {"waiters", p.bulk_semaphore.waiters()}};
        };
        r.add(http::verb::get, "/debug/contexts", make_debug_contexts_handler(std::move(sources)));
    }

    // Business routes (cache, bulk-sync, subscriptions, events, fanout) are registered here by
    // their owners: construct the handler with its dependencies from `p`, then r.add(...).
    p.business.add_routes(r);

    // POST /v1/fanout exists only with --outbound-allow (otherwise 404).
    if (!p.config.outbound_allow.empty()) {
        std::vector<AllowedTarget> allow;
        for (const auto& t : p.config.outbound_allow) allow.push_back({t.host, t.port});
        r.add(http::verb::post, "/v1/fanout", make_fanout_handler(p.http_client, std::move(allow)));
    }

    if (options.extra_routes) options.extra_routes(r);
    p.http_metrics.set_routes(r.patterns());
}

App::~App() = default;

void App::listen() {
    parts_->server.listen();
    parts_->logger.info("listening", {{"address", parts_->config.listen_host},
                                      {"port", parts_->server.port()},
                                      {"threads", parts_->config.threads}});
}

std::uint16_t App::port() const noexcept {
    return parts_->server.port();
}

namespace {

net::awaitable<std::size_t> stop_background(App::Parts* p, Context ctx) {
    const std::size_t leaked = co_await p->tasks.shutdown(ctx);
    co_await p->memcache.close(ctx);
    co_return leaked;
}

}  // namespace

std::size_t App::run(Context root, CancelHandle cancel_root) {
    Parts& p = *parts_;
    // Not cancelled with the root: subscribers still use the client until stop_background has
    // joined them, then closes it (cancel and join) itself.
    p.memcache.start(without_cancel(root));
    const std::size_t leaked =
        p.server.run(root, std::move(cancel_root),
                     [parts = &p](Context ctx) { return stop_background(parts, std::move(ctx)); });
    p.logger.info("shutdown complete", {{"leaked_tasks", leaked}});
    p.logger.sync();
    return leaked;
}

void App::request_shutdown() {
    parts_->server.request_shutdown();
}

bool App::draining() const noexcept {
    return parts_->server.draining().load();
}

std::size_t App::connections() const noexcept {
    return parts_->server.connections();
}

Logger& App::logger() noexcept {
    return parts_->logger;
}
Metrics& App::metrics() noexcept {
    return parts_->metrics;
}

}  // namespace reqctx
