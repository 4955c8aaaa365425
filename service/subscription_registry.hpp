#pragma once

// The subscriptions of POST /v1/subscriptions: one background subscriber task per consumer,
// spawned through the TaskRegistry on with_cancel(without_cancel(request ctx)) — the task keeps
// the creating request's values (origin IDs in its logs) but not its deadline or cancellation
// (tip 2); the registry owns its cancel handle, DELETE and shutdown cancel and await it (tip 7).
// Processing an event writes sub:<id>:last and increments sub:<id>:count, each op bounded by a
// per-event deadline derived from the subscriber's own context. Thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "handlers/subscriptions.hpp"

namespace reqctx {

class EventBus;
class Logger;
class TaskRegistry;
namespace memcache {
class Client;
}

struct SubscriptionOptions {
    std::size_t queue_capacity = 1024;              // --subscriber-queue
    std::chrono::milliseconds event_timeout{2000};  // --event-timeout-ms
    std::size_t max_stopped_kept = 1000;            // stopped records kept for GET (oldest go)
};

class SubscriptionRegistry final : public SubscriptionService {
public:
    SubscriptionRegistry(net::any_io_executor ex, TaskRegistry& tasks, EventBus& bus,
                         memcache::Client& client, Logger& logger, SubscriptionOptions options);
    ~SubscriptionRegistry() override;

    std::error_code create(Context ctx, const std::vector<ConsumerSpec>& consumers,
                           std::vector<SubscriptionView>& created) override;
    std::vector<SubscriptionView> list() const override;
    std::optional<SubscriptionView> find(std::string_view id) const override;
    net::awaitable<std::error_code> stop(Context ctx, std::string id) override;

    // Subscriptions whose task is running (subscriptions_active).
    std::size_t active() const;

    struct State;  // one subscription's shared state (public for the subscriber coroutine)

private:
    net::any_io_executor ex_;
    TaskRegistry& tasks_;
    EventBus& bus_;
    memcache::Client& client_;
    Logger& logger_;
    SubscriptionOptions options_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<State>> subs_;  // by id
    std::vector<std::string> order_;                      // ids in creation order
};

}  // namespace reqctx
