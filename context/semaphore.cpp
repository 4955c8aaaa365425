#include "context/semaphore.hpp"

#include "context/asio.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace reqctx {

namespace {

class SemaphoreCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "reqctx.semaphore"; }
    std::string message(int ev) const override {
        switch (static_cast<SemaphoreErrc>(ev)) {
            case SemaphoreErrc::exceeds_capacity:
                return "requested weight exceeds the semaphore's capacity";
        }
        return "unknown semaphore error";
    }
};

constinit const SemaphoreCategory kSemCategory{};

enum Outcome : int { kGranted = 0, kContextDone = 1, kAborted = 2 };
enum State : int { kNew, kQueued, kGrantedState, kCancelled };

}  // namespace

const std::error_category& semaphore_category() noexcept {
    return kSemCategory;
}
std::error_code make_error_code(SemaphoreErrc e) noexcept {
    return {static_cast<int>(e), kSemCategory};
}

namespace detail {

class SemWaiter : public DoneListener, public std::enable_shared_from_this<SemWaiter> {
public:
    SemWaiter(Semaphore* sem, std::int64_t n, net::any_io_executor ex)
        : DoneListener(&SemWaiter::on_done),
          sem_(sem),
          n_(n),
          ex_(ex),
          work_(net::prefer(std::move(ex), net::execution::outstanding_work.tracked)) {}

    // On the waiter's executor, exactly once.
    void complete(int outcome) {
        if (slot_.is_connected()) slot_.clear();
        auto h = std::move(handler_);
        auto work = std::move(work_);
        std::move(h)(outcome);
    }

    void post_complete(int outcome) {
        net::post(ex_, [self = shared_from_this(), outcome] { self->complete(outcome); });
    }

    static void on_done(DoneListener* l, std::error_code, std::error_code) noexcept {
        auto* w = static_cast<SemWaiter*>(l);
        // Under the context's lock: hop to the executor before touching the semaphore.
        // ex_ (never modified): complete() may be releasing work_ on another thread.
        net::post(w->ex_, [self = w->shared_from_this()] {
            self->sem_->cancel_waiter(self, kContextDone);
        });
    }

    Semaphore* sem_;
    const std::int64_t n_;
    const net::any_io_executor ex_;
    net::any_io_executor work_;  // keeps the waiter's io_context running; released on completion
    net::any_completion_handler<void(int)> handler_;
    net::cancellation_slot slot_;
    // Guarded by the semaphore's mutex.
    int state_ = kNew;
    SemWaiter* prev_ = nullptr;
    SemWaiter* next_ = nullptr;
};

}  // namespace detail

using detail::SemWaiter;

Semaphore::Semaphore(std::int64_t capacity) : capacity_(capacity) {
    if (capacity < 0) std::abort();
}

Semaphore::~Semaphore() = default;

std::int64_t Semaphore::in_use() const noexcept {
    std::lock_guard lk(mu_);
    return cur_;
}

std::int64_t Semaphore::waiters() const noexcept {
    std::lock_guard lk(mu_);
    return n_waiters_;
}

bool Semaphore::try_acquire(std::int64_t n) {
    std::lock_guard lk(mu_);
    if (capacity_ - cur_ >= n && head_ == nullptr) {
        cur_ += n;
        return true;
    }
    return false;
}

void Semaphore::release(std::int64_t n) {
    std::lock_guard lk(mu_);
    if (n < 0 || n > cur_) {
        std::fputs("reqctx::Semaphore: released more than held\n", stderr);
        std::abort();
    }
    cur_ -= n;
    notify_locked();
}

void Semaphore::unlink_locked(SemWaiter* w) noexcept {
    if (w->prev_)
        w->prev_->next_ = w->next_;
    else
        head_ = w->next_;
    if (w->next_)
        w->next_->prev_ = w->prev_;
    else
        tail_ = w->prev_;
    w->prev_ = w->next_ = nullptr;
    --n_waiters_;
}

// Grants from the head while the head fits: a large head blocks smaller ones behind it.
void Semaphore::notify_locked() {
    while (head_) {
        SemWaiter* w = head_;
        if (capacity_ - cur_ < w->n_) break;
        cur_ += w->n_;
        unlink_locked(w);
        w->state_ = kGrantedState;
        w->post_complete(kGranted);
    }
}

void Semaphore::enqueue(const std::shared_ptr<SemWaiter>& w) {
    std::lock_guard lk(mu_);
    if (w->state_ == kCancelled) return;  // the context fired first; its completion is posted
    if (capacity_ - cur_ >= w->n_ && head_ == nullptr) {
        cur_ += w->n_;
        w->state_ = kGrantedState;
        w->post_complete(kGranted);
        return;
    }
    w->state_ = kQueued;
    w->prev_ = tail_;
    if (tail_)
        tail_->next_ = w.get();
    else
        head_ = w.get();
    tail_ = w.get();
    ++n_waiters_;
}

void Semaphore::cancel_waiter(const std::shared_ptr<SemWaiter>& w, int outcome) {
    std::lock_guard lk(mu_);
    if (w->state_ == kQueued) {
        bool was_head = head_ == w.get();
        unlink_locked(w.get());
        // A cancelled head may have been what blocked smaller waiters behind it.
        if (was_head && capacity_ > cur_) notify_locked();
    } else if (w->state_ != kNew) {
        return;  // granted (its completion is on the way) or already cancelled
    }
    w->state_ = kCancelled;
    w->post_complete(outcome);
}

net::awaitable<std::error_code> Semaphore::acquire(Context ctx, std::int64_t n) {
    if (n > capacity_) co_return make_error_code(SemaphoreErrc::exceeds_capacity);
    if (auto e = ctx.err()) co_return e;
    if (n <= 0 || try_acquire(n)) co_return std::error_code();

    auto w = std::make_shared<SemWaiter>(this, n, co_await net::this_coro::executor);
    int outcome = co_await net::async_initiate<const net::use_awaitable_t<>&, void(int)>(
        [](auto handler, std::shared_ptr<SemWaiter> waiter, Context c) {
            auto slot = net::get_associated_cancellation_slot(handler);
            // Boost 1.81: any_completion_handler move-assignment recurses forever; swap instead.
            net::any_completion_handler<void(int)>(std::move(handler)).swap(waiter->handler_);
            if (slot.is_connected()) {
                waiter->slot_ = slot;
                slot.assign([waiter](net::cancellation_type) {
                    waiter->sem_->cancel_waiter(waiter, kAborted);
                });
            }
            // Listen before queueing, so nothing can complete before the listener is linked.
            if (detail::add_listener(c, waiter.get()) == detail::Listen::already_done) {
                waiter->sem_->cancel_waiter(waiter, kContextDone);
                return;
            }
            waiter->sem_->enqueue(waiter);
        },
        net::use_awaitable, w, ctx);
    detail::remove_listener(w.get());

    switch (outcome) {
        case kGranted:
            // Granted, but the context finished meanwhile: give the weight back (x/sync does).
            if (auto e = ctx.err()) {
                release(n);
                co_return e;
            }
            co_return std::error_code();
        case kContextDone:
            co_return ctx.err();
        default:
            co_return operation_aborted();
    }
}

}  // namespace reqctx
