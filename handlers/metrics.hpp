#pragma once

// The service's one prometheus registry and the GET /metrics handler. Components receive
// Metrics& in their constructor, add their families at startup through the *_family calls (so
// that a family is listed, # HELP and # TYPE, before it has any series), and may register an
// on_scrape callback that refreshes gauges just before each scrape (pool sizes, live tasks).
// Thread-safe.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "handlers/handler.hpp"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
enum class MetricType;
}  // namespace prometheus

namespace reqctx {

class Metrics {
public:
    using not_request_scoped = void;

    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    prometheus::Family<prometheus::Counter>& counter_family(const std::string& name,
                                                            const std::string& help);
    prometheus::Family<prometheus::Gauge>& gauge_family(const std::string& name,
                                                        const std::string& help);
    prometheus::Family<prometheus::Histogram>& histogram_family(const std::string& name,
                                                                const std::string& help);

    // `refresh` runs on the scraping thread before every collection; it must not block.
    void on_scrape(std::function<void()> refresh);

    // Runs the refresh callbacks, then renders the text exposition format 0.0.4: every family,
    // also one without series yet (its # HELP and # TYPE lines only, after the others).
    std::string scrape();

private:
    struct Described {
        std::string name;
        std::string help;
        prometheus::MetricType type;
    };
    void describe(const std::string& name, const std::string& help, prometheus::MetricType type);

    std::shared_ptr<prometheus::Registry> registry_;
    std::mutex mutex_;
    std::vector<std::function<void()>> refreshers_;
    std::vector<Described> described_;  // registration order; guarded by mutex_
};

// GET /metrics: 200, Content-Type: text/plain; version=0.0.4.
Handler make_metrics_handler(Metrics& metrics);

}  // namespace reqctx
