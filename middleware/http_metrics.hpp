#pragma once

// HTTP metrics on the shared registry: http_requests_total{method,route,status},
// http_request_duration_seconds{route} (histogram), http_requests_in_flight,
// http_requests_cancelled_total{reason}, reqctx_contexts_live. Route labels are patterns. The
// per-request path does no label-map lookups after a (method, route, status) was seen once.
// Thread-safe.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "handlers/metrics.hpp"
#include "middleware/exchange.hpp"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace reqctx {

class HttpMetrics {
public:
    using not_request_scoped = void;

    // `in_flight` is read at scrape time.
    HttpMetrics(Metrics& metrics, std::function<std::size_t()> in_flight);

    // Startup only, before serving: every route pattern, indexed as the router indexes them
    // (the catch-all "unmatched" last).
    void set_routes(std::vector<std::string> routes);

    void record(const Exchange& exchange);

private:
    prometheus::Family<prometheus::Counter>* requests_;
    prometheus::Family<prometheus::Histogram>* duration_family_;
    std::vector<prometheus::Histogram*> durations_;  // by route index
    prometheus::Counter* cancelled_client_ = nullptr;
    prometheus::Counter* cancelled_deadline_ = nullptr;
    prometheus::Counter* cancelled_shutdown_ = nullptr;
    std::vector<std::string> routes_;
    std::mutex mutex_;
    std::unordered_map<std::uint64_t, prometheus::Counter*> counters_;
};

}  // namespace reqctx
