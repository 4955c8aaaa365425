#include "context/asio.hpp"

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "tests/unit/context/test_util.hpp"

namespace reqctx {
namespace {

using namespace std::chrono_literals;
using test::eventually;
using test::run_sync;

const std::error_code kCanceled = make_error_code(ContextErrc::canceled);
const std::error_code kDeadline = make_error_code(ContextErrc::deadline_exceeded);

net::awaitable<std::error_code> await_ctx(Context ctx) {
    co_return co_await async_wait(ctx, net::use_awaitable);
}

TEST(AsyncWait, CompletesWithErrWhenCancelledFromAnotherThread) {
    net::io_context io;
    auto [ctx, cancel] = with_cancel(background());
    std::optional<std::error_code> out;
    test::spawn_into(io, await_ctx(ctx), out);
    // Either order (before or after the wait registers) must give the same result.
    std::thread canceller([&cancel = cancel] { cancel.cancel(); });
    io.run();  // returns only when the wait completed (it holds work meanwhile)
    canceller.join();
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, kCanceled);
}

TEST(AsyncWait, AlreadyDoneCompletesAsynchronously) {
    auto [ctx, cancel] = with_cancel(background());
    cancel.cancel();
    EXPECT_EQ(run_sync(await_ctx(ctx)), kCanceled);
}

TEST(AsyncWait, DeadlineWithNothingElseRunning) {
    auto [ctx, cancel] = with_timeout(background(), 2ms);
    EXPECT_EQ(run_sync(await_ctx(ctx)), kDeadline);
}

TEST(AsyncWait, HonoursTheCoroutinesOwnCancellation) {
    net::io_context io;
    net::cancellation_signal sig;
    auto [ctx, cancel] = with_cancel(background());
    std::optional<std::error_code> out;
    net::co_spawn(
        io, await_ctx(ctx),
        net::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr e, std::error_code ec) {
            if (e) std::rethrow_exception(e);
            out = ec;
        }));
    net::post(io, [&] { sig.emit(net::cancellation_type::terminal); });
    io.run();
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, operation_aborted());
    EXPECT_TRUE(*out == std::errc::operation_canceled);
    EXPECT_FALSE(ctx.err());
}

net::awaitable<boost::system::error_code> timer_wait(Context ctx, Clock::duration d) {
    net::steady_timer t(co_await net::this_coro::executor, d);
    auto [ec] = co_await t.async_wait(bind_context(ctx, net::as_tuple(net::use_awaitable)));
    co_return ec;
}

TEST(BindContext, CancelsATimerWait) {
    auto [ctx, cancel] = with_timeout(background(), 2ms);
    EXPECT_EQ(run_sync(timer_wait(ctx, 1h)), net::error::operation_aborted);
    EXPECT_EQ(ctx.err(), kDeadline);
}

TEST(BindContext, AlreadyDoneAtInitiationStillCancels) {
    auto [ctx, cancel] = with_cancel(background());
    cancel.cancel();
    // Without the check after initiation this would wait an hour.
    EXPECT_EQ(run_sync(timer_wait(ctx, 1h)), net::error::operation_aborted);
}

TEST(BindContext, CompletesNormallyAndDeregisters) {
    auto [ctx, cancel] = with_cancel(background());
    std::int64_t before = test::settled_live_contexts();
    EXPECT_EQ(run_sync(timer_wait(ctx, 0ms)), boost::system::error_code());
    // The timer is gone; a later cancel must not touch it (ASan would see it) and nothing that
    // held the context lingers.
    EXPECT_TRUE(test::live_contexts_reach(before));
    cancel.cancel();
}

TEST(BindContext, TheCoroutinesOwnCancellationStillReachesTheOp) {
    net::io_context io;
    net::cancellation_signal sig;
    auto [ctx, cancel] = with_cancel(background());
    std::optional<boost::system::error_code> out;
    net::co_spawn(io, timer_wait(ctx, 1h),
                  net::bind_cancellation_slot(
                      sig.slot(), [&](std::exception_ptr e, boost::system::error_code ec) {
                          if (e) std::rethrow_exception(e);
                          out = ec;
                      }));
    net::post(io, [&] { sig.emit(net::cancellation_type::terminal); });
    io.run();
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, net::error::operation_aborted);
    EXPECT_FALSE(ctx.err());
}

TEST(BindContext, NeverCancelledContextLetsTheOpComplete) {
    EXPECT_EQ(run_sync(timer_wait(background(), 1ms)), boost::system::error_code());
}

net::awaitable<boost::system::error_code> read_some(Context ctx,
                                                    net::local::stream_protocol::socket* s) {
    char buf[16];
    auto [ec, n] = co_await s->async_read_some(
        net::buffer(buf), bind_context(ctx, net::as_tuple(net::use_awaitable)));
    (void)n;
    co_return ec;
}

