// Many coroutines on a multi-threaded io_context sharing one client (run under TSan).

#include "clients/memcache/client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "context/context.hpp"
#include "tests/support/process.hpp"

namespace reqctx::memcache {
namespace {

using namespace std::chrono_literals;

// Runs an io_context on `n` threads; stops and joins them on destruction, on every path out of
// a test (an ASSERT included), so no thread outlives the objects it uses.
class Threads {
public:
    Threads(net::io_context& io, int n) : io_(io), guard_(net::make_work_guard(io)) {
        for (int t = 0; t < n; ++t) threads_.emplace_back([this] { io_.run(); });
    }
    ~Threads() {
        guard_.reset();
        io_.stop();
        for (auto& t : threads_) t.join();
    }

private:
    net::io_context& io_;
    net::executor_work_guard<net::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
};

struct Tally {
    std::atomic<int> finished{0};
    std::atomic<int> failures{0};
};

// One worker: its own keys (set/get/append/delete) plus a shared counter.
net::awaitable<void> worker(Client* c, Context ctx, int id, int rounds, Tally* tally) {
    for (int i = 0; i < rounds; ++i) {
        const std::string key = "w" + std::to_string(id) + ":" + std::to_string(i % 5);
        const std::string value = std::to_string(id * 100000 + i);
        if (co_await c->set(ctx, key, value)) ++tally->failures;
        auto got = co_await c->get(ctx, key);
        if (!got || !got->has_value() || (*got)->value != value) ++tally->failures;
        if (!co_await c->incr(ctx, "shared", 1)) ++tally->failures;
        if (i % 10 == 0) {
            // A short-lived op cancelled at once must not disturb anyone else's answers.
            auto [cctx, cancel] = with_cancel(ctx);
            cancel.cancel();
            auto r = co_await c->get(cctx, key);
            if (r || r.error() != ContextErrc::canceled) ++tally->failures;
        }
        if (i % 7 == 0) {
            std::vector<std::string> keys;
            for (int k = 0; k < 5; ++k)
                keys.push_back("w" + std::to_string(id) + ":" + std::to_string(k));
            if (!co_await c->get_multi(ctx, keys)) ++tally->failures;
        }
    }
    ++tally->finished;
}

net::awaitable<std::error_code> reset_shared(Client* c, Context ctx) {
    co_return co_await c->set(ctx, "shared", "0");
}

net::awaitable<Result<std::optional<Item>>> final_get(Client* c, Context ctx) {
    co_return co_await c->get(ctx, "shared");
}

TEST(MemcacheClientConcurrency, ManyCoroutinesOnManyThreads) {
    test::MemcachedServer a, b;
    net::io_context io;
    ClientConfig cfg;
    cfg.servers = {{"127.0.0.1", a.port(), 1}, {"127.0.0.1", b.port(), 2}};
    cfg.pool_size = 2;
    cfg.max_in_flight = 16;
    Client client(io.get_executor(), cfg);
    client.start(background());
    constexpr int kWorkers = 32;
    constexpr int kRounds = 60;
    auto [ctx, cancel] = with_timeout(background(), 60s);
    // Everything the handlers touch outlives the threads (declared before them).
    Tally tally;
    std::atomic<bool> ready{false}, done{false}, closed{false};
    std::optional<Result<std::optional<Item>>> shared;
    Threads threads(io, 3);

    net::co_spawn(net::make_strand(io), reset_shared(&client, ctx),
                  [&](std::exception_ptr, std::error_code ec) {
                      EXPECT_FALSE(ec);
                      ready = true;
                  });
    ASSERT_TRUE(test::wait_until([&] { return ready.load(); }, 20s));
    for (int w = 0; w < kWorkers; ++w) {
        // Each worker on its own strand, as request handlers are.
        net::co_spawn(net::make_strand(io), worker(&client, ctx, w, kRounds, &tally),
                      [](std::exception_ptr e) {
                          if (e) std::rethrow_exception(e);
                      });
    }
    EXPECT_TRUE(test::wait_until([&] { return tally.finished.load() == kWorkers; }, 90s));
    EXPECT_EQ(tally.failures.load(), 0);

    net::co_spawn(net::make_strand(io), final_get(&client, ctx),
                  [&](std::exception_ptr, Result<std::optional<Item>> r) {
                      shared.emplace(std::move(r));
                      done = true;
                  });
    ASSERT_TRUE(test::wait_until([&] { return done.load(); }, 20s));
    ASSERT_TRUE(*shared && shared->value());
    EXPECT_EQ(shared->value()->value, std::to_string(kWorkers * kRounds));

    net::co_spawn(net::make_strand(io), client.close(ctx),
                  [&](std::exception_ptr, std::error_code ec) {
                      EXPECT_FALSE(ec);
                      closed = true;
                  });
    EXPECT_TRUE(test::wait_until([&] { return closed.load(); }, 20s));
}

}  // namespace
}  // namespace reqctx::memcache
