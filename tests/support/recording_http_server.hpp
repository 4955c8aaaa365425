#pragma once

// A small HTTP/1.1 server for tests that records every request it receives (header lines in
// order, with their original names) and answers 200 `null`, a chosen status, or never (hang)
// until it is stopped. Listens on a free 127.0.0.1 port; one thread per connection, all joined
// on destruction. Every method is thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace reqctx::test {

struct RecordedRequest {
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
    std::string body;
    std::size_t connection = 0;  // 1-based index of the connection it arrived on

    // Values of every header line named `name` (case-insensitive), in order.
    std::vector<std::string> all(std::string_view name) const;
    // The first such value, or nullopt.
    std::optional<std::string> header(std::string_view name) const;
};

class RecordingHttpServer {
public:
    RecordingHttpServer();
    RecordingHttpServer(const RecordingHttpServer&) = delete;
    RecordingHttpServer& operator=(const RecordingHttpServer&) = delete;
    ~RecordingHttpServer();  // stop()

    unsigned short port() const noexcept { return port_; }
    std::string address() const;  // "127.0.0.1:<port>"
    std::string url(std::string_view path = "/") const;

    // Requests whose target starts with `prefix` are never answered (until stop()).
    void hang_on(std::string prefix);
    // Requests whose target starts with `prefix` get `status` (body `null`).
    void respond_with(std::string prefix, unsigned status);
    // After each response the connection is closed (Connection: close).
    void close_after_response(bool close);

    std::vector<RecordedRequest> requests() const;
    std::size_t request_count() const;
    std::size_t connection_count() const;
    // True once at least n requests arrived, false if `timeout` passes first.
    bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout);
    // True once every accepted connection has been closed by the peer or by us.
    bool wait_connections_closed(std::chrono::milliseconds timeout);

    void stop();

private:
    struct Impl;
    void accept_loop();
    void serve(std::size_t index, int fd);

    unsigned short port_ = 0;
    std::unique_ptr<Impl> impl_;
};

}  // namespace reqctx::test