TEST(BindContext, CancelsASocketReadFromAnotherThread) {
    net::io_context io;
    net::local::stream_protocol::socket a(io), b(io);
    net::local::connect_pair(a, b);
    auto [ctx, cancel] = with_cancel(background());
    std::optional<boost::system::error_code> out;
    test::spawn_into(io, read_some(ctx, &a), out);
    std::thread canceller([&cancel = cancel] { cancel.cancel(); });
    io.run();
    canceller.join();
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, net::error::operation_aborted);
}

TEST(BindContext, ReadCompletesWhenDataArrives) {
    net::io_context io;
    net::local::stream_protocol::socket a(io), b(io);
    net::local::connect_pair(a, b);
    auto [ctx, cancel] = with_cancel(background());
    net::write(b, net::buffer("x", 1));
    std::optional<boost::system::error_code> out;
    test::spawn_into(io, read_some(ctx, &a), out);
    io.run();
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, boost::system::error_code());
}

// A test operation that records whether its cancellation handler ran on the strand.
template <class Token>
auto async_probe(net::strand<net::io_context::executor_type> strand, std::atomic<int>* seen,
                 Token&& token) {
    return net::async_initiate<Token, void(boost::system::error_code)>(
        [strand, seen](auto handler) {
            auto slot = net::get_associated_cancellation_slot(handler);
            ASSERT_TRUE(slot.is_connected());
            using H = decltype(handler);
            auto h = std::make_shared<std::optional<H>>(std::move(handler));
            slot.assign([strand, seen, h](net::cancellation_type) {
                seen->store(strand.running_in_this_thread() ? 1 : 2);
                auto handler2 = std::move(**h);
                h->reset();
                net::post(strand, [handler2 = std::move(handler2)]() mutable {
                    std::move(handler2)(net::error::operation_aborted);
                });
            });
        },
        token);
}

net::awaitable<boost::system::error_code> probe(Context ctx,
                                                net::strand<net::io_context::executor_type> s,
                                                std::atomic<int>* seen) {
    auto [ec] = co_await async_probe(s, seen, bind_context(ctx, net::as_tuple(net::use_awaitable)));
    co_return ec;
}

TEST(BindContext, EmitsOnTheOperationsStrandNotTheCancellingThread) {
    net::io_context io;
    auto strand = net::make_strand(io);
    auto [ctx, cancel] = with_cancel(background());
    std::atomic<int> seen{0};
    std::optional<boost::system::error_code> out;
    net::co_spawn(strand, probe(ctx, strand, &seen),
                  [&](std::exception_ptr e, boost::system::error_code ec) {
                      if (e) std::rethrow_exception(e);
                      out = ec;
                  });
    std::thread runner1([&] { io.run(); });
    std::thread runner2([&] { io.run(); });
    // Cancel from a thread that is not running the io_context at all.
    std::thread canceller([&cancel = cancel] { cancel.cancel(); });
    canceller.join();
    runner1.join();
    runner2.join();
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, net::error::operation_aborted);
    EXPECT_EQ(seen.load(), 1);
}

TEST(SleepFor, ReturnsEmptyAfterTheDuration) {
    EXPECT_EQ(run_sync(sleep_for(background(), 1ms)), std::error_code());
}

TEST(SleepFor, ReturnsTheContextErrorWhenItEndsFirst) {
    auto [ctx, cancel] = with_timeout(background(), 2ms);
    EXPECT_EQ(run_sync(sleep_for(ctx, 1h)), kDeadline);
    auto [c2, k2] = with_cancel(background());
    k2.cancel();
    EXPECT_EQ(run_sync(sleep_for(c2, 1h)), kCanceled);
}

// ---- Rule 9: after_func ----

TEST(AfterFunc, RunsOnceAfterDoneOnTheGivenExecutor) {
    net::io_context io;
    auto [ctx, cancel] = with_cancel(background());
    int calls = 0;
    AfterFunc af = after_func(ctx, io.get_executor(), [&] { ++calls; });
    io.poll();
    io.restart();
    EXPECT_EQ(calls, 0);
    cancel.cancel();
    cancel.cancel();
    EXPECT_EQ(calls, 0);  // never inline on the cancelling thread
    io.run();
    EXPECT_EQ(calls, 1);
    EXPECT_FALSE(af.stop());
}

TEST(AfterFunc, AlreadyDoneRunsAsynchronously) {
    net::io_context io;
    auto [ctx, cancel] = with_cancel(background());
    cancel.cancel();
    int calls = 0;
    after_func(ctx, io.get_executor(), [&] { ++calls; });
    EXPECT_EQ(calls, 0);
    io.run();
    EXPECT_EQ(calls, 1);
}

