#include "service/subscription_registry.hpp"

#include <atomic>
#include <ctime>
#include <random>
#include <utility>

#include <boost/asio/strand.hpp>

#include "clients/memcache/client.hpp"
#include "clients/propagation.hpp"
#include "context/asio.hpp"
#include "context/task_registry.hpp"
#include "handlers/log.hpp"
#include "service/event_bus.hpp"

namespace reqctx {

struct SubscriptionRegistry::State {
    std::string id;
    std::string name;
    std::string topic;
    std::string origin_request_id;
    std::string origin_trace_id;
    std::string created_at;
    std::shared_ptr<SubscriberQueue> queue;
    std::atomic<SubscriptionState> state{SubscriptionState::running};
    std::atomic<std::uint64_t> processed{0};
    std::atomic<std::uint64_t> failed{0};
    std::atomic<TaskRegistry::TaskId> task_id{0};

    SubscriptionView view() const {
        SubscriptionView v;
        v.id = id;
        v.name = name;
        v.topic = topic;
        v.state = state.load();
        v.processed = processed.load();
        v.failed = failed.load();
        v.dropped = queue->dropped();
        v.queue_depth = queue->depth();
        v.origin_request_id = origin_request_id;
        v.origin_trace_id = origin_trace_id;
        v.created_at = created_at;
        return v;
    }
};

namespace {

std::string new_subscription_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id = "sub-";
    std::uint64_t a = rng();
    for (int i = 0; i < 16; ++i, a >>= 4) id.push_back(kHex[a & 0xf]);
    return id;
}

std::string rfc3339_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

// Everything one subscriber needs, passed by value into its coroutine (no captures).
struct SubscriberDeps {
    std::shared_ptr<SubscriptionRegistry::State> state;
    memcache::Client* client;
    Logger* logger;
    EventBus* bus;
    std::chrono::milliseconds event_timeout;
};

// Handles one event within its own deadline, derived from the subscriber's context.
net::awaitable<std::error_code> process_event(Context ctx, SubscriberDeps deps,
                                              std::shared_ptr<const Event> event) {
    auto [event_ctx, cancel] = with_timeout(ctx, deps.event_timeout);
    const std::string& id = deps.state->id;
    if (std::error_code ec =
            co_await deps.client->set(event_ctx, "sub:" + id + ":last", event->payload)) {
        co_return ec;
    }
    // A missing counter is created at 0 and incremented, so it equals the events processed.
    auto count = co_await deps.client->incr(event_ctx, "sub:" + id + ":count", 1, 1);
    if (!count) co_return count.error();
    co_return std::error_code{};
}

// The subscriber task body: runs until its context is cancelled (DELETE or shutdown).
net::awaitable<void> run_subscriber(Context ctx, SubscriberDeps deps) {
    auto& st = *deps.state;
    deps.logger->info_origin(ctx, "subscriber started",
                             {{"subscription_id", st.id}, {"name", st.name}, {"topic", st.topic}});
    // Cancellation (DELETE, shutdown) closes the queue, which ends the wait for the next event.
    AfterFunc closer = after_func(ctx, [queue = st.queue] { queue->close(); });
    for (;;) {
        auto next = co_await st.queue->next(ctx);
        if (!next) break;
        const std::shared_ptr<const Event>& event = next.value();
        const std::error_code ec = co_await process_event(ctx, deps, event);
        if (!ec) {
            st.processed.fetch_add(1, std::memory_order_relaxed);
            deps.bus->metrics().count(deps.bus->metrics().processed, st.topic);
            deps.logger->info_origin(ctx, "event processed",
                                     {{"subscription_id", st.id},
                                      {"topic", st.topic},
                                      {"trace_id", event->trace_id},
                                      {"request_id", event->request_id}});
        } else if (ctx.done()) {
            break;  // cancelled mid-event: not a failure of the event
        } else {
            st.failed.fetch_add(1, std::memory_order_relaxed);
            deps.logger->warn_origin(ctx, "event failed",
                                     {{"subscription_id", st.id},
                                      {"topic", st.topic},
                                      {"trace_id", event->trace_id},
                                      {"request_id", event->request_id},
                                      {"error", ec.message()}});
        }
    }
    closer.stop();
    deps.bus->remove(st.id);
    st.queue->close();
    st.state = SubscriptionState::stopped;
    deps.logger->info_origin(ctx, "subscriber stopped",
                             {{"subscription_id", st.id},
                              {"processed", static_cast<std::int64_t>(st.processed.load())},
                              {"failed", static_cast<std::int64_t>(st.failed.load())},
                              {"dropped", static_cast<std::int64_t>(st.queue->dropped())}});
}

}  // namespace

