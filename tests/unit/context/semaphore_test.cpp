#include "context/semaphore.hpp"

#include <optional>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "context/asio.hpp"
#include "tests/unit/context/test_util.hpp"

namespace reqctx {
namespace {

using test::run_sync;

const std::error_code kCanceled = make_error_code(ContextErrc::canceled);

net::awaitable<std::error_code> acquire_and_log(Context ctx, Semaphore* sem, std::int64_t n, int id,
                                                std::vector<int>* order) {
    std::error_code ec = co_await sem->acquire(ctx, n);
    if (!ec) order->push_back(id);
    co_return ec;
}

TEST(Semaphore, UncontendedAcquireAndRelease) {
    Semaphore sem(3);
    EXPECT_EQ(sem.capacity(), 3);
    EXPECT_EQ(run_sync(sem.acquire(background(), 2)), std::error_code());
    EXPECT_EQ(sem.in_use(), 2);
    EXPECT_EQ(run_sync(sem.acquire(background(), 1)), std::error_code());
    EXPECT_EQ(sem.in_use(), 3);
    sem.release(3);
    EXPECT_EQ(sem.in_use(), 0);
    EXPECT_EQ(sem.waiters(), 0);
}

TEST(Semaphore, TryAcquire) {
    // x/sync TestWeightedTryAcquire.
    Semaphore sem(2);
    EXPECT_TRUE(sem.try_acquire(1));
    EXPECT_TRUE(sem.try_acquire(1));
    EXPECT_FALSE(sem.try_acquire(1));
    sem.release(1);
    EXPECT_TRUE(sem.try_acquire(1));
    EXPECT_FALSE(sem.try_acquire(1));
    sem.release(2);
    EXPECT_TRUE(sem.try_acquire(2));
    sem.release(2);
}

TEST(Semaphore, DoneContextFailsEvenWhenWeightIsFree) {
    // x/sync TestWeightedAcquireCanceled's rule.
    Semaphore sem(5);
    auto [ctx, cancel] = with_cancel(background());
    cancel.cancel();
    EXPECT_EQ(run_sync(sem.acquire(ctx, 1)), kCanceled);
    EXPECT_EQ(sem.in_use(), 0);
}

TEST(Semaphore, LargerThanCapacityFailsAtOnce) {
    Semaphore sem(2);
    std::error_code ec = run_sync(sem.acquire(background(), 3));
    EXPECT_EQ(ec, make_error_code(SemaphoreErrc::exceeds_capacity));
    EXPECT_EQ(ec.category(), semaphore_category());
    EXPECT_NE(ec, make_error_code(ContextErrc::canceled));
    EXPECT_EQ(sem.waiters(), 0);
}

TEST(Semaphore, StrictFifoAndALargeHeadBlocksSmallerOnes) {
    // x/sync TestLargeAcquireDoesntStarve: a big waiter at the head is not bypassed.
    net::io_context io;
    Semaphore sem(3);
    ASSERT_TRUE(sem.try_acquire(2));
    std::vector<int> order;
    std::optional<std::error_code> r1, r2, r3;
    test::spawn_into(io, acquire_and_log(background(), &sem, 3, 1, &order), r1);
    test::spawn_into(io, acquire_and_log(background(), &sem, 1, 2, &order), r2);
    test::spawn_into(io, acquire_and_log(background(), &sem, 1, 3, &order), r3);
    io.poll();
    EXPECT_EQ(sem.waiters(), 3);  // 1 is free, but waiter 1 (needs 3) is at the head
    EXPECT_TRUE(order.empty());
    EXPECT_FALSE(sem.try_acquire(1));  // no barging either
    sem.release(2);
    io.poll();
    EXPECT_EQ(order, std::vector<int>({1}));
    sem.release(3);
    io.run();
    EXPECT_EQ(order, std::vector<int>({1, 2, 3}));
    EXPECT_EQ(sem.in_use(), 2);
    sem.release(2);
}

TEST(Semaphore, CancelledHeadWakesThoseBehind) {
    // x/sync TestAllocCancelDoesntStarve.
    net::io_context io;
    Semaphore sem(10);
    ASSERT_TRUE(sem.try_acquire(1));
    auto [ctx, cancel] = with_cancel(background());
    std::vector<int> order;
    std::optional<std::error_code> big, small;
    test::spawn_into(io, acquire_and_log(ctx, &sem, 10, 1, &order), big);
    test::spawn_into(io, acquire_and_log(background(), &sem, 1, 2, &order), small);
    io.poll();
    EXPECT_EQ(sem.waiters(), 2);
    cancel.cancel();
    io.run();
    ASSERT_TRUE(big.has_value() && small.has_value());
    EXPECT_EQ(*big, kCanceled);
    EXPECT_EQ(*small, std::error_code());
    EXPECT_EQ(order, std::vector<int>({2}));
    EXPECT_EQ(sem.in_use(), 2);
    EXPECT_EQ(sem.waiters(), 0);
    sem.release(2);
}

TEST(Semaphore, CoroutineCancellationAbortsTheWait) {
    net::io_context io;
    Semaphore sem(1);
    ASSERT_TRUE(sem.try_acquire(1));
    net::cancellation_signal sig;
    std::optional<std::error_code> out;
    net::co_spawn(
        io, sem.acquire(background(), 1),
        net::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr e, std::error_code ec) {
            if (e) std::rethrow_exception(e);
            out = ec;
        }));
    io.poll();
    EXPECT_EQ(sem.waiters(), 1);
    sig.emit(net::cancellation_type::terminal);
    io.run();
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, operation_aborted());
    EXPECT_EQ(sem.waiters(), 0);
    sem.release(1);
    EXPECT_EQ(sem.in_use(), 0);
}

