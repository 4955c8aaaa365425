// The memcache client against real memcached processes on free loopback ports: every op,
// multi-server routing, deadlines on a stopped server, cancellation, ejection and re-admission.

#include "clients/memcache/client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "context/context.hpp"
#include "tests/support/fault_proxy.hpp"
#include "tests/support/process.hpp"

namespace reqctx::memcache {
namespace {

using namespace std::chrono_literals;
using test::MemcachedServer;

// Drives an io_context on the test thread until one awaitable finishes (bounded).
class Env {
public:
    template <class T>
    T run(net::awaitable<T> a, std::chrono::seconds limit = 20s) {
        std::optional<T> out;
        std::exception_ptr ep;
        bool done = false;
        net::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
            ep = e;
            out.emplace(std::move(v));
            done = true;
        });
        pump_until(done, limit);
        if (ep) std::rethrow_exception(ep);
        return std::move(*out);
    }

    void pump_until(const bool& done, std::chrono::seconds limit = 20s) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (!done && std::chrono::steady_clock::now() < end) {
            if (io.stopped()) io.restart();
            io.run_one_for(20ms);
        }
        if (!done) throw std::runtime_error("operation did not finish within the test bound");
    }

    // Runs the io_context for a while (lets queued work proceed; not a synchronisation point).
    void pump_for(std::chrono::milliseconds d) {
        if (io.stopped()) io.restart();
        io.run_for(d);
    }

    // Polls pred while pumping the io_context, up to `limit`.
    template <class Pred>
    bool pump_until_pred(Pred pred, std::chrono::seconds limit = 10s) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            if (pred()) return true;
            pump_for(10ms);
        }
        return pred();
    }

    net::io_context io;
};

ServerAddress addr(const MemcachedServer& s, std::uint32_t weight = 1) {
    return ServerAddress{"127.0.0.1", s.port(), weight};
}

class CountingObserver : public Observer {
public:
    void on_op(const OpEvent&) noexcept override { ++ops; }
    void on_connection_state(std::size_t, ConnectionState from,
                             ConnectionState to) noexcept override {
        if (from == ConnectionState::connected && to == ConnectionState::disconnected) ++drops;
        if (to == ConnectionState::connected) ++connects;
    }
    void on_server_state(std::size_t, bool alive) noexcept override {
        (alive ? readmitted : ejected)++;
    }
    std::atomic<int> ops{0}, drops{0}, connects{0}, ejected{0}, readmitted{0};
};

// A key that `client` routes to server `index`.
std::string key_on(const Client& client, std::size_t index, const std::string& prefix = "k") {
    for (int i = 0; i < 100000; ++i) {
        std::string k = prefix + std::to_string(i);
        auto s = client.server_for(k);
        if (s && *s == index) return k;
    }
    throw std::runtime_error("no key for server");
}

std::pair<Context, CancelHandle> deadline(std::chrono::milliseconds d) {
    return with_timeout(background(), d);
}