SubscriptionRegistry::SubscriptionRegistry(net::any_io_executor ex, TaskRegistry& tasks,
                                           EventBus& bus, memcache::Client& client, Logger& logger,
                                           SubscriptionOptions options)
    : ex_(std::move(ex)),
      tasks_(tasks),
      bus_(bus),
      client_(client),
      logger_(logger),
      options_(options) {}

SubscriptionRegistry::~SubscriptionRegistry() = default;

std::error_code SubscriptionRegistry::create(Context ctx,
                                             const std::vector<ConsumerSpec>& consumers,
                                             std::vector<SubscriptionView>& created) {
    TaskOrigin origin;
    if (const RequestId* rid = ctx.value(kRequestIdKey)) origin.request_id = rid->value;
    if (const TraceContext* trace = ctx.value(kTraceKey)) origin.trace_id = to_hex(trace->trace_id);
    // Tip 2: the subscriber keeps the request's values but not its cancellation or deadline;
    // the registry adds with_cancel and owns the handle.
    const Context outliving = without_cancel(ctx);
    for (const auto& c : consumers) {
        auto st = std::make_shared<State>();
        st->id = new_subscription_id();
        st->name = c.name;
        st->topic = c.topic;
        st->origin_request_id = origin.request_id;
        st->origin_trace_id = origin.trace_id;
        st->created_at = rfc3339_now();
        auto strand = net::make_strand(ex_);
        st->queue = std::make_shared<SubscriberQueue>(strand, options_.queue_capacity);

        SubscriberDeps deps{st, &client_, &logger_, &bus_, options_.event_timeout};
        // Subscribed before the task starts, so no event published after the 201 is missed.
        bus_.add(st->topic, st->id, st->queue);
        // A plain lambda returning the coroutine: the coroutine gets its arguments by value.
        st->task_id = tasks_.spawn(
            outliving, strand, "subscription " + st->id, origin,
            [deps](Context task_ctx) { return run_subscriber(std::move(task_ctx), deps); });
        {
            std::lock_guard lock(mutex_);
            subs_.emplace(st->id, st);
            order_.push_back(st->id);
        }
        created.push_back(st->view());
    }
    return {};
}

std::vector<SubscriptionView> SubscriptionRegistry::list() const {
    std::lock_guard lock(mutex_);
    std::vector<SubscriptionView> out;
    out.reserve(order_.size());
    for (const auto& id : order_) out.push_back(subs_.at(id)->view());
    return out;
}

std::optional<SubscriptionView> SubscriptionRegistry::find(std::string_view id) const {
    std::lock_guard lock(mutex_);
    const auto it = subs_.find(std::string(id));
    if (it == subs_.end()) return std::nullopt;
    return it->second->view();
}

std::size_t SubscriptionRegistry::active() const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [id, st] : subs_) n += st->state.load() != SubscriptionState::stopped;
    return n;
}

net::awaitable<std::error_code> SubscriptionRegistry::stop(Context ctx, std::string id) {
    std::shared_ptr<State> st;
    {
        std::lock_guard lock(mutex_);
        const auto it = subs_.find(id);
        if (it != subs_.end()) st = it->second;
    }
    if (!st) co_return std::make_error_code(std::errc::no_such_file_or_directory);
    if (st->state.load() == SubscriptionState::stopped) co_return std::error_code{};
    auto expected = SubscriptionState::running;
    st->state.compare_exchange_strong(expected, SubscriptionState::stopping);
    bus_.remove(st->id);  // no new events for a stopping subscriber
    const std::error_code ec = co_await tasks_.stop(ctx, st->task_id.load());
    // not_found: the task had already finished (e.g. cancelled by shutdown).
    if (ec && ec != TaskRegistryErrc::not_found) co_return ec;
    st->state = SubscriptionState::stopped;
    {
        // Keep a bounded number of stopped records for GET; forget the oldest ones.
        std::lock_guard lock(mutex_);
        std::size_t stopped = 0;
        for (const auto& [sid, s] : subs_) stopped += s->state.load() == SubscriptionState::stopped;
        for (auto it = order_.begin(); stopped > options_.max_stopped_kept && it != order_.end();) {
            if (subs_.at(*it)->state.load() == SubscriptionState::stopped) {
                subs_.erase(*it);
                it = order_.erase(it);
                --stopped;
            } else {
                ++it;
            }
        }
    }
    co_return std::error_code{};
}

}  // namespace reqctx
