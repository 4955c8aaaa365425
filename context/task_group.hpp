#pragma once

// errgroup-like structured concurrency: tasks run under the group's context, the first error
// cancels it, wait() joins every task. No task is detached: the group tracks each one.

#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "context/context.hpp"

namespace reqctx {

namespace net = boost::asio;

class Semaphore;

class TaskGroup : public std::enable_shared_from_this<TaskGroup> {
public:
    using not_request_scoped = void;

    // The group and its context (a with_cancel child of parent). Tasks run on ex; with limit > 0
    // at most `limit` run at once. Create the tasks with the returned context.
    static std::pair<std::shared_ptr<TaskGroup>, Context> create(Context parent,
                                                                 net::any_io_executor ex,
                                                                 std::size_t limit = 0);

    // Starts task on the group's executor; waits for a slot when the limit is reached. If the
    // group's context is done while waiting for a slot, the task is not started (it is
    // destroyed) and the group keeps its first error (or the context's error).
    net::awaitable<void> spawn(net::awaitable<std::error_code> task);

    // Joins every task spawned so far, cancels the group's context (as Go's Wait does) and
    // returns the first error ({} when all succeeded). An exception escaping a task is a bug:
    // it is rethrown here.
    net::awaitable<std::error_code> wait();

    std::size_t running() const noexcept;

    TaskGroup(Context parent, net::any_io_executor ex, std::size_t limit);
    ~TaskGroup();

private:
    static net::awaitable<void> run(std::shared_ptr<TaskGroup> self,
                                    net::awaitable<std::error_code> task);
    void fail(std::error_code ec);
    void task_finished(std::exception_ptr e);

    CancelHandle cancel_;  // the group's context; cancelled by the first error and by wait()
    net::any_io_executor ex_;
    std::unique_ptr<Semaphore> slots_;
    mutable std::mutex mu_;
    std::size_t running_ = 0;             // guarded by mu_
    std::error_code first_error_;         // guarded by mu_
    std::exception_ptr first_exception_;  // guarded by mu_
    std::vector<CancelHandle> joiners_;   // events fired when running_ drops to 0; guarded by mu_
};

}  // namespace reqctx