TEST(MemcacheClient, EveryOpAgainstOneServer) {
    MemcachedServer server;
    Env env;
    auto obs = std::make_shared<CountingObserver>();
    ClientConfig cfg;
    cfg.servers = {addr(server)};
    cfg.observer = obs;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(10s);

    // get / set with flags and binary values
    EXPECT_EQ(env.run(c.get(ctx, "missing")).value(), std::nullopt);
    const std::string bin("a\r\nb\0c END\r\n", 12);
    EXPECT_FALSE(env.run(c.set(ctx, "bin", bin, Ttl{0}, 42)));
    auto got = env.run(c.get(ctx, "bin"));
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ((*got)->value, bin);
    EXPECT_EQ((*got)->flags, 42u);
    EXPECT_NE((*got)->cas, 0u);
    EXPECT_FALSE(env.run(c.set(ctx, "empty", "")));
    EXPECT_EQ(env.run(c.get(ctx, "empty")).value()->value, "");

    // add / replace
    EXPECT_EQ(env.run(c.add(ctx, "bin", "x")), MemcacheErrc::not_stored);
    EXPECT_FALSE(env.run(c.add(ctx, "fresh", "1")));
    EXPECT_EQ(env.run(c.replace(ctx, "nope", "x")), MemcacheErrc::not_stored);
    EXPECT_FALSE(env.run(c.replace(ctx, "fresh", "2")));
    EXPECT_EQ(env.run(c.get(ctx, "fresh")).value()->value, "2");

    // append / prepend
    EXPECT_FALSE(env.run(c.append(ctx, "fresh", "3")));
    EXPECT_FALSE(env.run(c.prepend(ctx, "fresh", "1")));
    EXPECT_EQ(env.run(c.get(ctx, "fresh")).value()->value, "123");
    EXPECT_EQ(env.run(c.append(ctx, "nope", "x")), MemcacheErrc::not_stored);
    EXPECT_EQ(env.run(c.prepend(ctx, "nope", "x")), MemcacheErrc::not_stored);

    // cas
    auto item = env.run(c.get(ctx, "fresh")).value().value();
    EXPECT_FALSE(env.run(c.cas(ctx, "fresh", "v2", item.cas)));
    EXPECT_EQ(env.run(c.cas(ctx, "fresh", "v3", item.cas)), MemcacheErrc::exists);
    EXPECT_EQ(env.run(c.cas(ctx, "nope", "v", 12345)), MemcacheErrc::not_found);
    EXPECT_EQ(env.run(c.get(ctx, "fresh")).value()->value, "v2");

    // delete
    EXPECT_EQ(env.run(c.remove(ctx, "fresh")).value(), true);
    EXPECT_EQ(env.run(c.remove(ctx, "fresh")).value(), false);

    // incr / decr
    EXPECT_EQ(env.run(c.incr(ctx, "ctr", 1)).error(), MemcacheErrc::not_found);
    EXPECT_EQ(env.run(c.incr(ctx, "ctr", 1, 10)).value(), 10u);
    EXPECT_EQ(env.run(c.incr(ctx, "ctr", 5, 10)).value(), 15u);
    EXPECT_EQ(env.run(c.decr(ctx, "ctr", 100)).value(), 0u);
    EXPECT_EQ(env.run(c.decr(ctx, "dctr", 1, 7)).value(), 7u);
    EXPECT_EQ(env.run(c.incr(ctx, "bin", 1)).error(), MemcacheErrc::non_numeric_value);

    // touch
    EXPECT_EQ(env.run(c.touch(ctx, "ctr", Ttl{100})).value(), true);
    EXPECT_EQ(env.run(c.touch(ctx, "nope", Ttl{100})).value(), false);
    // A negative ttl expires the item at once.
    EXPECT_FALSE(env.run(c.set(ctx, "gone", "x", Ttl{-1})));
    EXPECT_EQ(env.run(c.get(ctx, "gone")).value(), std::nullopt);

    // version / ping
    auto v = env.run(c.version(ctx, 0));
    ASSERT_TRUE(v);
    EXPECT_NE(v->find('.'), std::string::npos);
    EXPECT_TRUE(env.run(c.ping(ctx, 0)));
    EXPECT_EQ(env.run(c.ping(ctx, 7)).error(), MemcacheErrc::invalid_server);

    // validation happens before anything is sent
    EXPECT_EQ(env.run(c.get(ctx, "has space")).error(), MemcacheErrc::invalid_key);
    EXPECT_EQ(env.run(c.set(ctx, std::string(251, 'k'), "v")), MemcacheErrc::invalid_key);
    EXPECT_EQ(env.run(c.set(ctx, "ctl\x01", "v")), MemcacheErrc::invalid_key);
    EXPECT_EQ(env.run(c.set(ctx, "big", std::string(cfg.max_item_size + 1, 'x'))),
              MemcacheErrc::value_too_large);
    EXPECT_EQ(env.run(c.get_multi(ctx, {"ok", "not ok"})).error(), MemcacheErrc::invalid_key);

    // the connection survived every error above
    EXPECT_EQ(obs->drops.load(), 0);
    EXPECT_GT(obs->ops.load(), 30);
    EXPECT_FALSE(env.run(c.close(ctx)));
    EXPECT_EQ(env.run(c.get(ctx, "bin")).error(), MemcacheErrc::closed);
}

