#include "context/task_group.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "context/asio.hpp"
#include "context/semaphore.hpp"

namespace reqctx {

std::pair<std::shared_ptr<TaskGroup>, Context> TaskGroup::create(Context parent,
                                                                 net::any_io_executor ex,
                                                                 std::size_t limit) {
    auto group = std::make_shared<TaskGroup>(std::move(parent), std::move(ex), limit);
    Context ctx = detail::context_of(group->cancel_);
    return {std::move(group), std::move(ctx)};
}

TaskGroup::TaskGroup(Context parent, net::any_io_executor ex, std::size_t limit)
    : cancel_(with_cancel(std::move(parent)).second), ex_(std::move(ex)) {
    if (limit > 0) slots_ = std::make_unique<Semaphore>(static_cast<std::int64_t>(limit));
}

TaskGroup::~TaskGroup() = default;

std::size_t TaskGroup::running() const noexcept {
    std::lock_guard lk(mu_);
    return running_;
}

void TaskGroup::fail(std::error_code ec) {
    {
        std::lock_guard lk(mu_);
        if (first_error_) return;
        first_error_ = ec;
    }
    cancel_.cancel(ec);
}

net::awaitable<void> TaskGroup::run(std::shared_ptr<TaskGroup> self,
                                    net::awaitable<std::error_code> task) {
    std::error_code ec = co_await std::move(task);
    if (ec) self->fail(ec);
}

void TaskGroup::task_finished(std::exception_ptr e) {
    if (slots_) slots_->release(1);
    std::vector<CancelHandle> joiners;
    {
        std::lock_guard lk(mu_);
        if (e && !first_exception_) first_exception_ = e;
        if (--running_ == 0) joiners.swap(joiners_);
    }
    if (e) fail(std::make_error_code(std::errc::state_not_recoverable));
    for (auto& j : joiners) j.cancel();
}

net::awaitable<void> TaskGroup::spawn(net::awaitable<std::error_code> task) {
    auto self = shared_from_this();
    if (slots_) {
        std::error_code ec = co_await slots_->acquire(detail::context_of(cancel_), 1);
        if (ec) {
            fail(ec);
            co_return;
        }
    }
    {
        std::lock_guard lk(mu_);
        ++running_;
    }
    // The completion handler (a plain lambda, not a coroutine) is the join signal.
    net::co_spawn(ex_, run(self, std::move(task)),
                  [self](std::exception_ptr e) { self->task_finished(e); });
}

net::awaitable<std::error_code> TaskGroup::wait() {
    std::pair<Context, CancelHandle> joined = detail::make_event("task_group_joined");
    bool pending = false;
    {
        std::lock_guard lk(mu_);
        if (running_ > 0) {
            joiners_.push_back(std::move(joined.second));
            pending = true;
        }
    }
    if (pending) {
        std::error_code ec = co_await async_wait(joined.first, net::use_awaitable);
        if (ec == operation_aborted()) {
            // The waiting coroutine itself was cancelled: stop the tasks, report that.
            cancel_.cancel();
            co_return ec;
        }
    }
    cancel_.cancel();
    std::exception_ptr ex;
    std::error_code first;
    {
        std::lock_guard lk(mu_);
        ex = first_exception_;
        first = first_error_;
    }
    if (ex) std::rethrow_exception(ex);
    co_return first;
}

}  // namespace reqctx
