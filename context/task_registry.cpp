#include "context/task_registry.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include <boost/asio/co_spawn.hpp>

#include "context/asio.hpp"

namespace reqctx {

namespace {

class TaskRegistryCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "reqctx.task_registry"; }
    std::string message(int ev) const override {
        switch (static_cast<TaskRegistryErrc>(ev)) {
            case TaskRegistryErrc::not_found:
                return "no such live task";
        }
        return "unknown task registry error";
    }
};

constinit const TaskRegistryCategory kTrCategory{};

}  // namespace

const std::error_category& task_registry_category() noexcept {
    return kTrCategory;
}
std::error_code make_error_code(TaskRegistryErrc e) noexcept {
    return {static_cast<int>(e), kTrCategory};
}

struct TaskRegistry::Impl {
    struct Entry {
        TaskInfo info;
        CancelHandle cancel;
        std::vector<CancelHandle> joiners;  // events fired when the body returns
    };

    mutable std::mutex mu;
    std::map<TaskId, Entry> tasks;          // guarded by mu
    std::vector<CancelHandle> all_joiners;  // fired when tasks becomes empty; guarded by mu
    bool shutting_down = false;             // guarded by mu
    TaskId next_id = 1;                     // guarded by mu
    std::atomic<std::size_t> live{0};

    void finished(TaskId id) {
        std::vector<CancelHandle> fire;
        CancelHandle own;
        {
            std::lock_guard lk(mu);
            auto it = tasks.find(id);
            if (it != tasks.end()) {
                fire = std::move(it->second.joiners);
                own = std::move(it->second.cancel);
                tasks.erase(it);
                live.store(tasks.size(), std::memory_order_relaxed);
            }
            if (tasks.empty()) {
                for (auto& j : all_joiners) fire.push_back(std::move(j));
                all_joiners.clear();
            }
        }
        // The task's own context ends (outside the lock: releasing the handle cancels) before
        // anyone waiting for the task is woken, so that they find it gone from the live counts.
        own = CancelHandle();
        for (auto& f : fire) f.cancel();
    }
};

namespace {

net::awaitable<void> run_task(std::function<net::awaitable<void>(Context)> body, Context ctx) {
    co_await body(std::move(ctx));
}

}  // namespace

TaskRegistry::TaskRegistry() : impl_(std::make_shared<Impl>()) {}

TaskRegistry::~TaskRegistry() {
    std::lock_guard lk(impl_->mu);
    for (auto& [id, e] : impl_->tasks) e.cancel.cancel();
}

TaskRegistry::TaskId TaskRegistry::spawn(Context ctx, net::any_io_executor ex, std::string name,
                                         TaskOrigin origin,
                                         std::function<net::awaitable<void>(Context)> body) {
    auto [child, cancel] = with_cancel(std::move(ctx));
    TaskId id = 0;
    bool cancel_now = false;
    {
        std::lock_guard lk(impl_->mu);
        id = impl_->next_id++;
        cancel_now = impl_->shutting_down;
        Impl::Entry e{
            TaskInfo{id, std::move(name), std::chrono::system_clock::now(), std::move(origin)},
            std::move(cancel),
            {}};
        if (cancel_now) e.cancel.cancel();
        impl_->tasks.emplace(id, std::move(e));
        impl_->live.store(impl_->tasks.size(), std::memory_order_relaxed);
    }
    // The completion handler (a plain lambda) is the join signal: the task is never detached.
    net::co_spawn(std::move(ex), run_task(std::move(body), std::move(child)),
                  [impl = impl_, id](std::exception_ptr) { impl->finished(id); });
    return id;
}

bool TaskRegistry::cancel(TaskId id) {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->tasks.find(id);
    if (it == impl_->tasks.end()) return false;
    it->second.cancel.cancel();
    return true;
}

net::awaitable<std::error_code> TaskRegistry::stop(Context ctx, TaskId id) {
    auto [joined, fire] = detail::make_event("task_stopped");
    {
        std::lock_guard lk(impl_->mu);
        auto it = impl_->tasks.find(id);
        if (it == impl_->tasks.end()) co_return make_error_code(TaskRegistryErrc::not_found);
        it->second.cancel.cancel();
        it->second.joiners.push_back(std::move(fire));
    }
    std::size_t which = co_await detail::wait_either(joined, ctx);
    if (which == 0) co_return std::error_code();
    if (auto e = ctx.err()) co_return e;
    co_return operation_aborted();
}

net::awaitable<std::size_t> TaskRegistry::shutdown(Context ctx) {
    auto [joined, fire] = detail::make_event("tasks_joined");
    bool pending = false;
    {
        std::lock_guard lk(impl_->mu);
        impl_->shutting_down = true;
        for (auto& [id, e] : impl_->tasks) e.cancel.cancel();
        if (!impl_->tasks.empty()) {
            impl_->all_joiners.push_back(std::move(fire));
            pending = true;
        }
    }
    if (pending) co_await detail::wait_either(joined, ctx);
    co_return live();
}

std::vector<TaskInfo> TaskRegistry::snapshot() const {
    std::lock_guard lk(impl_->mu);
    std::vector<TaskInfo> out;
    out.reserve(impl_->tasks.size());
    for (const auto& [id, e] : impl_->tasks) out.push_back(e.info);
    return out;
}

std::size_t TaskRegistry::live() const noexcept {
    return impl_->live.load(std::memory_order_relaxed);
}

}  // namespace reqctx
