#include "service/event_bus.hpp"

#include <algorithm>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace reqctx {

SubscriberQueue::SubscriberQueue(net::any_io_executor ex, std::size_t capacity)
    : capacity_(std::max<std::size_t>(capacity, 1)), channel_(std::move(ex), capacity_) {}

bool SubscriberQueue::offer(std::shared_ptr<const Event> event) {
    // Count first so depth never goes negative when the consumer takes the event at once.
    depth_.fetch_add(1, std::memory_order_relaxed);
    if (channel_.try_send(boost::system::error_code{}, std::move(event))) return true;
    depth_.fetch_sub(1, std::memory_order_relaxed);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
}

net::awaitable<boost::system::result<std::shared_ptr<const Event>, std::error_code>>
SubscriberQueue::next(Context ctx) {
    if (const std::error_code err = ctx.err()) co_return err;
    // The subscriber closes the queue when its context is done (after_func), which wakes us.
    auto [ec, event] = co_await channel_.async_receive(net::as_tuple(net::use_awaitable));
    if (ec) {
        if (const std::error_code err = ctx.err()) co_return err;
        co_return make_error_code(ContextErrc::canceled);
    }
    depth_.fetch_sub(1, std::memory_order_relaxed);
    co_return std::move(event);
}

void SubscriberQueue::close() {
    channel_.close();
}

void EventMetrics::count(prometheus::Family<prometheus::Counter>* family, const std::string& topic,
                         double n) const {
    if (family == nullptr) return;
    // Add even for 0, so every topic seen has all three series from its first event.
    auto& counter = family->Add({{"topic", topic}});
    if (n > 0) counter.Increment(n);
}

void EventBus::add(std::string topic, std::string id, std::shared_ptr<SubscriberQueue> queue) {
    std::lock_guard lock(mutex_);
    topics_[std::move(topic)].push_back(Subscriber{std::move(id), std::move(queue)});
}

void EventBus::remove(std::string_view id) {
    std::lock_guard lock(mutex_);
    for (auto it = topics_.begin(); it != topics_.end();) {
        auto& subs = it->second;
        std::erase_if(subs, [id](const Subscriber& s) { return s.id == id; });
        it = subs.empty() ? topics_.erase(it) : std::next(it);
    }
}

PublishResult EventBus::publish(Event event) {
    std::vector<std::shared_ptr<SubscriberQueue>> queues;
    {
        std::lock_guard lock(mutex_);
        if (const auto it = topics_.find(event.topic); it != topics_.end()) {
            queues.reserve(it->second.size());
            for (const auto& s : it->second) queues.push_back(s.queue);
        }
    }
    const std::string topic = event.topic;
    auto shared = std::make_shared<const Event>(std::move(event));
    PublishResult r;
    for (const auto& q : queues) {
        if (q->offer(shared)) {
            ++r.delivered;
        } else {
            ++r.dropped;
        }
    }
    metrics_.count(metrics_.published, topic);
    metrics_.count(metrics_.dropped, topic, static_cast<double>(r.dropped));
    return r;
}

}  // namespace reqctx
