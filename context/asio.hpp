#pragma once

// Contexts meet Boost.Asio: await a context (async_wait), bind one to any Asio operation as its
// cancellation slot (bind_context), a cancellable sleep (sleep_for) and Go's AfterFunc
// (after_func). Thread rules: completions and cancellation signals are delivered on the
// operation's associated executor, never on the thread that cancelled the context.

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include "context/context.hpp"

namespace reqctx {

namespace net = boost::asio;

// Asio's operation_aborted as a std::error_code (compare with `ec == std::errc::operation_canceled`
// or with this value).
inline std::error_code operation_aborted() noexcept {
    return boost::system::error_code(net::error::operation_aborted);
}

namespace detail {

// The state of one async_wait: completes once, with the error of the first context that is
// done, or operation_aborted when the handler's own cancellation slot fires first.
template <class Handler, std::size_t N>
class WaitOp : public std::enable_shared_from_this<WaitOp<Handler, N>> {
public:
    struct Slot : DoneListener {
        Slot() noexcept : DoneListener(&WaitOp::on_done) {}
        WaitOp* op = nullptr;
        std::size_t index = 0;
    };

    WaitOp(Handler h, std::array<Context, N> ctxs)
        : handler_(std::move(h)),
          work_(net::prefer(net::any_io_executor(net::get_associated_executor(handler_)),
                            net::execution::outstanding_work.tracked)),
          ctxs_(std::move(ctxs)) {
        for (std::size_t i = 0; i < N; ++i) {
            listeners_[i].op = this;
            listeners_[i].index = i;
        }
    }

    static void start(Handler h, std::array<Context, N> ctxs) {
        auto op = std::make_shared<WaitOp>(std::move(h), std::move(ctxs));
        // Owned by itself while a context may fire it; released by complete().
        op->self_ = op;
        auto slot = net::get_associated_cancellation_slot(op->handler_);
        if (slot.is_connected()) {
            op->slot_ = slot;
            slot.assign([op](net::cancellation_type) { op->finish_from_executor(N); });
        }
        for (std::size_t i = 0; i < N; ++i) {
            if (add_listener(op->ctxs_[i], &op->listeners_[i]) == Listen::already_done) {
                op->claim_and_post(i);
                break;
            }
        }
        bool listening = false;
        for (auto& l : op->listeners_) listening = listening || l.owner != nullptr;
        // No context can fire and no slot: nothing will ever complete it; drop it (as Asio
        // drops an operation whose io_context is destroyed).
        if (!listening && !slot.is_connected() && !op->claimed_.load()) op->self_.reset();
    }

private:
    static void on_done(DoneListener* l, std::error_code, std::error_code) noexcept {
        auto* s = static_cast<Slot*>(l);
        s->op->claim_and_post(s->index);
    }

    // Runs under a context lock or on the executor: only claims and posts.
    void claim_and_post(std::size_t index) noexcept {
        if (claimed_.exchange(true, std::memory_order_acq_rel)) return;
        net::post(work_, [self = this->shared_from_this(), index] { self->complete(index); });
    }

    void finish_from_executor(std::size_t index) {
        if (claimed_.exchange(true, std::memory_order_acq_rel)) return;
        // Posted: never complete inside the cancellation signal's emit.
        net::post(work_, [self = this->shared_from_this(), index] { self->complete(index); });
    }

    void complete(std::size_t index) {
        auto keep = std::move(self_);
        for (auto& l : listeners_) remove_listener(&l);
        if (slot_.is_connected()) slot_.clear();
        std::error_code ec = index < N ? ctxs_[index].err() : operation_aborted();
        // Released before the upcall, which may run the waiter to its end: what it then
        // reports (a response, the live context count) must not see this operation's copies.
        { auto released = std::move(ctxs_); }
        auto h = std::move(handler_);
        auto work = std::move(work_);
        if constexpr (N == 1) {
            std::move(h)(ec);
        } else {
            std::move(h)(ec, index);
        }
    }