// memcached reads an exptime above 30 days as an absolute unix time (then long past: gone at
// once); the client sends now + ttl instead, so every write with such a ttl stays readable.
TEST(MemcacheClient, TtlAbove30DaysIsRelative) {
    MemcachedServer server;
    Env env;
    ClientConfig cfg;
    cfg.servers = {addr(server)};
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(10s);
    const Ttl days31{31 * 24 * 3600};
    const Ttl huge{4'294'967'295};  // beyond 2038: capped there
    EXPECT_FALSE(env.run(c.set(ctx, "set31", "a", days31)));
    EXPECT_FALSE(env.run(c.set(ctx, "sethuge", "b", huge)));
    EXPECT_FALSE(env.run(c.add(ctx, "add31", "c", days31)));
    EXPECT_FALSE(env.run(c.set(ctx, "touch31", "d")));
    EXPECT_EQ(env.run(c.touch(ctx, "touch31", days31)).value(), true);
    EXPECT_EQ(env.run(c.incr(ctx, "incr31", 1, 5, days31)).value(), 5u);
    const auto value_of = [&](const char* key) -> std::string {
        auto r = env.run(c.get(ctx, key));
        if (!r) return "<error>";
        return r->has_value() ? (*r)->value : "<miss>";
    };
    EXPECT_EQ(value_of("set31"), "a");
    EXPECT_EQ(value_of("sethuge"), "b");
    EXPECT_EQ(value_of("add31"), "c");
    EXPECT_EQ(value_of("touch31"), "d");
    EXPECT_EQ(value_of("incr31"), "5");
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, ServerRefusingLargeItemIsValueTooLarge) {
    MemcachedServer server;  // default item size 1 MiB
    Env env;
    ClientConfig cfg;
    cfg.servers = {addr(server)};
    cfg.max_item_size = 4 * 1024 * 1024;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(10s);
    EXPECT_EQ(env.run(c.set(ctx, "huge", std::string(2 * 1024 * 1024, 'x'))),
              MemcacheErrc::value_too_large);
    // The connection stays in sync after the server swallowed the value.
    const std::string v(900 * 1024, 'y');
    EXPECT_FALSE(env.run(c.set(ctx, "large", v)));
    EXPECT_EQ(env.run(c.get(ctx, "large")).value()->value, v);
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, MultiGetAcrossThreeWeightedServers) {
    MemcachedServer a, b, s3;
    Env env;
    ClientConfig cfg;
    cfg.servers = {addr(a, 1), addr(b, 2), addr(s3, 3)};
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(20s);

    std::vector<std::string> keys;
    std::vector<int> per_server(3);
    for (int i = 0; i < 300; ++i) {
        keys.push_back("multi:" + std::to_string(i));
        ++per_server[c.server_for(keys.back()).value()];
        ASSERT_FALSE(env.run(c.set(ctx, keys.back(), "v" + std::to_string(i))));
    }
    for (int n : per_server) EXPECT_GT(n, 0);

    // Each key really lives on the server ketama picked: read it through a one-server client.
    for (std::size_t s = 0; s < 3; ++s) {
        ClientConfig one;
        one.servers = {cfg.servers[s]};
        Client direct(env.io.get_executor(), one);
        direct.start(background());
        const std::string k = key_on(c, s, "multi:");
        auto r = env.run(direct.get(ctx, k));
        ASSERT_TRUE(r);
        EXPECT_TRUE(r->has_value()) << "key " << k << " not on server " << s;
        EXPECT_FALSE(env.run(direct.close(ctx)));
    }

    std::vector<std::string> wanted = keys;
    wanted.push_back("multi:absent");
    wanted.push_back(keys.front());  // duplicates are fine
    auto items = env.run(c.get_multi(ctx, wanted));
    ASSERT_TRUE(items);
    EXPECT_EQ(items->size(), keys.size());
    for (int i = 0; i < 300; ++i) {
        EXPECT_EQ(items->at(keys[i]).value, "v" + std::to_string(i));
    }
    EXPECT_TRUE(env.run(c.get_multi(ctx, {})).value().empty());
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, StoppedServerHitsTheCallersDeadlineThenRecovers) {
    MemcachedServer a, b;
    Env env;
    ClientConfig cfg;
    cfg.servers = {addr(a), addr(b)};
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    const std::string on_a = key_on(c, 0), on_b = key_on(c, 1);
    {
        auto [ctx, cancel] = deadline(10s);
        ASSERT_FALSE(env.run(c.set(ctx, on_a, "A")));
        ASSERT_FALSE(env.run(c.set(ctx, on_b, "B")));
    }

    a.pause();
    {
        auto [ctx, cancel] = deadline(300ms);
        EXPECT_EQ(env.run(c.get(ctx, on_a)).error(), ContextErrc::deadline_exceeded);
    }
    {
        // A whole multi-get touching the stopped server is bounded by the same deadline.
        auto [ctx, cancel] = deadline(300ms);
        EXPECT_EQ(env.run(c.get_multi(ctx, {on_a, on_b})).error(), ContextErrc::deadline_exceeded);
    }
    {
        // The other server is not blocked by the stalled one.
        auto [ctx, cancel] = deadline(10s);
        EXPECT_EQ(env.run(c.get(ctx, on_b)).value()->value, "B");
        EXPECT_FALSE(env.run(c.set(ctx, on_b, "B2")));
    }
    a.resume();
    {
        auto [ctx, cancel] = deadline(10s);
        auto r = env.run(c.get(ctx, on_a));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->value().value, "A");
        EXPECT_EQ(env.run(c.get(ctx, on_b)).value()->value, "B2");
        EXPECT_FALSE(env.run(c.close(ctx)));
    }
}

