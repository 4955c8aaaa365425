#pragma once

// Small helpers for the context tests: run a coroutine to completion on an io_context, and poll
// a condition with a bound (never a timing assertion).

#include <chrono>
#include <exception>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "context/context.hpp"

namespace reqctx::test {

namespace net = boost::asio;

template <class Pred>
bool eventually(Pred pred, std::chrono::seconds bound = std::chrono::seconds(10)) {
    auto until = Clock::now() + bound;
    while (Clock::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pred();
}

// live_contexts() once no other thread (e.g. the deadline thread dropping the reference it held
// while firing) is still releasing nodes: the same value read three times, 2 ms apart.
inline std::int64_t settled_live_contexts() {
    std::int64_t last = live_contexts();
    int same = 0;
    auto until = Clock::now() + std::chrono::seconds(10);
    while (same < 3 && Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        std::int64_t now = live_contexts();
        same = now == last ? same + 1 : 0;
        last = now;
    }
    return last;
}

// True once live_contexts() reaches `expected` (bounded poll).
inline bool live_contexts_reach(std::int64_t expected) {
    return eventually([expected] { return live_contexts() == expected; });
}

// Runs `aw` on io (which the caller then runs); the result lands in `out` (joined: the
// completion handler is the join signal).
template <class T>
void spawn_into(net::io_context& io, net::awaitable<T> aw, std::optional<T>& out) {
    net::co_spawn(io, std::move(aw), [&out](std::exception_ptr e, T v) {
        if (e) std::rethrow_exception(e);
        out = std::move(v);
    });
}

template <class T>
T run_sync(net::awaitable<T> aw) {
    net::io_context io;
    std::optional<T> out;
    spawn_into(io, std::move(aw), out);
    io.run();
    return *out;
}

}  // namespace reqctx::test