    Handler handler_;
    net::any_io_executor work_;
    std::array<Context, N> ctxs_;
    std::array<Slot, N> listeners_;
    net::cancellation_slot slot_;
    std::atomic<bool> claimed_{false};
    std::shared_ptr<WaitOp> self_;
};

// The state shared by one bound operation, its handler and the context listener.
class BindState : public DoneListener, public std::enable_shared_from_this<BindState> {
public:
    BindState(Context ctx, net::any_io_executor ex)
        : DoneListener(&BindState::on_done), ctx_(std::move(ctx)), ex_(std::move(ex)) {}

    net::cancellation_slot slot() noexcept { return signal_.slot(); }

    // On the initiating thread, right after initiation: closes the "already done" trap.
    void arm() {
        if (add_listener(ctx_, this) == Listen::already_done) emit();
    }

    // On the operation's executor, as the operation completes.
    void disarm() noexcept {
        completed_.store(true, std::memory_order_release);
        remove_listener(this);
        signal_.slot().clear();
    }

    void emit(net::cancellation_type type = net::cancellation_type::terminal) {
        if (!completed_.load(std::memory_order_acquire)) signal_.emit(type);
    }

    // The handler was destroyed without completing (e.g. its io_context was destroyed).
    void abandon() noexcept { remove_listener(this); }

private:
    static void on_done(DoneListener* l, std::error_code, std::error_code) noexcept {
        auto* s = static_cast<BindState*>(l);
        if (s->completed_.load(std::memory_order_acquire)) return;
        // Emitting is not thread-safe: hop to the operation's executor.
        net::post(s->ex_, [self = s->shared_from_this()] { self->emit(); });
    }

    // Keeps the bound context's node alive while the listener is linked into it; this state
    // lives exactly as long as the one operation it binds (a call frame, not a long-lived struct).
    Context ctx_;
    net::any_io_executor ex_;
    net::cancellation_signal signal_;
    std::atomic<bool> completed_{false};
};

// Wraps the operation's real handler: disarms the context, then forwards the completion.
template <class Handler>
class BoundHandler {
public:
    BoundHandler(Handler h, std::shared_ptr<BindState> state, net::cancellation_slot outer)
        : handler_(std::move(h)), state_(std::move(state)), outer_(outer) {}
    BoundHandler(BoundHandler&&) noexcept = default;
    BoundHandler& operator=(BoundHandler&&) = delete;
    ~BoundHandler() {
        if (state_) state_->abandon();
    }

    template <class... Args>
    void operator()(Args&&... args) {
        state_->disarm();
        if (outer_.is_connected()) outer_.clear();
        auto state = std::move(state_);
        std::move(handler_)(std::forward<Args>(args)...);
    }

    Handler handler_;

private:
    std::shared_ptr<BindState> state_;
    net::cancellation_slot outer_;
};

template <class Initiation>
struct BindInitiation {
    Initiation init;
    Context ctx;

