#pragma once

// Asio-native memcached client (meta text protocol), pipelined over a few connections per
// server, keys spread by libmemcached-compatible weighted ketama. Every op takes `ctx` first:
// its deadline bounds the whole op (queueing, connect, write, read) and cancelling it aborts the
// caller's wait at once (codes reqctx::ContextErrc::deadline_exceeded / canceled). A cancelled
// op never poisons its connection. Thread-safe: ops may be called from any executor/thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "clients/memcache/errors.hpp"
#include "context/context.hpp"

namespace reqctx::memcache {

namespace net = boost::asio;

template <class T>
using Result = boost::system::result<T, std::error_code>;

// A stored value. `value` holds bytes (not necessarily UTF-8).
struct Item {
    std::string value;
    std::uint32_t flags = 0;
    std::uint64_t cas = 0;
};

inline constexpr std::uint16_t kDefaultPort = 11211;
inline constexpr std::size_t kMaxKeyLength = 250;

struct ServerAddress {
    std::string host;
    std::uint16_t port = kDefaultPort;
    std::uint32_t weight = 1;

    // "host:port", as shown in /readyz and metrics labels.
    std::string label() const;
};

// Parses "host:port[:weight],..." (port defaults to 11211, weight to 1; "[v6]:port" accepted).
Result<std::vector<ServerAddress>> parse_servers(std::string_view spec);

// Empty when `key` is a valid memcache key (1..250 bytes, no whitespace or control bytes).
std::error_code validate_key(std::string_view key) noexcept;

// Seconds from now; 0 = never expires. Always relative: above 30 days the client sends memcached
// an absolute time (now + ttl by the system clock, capped at 2038-01-19T03:14:07Z).
using Ttl = std::chrono::seconds;

enum class Op : std::uint8_t {
    get,
    get_multi,
    set,
    add,
    replace,
    append,
    prepend,
    cas,
    remove,
    incr,
    decr,
    touch,
    version,
    ping,
};
std::string_view to_string(Op op) noexcept;

enum class ConnectionState : std::uint8_t { connecting, connected, disconnected };
std::string_view to_string(ConnectionState s) noexcept;

// One finished op, reported to the Observer.
struct OpEvent {
    Op op;
    std::error_code ec;                // empty on success (a miss is a success)
    std::optional<bool> hit;           // get/touch/remove: found or not; empty otherwise
    std::chrono::nanoseconds latency;  // from the call until the result was known
};

// "hit", "miss", "ok", or the error's short name ("not_stored", "deadline_exceeded", ...):
// a bounded label set for metrics.
std::string_view result_label(const OpEvent& e) noexcept;

// Metrics hooks; no HTTP or prometheus dependency. Called from I/O threads: implementations must
// be thread-safe, cheap and must not block or throw.
class Observer {
public:
    using not_request_scoped = void;
    virtual ~Observer() = default;
    virtual void on_op(const OpEvent& /*event*/) noexcept {}
    // A connection of server `server` (index into ClientConfig::servers) changed state.
    virtual void on_connection_state(std::size_t /*server*/, ConnectionState /*from*/,
                                     ConnectionState /*to*/) noexcept {}
    // The server was ejected from the ring (dead) or re-admitted.
    virtual void on_server_state(std::size_t /*server*/, bool /*alive*/) noexcept {}
};

struct ClientConfig {
    std::vector<ServerAddress> servers;
    // Connections per server. Ops fill the first one and spill to the next only while it holds
    // max_in_flight unanswered commands: concurrent ops share writes, reads and wakeups.
    std::size_t pool_size = 2;
    std::chrono::milliseconds connect_timeout{1000};  // per connection attempt
    std::size_t max_item_size = 1024 * 1024;          // largest value accepted (bytes)
    std::size_t max_in_flight = 128;                  // requests written, unanswered, per conn
    std::uint32_t failure_limit = 2;                  // consecutive connect failures -> dead
    std::chrono::milliseconds dead_retry{1000};       // back-off before retrying a dead server
    bool eject_dead_servers = true;                   // dead servers leave the ketama ring
    std::shared_ptr<Observer> observer;               // optional
};

// Snapshot of one server for /readyz and metrics.
struct ServerStatus {
    std::size_t index;
    std::string label;  // "host:port"
    std::uint32_t weight;
    bool alive;             // false while dead (ejected or failing fast)
    std::size_t connected;  // connections by state
    std::size_t connecting;
    std::size_t disconnected;
};

// Usage: build with the config, `start(ctx)` once (connection coroutines are tied to a child of
// ctx), run ops, `co_await close(ctx)` to cancel and join every connection coroutine. Ops before
// start or after close fail with MemcacheErrc::closed. The destructor cancels but cannot join:
// call close() first.
class Client {
public:
    using not_request_scoped = void;

