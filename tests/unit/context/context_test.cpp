#include "context/context.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>

#include "tests/unit/context/test_util.hpp"

namespace reqctx {
namespace {

using namespace std::chrono_literals;

const std::error_code kCanceled = make_error_code(ContextErrc::canceled);
const std::error_code kDeadline = make_error_code(ContextErrc::deadline_exceeded);

// Polls until pred holds or 10 s pass (never a timing assertion: the bound only stops a hang).
template <class Pred>
bool eventually(Pred pred) {
    auto until = Clock::now() + 10s;
    while (Clock::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return pred();
}

// ---- Rule 1: roots ----

TEST(ContextRoots, BackgroundAndTodoAreNeverDoneHaveNoDeadlineNoValues) {
    static const Key<int> kAnswer{"answer"};
    for (Context c : {background(), todo()}) {
        EXPECT_FALSE(c.err());
        EXPECT_FALSE(c.done());
        EXPECT_FALSE(c.cause());
        EXPECT_FALSE(c.deadline().has_value());
        EXPECT_EQ(c.value(kAnswer), nullptr);
    }
}

TEST(ContextRoots, BackgroundAndTodoAreDistinctAndNamed) {
    EXPECT_FALSE(background() == todo());
    EXPECT_TRUE(background() == background());
    EXPECT_EQ(background().name(), "background");
    EXPECT_EQ(todo().name(), "todo");
}

TEST(ContextErrors, OwnCategoryAndMessages) {
    EXPECT_EQ(kCanceled.category(), context_category());
    EXPECT_EQ(kDeadline.category(), context_category());
    EXPECT_NE(kCanceled, kDeadline);
    EXPECT_EQ(kCanceled.message(), "context canceled");
    EXPECT_EQ(kDeadline.message(), "context deadline exceeded");
}

// ---- Rule 2: with_cancel ----

TEST(WithCancel, HandleCancelsAndIsIdempotent) {
    auto [ctx, cancel] = with_cancel(background());
    EXPECT_EQ(ctx.name(), "with_cancel");
    EXPECT_FALSE(ctx.err());
    cancel.cancel();
    EXPECT_EQ(ctx.err(), kCanceled);
    EXPECT_TRUE(ctx.done());
    cancel.cancel();
    cancel();
    EXPECT_EQ(ctx.err(), kCanceled);
}

TEST(WithCancel, ParentFinishesChild) {
    auto [parent, cancel_parent] = with_cancel(background());
    auto [child, cancel_child] = with_cancel(parent);
    auto [grandchild, cancel_grandchild] = with_cancel(child);
    cancel_parent.cancel();
    EXPECT_EQ(child.err(), kCanceled);
    EXPECT_EQ(grandchild.err(), kCanceled);
}

TEST(WithCancel, ChildFinishesFirstParentUnaffected) {
    auto [parent, cancel_parent] = with_cancel(background());
    auto [child, cancel_child] = with_cancel(parent);
    cancel_child.cancel();
    EXPECT_EQ(child.err(), kCanceled);
    EXPECT_FALSE(parent.err());
}

// ---- Rule 3: propagation, removal, born cancelled, free parent ----

TEST(Propagation, DescendantsGetSameErrorAndCause) {
    auto [root, cancel_root] = with_cancel_cause(background());
    auto [a, ca] = with_cancel(root);
    static const Key<std::string> kName{"name"};
    Context v = with_value(a, kName, std::string("x"));
    auto [b, cb] = with_timeout(v, 1h);
    auto cause = std::make_error_code(std::errc::connection_reset);
    cancel_root.cancel(cause);
    for (const Context& c : {root, a, v, b}) {
        EXPECT_EQ(c.err(), kCanceled);
        EXPECT_EQ(c.cause(), cause);
    }
}

TEST(Propagation, CancelledChildRemovesItselfFromParent) {
    // Observable through live_contexts(): cancelled children that are dropped free their nodes
    // even though the parent lives on (the parent holds no reference to them).
    auto [parent, cancel_parent] = with_cancel(background());
    std::int64_t before = test::settled_live_contexts();
    for (int i = 0; i < 1000; ++i) {
        auto [child, cancel_child] = with_cancel(parent);
        cancel_child.cancel();
    }
    EXPECT_TRUE(test::live_contexts_reach(before));
    // And a timer-cancelled child too.
    {
        auto [child, cancel_child] = with_timeout(parent, 1ms);
        ASSERT_TRUE(eventually([&] { return child.done(); }));
    }
    EXPECT_TRUE(test::live_contexts_reach(before));
    EXPECT_FALSE(parent.err());
    // Had a dead child stayed linked, this cascade would touch freed memory (ASan run).
    cancel_parent.cancel();
    EXPECT_EQ(parent.err(), kCanceled);
}

TEST(Propagation, ChildOfCancelledParentIsBornCancelled) {
    auto [parent, cancel_parent] = with_cancel_cause(background());
    auto cause = std::make_error_code(std::errc::timed_out);
    cancel_parent.cancel(cause);
    auto [child, cancel_child] = with_cancel(parent);
    EXPECT_EQ(child.err(), kCanceled);
    EXPECT_EQ(child.cause(), cause);
    auto [t, ct] = with_timeout(parent, 1h);
    EXPECT_EQ(t.err(), kCanceled);
    static const Key<int> kK{"k"};
    Context wv = with_value(parent, kK, 1);
    EXPECT_EQ(wv.err(), kCanceled);
}

TEST(Propagation, NeverCancelledParentCostsNothing) {
    // A with_cancel child of background is one node, independent of any other child.
    std::int64_t before = test::settled_live_contexts();
    auto [a, ca] = with_cancel(background());
    EXPECT_TRUE(test::live_contexts_reach(before + 1));
    ca.cancel();
    EXPECT_EQ(a.err(), kCanceled);
    EXPECT_FALSE(background().err());
}

// ---- Rule 4: err() is stable ----

TEST(Err, EmptyUntilDoneThenNeverChanges) {
    auto [ctx, cancel] = with_deadline(background(), Clock::now() + 1h);
    EXPECT_FALSE(ctx.err());
    cancel.cancel();
    EXPECT_EQ(ctx.err(), kCanceled);
    // The deadline passing later does not turn canceled into deadline_exceeded.
    EXPECT_EQ(ctx.err(), kCanceled);
}

TEST(Err, DescendantOfExpiredContextReportsDeadlineExceeded) {
    auto [parent, cp] = with_timeout(background(), 5ms);
    auto [child, cc] = with_cancel(parent);
    ASSERT_TRUE(eventually([&] { return child.done(); }));
    EXPECT_EQ(parent.err(), kDeadline);
    EXPECT_EQ(child.err(), kDeadline);
    EXPECT_EQ(child.cause(), kDeadline);
    cc.cancel();
    EXPECT_EQ(child.err(), kDeadline);
}

// ---- Rule 5: deadlines ----

TEST(Deadline, NeverLaterThanParent) {
    auto d = Clock::now() + 1h;
    auto [parent, cp] = with_deadline(background(), d);
    auto [later, cl] = with_deadline(parent, d + 1h);
    ASSERT_TRUE(later.deadline().has_value());
    EXPECT_EQ(*later.deadline(), d);
    auto [earlier, ce] = with_deadline(parent, d - 30min);
    EXPECT_EQ(*earlier.deadline(), d - 30min);
    auto [plain, cpl] = with_cancel(parent);
    EXPECT_EQ(*plain.deadline(), d);
    static const Key<int> kK{"k"};
    EXPECT_EQ(*with_value(parent, kK, 1).deadline(), d);
}

TEST(Deadline, AlreadyPastIsBornExceeded) {
    auto [ctx, c] = with_deadline(background(), Clock::now() - 1s);
    EXPECT_EQ(ctx.err(), kDeadline);
    EXPECT_EQ(ctx.cause(), kDeadline);
    auto [t, ct] = with_timeout(background(), 0s);
    EXPECT_EQ(t.err(), kDeadline);
}

TEST(Deadline, TimerFiresWithoutAnyIoContext) {
    auto [ctx, c] = with_timeout(background(), 2ms);
    EXPECT_TRUE(ctx.deadline().has_value());
    ASSERT_TRUE(eventually([&] { return ctx.done(); }));
    EXPECT_EQ(ctx.err(), kDeadline);
}

TEST(Deadline, CauseAppliesOnlyWhenTimerFires) {
    auto cause = std::make_error_code(std::errc::timed_out);
    auto [fired, c1] = with_timeout_cause(background(), 1ms, cause);
    ASSERT_TRUE(eventually([&] { return fired.done(); }));
    EXPECT_EQ(fired.err(), kDeadline);
    EXPECT_EQ(fired.cause(), cause);

    auto [cancelled, c2] = with_timeout_cause(background(), 1h, cause);
    c2.cancel();
    EXPECT_EQ(cancelled.err(), kCanceled);
    EXPECT_EQ(cancelled.cause(), kCanceled);

    auto [past, c3] = with_deadline_cause(background(), Clock::now() - 1s, cause);
    EXPECT_EQ(past.err(), kDeadline);
    EXPECT_EQ(past.cause(), cause);
}

TEST(Deadline, LayersOfCancelAndTimeout) {
    // Go's XTestLayersCancel / XTestLayersTimeout shape.
    static const Key<int> kA{"a"};
    static const Key<int> kB{"b"};
    auto [c0, k0] = with_cancel(background());
    Context v1 = with_value(c0, kA, 1);
    auto [t1, kt1] = with_timeout(v1, 10ms);
    Context v2 = with_value(t1, kB, 2);
    auto [c2, k2] = with_cancel(v2);
    EXPECT_EQ(*c2.value(kA), 1);
    EXPECT_EQ(*c2.value(kB), 2);
    ASSERT_TRUE(eventually([&] { return c2.done(); }));
    EXPECT_EQ(c2.err(), kDeadline);
    EXPECT_EQ(v2.err(), kDeadline);
    EXPECT_FALSE(v1.err());
    EXPECT_FALSE(c0.err());
}

// ---- Rule 6: causes ----

TEST(Cause, EmptyBeforeSetOnceEqualsErrWithoutCause) {
    auto [ctx, cancel] = with_cancel_cause(background());
    EXPECT_FALSE(ctx.cause());
    auto first = std::make_error_code(std::errc::broken_pipe);
    cancel.cancel(first);
    cancel.cancel(std::make_error_code(std::errc::io_error));
    EXPECT_EQ(ctx.cause(), first);

    auto [plain, pc] = with_cancel(background());
    pc.cancel();
    EXPECT_EQ(plain.cause(), plain.err());
    auto [empty_cause, ec] = with_cancel_cause(background());
    ec.cancel(std::error_code());
    EXPECT_EQ(empty_cause.cause(), kCanceled);
}

TEST(Cause, ChildCancelledFirstKeepsItsOwnCause) {
    auto [parent, cp] = with_cancel_cause(background());
    auto [child, cc] = with_cancel_cause(parent);
    auto child_cause = std::make_error_code(std::errc::no_buffer_space);
    cc.cancel(child_cause);
    cp.cancel(std::make_error_code(std::errc::io_error));
    EXPECT_EQ(child.cause(), child_cause);
}

// ---- Rule 7: typed values ----

struct UserId {
    std::string value;
};
struct Shared {
    using not_request_scoped = void;
};

const Key<UserId> kUser{"user"};
const Key<UserId> kOtherUser{"other_user"};
const Key<int> kDepth{"depth"};

TEST(Values, InnermostFirstTypedByKeyObject) {
    Context a = with_value(background(), kUser, UserId{"alice"});
    Context b = with_value(a, kUser, UserId{"bob"});
    Context c = with_value(b, kDepth, 3);
    const UserId* u = c.value(kUser);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->value, "bob");
    EXPECT_EQ(a.value(kUser)->value, "alice");
    EXPECT_EQ(c.value(kOtherUser), nullptr);  // same type, different key object
    EXPECT_EQ(*c.value(kDepth), 3);
    EXPECT_EQ(c.name(), "with_value");
}

TEST(Values, SurviveTheContextThatStoredThem) {
    const UserId* u = nullptr;
    Context keep = background();
    {
        auto [ctx, cancel] = with_cancel(background());
        keep = with_value(ctx, kUser, UserId{"carol"});
    }
    u = keep.value(kUser);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->value, "carol");
    EXPECT_EQ(keep.err(), kCanceled);  // the RAII handle went out of scope
}

// Compile-time refusal: these are the traits Key<T> static_asserts on.
static_assert(is_request_scoped_v<UserId>);
static_assert(is_request_scoped_v<int>);
static_assert(!is_request_scoped_v<Shared>);
static_assert(!is_request_scoped_v<UserId*>);
static_assert(!is_request_scoped_v<const UserId>);
static_assert(!is_request_scoped_v<std::unique_ptr<int>>);
static_assert(!is_request_scoped_v<std::shared_ptr<UserId>>);
static_assert(!is_request_scoped_v<std::weak_ptr<UserId>>);

// ---- Rule 8: without_cancel ----

TEST(WithoutCancel, KeepsValuesDropsCancellationDeadlineCause) {
    auto [parent, cp] = with_timeout(background(), 1h);
    Context v = with_value(parent, kUser, UserId{"dave"});
    Context detached = without_cancel(v);
    EXPECT_EQ(detached.name(), "without_cancel");
    cp.cancel(std::make_error_code(std::errc::io_error));
    EXPECT_EQ(v.err(), kCanceled);
    EXPECT_FALSE(detached.err());
    EXPECT_FALSE(detached.cause());
    EXPECT_FALSE(detached.deadline().has_value());
    EXPECT_EQ(detached.value(kUser)->value, "dave");

    auto [child, cc] = with_cancel(detached);
    EXPECT_FALSE(child.err());
    cc.cancel();
    EXPECT_EQ(child.err(), kCanceled);
    EXPECT_FALSE(detached.err());
}

// ---- Rule 10: RAII handle ----

TEST(CancelHandleRaii, DestroyingTheHandleCancels) {
    Context survivor = background();
    {
        auto [ctx, cancel] = with_cancel(background());
        survivor = ctx;
        EXPECT_FALSE(survivor.err());
    }
    EXPECT_EQ(survivor.err(), kCanceled);
}

TEST(CancelHandleRaii, MoveTransfersAndAssignmentCancelsThePrevious) {
    auto [a, ha] = with_cancel(background());
    auto [b, hb] = with_cancel(background());
    CancelHandle moved = std::move(ha);
    EXPECT_FALSE(a.err());
    moved = std::move(hb);  // the previous target (a) is cancelled
    EXPECT_EQ(a.err(), kCanceled);
    EXPECT_FALSE(b.err());
    moved.cancel();
    EXPECT_EQ(b.err(), kCanceled);
}

TEST(LiveContexts, CountsDerivedNodes) {
    std::int64_t before = test::settled_live_contexts();
    {
        auto [a, ha] = with_cancel(background());
        Context b = with_value(a, kDepth, 1);
        Context c = without_cancel(b);
        EXPECT_TRUE(test::live_contexts_reach(before + 3));
    }
    EXPECT_TRUE(test::live_contexts_reach(before));
}

TEST(LiveContexts, CountsAcrossThreads) {
    std::int64_t before = test::settled_live_contexts();
    std::vector<std::pair<Context, CancelHandle>> made;
    std::thread t([&] {
        for (int i = 0; i < 100; ++i) made.push_back(with_cancel(background()));
    });
    t.join();
    EXPECT_TRUE(test::live_contexts_reach(before + 100));
    made.clear();  // destroyed on this thread: different shard, same sum
    EXPECT_TRUE(test::live_contexts_reach(before));
}

}  // namespace
}  // namespace reqctx
