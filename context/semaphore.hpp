#pragma once

// A weighted, FIFO, context-aware semaphore with golang.org/x/sync/semaphore semantics, plus a
// distinct error for requests larger than the capacity. Thread-safe; waiters are resumed on their
// own coroutine's executor. Long-lived: pass it explicitly, never through a context.

#include <cstdint>
#include <memory>
#include <mutex>
#include <system_error>
#include <type_traits>

#include <boost/asio/awaitable.hpp>

#include "context/context.hpp"

namespace reqctx {

namespace net = boost::asio;

enum class SemaphoreErrc {
    exceeds_capacity = 1,  // n > capacity: could never be satisfied
};
const std::error_category& semaphore_category() noexcept;
std::error_code make_error_code(SemaphoreErrc e) noexcept;

}  // namespace reqctx

template <>
struct std::is_error_code_enum<reqctx::SemaphoreErrc> : std::true_type {};

namespace reqctx {

namespace detail {
class SemWaiter;
}

class Semaphore {
public:
    using not_request_scoped = void;

    explicit Semaphore(std::int64_t capacity);
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;
    ~Semaphore();

    // Acquires n (0 <= n). Returns {} once granted; ctx.err() if ctx is (or becomes) done first,
    // even when the weight is free (a grant racing with cancellation is given back);
    // SemaphoreErrc::exceeds_capacity at once when n > capacity; operation_aborted if the
    // awaiting coroutine is cancelled. Strict FIFO: no barging past waiters.
    net::awaitable<std::error_code> acquire(Context ctx, std::int64_t n = 1);
    // Acquires n only if it is free and nobody waits.
    bool try_acquire(std::int64_t n = 1);
    // Gives back n; releasing more than is held is a bug (aborts).
    void release(std::int64_t n = 1);

    std::int64_t capacity() const noexcept { return capacity_; }
    std::int64_t in_use() const noexcept;
    std::int64_t waiters() const noexcept;

private:
    friend class detail::SemWaiter;
    void enqueue(const std::shared_ptr<detail::SemWaiter>& w);
    void cancel_waiter(const std::shared_ptr<detail::SemWaiter>& w, int outcome);
    void notify_locked();
    void unlink_locked(detail::SemWaiter* w) noexcept;

    const std::int64_t capacity_;
    mutable std::mutex mu_;
    std::int64_t cur_ = 0;               // guarded by mu_
    std::int64_t n_waiters_ = 0;         // guarded by mu_
    detail::SemWaiter* head_ = nullptr;  // FIFO, guarded by mu_
    detail::SemWaiter* tail_ = nullptr;
};

// RAII permit: releases its weight on destruction unless released or moved from.
class SemaphorePermit {
public:
    SemaphorePermit() noexcept = default;
    SemaphorePermit(Semaphore& sem, std::int64_t n) noexcept : sem_(&sem), n_(n) {}
    SemaphorePermit(SemaphorePermit&& o) noexcept : sem_(o.sem_), n_(o.n_) { o.sem_ = nullptr; }
    SemaphorePermit& operator=(SemaphorePermit&& o) noexcept {
        if (this != &o) {
            release();
            sem_ = o.sem_;
            n_ = o.n_;
            o.sem_ = nullptr;
        }
        return *this;
    }
    ~SemaphorePermit() { release(); }
    void release() noexcept {
        if (sem_) sem_->release(n_);
        sem_ = nullptr;
    }

private:
    Semaphore* sem_ = nullptr;
    std::int64_t n_ = 0;
};

}  // namespace reqctx