// Spawns c.get(ctx, key) and returns a flag + slot for its result.
struct Pending {
    bool done = false;
    std::optional<Result<std::optional<Item>>> result;
};
void spawn_get(Env& env, Client& c, Context ctx, std::string key, Pending& p) {
    net::co_spawn(env.io, c.get(std::move(ctx), std::move(key)),
                  [&p](std::exception_ptr, Result<std::optional<Item>> r) {
                      p.result.emplace(std::move(r));
                      p.done = true;
                  });
}

TEST(MemcacheClient, CancelledOpLeavesTheConnectionUsable) {
    MemcachedServer server;
    Env env;
    auto obs = std::make_shared<CountingObserver>();
    ClientConfig cfg;
    cfg.servers = {addr(server)};
    cfg.pool_size = 1;  // every op shares one connection
    cfg.observer = obs;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    {
        auto [ctx, cancel] = deadline(10s);
        ASSERT_FALSE(env.run(c.set(ctx, "first", "1")));
        ASSERT_FALSE(env.run(c.set(ctx, "second", "2")));
    }
    const int connects = obs->connects.load();

    // Hold the server so the request is written and its answer outstanding, then cancel.
    server.pause();
    auto [op_ctx, op_cancel] = with_cancel(background());
    Pending cancelled;
    spawn_get(env, c, op_ctx, "first", cancelled);
    env.pump_for(100ms);
    EXPECT_FALSE(cancelled.done);
    op_cancel.cancel();
    env.pump_until(cancelled.done);
    EXPECT_EQ(cancelled.result->error(), ContextErrc::canceled);

    // The next op on the same connection gets its own answer, not the cancelled one's.
    auto [ctx, cancel] = deadline(10s);
    Pending next;
    spawn_get(env, c, ctx, "second", next);
    env.pump_for(50ms);
    server.resume();
    env.pump_until(next.done);
    ASSERT_TRUE(*next.result);
    EXPECT_EQ(next.result->value()->value, "2");
    EXPECT_EQ(env.run(c.get(ctx, "first")).value()->value, "1");
    EXPECT_EQ(obs->drops.load(), 0);
    EXPECT_EQ(obs->connects.load(), connects);

    // A context that is already done fails before anything is sent.
    auto [done_ctx, done_cancel] = with_cancel(background());
    done_cancel.cancel();
    EXPECT_EQ(env.run(c.get(done_ctx, "first")).error(), ContextErrc::canceled);
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, ManyCancellationsInterleavedWithLiveOpsKeepResponsesMatched) {
    MemcachedServer server;
    Env env;
    ClientConfig cfg;
    cfg.servers = {addr(server)};
    cfg.pool_size = 1;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(20s);
    for (int i = 0; i < 50; ++i) {
        ASSERT_FALSE(env.run(c.set(ctx, "m" + std::to_string(i), std::to_string(i))));
    }
    std::vector<std::unique_ptr<Pending>> pending;
    std::vector<CancelHandle> cancels;
    // Held server: every request is queued or written, none answered, when half are cancelled.
    server.pause();
    for (int i = 0; i < 50; ++i) {
        auto [op_ctx, op_cancel] = with_cancel(ctx);
        pending.push_back(std::make_unique<Pending>());
        spawn_get(env, c, op_ctx, "m" + std::to_string(i), *pending.back());
        cancels.push_back(std::move(op_cancel));
    }
    env.pump_for(100ms);
    for (int i = 0; i < 50; i += 2) cancels[static_cast<std::size_t>(i)].cancel();
    env.pump_for(20ms);
    server.resume();
    for (auto& p : pending) env.pump_until(p->done);
    for (int i = 0; i < 50; ++i) {
        auto& r = *pending[static_cast<std::size_t>(i)]->result;
        if (r) {
            EXPECT_EQ(r.value()->value, std::to_string(i));
        } else {
            EXPECT_EQ(r.error(), ContextErrc::canceled);
            EXPECT_EQ(i % 2, 0);
        }
    }
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, ConnectionResetMidStreamIsClosedAndReplaced) {
    MemcachedServer server;
    test::FaultProxy proxy(server.port());
    Env env;
    auto obs = std::make_shared<CountingObserver>();
    ClientConfig cfg;
    cfg.servers = {ServerAddress{"127.0.0.1", proxy.port(), 1}};
    cfg.pool_size = 1;
    cfg.failure_limit = 3;
    cfg.observer = obs;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(20s);
    ASSERT_FALSE(env.run(c.set(ctx, "k", "v")));

    proxy.stall();
    Pending p;
    spawn_get(env, c, ctx, "k", p);
    ASSERT_TRUE(env.pump_until_pred([&] { return proxy.in_flight() > 0; }));
    proxy.reset_all();
    proxy.resume();
    env.pump_until(p.done);
    EXPECT_EQ(p.result->error(), MemcacheErrc::server_unreachable);
    EXPECT_GE(obs->drops.load(), 1);
    // A fresh connection serves the next ops.
    EXPECT_TRUE(env.pump_until_pred([&] { return c.status()[0].connected == 1; }));
    EXPECT_EQ(env.run(c.get(ctx, "k")).value()->value, "v");
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, PipelinesManyRequestsOnFewConnections) {
    MemcachedServer server;
    test::FaultProxy proxy(server.port());
    Env env;
    ClientConfig cfg;
    cfg.servers = {ServerAddress{"127.0.0.1", proxy.port(), 1}};
    cfg.pool_size = 1;
    cfg.max_in_flight = 8;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(20s);
    ASSERT_FALSE(env.run(c.set(ctx, "p", "v")));
    proxy.reset_counters();
    proxy.set_latency(5ms);
    std::vector<std::unique_ptr<Pending>> pending;
    for (int i = 0; i < 40; ++i) {
        pending.push_back(std::make_unique<Pending>());
        spawn_get(env, c, ctx, "p", *pending.back());
    }
    for (auto& p : pending) env.pump_until(p->done);
    for (auto& p : pending) EXPECT_EQ(p->result->value()->value, "v");
    EXPECT_GT(proxy.max_in_flight(), 1);  // pipelined
    EXPECT_LE(proxy.max_in_flight(), 8);  // within the window
    EXPECT_EQ(proxy.connections_accepted(), 1);
    EXPECT_FALSE(env.run(c.close(ctx)));
}

