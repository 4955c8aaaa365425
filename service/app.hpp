#pragma once

// The composition root: builds the logger, metrics registry, clients, semaphores, task registry
// and handlers from the Config, registers the routes, and owns the server. Nothing else
// constructs long-lived dependencies; they are passed explicitly to constructors.
//
//   App app(config);                       // routes registered
//   app.listen();                          // throws std::system_error if the address is unusable
//   auto [root, cancel] = with_cancel(background());   // main only
//   app.run(root, std::move(cancel));      // serves until SIGTERM/SIGINT/request_shutdown()

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include <spdlog/common.h>

#include "context/context.hpp"
#include "service/config.hpp"

namespace reqctx {

class Logger;
class Metrics;
class Router;

struct AppOptions {
    spdlog::sink_ptr log_sink;  // default: stdout
    bool handle_signals = true;
    // Adds routes after the service's own (tests register test-only handlers here; the shipped
    // binary never does).
    std::function<void(Router&)> extra_routes;
};

class App {
public:
    explicit App(Config config, AppOptions options = {});
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    void listen();
    std::uint16_t port() const noexcept;

    // Serves until the shutdown sequence completes; logs the last line (leaked_tasks) and
    // returns leaked_tasks.
    std::size_t run(Context root, CancelHandle cancel_root);

    // Thread-safe: starts the shutdown as SIGTERM would.
    void request_shutdown();
    // True from the start of a shutdown (what /readyz reports).
    bool draining() const noexcept;
    // Connections open right now (thread-safe).
    std::size_t connections() const noexcept;

    Logger& logger() noexcept;
    Metrics& metrics() noexcept;

    struct Parts;

private:
    std::unique_ptr<Parts> parts_;
};

}  // namespace reqctx
