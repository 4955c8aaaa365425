#pragma once

// The service's one prometheus registry and the GET /metrics handler. Components receive
// Metrics& in their constructor, add their families to registry() at startup, and may register
// an on_scrape callback that refreshes gauges just before each scrape (pool sizes, live tasks).
// Thread-safe.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "handlers/handler.hpp"

namespace prometheus {
class Registry;
}

namespace reqctx {

class Metrics {
public:
    using not_request_scoped = void;

    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    prometheus::Registry& registry() noexcept { return *registry_; }

    // `refresh` runs on the scraping thread before every collection; it must not block.
    void on_scrape(std::function<void()> refresh);

    // Runs the refresh callbacks, then renders the text exposition format 0.0.4.
    std::string scrape();

private:
    std::shared_ptr<prometheus::Registry> registry_;
    std::mutex mutex_;
    std::vector<std::function<void()>> refreshers_;
};

// GET /metrics: 200, Content-Type: text/plain; version=0.0.4.
Handler make_metrics_handler(Metrics& metrics);

}  // namespace reqctx