// Ops coalesce on the first connection of the pool (they share its writes and reads) and spill
// to the next connections only while the earlier ones hold a full window.
TEST(MemcacheClient, OpsFillOneConnectionAndSpillOnlyPastAFullWindow) {
    MemcachedServer server;
    test::FaultProxy proxy(server.port());
    Env env;
    ClientConfig cfg;
    cfg.servers = {ServerAddress{"127.0.0.1", proxy.port(), 1}};
    cfg.pool_size = 4;
    cfg.max_in_flight = 8;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(20s);
    ASSERT_TRUE(env.pump_until_pred([&] { return c.status()[0].connected == 4; }));
    for (int i = 0; i < 10; ++i) ASSERT_FALSE(env.run(c.set(ctx, "s" + std::to_string(i), "v")));
    std::vector<std::unique_ptr<Pending>> pending;
    for (int i = 0; i < 8; ++i) {  // as many as one window holds
        pending.push_back(std::make_unique<Pending>());
        spawn_get(env, c, ctx, "s" + std::to_string(i), *pending.back());
    }
    for (auto& p : pending) env.pump_until(p->done);
    for (auto& p : pending) EXPECT_EQ(p->result->value()->value, "v");
    EXPECT_EQ(proxy.connections_used(), 1);

    // Unanswered (stalled) ops fill the first window, then the second, ...
    proxy.stall();
    pending.clear();
    for (int i = 0; i < 32; ++i) {
        pending.push_back(std::make_unique<Pending>());
        spawn_get(env, c, ctx, "s" + std::to_string(i % 10), *pending.back());
    }
    ASSERT_TRUE(env.pump_until_pred([&] { return proxy.in_flight() == 32; }));
    EXPECT_EQ(proxy.connections_used(), 4);
    proxy.resume();
    for (auto& p : pending) env.pump_until(p->done);
    for (auto& p : pending) EXPECT_EQ(p->result->value()->value, "v");
    EXPECT_FALSE(env.run(c.close(ctx)));
}

