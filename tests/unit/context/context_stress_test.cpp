// Many-thread races on the Context library. Bounded in iterations; no sleeps-and-hope and no
// timing assertions: every check is about the final state. Run under ThreadSanitizer by
// `make sanitize` (label "concurrency").

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "context/asio.hpp"
#include "context/semaphore.hpp"
#include "tests/unit/context/test_util.hpp"

namespace reqctx {
namespace {

using namespace std::chrono_literals;
using test::eventually;

const std::error_code kCanceled = make_error_code(ContextErrc::canceled);
const std::error_code kDeadline = make_error_code(ContextErrc::deadline_exceeded);

constexpr int kThreads = 4;

// Starts all threads at once (a spin barrier), runs body(i), joins.
template <class F>
void run_threads(int n, F body) {
    std::atomic<int> ready{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i) {
        ts.emplace_back([&, i] {
            ready.fetch_add(1);
            while (ready.load() < n) std::this_thread::yield();
            body(i);
        });
    }
    for (auto& t : ts) t.join();
}

TEST(ContextStress, SimultaneousCancels) {
    // Go's TestSimultaneousCancels: a tree cancelled from many threads at once.
    for (int round = 0; round < 50; ++round) {
        auto [root, cancel_root] = with_cancel(background());
        std::vector<std::pair<Context, CancelHandle>> nodes;
        nodes.reserve(64);
        for (int i = 0; i < 64; ++i) {
            Context parent = i == 0 ? root : nodes[static_cast<std::size_t>(i) / 2].first;
            nodes.push_back(i % 3 == 0 ? with_timeout(parent, 1h) : with_cancel(parent));
        }
        run_threads(kThreads, [&](int t) {
            if (t == 0) {
                cancel_root.cancel();
            } else {
                for (std::size_t i = static_cast<std::size_t>(t); i < nodes.size(); i += kThreads)
                    nodes[i].second.cancel();
            }
        });
        EXPECT_EQ(root.err(), kCanceled);
        for (auto& [c, h] : nodes) EXPECT_EQ(c.err(), kCanceled);
    }
}

TEST(ContextStress, InterlockedCancels) {
    // Go's TestInterlockedCancels: parent's cancellation and child's own cancellation race.
    for (int round = 0; round < 200; ++round) {
        auto [parent, cancel_parent] = with_cancel(background());
        auto [child, cancel_child] = with_timeout(parent, 1h);
        auto [grandchild, cancel_grandchild] = with_cancel(child);
        run_threads(3, [&](int t) {
            if (t == 0) cancel_parent.cancel();
            if (t == 1) cancel_child.cancel();
            if (t == 2) cancel_grandchild.cancel();
        });
        EXPECT_EQ(child.err(), kCanceled);
        EXPECT_EQ(grandchild.err(), kCanceled);
    }
}

TEST(ContextStress, CauseRacesSettleOnOneCauseForTheWholeSubtree) {
    for (int round = 0; round < 200; ++round) {
        auto [ctx, cancel] = with_cancel_cause(background());
        auto [child, cc] = with_cancel(ctx);
        std::vector<std::error_code> causes = {
            std::make_error_code(std::errc::io_error), std::make_error_code(std::errc::timed_out),
            std::make_error_code(std::errc::broken_pipe), std::make_error_code(std::errc::no_link)};
        std::atomic<int> observed_bad{0};
        run_threads(kThreads + 1, [&](int t) {
            if (t < kThreads) {
                cancel.cancel(causes[static_cast<std::size_t>(t)]);
            } else {
                // A reader: cause() is empty or a final value, never torn.
                for (int i = 0; i < 100; ++i) {
                    auto c = child.cause();
                    bool ok = !c || std::find(causes.begin(), causes.end(), c) != causes.end();
                    if (!ok) ++observed_bad;
                }
            }
        });
        EXPECT_EQ(observed_bad.load(), 0);
        auto c = ctx.cause();
        EXPECT_NE(std::find(causes.begin(), causes.end(), c), causes.end());
        EXPECT_EQ(child.cause(), c);
        EXPECT_EQ(ctx.cause(), c);  // never changes
    }
}

TEST(ContextStress, ChildrenChurnUnderACancellingParent) {
    std::int64_t before = test::settled_live_contexts();
    for (int round = 0; round < 20; ++round) {
        auto [parent, cancel_parent] = with_cancel(background());
        std::atomic<int> wrong{0};
        run_threads(kThreads, [&](int t) {
            if (t == 0) {
                for (int i = 0; i < 200; ++i) {
                    auto [c, h] = with_cancel(parent);
                    (void)c;
                }
                cancel_parent.cancel();
                return;
            }
            for (int i = 0; i < 500; ++i) {
                // A parent seen done before derivation gives a child born cancelled. (Seen
                // done only after: the cascade may still be on its way, as in Go.)
                bool parent_done_before = parent.done();
                auto [c, h] = t % 2 ? with_cancel(parent) : with_timeout(parent, 1h);
                if (parent_done_before && c.err() != kCanceled) ++wrong;
                if (i % 2) h.cancel();
            }
        });
        EXPECT_EQ(wrong.load(), 0);
        EXPECT_EQ(parent.err(), kCanceled);
        auto [late, h] = with_cancel(parent);
        EXPECT_EQ(late.err(), kCanceled);
    }
    EXPECT_TRUE(test::live_contexts_reach(before));
}

// The parent's cascade holds no reference to the children it cancels (nor their locks, unless
// they have listeners): a child dropped by its own thread meanwhile (its handle's cancel takes no
// lock once the child is cancelled and detached) must not be freed before the cascade is done
// with it.
TEST(ContextStress, ChildrenDroppedWhileTheParentCascades) {
    std::int64_t before = test::settled_live_contexts();
    for (int round = 0; round < 50; ++round) {
        auto [parent, cancel_parent] = with_cancel(background());
        std::vector<std::pair<Context, CancelHandle>> children;
        for (int i = 0; i < 500; ++i) children.push_back(with_cancel(parent));
        run_threads(2, [&](int t) {
            if (t == 0) {
                cancel_parent.cancel();
                return;
            }
            while (!children.empty()) children.pop_back();
        });
        EXPECT_EQ(parent.err(), kCanceled);
    }
    EXPECT_TRUE(test::live_contexts_reach(before));
}

// The cascade sets a linked child's state without the child's lock; a grandchild or a listener
// being added to the child at that moment must still be cancelled (the adder marks the child
// listened and then reads its state, the cascade writes the state and then reads the mark: one
// of them sees the other). A lost cancellation shows as a grandchild or after_func left undone.
TEST(ContextStress, ListenersAddedToChildrenWhileTheParentCascades) {
    net::io_context io;
    auto guard = net::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    std::int64_t before = test::settled_live_contexts();
    constexpr int kChildren = 64;
    std::atomic<int> fired{0};
    int registered = 0;
    for (int round = 0; round < 100; ++round) {
        auto [parent, cancel_parent] = with_cancel(background());
        std::vector<std::pair<Context, CancelHandle>> children;
        for (int i = 0; i < kChildren; ++i) children.push_back(with_cancel(parent));
        std::vector<std::vector<std::pair<Context, CancelHandle>>> grand(kThreads);
        std::vector<std::vector<AfterFunc>> funcs(kThreads);
        run_threads(kThreads, [&](int t) {
            if (t == 0) {
                cancel_parent.cancel();
                return;
            }
            auto& mine = grand[static_cast<std::size_t>(t)];
            for (int i = t; i < kChildren; i += kThreads - 1) {
                const Context& child = children[static_cast<std::size_t>(i)].first;
                if (i % 2) {
                    mine.push_back(with_cancel(child));
                } else {
                    funcs[static_cast<std::size_t>(t)].push_back(
                        after_func(child, io.get_executor(), [&fired] { ++fired; }));
                }
            }
        });
        for (auto& [c, h] : children) EXPECT_EQ(c.err(), kCanceled);
        for (auto& g : grand)
            for (auto& [c, h] : g) EXPECT_EQ(c.err(), kCanceled);
        for (auto& f : funcs) registered += static_cast<int>(f.size());
    }
    EXPECT_TRUE(eventually([&] { return fired.load() == registered; }));
    EXPECT_EQ(fired.load(), registered);
    guard.reset();
    runner.join();
    EXPECT_TRUE(test::live_contexts_reach(before));
}

// A child's own cancel (taking the parent's lock, then its own) races the parent's cascade
// (setting the child's state under the parent's lock only): whoever wins, the child and its own
// children agree on one error and one cause.
TEST(ContextStress, OwnCancelsRaceTheParentsCascade) {
    const std::error_code parent_cause = std::make_error_code(std::errc::timed_out);
    const std::error_code own_cause = std::make_error_code(std::errc::interrupted);
    std::int64_t before = test::settled_live_contexts();
    for (int round = 0; round < 100; ++round) {
        auto [parent, cancel_parent] = with_cancel_cause(background());
        std::vector<std::pair<Context, CancelHandle>> children;
        std::vector<std::pair<Context, CancelHandle>> grand;
        for (int i = 0; i < 64; ++i) {
            children.push_back(with_cancel_cause(parent));
            // Every other child has a child of its own, so its listeners are fired too.
            if (i % 2) grand.push_back(with_cancel(children.back().first));
        }
        run_threads(kThreads, [&](int t) {
            if (t == 0) {
                cancel_parent.cancel(parent_cause);
                return;
            }
            for (std::size_t i = static_cast<std::size_t>(t) - 1; i < children.size();
                 i += kThreads - 1) {
                if (i % 3 == 0)
                    children[i].second.cancel(own_cause);
                else if (i % 3 == 1)
                    children[i].second = CancelHandle();  // dropping the handle cancels
            }
        });
        EXPECT_EQ(parent.cause(), parent_cause);
        for (std::size_t i = 0; i < children.size(); ++i) {
            const Context& c = children[i].first;
            EXPECT_EQ(c.err(), kCanceled);
            const std::error_code cause = c.cause();
            EXPECT_TRUE(cause == parent_cause || cause == own_cause || cause == kCanceled)
                << cause.message();
            if (i % 3 == 2) {
                EXPECT_EQ(cause, parent_cause);
            }
            if (i % 2) {
                EXPECT_EQ(grand[i / 2].first.cause(), cause);
            }
        }
    }
    EXPECT_TRUE(test::live_contexts_reach(before));
}

// Nodes made on one thread and freed on another (each thread keeps a cache of freed nodes): the
// children of a parent cross threads, and everything is freed in the end.
TEST(ContextStress, NodesFreedOnOtherThreads) {
    std::int64_t before = test::settled_live_contexts();
    auto [parent, cancel_parent] = with_cancel(background());
    for (int round = 0; round < 20; ++round) {
        std::vector<std::vector<std::pair<Context, CancelHandle>>> made(kThreads);
        run_threads(kThreads, [&](int t) {
            auto& mine = made[static_cast<std::size_t>(t)];
            for (int i = 0; i < 300; ++i) mine.push_back(with_cancel(parent));
        });
        run_threads(kThreads, [&](int t) {
            // Each thread frees another thread's batch.
            auto& theirs = made[static_cast<std::size_t>((t + 1) % kThreads)];
            for (std::size_t i = 0; i < theirs.size(); i += 2) theirs[i].second.cancel();
            theirs.clear();
        });
    }
    cancel_parent.cancel();
    EXPECT_TRUE(test::live_contexts_reach(before + 1));
}

TEST(ContextStress, ManyShortTimeoutsAllFire) {
    std::int64_t before = test::settled_live_contexts();
    run_threads(kThreads, [&](int t) {
        std::vector<std::pair<Context, CancelHandle>> mine;
        for (int i = 0; i < 300; ++i) mine.push_back(with_timeout(background(), (i % 7) * 100us));
        for (std::size_t i = 0; i < mine.size(); i += 3) mine[i].second.cancel();
        ASSERT_TRUE(eventually([&] {
            for (auto& [c, h] : mine)
                if (!c.done()) return false;
            return true;
        }));
        for (auto& [c, h] : mine) EXPECT_TRUE(c.err() == kCanceled || c.err() == kDeadline);
        (void)t;
    });
    EXPECT_TRUE(test::live_contexts_reach(before));
}

TEST(ContextStress, AfterFuncStopRacesWithCancel) {
    net::io_context io;
    auto guard = net::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    constexpr int kRounds = 2000;
    std::atomic<int> ran{0};
    int stopped = 0;
    for (int i = 0; i < kRounds; ++i) {
        auto [ctx, cancel] = with_cancel(background());
        AfterFunc af = after_func(ctx, io.get_executor(), [&ran] { ++ran; });
        std::atomic<bool> stop_result{false};
        run_threads(2, [&](int t) {
            if (t == 0)
                cancel.cancel();
            else
                stop_result = af.stop();
        });
        if (stop_result) ++stopped;
    }
    guard.reset();
    runner.join();
    // Exactly one of "stop() returned true" and "fn ran" for each round.
    EXPECT_EQ(ran.load() + stopped, kRounds);
}

net::awaitable<void> use_semaphore(Semaphore* sem, Context ctx, std::int64_t n,
                                   std::atomic<std::int64_t>* held, std::atomic<int>* over,
                                   std::atomic<int>* done) {
    std::error_code ec = co_await sem->acquire(ctx, n);
    if (!ec) {
        auto now = held->fetch_add(n) + n;
        if (now > sem->capacity()) ++*over;
        co_await net::post(co_await net::this_coro::executor, net::use_awaitable);
        held->fetch_sub(n);
        sem->release(n);
    }
    ++*done;
}

TEST(SemaphoreStress, GrantsAndCancellationsNeverLeakWeight) {
    Semaphore sem(4);
    net::io_context io;
    auto guard = net::make_work_guard(io);
    std::vector<std::thread> runners;
    for (int i = 0; i < 3; ++i) runners.emplace_back([&] { io.run(); });
    std::atomic<std::int64_t> held{0};
    std::atomic<int> over{0};
    std::atomic<int> done{0};
    constexpr int kTasks = 2000;
    std::vector<std::pair<Context, CancelHandle>> ctxs;
    ctxs.reserve(kTasks);
    std::mt19937 rng(42);
    for (int i = 0; i < kTasks; ++i) {
        ctxs.push_back(with_cancel(background()));
        // Each coroutine on its own strand: waiters resume on their own executor.
        net::co_spawn(net::make_strand(io),
                      use_semaphore(&sem, ctxs.back().first, 1 + static_cast<int>(rng() % 3), &held,
                                    &over, &done),
                      [](std::exception_ptr e) {
                          if (e) std::rethrow_exception(e);
                      });
    }
    // Cancel a random half while grants are flowing, from another thread.
    std::thread canceller([&] {
        std::mt19937 r(7);
        for (int i = 0; i < kTasks; ++i)
            if (r() % 2) ctxs[static_cast<std::size_t>(i)].second.cancel();
    });
    canceller.join();
    ASSERT_TRUE(eventually([&] { return done.load() == kTasks; }, 60s));
    guard.reset();
    for (auto& t : runners) t.join();
    EXPECT_EQ(over.load(), 0);
    EXPECT_EQ(sem.in_use(), 0);
    EXPECT_EQ(sem.waiters(), 0);
}

net::awaitable<void> bound_wait(Context ctx, std::atomic<int>* aborted, std::atomic<int>* done) {
    net::steady_timer t(co_await net::this_coro::executor, 1h);
    auto [ec] = co_await t.async_wait(bind_context(ctx, net::as_tuple(net::use_awaitable)));
    if (ec == net::error::operation_aborted) ++*aborted;
    ++*done;
}

TEST(BindContextStress, CancelsFromForeignThreadsOnStrands) {
    net::io_context io;
    auto guard = net::make_work_guard(io);
    std::vector<std::thread> runners;
    for (int i = 0; i < 2; ++i) runners.emplace_back([&] { io.run(); });
    constexpr int kOps = 1000;
    std::atomic<int> aborted{0};
    std::atomic<int> done{0};
    std::vector<std::pair<Context, CancelHandle>> ctxs;
    ctxs.reserve(kOps);
    for (int i = 0; i < kOps; ++i) {
        ctxs.push_back(with_cancel(background()));
        if (i % 10 == 0) ctxs.back().second.cancel();  // some already done at initiation
        net::co_spawn(net::make_strand(io), bound_wait(ctxs.back().first, &aborted, &done),
                      [](std::exception_ptr e) {
                          if (e) std::rethrow_exception(e);
                      });
    }
    run_threads(2, [&](int t) {
        for (std::size_t i = static_cast<std::size_t>(t); i < ctxs.size(); i += 2)
            ctxs[i].second.cancel();
    });
    ASSERT_TRUE(eventually([&] { return done.load() == kOps; }, 60s));
    guard.reset();
    for (auto& t : runners) t.join();
    EXPECT_EQ(aborted.load(), kOps);
}

}  // namespace
}  // namespace reqctx
