#pragma once

// HTTP metrics on the shared registry: http_requests_total{method,route,status},
// http_request_duration_seconds{route} (histogram), http_requests_in_flight,
// http_requests_cancelled_total{reason}, reqctx_contexts_live. Route labels are patterns; a method
// outside GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH is labelled "other".
// record() takes no lock and does no label-map lookup: each thread counts into its own shard
// (plain relaxed loads and stores by its one writer); a scrape sums the shards and hands the
// increments to the prometheus objects. A thread's shard outlives it (counts are kept) and is
// reused by a later thread. Thread-safe.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "handlers/metrics.hpp"
#include "middleware/exchange.hpp"

namespace reqctx {

namespace detail {
struct MetricsShard;
}

class HttpMetrics {
public:
    using not_request_scoped = void;

    // `in_flight` is read at scrape time.
    HttpMetrics(Metrics& metrics, std::function<std::size_t()> in_flight);
    ~HttpMetrics();
    HttpMetrics(const HttpMetrics&) = delete;
    HttpMetrics& operator=(const HttpMetrics&) = delete;

    // Startup only, before the first record(): every route pattern, indexed as the router
    // indexes them (the catch-all "unmatched" last).
    void set_routes(std::vector<std::string> routes);

    void record(const Exchange& exchange);

private:
    struct State;  // shared with the scrape callback, which may outlive this object

    detail::MetricsShard* shard_slow();

    const std::uint64_t id_;  // never reused: tells a thread's cached shard pointer apart
    std::shared_ptr<State> state_;
};

}  // namespace reqctx
