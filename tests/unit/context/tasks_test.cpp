#include <atomic>
#include <chrono>
#include <optional>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "context/asio.hpp"
#include "context/task_group.hpp"
#include "context/task_registry.hpp"
#include "tests/unit/context/test_util.hpp"

namespace reqctx {
namespace {

using namespace std::chrono_literals;
using test::run_sync;

const std::error_code kCanceled = make_error_code(ContextErrc::canceled);

// ---- TaskGroup ----

net::awaitable<std::error_code> finish_after(Context ctx, Clock::duration d, std::error_code result,
                                             std::atomic<int>* finished) {
    std::error_code ec = co_await sleep_for(ctx, d);
    ++*finished;
    co_return ec ? ec : result;
}

net::awaitable<std::error_code> group_run(Context parent, std::atomic<int>* finished,
                                          std::error_code fail_with, std::size_t limit,
                                          std::atomic<int>* max_running) {
    auto [group, gctx] = TaskGroup::create(parent, co_await net::this_coro::executor, limit);
    for (int i = 0; i < 6; ++i) {
        co_await group->spawn(finish_after(gctx, i == 2 && fail_with ? 1ms : 1h,
                                           i == 2 ? fail_with : std::error_code(), finished));
        int r = static_cast<int>(group->running());
        if (r > max_running->load()) max_running->store(r);
    }
    co_return co_await group->wait();
}

TEST(TaskGroup, FirstErrorCancelsTheGroupAndWaitJoinsAll) {
    std::atomic<int> finished{0};
    std::atomic<int> max_running{0};
    auto err = std::make_error_code(std::errc::io_error);
    std::error_code ec = run_sync(group_run(background(), &finished, err, 0, &max_running));
    EXPECT_EQ(ec, err);
    EXPECT_EQ(finished.load(), 6);  // every task ran to its end before wait() returned
}

net::awaitable<std::error_code> ok_task(Context ctx, std::atomic<int>* finished) {
    ++*finished;
    (void)ctx;
    co_return std::error_code();
}

net::awaitable<std::error_code> group_all_ok(Context parent, std::atomic<int>* finished,
                                             std::size_t limit, std::atomic<int>* max_running) {
    auto [group, gctx] = TaskGroup::create(parent, co_await net::this_coro::executor, limit);
    for (int i = 0; i < 10; ++i) {
        co_await group->spawn(ok_task(gctx, finished));
        int r = static_cast<int>(group->running());
        if (r > max_running->load()) max_running->store(r);
    }
    std::error_code ec = co_await group->wait();
    // Go's Wait cancels the group's context once everything joined.
    if (!gctx.done()) co_return std::make_error_code(std::errc::state_not_recoverable);
    co_return ec;
}

TEST(TaskGroup, AllSucceedReturnsEmpty) {
    std::atomic<int> finished{0};
    std::atomic<int> max_running{0};
    EXPECT_EQ(run_sync(group_all_ok(background(), &finished, 0, &max_running)), std::error_code());
    EXPECT_EQ(finished.load(), 10);
}

TEST(TaskGroup, LimitBoundsConcurrency) {
    std::atomic<int> finished{0};
    std::atomic<int> max_running{0};
    EXPECT_EQ(run_sync(group_all_ok(background(), &finished, 2, &max_running)), std::error_code());
    EXPECT_EQ(finished.load(), 10);
    EXPECT_LE(max_running.load(), 2);
}

TEST(TaskGroup, ParentCancellationReachesTasks) {
    std::atomic<int> finished{0};
    std::atomic<int> max_running{0};
    auto [parent, cancel] = with_timeout(background(), 2ms);
    std::error_code ec = run_sync(group_run(parent, &finished, std::error_code(), 0, &max_running));
    EXPECT_EQ(ec, make_error_code(ContextErrc::deadline_exceeded));
    EXPECT_EQ(finished.load(), 6);
}

TEST(TaskGroup, WaitWithNoTasks) {
    std::atomic<int> finished{0};
    std::atomic<int> max_running{0};
    net::io_context io;
    auto [group, gctx] = TaskGroup::create(background(), io.get_executor());
    std::optional<std::error_code> out;
    test::spawn_into(io, group->wait(), out);
    io.run();
    EXPECT_EQ(*out, std::error_code());
    EXPECT_EQ(gctx.err(), kCanceled);
}

// ---- TaskRegistry ----

net::awaitable<void> until_done(Context ctx, std::atomic<int>* exited) {
    co_await async_wait(ctx, net::use_awaitable);
    ++*exited;
}

// Ignores its own context; ends only when `gate` is done.
net::awaitable<void> ignores_cancel(Context ctx, Context gate, std::atomic<int>* exited) {
    (void)ctx;
    co_await async_wait(gate, net::use_awaitable);
    ++*exited;
}

net::awaitable<std::size_t> do_shutdown(TaskRegistry* reg, Context ctx) {
    co_return co_await reg->shutdown(ctx);
}

TEST(TaskRegistry, SpawnSnapshotCancelAndShutdownAwaitsAll) {
    net::io_context io;
    TaskRegistry reg;
    std::atomic<int> exited{0};
    auto body = [&exited](Context c) { return until_done(std::move(c), &exited); };
    auto id1 = reg.spawn(without_cancel(background()), io.get_executor(), "sub-a",
                         TaskOrigin{"req-1", "trace-1"}, body);
    auto id2 = reg.spawn(without_cancel(background()), io.get_executor(), "sub-b",
                         TaskOrigin{"req-2", "trace-2"}, body);
    EXPECT_NE(id1, id2);
    EXPECT_EQ(reg.live(), 2u);
    auto snap = reg.snapshot();
    ASSERT_EQ(snap.size(), 2u);
    EXPECT_EQ(snap[0].name, "sub-a");
    EXPECT_EQ(snap[0].origin.request_id, "req-1");
    EXPECT_EQ(snap[1].origin.trace_id, "trace-2");
    io.poll();
    EXPECT_TRUE(reg.cancel(id1));
    io.poll();
    EXPECT_EQ(exited.load(), 1);
    EXPECT_EQ(reg.live(), 1u);
    EXPECT_FALSE(reg.cancel(id1));

    std::optional<std::size_t> leaked;
    test::spawn_into(io, do_shutdown(&reg, background()), leaked);
    io.run();
    ASSERT_TRUE(leaked.has_value());
    EXPECT_EQ(*leaked, 0u);
    EXPECT_EQ(exited.load(), 2);
    EXPECT_EQ(reg.live(), 0u);
}

net::awaitable<std::error_code> do_stop(TaskRegistry* reg, Context ctx, TaskRegistry::TaskId id) {
    co_return co_await reg->stop(ctx, id);
}

TEST(TaskRegistry, StopWaitsForTheBodyAndRejectsUnknownIds) {
    net::io_context io;
    TaskRegistry reg;
    std::atomic<int> exited{0};
    auto id = reg.spawn(without_cancel(background()), io.get_executor(), "sub", TaskOrigin{},
                        [&exited](Context c) { return until_done(c, &exited); });
    std::optional<std::error_code> stopped, unknown;
    test::spawn_into(io, do_stop(&reg, background(), id), stopped);
    test::spawn_into(io, do_stop(&reg, background(), 999), unknown);
    io.run();
    EXPECT_EQ(*stopped, std::error_code());
    EXPECT_EQ(exited.load(), 1);
    EXPECT_EQ(*unknown, make_error_code(TaskRegistryErrc::not_found));
}

TEST(TaskRegistry, ShutdownReportsTasksThatDidNotFinishInTime) {
    net::io_context io;
    TaskRegistry reg;
    std::atomic<int> exited{0};
    auto [gate, open_gate] = with_cancel(background());
    reg.spawn(without_cancel(background()), io.get_executor(), "stubborn", TaskOrigin{},
              [&exited, gate = gate](Context c) { return ignores_cancel(c, gate, &exited); });
    auto [bound, cancel] = with_timeout(background(), 1ms);
    std::optional<std::size_t> leaked;
    test::spawn_into(io, do_shutdown(&reg, bound), leaked);
    // Run until shutdown returned; the stubborn task is still going at that point.
    while (!leaked.has_value() && io.run_one() > 0) {
    }
    ASSERT_TRUE(leaked.has_value());
    EXPECT_EQ(*leaked, 1u);
    EXPECT_EQ(reg.live(), 1u);
    open_gate.cancel();
    io.run();  // let it end so nothing outlives the test
    EXPECT_EQ(exited.load(), 1);
    EXPECT_EQ(reg.live(), 0u);
}

TEST(TaskRegistry, RequestEndingDoesNotStopABackgroundTask) {
    net::io_context io;
    TaskRegistry reg;
    std::atomic<int> exited{0};
    {
        auto [request, end_request] = with_cancel(background());
        reg.spawn(without_cancel(request), io.get_executor(), "sub", TaskOrigin{},
                  [&exited](Context c) { return until_done(c, &exited); });
    }  // the request's handle is gone: the request context is cancelled
    io.poll();
    EXPECT_EQ(exited.load(), 0);
    EXPECT_EQ(reg.live(), 1u);
    std::optional<std::size_t> leaked;
    test::spawn_into(io, do_shutdown(&reg, background()), leaked);
    io.run();
    EXPECT_EQ(*leaked, 0u);
    EXPECT_EQ(exited.load(), 1);
}

}  // namespace
}  // namespace reqctx
