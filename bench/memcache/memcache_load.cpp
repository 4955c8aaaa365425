// Closed-loop load generator for the memcache client against one server, shaped like memcaslap:
// N concurrent callers on one single-threaded io_context, each issuing one op at a time.
//   mixed:    90% get / 10% set, fixed-size values
//   set:      100% set
//   multiget: 90% 10-key get_multi / 10% set; throughput counted in keys (memcaslap -d 10's TPS)
// Prints one result line: ops/s and latency percentiles per op.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "clients/memcache/client.hpp"
#include "context/context.hpp"

namespace reqctx::memcache {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string server = "127.0.0.1:11211";
    std::string mode = "mixed";
    int callers = 16;
    double seconds = 5;
    std::size_t value_size = 32;
    int keys = 10000;
    std::size_t pool_size = 2;
    std::size_t window = 128;
    int multi = 10;
    int per_op_timeout_ms = 0;  // 0: one bench-wide deadline context; >0: a fresh one per op
};

struct CallerStats {
    std::uint64_t ops = 0;  // operations (keys for multiget)
    std::uint64_t errors = 0;
    std::uint64_t misses = 0;
    std::vector<std::uint32_t> latency_ns;  // one sample per request
};

std::string key_name(int i) {
    // 64-byte-ish keys like memcaslap's default key size distribution would be; fixed width.
    char buf[32];
    std::snprintf(buf, sizeof(buf), "bench:%010d", i);
    return buf;
}

net::awaitable<void> populate(Client* c, Context ctx, Options opt, int from, int to,
                              int* remaining) {
    const std::string value(opt.value_size, 'v');
    for (int i = from; i < to; ++i) {
        if (auto ec = co_await c->set(ctx, key_name(i), value)) {
            std::fprintf(stderr, "populate failed: %s\n", ec.message().c_str());
            std::exit(2);
        }
    }
    --*remaining;
}

net::awaitable<void> caller(Client* c, Context ctx, Options opt, unsigned seed,
                            Clock::time_point end, CallerStats* st, int* remaining) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> key_dist(0, opt.keys - 1);
    std::uniform_int_distribution<int> pct(0, 99);
    const std::string value(opt.value_size, 'v');
    std::vector<std::string> multi_keys(static_cast<std::size_t>(opt.multi));
    st->latency_ns.reserve(1 << 20);
    while (Clock::now() < end) {
        Context op_ctx = ctx;
        CancelHandle op_cancel;
        if (opt.per_op_timeout_ms > 0) {
            auto [c2, h] = with_timeout(ctx, std::chrono::milliseconds(opt.per_op_timeout_ms));
            op_ctx = c2;
            op_cancel = std::move(h);
        }
        const bool is_set = opt.mode == "set" || pct(rng) < 10;
        const auto started = Clock::now();
        std::uint64_t done_ops = 1;
        if (is_set) {
            if (co_await c->set(op_ctx, key_name(key_dist(rng)), value)) ++st->errors;
        } else if (opt.mode == "multiget") {
            for (auto& k : multi_keys) k = key_name(key_dist(rng));
            auto r = co_await c->get_multi(op_ctx, multi_keys);
            if (!r) {
                ++st->errors;
            } else {
                done_ops = multi_keys.size();
            }
        } else {
            auto r = co_await c->get(op_ctx, key_name(key_dist(rng)));
            if (!r) {
                ++st->errors;
            } else if (!r->has_value()) {
                ++st->misses;
            }
        }
        const auto ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started);
        st->latency_ns.push_back(
            static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
        st->ops += done_ops;
    }
    --*remaining;
}

net::awaitable<void> close_client(Client* c, Context ctx, int* remaining) {
    co_await c->close(ctx);
    --*remaining;
}

void run_until_zero(net::io_context& io, const int& remaining) {
    while (remaining > 0) io.run_one();
}