    Client(net::any_io_executor ex, ClientConfig cfg);
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    ~Client();

    // Spawns the connection coroutines (eager connect) under with_cancel(ctx). Does not wait.
    void start(Context ctx);
    // Cancels the client's coroutines, fails queued ops with `closed`, and waits (bounded by
    // ctx) until every connection coroutine has finished. Returns ctx's error if it gave up.
    net::awaitable<std::error_code> close(Context ctx);

    // A miss is an empty optional.
    net::awaitable<Result<std::optional<Item>>> get(Context ctx, std::string key);
    // Hits only; missing keys are absent. Keys are grouped by server and fetched concurrently;
    // one failing server fails the whole call (the first error). Duplicates are fine.
    net::awaitable<Result<std::unordered_map<std::string, Item>>> get_multi(
        Context ctx, std::vector<std::string> keys);

    net::awaitable<std::error_code> set(Context ctx, std::string key, std::string value,
                                        Ttl ttl = Ttl{0}, std::uint32_t flags = 0);
    // not_stored when the key exists.
    net::awaitable<std::error_code> add(Context ctx, std::string key, std::string value,
                                        Ttl ttl = Ttl{0}, std::uint32_t flags = 0);
    // not_stored when the key is missing.
    net::awaitable<std::error_code> replace(Context ctx, std::string key, std::string value,
                                            Ttl ttl = Ttl{0}, std::uint32_t flags = 0);
    // not_stored when the key is missing. Keeps the item's ttl and flags.
    net::awaitable<std::error_code> append(Context ctx, std::string key, std::string value);
    net::awaitable<std::error_code> prepend(Context ctx, std::string key, std::string value);
    // exists when the item changed since `cas` was read, not_found when it is gone.
    net::awaitable<std::error_code> cas(Context ctx, std::string key, std::string value,
                                        std::uint64_t cas, Ttl ttl = Ttl{0},
                                        std::uint32_t flags = 0);

    // true = deleted, false = there was no such key.
    net::awaitable<Result<bool>> remove(Context ctx, std::string key);

    // The new value. Without `initial`, a missing key is not_found; with it, a missing key is
    // created holding `initial` (returned as is) with `ttl`. incr wraps at 2^64, decr stops at 0.
    net::awaitable<Result<std::uint64_t>> incr(Context ctx, std::string key, std::uint64_t delta,
                                               std::optional<std::uint64_t> initial = {},
                                               Ttl ttl = Ttl{0});
    net::awaitable<Result<std::uint64_t>> decr(Context ctx, std::string key, std::uint64_t delta,
                                               std::optional<std::uint64_t> initial = {},
                                               Ttl ttl = Ttl{0});

    // Sets a new ttl. true = touched, false = no such key.
    net::awaitable<Result<bool>> touch(Context ctx, std::string key, Ttl ttl);

    // Per server (index into servers()): the server's version string, and a round trip (mn).
    // A dead server fails fast with server_unreachable.
    net::awaitable<Result<std::string>> version(Context ctx, std::size_t server);
    net::awaitable<Result<std::chrono::nanoseconds>> ping(Context ctx, std::size_t server);

    // The configured servers, in config order (indexes for version/ping/status).
    const std::vector<ServerAddress>& servers() const noexcept;
    std::vector<ServerStatus> status() const;
    // Index of the server that currently owns `key` (ketama over live servers), or error.
    Result<std::size_t> server_for(std::string_view key) const;
    const ClientConfig& config() const noexcept;

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace reqctx::memcache
