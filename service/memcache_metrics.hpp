#pragma once

// Memcache metrics on the shared registry: memcache_ops_total{op,result} and
// memcache_op_duration_seconds{op} (histogram) fed by the client's Observer on its I/O threads,
// and memcache_pool_connections{server,state} refreshed from Client::status() at scrape time.
// Label values come from bounded sets (memcache::to_string, memcache::result_label, "host:port").

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "clients/memcache/client.hpp"
#include "handlers/log.hpp"
#include "handlers/metrics.hpp"

namespace prometheus {
class Counter;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace reqctx {

// Pass as ClientConfig::observer (the client's shared_ptr keeps it alive as long as the client).
// Must not outlive `metrics`. Lock-free per op once an (op, result) pair was seen.
class MemcacheMetrics final : public memcache::Observer {
public:
    explicit MemcacheMetrics(Metrics& metrics);
    MemcacheMetrics(const MemcacheMetrics&) = delete;
    MemcacheMetrics& operator=(const MemcacheMetrics&) = delete;

    void on_op(const memcache::OpEvent& event) noexcept override;

    // Every label `result_label` can return, in a fixed order (index into the counter table).
    static constexpr std::size_t kResults = 18;
    static constexpr std::size_t kOps = static_cast<std::size_t>(memcache::Op::ping) + 1;

private:
    prometheus::Family<prometheus::Counter>* ops_;
    prometheus::Family<prometheus::Histogram>* durations_;
    // Label-resolved metrics, filled on first use: a Family::Add lookup happens once per pair,
    // and series that never happen (version/not_stored, ...) are not exported as zeros.
    std::array<std::array<std::atomic<prometheus::Counter*>, kResults>, kOps> counters_{};
    std::array<std::atomic<prometheus::Histogram*>, kOps> histograms_{};
};

// The service's client Observer: ops go to MemcacheMetrics, and a server marked dead (warn) or
// back (info) is logged once per change. Must not outlive `logger`.
class MemcacheObserver final : public memcache::Observer {
public:
    MemcacheObserver(std::shared_ptr<MemcacheMetrics> metrics, Logger& logger,
                     std::vector<std::string> server_labels);

    void on_op(const memcache::OpEvent& event) noexcept override { metrics_->on_op(event); }
    void on_server_state(std::size_t server, bool alive) noexcept override;

private:
    std::shared_ptr<MemcacheMetrics> metrics_;
    Logger& logger_;
    std::vector<std::string> labels_;  // "host:port" by server index
};

// Registers memcache_pool_connections{server="host:port",state} for every configured server and
// every connection state (0 when none), refreshed from client.status() before each scrape.
// `client` must outlive the scrapes (App declares it after Metrics and stops serving first).
void track_memcache_pool(Metrics& metrics, const memcache::Client& client);

}  // namespace reqctx