int run(const Options& opt) {
    auto servers = parse_servers(opt.server);
    if (!servers) {
        std::fprintf(stderr, "bad --server: %s\n", servers.error().message().c_str());
        return 2;
    }
    net::io_context io(1);
    ClientConfig cfg;
    cfg.servers = *servers;
    cfg.pool_size = opt.pool_size;
    cfg.max_in_flight = opt.window;
    Client client(io.get_executor(), cfg);
    // A bench is a main(): it owns the root context.
    auto [root, root_cancel] = with_cancel(background());
    client.start(root);
    auto [ctx, cancel] =
        with_timeout(root, std::chrono::milliseconds(static_cast<int>(opt.seconds * 1000)) +
                               std::chrono::seconds(60));

    int remaining = 16;
    const int chunk = (opt.keys + 15) / 16;
    for (int p = 0; p < 16; ++p) {
        net::co_spawn(
            io,
            populate(&client, ctx, opt, p * chunk, std::min(opt.keys, (p + 1) * chunk), &remaining),
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
    }
    run_until_zero(io, remaining);

    std::vector<CallerStats> stats(static_cast<std::size_t>(opt.callers));
    const auto started = Clock::now();
    const auto end =
        started + std::chrono::microseconds(static_cast<std::int64_t>(opt.seconds * 1e6));
    remaining = opt.callers;
    for (int i = 0; i < opt.callers; ++i) {
        net::co_spawn(io,
                      caller(&client, ctx, opt, 1234u + static_cast<unsigned>(i), end,
                             &stats[static_cast<std::size_t>(i)], &remaining),
                      [](std::exception_ptr e) {
                          if (e) std::rethrow_exception(e);
                      });
    }
    run_until_zero(io, remaining);
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();

    remaining = 1;
    net::co_spawn(io, close_client(&client, ctx, &remaining), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    run_until_zero(io, remaining);

    std::uint64_t ops = 0, errors = 0, misses = 0;
    std::vector<std::uint32_t> lat;
    for (auto& s : stats) {
        ops += s.ops;
        errors += s.errors;
        misses += s.misses;
        lat.insert(lat.end(), s.latency_ns.begin(), s.latency_ns.end());
    }
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double p) {
        if (lat.empty()) return 0.0;
        const auto idx =
            std::min(lat.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat.size())));
        return lat[idx] / 1000.0;
    };
    std::printf(
        "reqctx mode=%s callers=%d pool=%zu window=%zu seconds=%.2f ops=%llu ops_per_s=%.0f "
        "requests=%zu p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%llu misses=%llu\n",
        opt.mode.c_str(), opt.callers, opt.pool_size, opt.window, elapsed,
        static_cast<unsigned long long>(ops), static_cast<double>(ops) / elapsed, lat.size(),
        pct(0.50), pct(0.99), pct(0.999), static_cast<unsigned long long>(errors),
        static_cast<unsigned long long>(misses));
    return errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace reqctx::memcache

int main(int argc, char** argv) {
    reqctx::memcache::Options opt;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const std::string v = argv[i + 1];
        if (a == "--server")
            opt.server = v;
        else if (a == "--mode")
            opt.mode = v;
        else if (a == "--callers")
            opt.callers = std::stoi(v);
        else if (a == "--seconds")
            opt.seconds = std::stod(v);
        else if (a == "--value-size")
            opt.value_size = std::stoul(v);
        else if (a == "--keys")
            opt.keys = std::stoi(v);
        else if (a == "--pool-size")
            opt.pool_size = std::stoul(v);
        else if (a == "--window")
            opt.window = std::stoul(v);
        else if (a == "--multi")
            opt.multi = std::stoi(v);
        else if (a == "--per-op-timeout-ms")
            opt.per_op_timeout_ms = std::stoi(v);
        else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (opt.mode != "mixed" && opt.mode != "set" && opt.mode != "multiget") {
        std::fprintf(stderr, "--mode must be mixed, set or multiget\n");
        return 2;
    }
    return reqctx::memcache::run(opt);
}