TEST(Semaphore, GrantRacingWithCancellationGivesTheWeightBack) {
    // Deterministic version of the race: the grant and the cancellation are both queued before
    // the waiter resumes; whichever wins, the weight must not leak.
    for (int order = 0; order < 2; ++order) {
        net::io_context io;
        Semaphore sem(1);
        ASSERT_TRUE(sem.try_acquire(1));
        auto [ctx, cancel] = with_cancel(background());
        std::optional<std::error_code> out;
        test::spawn_into(io, sem.acquire(ctx, 1), out);
        io.poll();
        ASSERT_EQ(sem.waiters(), 1);
        if (order == 0) {
            sem.release(1);
            cancel.cancel();
        } else {
            cancel.cancel();
            sem.release(1);
        }
        io.run();
        ASSERT_TRUE(out.has_value());
        EXPECT_EQ(*out, kCanceled);
        EXPECT_EQ(sem.in_use(), 0) << "order " << order;
        EXPECT_EQ(sem.waiters(), 0);
    }
}

TEST(Semaphore, WaitersResumeOnTheirOwnExecutor) {
    net::io_context mine;
    net::io_context other;
    Semaphore sem(1);
    ASSERT_TRUE(sem.try_acquire(1));
    std::optional<std::error_code> out;
    test::spawn_into(mine, sem.acquire(background(), 1), out);
    mine.poll();
    // Released from "other": the waiter still resumes only when `mine` runs.
    net::post(other, [&] { sem.release(1); });
    other.run();
    EXPECT_FALSE(out.has_value());
    mine.run();
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, std::error_code());
    sem.release(1);
}

TEST(Semaphore, ZeroWeightNeverWaits) {
    Semaphore sem(1);
    ASSERT_TRUE(sem.try_acquire(1));
    EXPECT_EQ(run_sync(sem.acquire(background(), 0)), std::error_code());
    sem.release(1);
}

TEST(SemaphoreDeathTest, ReleasingMoreThanHeldIsABug) {
    // x/sync TestWeightedPanic.
    EXPECT_DEATH(
        {
            Semaphore sem(1);
            sem.release(1);
        },
        "released more than held");
}

TEST(Semaphore, PermitReleasesOnDestruction) {
    Semaphore sem(2);
    ASSERT_TRUE(sem.try_acquire(2));
    {
        SemaphorePermit p(sem, 2);
        EXPECT_EQ(sem.in_use(), 2);
    }
    EXPECT_EQ(sem.in_use(), 0);
}

}  // namespace
}  // namespace reqctx
