#pragma once

// GET /healthz (liveness: touches no dependency) and GET /readyz (readiness: probes every
// dependency, bounded by min(request deadline, 500 ms); 503 not_ready when one fails or while
// the server drains for shutdown).

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "handlers/handler.hpp"

namespace reqctx {

// One dependency's answer to a probe.
struct DependencyStatus {
    std::string server;  // "127.0.0.1:11211"
    bool ok = false;
    double latency_ms = 0;
    std::string error;  // set when !ok
};

// Probes every memcache server (all of them, concurrently or in turn) within ctx.
using ReadinessProbe = std::function<net::awaitable<std::vector<DependencyStatus>>(Context ctx)>;

Handler make_healthz_handler();

// `draining` is owned by the server and outlives the handler.
Handler make_readyz_handler(ReadinessProbe probe, const std::atomic<bool>& draining);

}  // namespace reqctx
