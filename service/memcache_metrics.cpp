#include "service/memcache_metrics.hpp"

#include <array>
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace reqctx {
namespace {

constexpr std::array<std::string_view, MemcacheMetrics::kResults> kResultLabels{
    "ok",
    "hit",
    "miss",
    "deadline_exceeded",
    "cancelled",
    "invalid_key",
    "value_too_large",
    "not_stored",
    "exists",
    "not_found",
    "non_numeric_value",
    "server_unreachable",
    "server_error",
    "protocol_error",
    "no_servers",
    "invalid_server",
    "closed",
    "error"};

// Index into kResultLabels, or kResults for a label this table does not know yet.
std::size_t result_index(std::string_view label) noexcept {
    for (std::size_t i = 0; i < kResultLabels.size(); ++i) {
        if (kResultLabels[i] == label) return i;
    }
    return MemcacheMetrics::kResults;
}

const std::array<memcache::ConnectionState, 3> kStates{memcache::ConnectionState::connecting,
                                                       memcache::ConnectionState::connected,
                                                       memcache::ConnectionState::disconnected};

const prometheus::Histogram::BucketBoundaries& duration_buckets() {
    // Loopback round trips are tens of microseconds; the tail reaches the request deadlines.
    static const prometheus::Histogram::BucketBoundaries buckets{
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
        0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5};
    return buckets;
}

}  // namespace

MemcacheMetrics::MemcacheMetrics(Metrics& metrics)
    : ops_(&metrics.counter_family("memcache_ops_total", "Memcache operations by op and result")),
      durations_(&metrics.histogram_family(
          "memcache_op_duration_seconds",
          "Memcache operation duration (queueing, connect, round trip) by op")) {}

void MemcacheMetrics::on_op(const memcache::OpEvent& event) noexcept {
    const std::string_view op_label = memcache::to_string(event.op);
    const std::string_view result = memcache::result_label(event);
    const double seconds = std::chrono::duration<double>(event.latency).count();
    const auto op = static_cast<std::size_t>(event.op);
    const std::size_t res = result_index(result);
    try {
        // Family::Add is thread-safe and returns the same object for the same labels, so two
        // threads racing to fill a slot store the same pointer.
        if (op >= kOps || res >= kResults) {
            // An op or result added to the client after this table was written: still correct,
            // just a map lookup per op.
            ops_->Add({{"op", std::string(op_label)}, {"result", std::string(result)}}).Increment();
            durations_->Add({{"op", std::string(op_label)}}, duration_buckets()).Observe(seconds);
            return;
        }
        auto& counter_slot = counters_[op][res];
        prometheus::Counter* counter = counter_slot.load(std::memory_order_acquire);
        if (counter == nullptr) {
            counter = &ops_->Add({{"op", std::string(op_label)}, {"result", std::string(result)}});
            counter_slot.store(counter, std::memory_order_release);
        }
        auto& histogram_slot = histograms_[op];
        prometheus::Histogram* histogram = histogram_slot.load(std::memory_order_acquire);
        if (histogram == nullptr) {
            histogram = &durations_->Add({{"op", std::string(op_label)}}, duration_buckets());
            histogram_slot.store(histogram, std::memory_order_release);
        }
        counter->Increment();
        histogram->Observe(seconds);
    } catch (...) {
        // Only allocation can fail here; losing one sample beats terminating an I/O thread.
    }
}

MemcacheObserver::MemcacheObserver(std::shared_ptr<MemcacheMetrics> metrics, Logger& logger,
                                   std::vector<std::string> server_labels)
    : metrics_(std::move(metrics)), logger_(logger), labels_(std::move(server_labels)) {}

void MemcacheObserver::on_server_state(std::size_t server, bool alive) noexcept {
    try {
        const std::string label =
            server < labels_.size() ? labels_[server] : std::to_string(server);
        if (alive) {
            logger_.info("memcache server back", {{"server", label}});
        } else {
            logger_.warn("memcache server marked dead", {{"server", label}});
        }
    } catch (...) {
        // Only allocation can fail here; an I/O thread must not terminate for a log line.
    }
}

void track_memcache_pool(Metrics& metrics, const memcache::Client& client) {
    auto& family = metrics.gauge_family("memcache_pool_connections",
                                        "Memcache pool connections by server and state");
    // One gauge per (server label, state); a server listed twice shares its gauges (summed).
    std::map<std::string, std::array<prometheus::Gauge*, 3>> gauges;
    for (const auto& server : client.servers()) {
        const std::string label = server.label();
        auto& row = gauges[label];
        for (std::size_t i = 0; i < kStates.size(); ++i) {
            row[i] = &family.Add(
                {{"server", label}, {"state", std::string(memcache::to_string(kStates[i]))}});
        }
    }
    metrics.on_scrape([gauges = std::move(gauges), c = &client] {
        std::map<std::string, std::array<double, 3>> counts;
        for (const auto& s : c->status()) {
            auto& row = counts[s.label];
            row[0] += static_cast<double>(s.connecting);
            row[1] += static_cast<double>(s.connected);
            row[2] += static_cast<double>(s.disconnected);
        }
        for (const auto& [label, row] : gauges) {
            const auto it = counts.find(label);
            for (std::size_t i = 0; i < row.size(); ++i) {
                row[i]->Set(it == counts.end() ? 0.0 : it->second[i]);
            }
        }
    });
}

}  // namespace reqctx