    template <class Handler, class... Args>
    void operator()(Handler&& handler, Args&&... args) && {
        using H = std::decay_t<Handler>;
        net::any_io_executor ex = [&] {
            if constexpr (requires { init.get_executor(); }) {
                return net::any_io_executor(
                    net::get_associated_executor(handler, init.get_executor()));
            } else {
                return net::any_io_executor(net::get_associated_executor(handler));
            }
        }();
        auto state = std::make_shared<BindState>(std::move(ctx), std::move(ex));
        // Keep the awaiting coroutine's own cancellation working: forward it to our signal.
        net::cancellation_slot outer = net::get_associated_cancellation_slot(handler);
        if (outer.is_connected()) {
            outer.assign([state](net::cancellation_type t) { state->emit(t); });
        }
        net::cancellation_slot inner = state->slot();
        std::move(init)(net::bind_cancellation_slot(
                            inner, BoundHandler<H>(std::forward<Handler>(handler), state, outer)),
                        std::forward<Args>(args)...);
        state->arm();
    }
};

}  // namespace detail

// A completion token: `bind_context(ctx, net::use_awaitable)`. See bind_context below.
template <class Token>
struct ContextBound {
    Context ctx;
    Token token;
};

// Completes with ctx.err() once ctx is done (signature void(std::error_code)), or with
// net::error::operation_aborted if the operation's own cancellation slot (e.g. the awaiting
// coroutine's) fires first. On a context that can never be done it waits for that slot only.
// The handler runs on its associated executor.
template <class Token>
auto async_wait(Context ctx, Token&& token) {
    return net::async_initiate<Token, void(std::error_code)>(
        [](auto handler, Context c) {
            using H = std::decay_t<decltype(handler)>;
            detail::WaitOp<H, 1>::start(std::move(handler), std::array<Context, 1>{std::move(c)});
        },
        token, std::move(ctx));
}

// Binds ctx as the cancellation slot of ONE Asio operation:
//     co_await sock.async_read_some(buf, bind_context(ctx, net::use_awaitable));
// The operation is cancelled (cancellation_type::terminal) when ctx is done, including when it
// already is at initiation (signalled right after initiation, on the initiating thread, which
// must be the operation's executor, e.g. the coroutine's strand). Later signals are posted to the
// operation's associated executor, never emitted from the cancelling thread. As for any per-op
// cancellation in Asio, the operation's executor must be a strand or single-threaded. The
// handler's own slot keeps working. Nothing stays registered once the operation completes.
template <class Token>
ContextBound<std::decay_t<Token>> bind_context(Context ctx, Token&& token) {
    return {std::move(ctx), std::forward<Token>(token)};
}

// {} after d, or ctx.err() when ctx is done first (operation_aborted if the coroutine itself is
// cancelled). Runs on the calling coroutine's executor.
net::awaitable<std::error_code> sleep_for(Context ctx, Clock::duration d);

namespace detail {
class AfterFuncState;
// Waits until a or b is done: returns 0 or 1 (which one), or 2 if the coroutine was cancelled.
net::awaitable<std::size_t> wait_either(Context a, Context b);
// The library's own single-threaded executor (lazily started, joined at exit).
net::any_io_executor internal_executor();
}  // namespace detail

// Go's context.AfterFunc. stop() returns true only if it prevented the call (fn had not started
// and will not); false if fn already ran, is running or is queued. Destroying the handle does not
// stop fn (as in Go). Copyable; thread-safe.
class AfterFunc {
public:
    AfterFunc() noexcept = default;
    bool stop() noexcept;

private:
    friend AfterFunc after_func(Context, net::any_io_executor, std::function<void()>);
    explicit AfterFunc(std::shared_ptr<detail::AfterFuncState> s) noexcept : state_(std::move(s)) {}
    std::shared_ptr<detail::AfterFuncState> state_;
};

// Runs fn once after ctx is done, posted to `ex` (immediately-but-asynchronously if ctx is already
// done; never inline, never under a lock). Exceptions from fn are bugs: they escape on ex.
AfterFunc after_func(Context ctx, net::any_io_executor ex, std::function<void()> fn);
// As above on the library's internal after_func thread: one thread shared by every such call, so
// fn must be short and must not block (post heavier work to your own executor instead).
AfterFunc after_func(Context ctx, std::function<void()> fn);

}  // namespace reqctx

template <class Token, class... Signatures>
struct boost::asio::async_result<reqctx::ContextBound<Token>, Signatures...> {
    template <class Initiation, class RawToken, class... Args>
    static auto initiate(Initiation&& init, RawToken&& token, Args&&... args) {
        Token inner = std::forward<RawToken>(token).token;
        return boost::asio::async_initiate<Token, Signatures...>(
            reqctx::detail::BindInitiation<std::decay_t<Initiation>>{
                std::forward<Initiation>(init), std::forward<RawToken>(token).ctx},
            inner, std::forward<Args>(args)...);
    }
};

// BoundHandler keeps the wrapped handler's executor and allocator.
template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct boost::asio::associator<Associator, reqctx::detail::BoundHandler<Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
    static typename Associator<Handler, DefaultCandidate>::type get(
        const reqctx::detail::BoundHandler<Handler>& h) noexcept {
        return Associator<Handler, DefaultCandidate>::get(h.handler_);
    }
    static auto get(const reqctx::detail::BoundHandler<Handler>& h,
                    const DefaultCandidate& c) noexcept
        -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler_, c)) {
        return Associator<Handler, DefaultCandidate>::get(h.handler_, c);
    }
};