// Multi-get batches larger than the window, and batches that do not fit in what is left of it,
// interleaved with single gets on one connection: all complete, none starves.
net::awaitable<int> multi_rounds(Client* c, Context ctx, int rounds, int nkeys) {
    int hits = 0;
    for (int r = 0; r < rounds; ++r) {
        std::vector<std::string> keys;
        for (int k = 0; k < nkeys; ++k) keys.push_back("b" + std::to_string((r + k) % 30));
        auto items = co_await c->get_multi(ctx, keys);
        if (items) hits += static_cast<int>(items->size());
        auto one = co_await c->get(ctx, "b1");
        if (one && *one) ++hits;
    }
    co_return hits;
}

TEST(MemcacheClient, MultiGetBatchesRespectTheWindowWithoutStarving) {
    MemcachedServer server;
    Env env;
    ClientConfig cfg;
    cfg.servers = {addr(server)};
    cfg.pool_size = 1;
    cfg.max_in_flight = 4;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(30s);
    for (int i = 0; i < 30; ++i) ASSERT_FALSE(env.run(c.set(ctx, "b" + std::to_string(i), "v")));
    std::vector<std::unique_ptr<bool>> done;
    std::vector<int> hits(8, -1);
    for (int w = 0; w < 8; ++w) {
        done.push_back(std::make_unique<bool>(false));
        net::co_spawn(env.io, multi_rounds(&c, ctx, 20, w % 2 == 0 ? 10 : 3),
                      [flag = done.back().get(), out = &hits[static_cast<std::size_t>(w)]](
                          std::exception_ptr, int h) {
                          *out = h;
                          *flag = true;
                      });
    }
    for (auto& d : done) env.pump_until(*d, 30s);
    for (int w = 0; w < 8; ++w)
        EXPECT_EQ(hits[static_cast<std::size_t>(w)], 20 * ((w % 2 == 0 ? 10 : 3) + 1));
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, KilledServerIsEjectedAndLaterReadmitted) {
    MemcachedServer a, b;
    Env env;
    auto obs = std::make_shared<CountingObserver>();
    ClientConfig cfg;
    cfg.servers = {addr(a), addr(b)};
    cfg.dead_retry = 200ms;
    cfg.connect_timeout = 500ms;
    cfg.observer = obs;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    const std::string on_a = key_on(c, 0);
    auto [ctx, cancel] = deadline(30s);
    ASSERT_FALSE(env.run(c.set(ctx, on_a, "A")));

    a.stop();
    ASSERT_TRUE(env.pump_until_pred([&] { return !c.status()[0].alive; }));
    EXPECT_GE(obs->ejected.load(), 1);
    // Ejected: its keys now live on the remaining server.
    EXPECT_EQ(c.server_for(on_a).value(), 1u);
    EXPECT_FALSE(env.run(c.set(ctx, on_a, "on-b")));
    EXPECT_EQ(env.run(c.get(ctx, on_a)).value()->value, "on-b");
    EXPECT_TRUE(env.run(c.ping(ctx, 1)));
    EXPECT_EQ(env.run(c.ping(ctx, 0)).error(), MemcacheErrc::server_unreachable);

    a.start();  // same port, empty cache
    ASSERT_TRUE(env.pump_until_pred([&] { return c.status()[0].alive; }));
    EXPECT_GE(obs->readmitted.load(), 1);
    EXPECT_EQ(c.server_for(on_a).value(), 0u);
    ASSERT_TRUE(env.pump_until_pred([&] { return c.status()[0].connected > 0; }));
    EXPECT_FALSE(env.run(c.set(ctx, on_a, "back")));
    EXPECT_EQ(env.run(c.get(ctx, on_a)).value()->value, "back");
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, UnreachableServerFailsFastWithoutEjection) {
    const unsigned short port = test::free_port();  // nothing listens there
    Env env;
    ClientConfig cfg;
    cfg.servers = {ServerAddress{"127.0.0.1", port, 1}};
    cfg.eject_dead_servers = false;
    cfg.dead_retry = 100ms;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(10s);
    EXPECT_EQ(env.run(c.get(ctx, "k")).error(), MemcacheErrc::server_unreachable);
    EXPECT_EQ(env.run(c.set(ctx, "k", "v")), MemcacheErrc::server_unreachable);
    EXPECT_EQ(env.run(c.ping(ctx, 0)).error(), MemcacheErrc::server_unreachable);
    EXPECT_FALSE(env.run(c.close(ctx)));
}

