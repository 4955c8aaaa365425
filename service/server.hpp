#pragma once

// The HTTP/1.1 server: a listener and one session coroutine per connection on N I/O threads,
// each thread running its own io_context (a connection lives on one thread for its whole life,
// so a session needs no strand). Every request runs the middleware steps in the order of
// docs/architecture.md and gets a context derived from its connection's with_cancel(root).
// Shutdown (SIGTERM/SIGINT or request_shutdown()) follows docs/api.md "Shutdown".

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "context/context.hpp"
#include "handlers/log.hpp"
#include "middleware/access_log.hpp"
#include "middleware/http_metrics.hpp"
#include "middleware/load_shed.hpp"
#include "service/router.hpp"

namespace reqctx {

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;  // 0: any free port (see Server::port())
    unsigned threads = 1;
    std::size_t max_body_bytes = 1024 * 1024;
    std::chrono::milliseconds idle_timeout{60000};
    std::chrono::milliseconds header_timeout{10000};
    std::chrono::milliseconds request_timeout{5000};
    std::chrono::milliseconds max_request_timeout{30000};
    std::chrono::milliseconds shutdown_grace{10000};
    bool handle_signals = true;  // SIGTERM/SIGINT start the shutdown
};

// Awaited once the root is cancelled: cancels and awaits every background task (and closes
// clients); returns the number of tasks that did not finish (leaked_tasks). Runs on I/O thread 0.
using BackgroundStop = std::function<net::awaitable<std::size_t>(Context ctx)>;

class Server {
public:
    using not_request_scoped = void;

    Server(ServerOptions options, const Router& router, Logger& logger, AccessLog& access_log,
           HttpMetrics& metrics, InflightLimiter& limiter);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and listens; throws std::system_error when the address cannot be used (startup).
    void listen();
    // The bound port (after listen()).
    std::uint16_t port() const noexcept;
    // The executor of I/O thread 0, for clients built by the app.
    net::any_io_executor executor() const;
    // True from the start of a shutdown; /readyz reads it.
    const std::atomic<bool>& draining() const noexcept;
    // Connections open right now.
    std::size_t connections() const noexcept;

    // Serves on options.threads threads (the caller's included) until the shutdown sequence has
    // completed; returns leaked_tasks. `root` is the server root; `cancel_root` cancels it
    // (cause CancelReason::shutdown) after the grace period.
    std::size_t run(Context root, CancelHandle cancel_root, BackgroundStop stop_background);

    // Thread-safe; starts the shutdown sequence as SIGTERM would. Idempotent.
    void request_shutdown();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace reqctx
