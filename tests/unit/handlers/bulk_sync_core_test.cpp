// throttled_sync without a server: a fake writer that sleeps on the caller's context, a real
// Semaphore, a real io_context. Proves the share bound, the service-wide bound, and that a done
// context stops new writes and leaves no weight or waiter behind.

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include "clients/memcache/errors.hpp"
#include "context/asio.hpp"
#include "context/semaphore.hpp"
#include "handlers/bulk_sync.hpp"

namespace reqctx {
namespace {

using namespace std::chrono_literals;

struct WriteStats {
    std::atomic<int> in_flight{0};
    std::atomic<int> max_in_flight{0};
    std::atomic<int> writes{0};
    std::atomic<int> completed{0};
    std::chrono::milliseconds delay{2ms};
};

net::awaitable<std::error_code> fake_write(Context ctx, WriteStats* stats, std::string key) {
    const int now = ++stats->in_flight;
    int seen = stats->max_in_flight.load();
    while (now > seen && !stats->max_in_flight.compare_exchange_weak(seen, now)) {
    }
    ++stats->writes;
    std::error_code ec = co_await sleep_for(ctx, stats->delay);
    --stats->in_flight;
    if (!ec && key.starts_with("fail")) ec = memcache::MemcacheErrc::server_unreachable;
    if (!ec) ++stats->completed;
    co_return ec;
}

EntryWriter writer_for(WriteStats& stats) {
    return [s = &stats](Context ctx, const SyncEntry& e) { return fake_write(ctx, s, e.key); };
}

std::vector<SyncEntry> make_entries(int n, std::string_view prefix = "k") {
    std::vector<SyncEntry> out(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        out[static_cast<std::size_t>(i)].key = std::string(prefix) + std::to_string(i);
    return out;
}

net::awaitable<std::vector<EntryResult>> run_sync(Context ctx, Semaphore* sem,
                                                  const std::vector<SyncEntry>* entries,
                                                  std::size_t concurrency,
                                                  const EntryWriter* write) {
    co_return co_await throttled_sync(ctx, *sem, *entries, concurrency, *write);
}

std::vector<EntryResult> sync_on(net::io_context& ioc, Context ctx, Semaphore& sem,
                                 const std::vector<SyncEntry>& entries, std::size_t concurrency,
                                 const EntryWriter& write) {
    auto fut = net::co_spawn(net::make_strand(ioc),
                             run_sync(ctx, &sem, &entries, concurrency, &write), net::use_future);
    ioc.restart();
    ioc.run();
    return fut.get();
}

TEST(BulkSyncCore, WritesEveryEntryWithinTheRequestsShare) {
    net::io_context ioc;
    Semaphore sem(64);
    WriteStats stats;
    const auto entries = make_entries(100);
    const auto results = sync_on(ioc, background(), sem, entries, 4, writer_for(stats));
    ASSERT_EQ(results.size(), 100u);
    for (const auto& r : results) EXPECT_EQ(r.status, EntryStatus::ok);
    EXPECT_EQ(stats.writes, 100);
    EXPECT_LE(stats.max_in_flight, 4);
    EXPECT_EQ(sem.in_use(), 0);
    const auto c = count_results(results);
    EXPECT_EQ(c.synced, 100u);
}

TEST(BulkSyncCore, SharedSemaphoreBoundsConcurrentCalls) {
    net::io_context ioc;
    Semaphore sem(3);
    WriteStats stats;
    const auto a = make_entries(60, "a");
    const auto b = make_entries(60, "b");
    const EntryWriter write = writer_for(stats);
    auto fa = net::co_spawn(net::make_strand(ioc), run_sync(background(), &sem, &a, 3, &write),
                            net::use_future);
    auto fb = net::co_spawn(net::make_strand(ioc), run_sync(background(), &sem, &b, 3, &write),
                            net::use_future);
    std::thread second([&ioc] { ioc.run(); });
    ioc.run();
    second.join();
    EXPECT_EQ(count_results(fa.get()).synced, 60u);
    EXPECT_EQ(count_results(fb.get()).synced, 60u);
    EXPECT_LE(stats.max_in_flight, 3);
    EXPECT_EQ(sem.in_use(), 0);
    EXPECT_EQ(sem.waiters(), 0);
}

TEST(BulkSyncCore, BadEntriesAndFailedWritesFailAlone) {
    net::io_context ioc;
    Semaphore sem(8);
    WriteStats stats;
    auto entries = make_entries(4);
    entries[1].error = "invalid_key";
    entries[2].key = "fail-2";
    const auto results = sync_on(ioc, background(), sem, entries, 2, writer_for(stats));
    EXPECT_EQ(results[0].status, EntryStatus::ok);
    EXPECT_EQ(results[1].status, EntryStatus::error);
    EXPECT_EQ(results[2].status, EntryStatus::error);
    EXPECT_EQ(results[2].ec, memcache::MemcacheErrc::server_unreachable);
    EXPECT_EQ(results[3].status, EntryStatus::ok);
    EXPECT_EQ(stats.writes, 3);  // the invalid entry is never written
}

TEST(BulkSyncCore, DeadlineCancelsTheRestAndLeavesNothingBehind) {
    net::io_context ioc;
    Semaphore sem(2);
    WriteStats stats;
    stats.delay = 20ms;
    const auto entries = make_entries(1000);
    auto [ctx, cancel] = with_timeout(background(), 100ms);
    const auto results = sync_on(ioc, ctx, sem, entries, 2, writer_for(stats));
    const auto c = count_results(results);
    EXPECT_EQ(c.total, 1000u);
    EXPECT_GT(c.cancelled, 0u);
    EXPECT_EQ(c.synced + c.failed + c.cancelled, 1000u);
    EXPECT_EQ(results.back().status, EntryStatus::cancelled);
    EXPECT_EQ(c.synced, static_cast<std::size_t>(stats.completed.load()));
    // Returned means joined: no write is running and none starts later.
    EXPECT_EQ(stats.in_flight, 0);
    EXPECT_EQ(sem.in_use(), 0);
    EXPECT_EQ(sem.waiters(), 0);
}

TEST(BulkSyncCore, CancelledWaitersLeaveTheSemaphore) {
    net::io_context ioc;
    Semaphore sem(1);
    ASSERT_TRUE(sem.try_acquire(1));  // another request holds the only unit
    WriteStats stats;
    const auto entries = make_entries(10);
    auto [ctx, cancel] = with_timeout(background(), 50ms);
    const auto results = sync_on(ioc, ctx, sem, entries, 4, writer_for(stats));
    EXPECT_EQ(count_results(results).cancelled, 10u);
    EXPECT_EQ(stats.writes, 0);
    EXPECT_EQ(sem.waiters(), 0);
    EXPECT_EQ(sem.in_use(), 1);
    sem.release(1);
}

}  // namespace
}  // namespace reqctx