TEST(AfterFunc, StopBeforeDonePreventsTheCall) {
    net::io_context io;
    auto [ctx, cancel] = with_cancel(background());
    int calls = 0;
    AfterFunc af = after_func(ctx, io.get_executor(), [&] { ++calls; });
    EXPECT_TRUE(af.stop());
    EXPECT_FALSE(af.stop());
    cancel.cancel();
    io.run();
    EXPECT_EQ(calls, 0);
}

TEST(AfterFunc, StopAfterQueuedReturnsFalse) {
    net::io_context io;
    auto [ctx, cancel] = with_cancel(background());
    int calls = 0;
    AfterFunc af = after_func(ctx, io.get_executor(), [&] { ++calls; });
    cancel.cancel();
    EXPECT_FALSE(af.stop());
    io.run();
    EXPECT_EQ(calls, 1);
}

TEST(AfterFunc, DefaultRunsOnTheInternalThread) {
    auto [ctx, cancel] = with_cancel(background());
    std::atomic<int> calls{0};
    std::atomic<bool> on_caller{true};
    auto caller = std::this_thread::get_id();
    AfterFunc af = after_func(ctx, [&] {
        on_caller = std::this_thread::get_id() == caller;
        ++calls;
    });
    cancel.cancel();
    ASSERT_TRUE(eventually([&] { return calls.load() == 1; }));
    EXPECT_FALSE(on_caller.load());
}

TEST(AfterFunc, FnRunsOutsideTheContextsLock) {
    // fn derives from (and so locks) the very context that fired it: it would deadlock if it
    // ran under that context's lock.
    net::io_context io;
    auto [ctx, cancel] = with_cancel(background());
    bool child_born_cancelled = false;
    after_func(ctx, io.get_executor(), [&, c = ctx] {
        auto [child, h] = with_cancel(c);
        child_born_cancelled = child.err() == kCanceled;
    });
    cancel.cancel();
    io.run();
    EXPECT_TRUE(child_born_cancelled);
}

TEST(AfterFunc, NeverDoneContextNeverRuns) {
    net::io_context io;
    int calls = 0;
    AfterFunc af = after_func(without_cancel(background()), io.get_executor(), [&] { ++calls; });
    io.run();
    EXPECT_EQ(calls, 0);
    EXPECT_TRUE(af.stop());
}

TEST(AfterFunc, DroppingTheHandleDoesNotStop) {
    net::io_context io;
    auto [ctx, cancel] = with_cancel(background());
    int calls = 0;
    {
        after_func(ctx, io.get_executor(), [&] { ++calls; });
    }
    cancel.cancel();
    io.run();
    EXPECT_EQ(calls, 1);
}

// A registration lets its context go as soon as it no longer needs it (fired, stopped, or never
// able to fire), not when the posted call or the handle goes: whatever fn wakes, and whoever then
// counts live contexts, must not find the context held by it.
TEST(AfterFunc, LetsTheContextGoBeforeFnRuns) {
    net::io_context io;
    const std::int64_t before = test::settled_live_contexts();
    std::int64_t live_in_fn = -1;
    AfterFunc af;
    {
        auto [ctx, cancel] = with_cancel(background());
        af = after_func(ctx, io.get_executor(), [&] { live_in_fn = live_contexts(); });
        cancel.cancel();
    }
    io.run();
    EXPECT_EQ(live_in_fn, before);
}

TEST(AfterFunc, AlreadyDoneLetsTheContextGoBeforeTheCallRuns) {
    net::io_context io;  // run only at the end: the call stays queued until then
    const std::int64_t before = test::settled_live_contexts();
    int calls = 0;
    {
        auto [ctx, cancel] = with_cancel(background());
        cancel.cancel();
        after_func(ctx, io.get_executor(), [&] { ++calls; });
    }
    EXPECT_EQ(live_contexts(), before);
    io.run();
    EXPECT_EQ(calls, 1);
}

TEST(AfterFunc, StoppedOrNeverDoneLetsTheContextGoWhileTheHandleLives) {
    net::io_context io;
    const std::int64_t before = test::settled_live_contexts();
    AfterFunc stopped;
    AfterFunc never;
    {
        auto [ctx, cancel] = with_cancel(background());
        stopped = after_func(ctx, io.get_executor(), [] {});
        EXPECT_TRUE(stopped.stop());
        never = after_func(without_cancel(ctx), io.get_executor(), [] {});
    }
    EXPECT_EQ(live_contexts(), before);
    EXPECT_TRUE(never.stop());
}

}  // namespace
}  // namespace reqctx
