#pragma once

// The registry of live background tasks (e.g. subscribers): each runs body(child) where child =
// with_cancel(ctx) and the registry owns the cancel handle. cancel/stop act on one task;
// shutdown cancels every task, awaits them (bounded by its ctx) and reports how many leaked.
// Thread-safe. Long-lived: pass it explicitly.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "context/context.hpp"

namespace reqctx {

namespace net = boost::asio;

enum class TaskRegistryErrc {
    not_found = 1,  // no live task has that id (never existed or already finished)
};
const std::error_category& task_registry_category() noexcept;
std::error_code make_error_code(TaskRegistryErrc e) noexcept;

}  // namespace reqctx

template <>
struct std::is_error_code_enum<reqctx::TaskRegistryErrc> : std::true_type {};

namespace reqctx {

// The request that started a background task (for logs and /debug).
struct TaskOrigin {
    std::string request_id;
    std::string trace_id;
};

struct TaskInfo {
    std::uint64_t id = 0;
    std::string name;
    std::chrono::system_clock::time_point started_at;
    TaskOrigin origin;
};

class TaskRegistry {
public:
    using not_request_scoped = void;
    using TaskId = std::uint64_t;

    TaskRegistry();
    TaskRegistry(const TaskRegistry&) = delete;
    TaskRegistry& operator=(const TaskRegistry&) = delete;
    // Cancels what is still running (it does not wait: call shutdown() first).
    ~TaskRegistry();

    // Starts body(with_cancel(ctx)) on ex and returns its id (ids start at 1, never reused).
    // Pass ctx = without_cancel(request_ctx) for work that must outlive the request. An exception
    // escaping body is a bug: it is swallowed after the task is unregistered.
    TaskId spawn(Context ctx, net::any_io_executor ex, std::string name, TaskOrigin origin,
                 std::function<net::awaitable<void>(Context)> body);

    // Cancels the task's context; false if no live task has that id. Does not wait.
    bool cancel(TaskId id);

    // Cancels the task and waits until its body has returned: {} then; ctx.err() if ctx ends
    // first; TaskRegistryErrc::not_found for an unknown or finished id.
    net::awaitable<std::error_code> stop(Context ctx, TaskId id);

    // Cancels every task and waits for all of them, bounded by ctx; returns how many are still
    // running (leaked) when it returns. Tasks spawned afterwards are cancelled at once.
    net::awaitable<std::size_t> shutdown(Context ctx);

    std::vector<TaskInfo> snapshot() const;
    std::size_t live() const noexcept;

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace reqctx
