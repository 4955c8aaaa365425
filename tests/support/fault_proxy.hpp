#pragma once

// A fault-injecting TCP proxy for the memcache text and meta protocols, placed between the
// service and a real memcached. It parses commands and responses (enough to delimit them), so it
// can delay each command, stall all traffic, reset connections, and count the commands in flight.
// One thread of its own (a poll loop); every method is thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace reqctx::test {

class FaultProxy {
public:
    // Listens on a free 127.0.0.1 port and forwards each accepted connection to
    // 127.0.0.1:upstream_port. Throws std::runtime_error when it cannot listen.
    explicit FaultProxy(unsigned short upstream_port);
    FaultProxy(const FaultProxy&) = delete;
    FaultProxy& operator=(const FaultProxy&) = delete;
    ~FaultProxy();  // closes every connection and joins the thread

    unsigned short port() const noexcept { return port_; }
    std::string address() const;  // "127.0.0.1:<port>"

    // Each command is held this long before it is forwarded (commands keep their order).
    void set_latency(std::chrono::milliseconds per_command);
    // While stalled, no byte moves in either direction; resume() lets the held bytes go.
    void stall();
    void resume();
    // Closes every open connection with a TCP reset (SO_LINGER 0).
    void reset_all();
    // While refusing, new connections are accepted and reset at once (memcache "down").
    void set_refuse(bool refuse);

    // Commands received from the service whose response has not been passed back yet.
    std::int64_t in_flight() const noexcept { return in_flight_.load(); }
    // The highest in_flight() seen since construction or reset_counters().
    std::int64_t max_in_flight() const noexcept { return max_in_flight_.load(); }
    // Commands seen, and storage commands seen (set/add/replace/append/prepend/cas/ms).
    std::int64_t total_commands() const noexcept { return total_commands_.load(); }
    std::int64_t total_writes() const noexcept { return total_writes_.load(); }
    std::int64_t connections_accepted() const noexcept { return accepted_.load(); }
    std::int64_t connections_open() const noexcept { return open_.load(); }
    // Connections that have carried at least one command (since construction).
    std::int64_t connections_used() const noexcept { return used_.load(); }
    void reset_counters();

    // Used by the loop thread (public for the implementation file's helpers).
    void note_command(bool is_write, bool expects_reply);
    void note_reply();

private:
    void run();

    unsigned short upstream_port_;
    unsigned short port_ = 0;
    int listen_fd_ = -1;
    int wake_fds_[2] = {-1, -1};

    std::atomic<std::int64_t> latency_ms_{0};
    std::atomic<bool> stalled_{false};
    std::atomic<bool> refuse_{false};
    std::atomic<int> reset_requests_{0};
    std::atomic<bool> stop_{false};

    std::atomic<std::int64_t> in_flight_{0};
    std::atomic<std::int64_t> max_in_flight_{0};
    std::atomic<std::int64_t> total_commands_{0};
    std::atomic<std::int64_t> total_writes_{0};
    std::atomic<std::int64_t> accepted_{0};
    std::atomic<std::int64_t> open_{0};
    std::atomic<std::int64_t> used_{0};

    std::thread thread_;
};

}  // namespace reqctx::test
