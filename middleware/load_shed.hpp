#pragma once

// Load shedding: at most `limit` requests in flight; the server answers the rest 503 overloaded
// with Retry-After: 1 right after their header. Thread-safe (one atomic).

#include <atomic>
#include <cstddef>

namespace reqctx {

class InflightLimiter {
public:
    using not_request_scoped = void;
    explicit InflightLimiter(std::size_t limit) noexcept : limit_(limit) {}

    // Counts the request in; false (and not counted) when the limit is reached.
    bool try_acquire() noexcept {
        if (in_flight_.fetch_add(1, std::memory_order_acq_rel) >= limit_) {
            in_flight_.fetch_sub(1, std::memory_order_acq_rel);
            return false;
        }
        return true;
    }
    void release() noexcept { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }
    std::size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_acquire); }
    std::size_t limit() const noexcept { return limit_; }

private:
    std::size_t limit_;
    std::atomic<std::size_t> in_flight_{0};
};

}  // namespace reqctx