TEST(MemcacheClient, ConcurrentClosesAllReturnOnceJoined) {
    MemcachedServer server;
    Env env;
    ClientConfig cfg;
    cfg.servers = {addr(server)};
    cfg.pool_size = 3;
    Client c(env.io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = deadline(10s);
    ASSERT_FALSE(env.run(c.set(ctx, "k", "v")));
    bool first = false, second = false;
    std::error_code e1, e2;
    net::co_spawn(env.io, c.close(ctx), [&](std::exception_ptr, std::error_code ec) {
        e1 = ec;
        first = true;
    });
    net::co_spawn(env.io, c.close(ctx), [&](std::exception_ptr, std::error_code ec) {
        e2 = ec;
        second = true;
    });
    env.pump_until(first);
    env.pump_until(second);
    EXPECT_FALSE(e1);
    EXPECT_FALSE(e2);
    for (const auto& s : c.status()) EXPECT_EQ(s.connected, 0u);
    EXPECT_EQ(env.run(c.get(ctx, "k")).error(), MemcacheErrc::closed);
}

TEST(MemcacheClient, OpsBeforeStartAndCloseWithoutStart) {
    Env env;
    ClientConfig cfg;
    cfg.servers = {ServerAddress{"127.0.0.1", 1, 1}};
    Client c(env.io.get_executor(), cfg);
    auto [ctx, cancel] = deadline(5s);
    EXPECT_EQ(env.run(c.get(ctx, "k")).error(), MemcacheErrc::closed);
    EXPECT_FALSE(env.run(c.close(ctx)));
    Client none(env.io.get_executor(), ClientConfig{});
    none.start(background());
    EXPECT_EQ(env.run(none.get(ctx, "k")).error(), MemcacheErrc::no_servers);
    EXPECT_FALSE(env.run(none.close(ctx)));
}

}  // namespace
}  // namespace reqctx::memcache
