#include "context/asio.hpp"

#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace reqctx {

net::awaitable<std::error_code> sleep_for(Context ctx, Clock::duration d) {
    if (auto e = ctx.err()) co_return e;
    net::steady_timer timer(co_await net::this_coro::executor, d);
    auto [ec] = co_await timer.async_wait(bind_context(ctx, net::as_tuple(net::use_awaitable)));
    if (!ec) co_return std::error_code();
    if (ec == net::error::operation_aborted) {
        if (auto e = ctx.err()) co_return e;
    }
    co_return std::error_code(ec);
}

namespace detail {

net::awaitable<std::size_t> wait_either(Context a, Context b) {
    auto token = net::as_tuple(net::use_awaitable);
    auto [ec, index] =
        co_await net::async_initiate<decltype(token), void(std::error_code, std::size_t)>(
            [](auto handler, Context x, Context y) {
                using H = std::decay_t<decltype(handler)>;
                WaitOp<H, 2>::start(std::move(handler),
                                    std::array<Context, 2>{std::move(x), std::move(y)});
            },
            token, std::move(a), std::move(b));
    (void)ec;
    co_return index;
}

namespace {

// One io_context on one thread, started on first use and joined at exit. Never destroyed:
// contexts may fire after main returns.
class InternalExecutor {
public:
    static InternalExecutor& instance() {
        static InternalExecutor* e = [] {
            auto* p = new InternalExecutor();
            std::atexit(&InternalExecutor::stop_at_exit);
            return p;
        }();
        return *e;
    }

    net::any_io_executor executor() { return io_.get_executor(); }

private:
    InternalExecutor() : guard_(net::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

    static void stop_at_exit() {
        auto& self = instance();
        self.guard_.reset();
        self.io_.stop();
        if (self.thread_.joinable()) self.thread_.join();
    }

    net::io_context io_{1};
    net::executor_work_guard<net::io_context::executor_type> guard_;
    std::thread thread_;
};

}  // namespace

net::any_io_executor internal_executor() {
    return InternalExecutor::instance().executor();
}

// States: pending -> fired (fn queued or run) or pending -> stopped.
class AfterFuncState : public DoneListener, public std::enable_shared_from_this<AfterFuncState> {
public:
    AfterFuncState(Context ctx, net::any_io_executor ex, std::function<void()> fn)
        : DoneListener(&AfterFuncState::on_done),
          ctx_(std::move(ctx)),
          ex_(std::move(ex)),
          fn_(std::move(fn)) {}

    void start(std::shared_ptr<AfterFuncState> self) {
        self_ = std::move(self);
        switch (add_listener(ctx_, this)) {
            case Listen::registered:
                return;
            case Listen::already_done: {
                // Not linked: the reference goes now, not when the posted call gets to run.
                auto released = std::move(ctx_);
                fire_now();
                return;
            }
            case Listen::never: {
                // Can never run; stop() still reports that it prevented nothing... it prevents
                // the call (which would never happen), as Go's stop on a never-done context.
                auto released = std::move(ctx_);
                self_.reset();
                return;
            }
        }
    }

    bool stop() noexcept {
        int expected = kPending;
        if (!state_.compare_exchange_strong(expected, kStopped, std::memory_order_acq_rel)) {
            return false;
        }
        remove_listener(this);
        { auto released = std::move(ctx_); }  // unlinked: the reference has done its work
        auto drop = std::move(self_);
        return true;
    }

private:
    static constexpr int kPending = 0;
    static constexpr int kFired = 1;
    static constexpr int kStopped = 2;

    static void on_done(DoneListener* l, std::error_code, std::error_code) noexcept {
        static_cast<AfterFuncState*>(l)->fire_now();
    }

    // Under the context's lock (or from start): only claims and posts.
    void fire_now() noexcept {
        int expected = kPending;
        if (!state_.compare_exchange_strong(expected, kFired, std::memory_order_acq_rel)) return;
        // The posted task takes over the self reference: nothing is released under the lock.
        // It lets the context go before fn runs: whatever fn wakes (a waiter that then reports
        // itself finished) must not find this registration still holding the context.
        net::post(ex_, [self = std::move(self_)] {
            { auto released = std::move(self->ctx_); }
            auto fn = std::move(self->fn_);
            fn();
        });
    }

    // The registration's own reference: the listener is linked into this context's node until
    // fn fires or stop() unlinks it; released then. Library-internal; it never outlives the
    // registration. After kFired or kStopped only the party that moved the state touches it.
    Context ctx_;
    net::any_io_executor ex_;
    std::function<void()> fn_;
    std::atomic<int> state_{kPending};
    std::shared_ptr<AfterFuncState> self_;  // while registered or queued
};

}  // namespace detail

bool AfterFunc::stop() noexcept {
    return state_ ? state_->stop() : false;
}

AfterFunc after_func(Context ctx, net::any_io_executor ex, std::function<void()> fn) {
    auto state =
        std::make_shared<detail::AfterFuncState>(std::move(ctx), std::move(ex), std::move(fn));
    state->start(state);
    return AfterFunc(std::move(state));
}

AfterFunc after_func(Context ctx, std::function<void()> fn) {
    return after_func(std::move(ctx), detail::internal_executor(), std::move(fn));
}

}  // namespace reqctx
