#pragma once

// The in-process event bus: topics, and per subscriber a bounded queue. Publishing never blocks
// and never waits: a full queue drops the event for that subscriber and counts it. Thread-safe.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/system/result.hpp>

#include "context/context.hpp"
#include "handlers/events.hpp"

namespace prometheus {
class Counter;
template <class T>
class Family;
}  // namespace prometheus

namespace reqctx {

namespace net = boost::asio;

// A bounded multi-producer, single-consumer queue of events for one subscriber.
class SubscriberQueue {
public:
    using not_request_scoped = void;
    SubscriberQueue(net::any_io_executor ex, std::size_t capacity);

    // Enqueues without waiting; false (and dropped() grows) when the queue is full or closed.
    bool offer(std::shared_ptr<const Event> event);
    // The next event; suspends until one arrives or the queue is closed (then ctx's error, or
    // ContextErrc::canceled). The owner closes the queue when ctx is done (after_func), so a
    // done ctx always ends the wait. One consumer at a time.
    net::awaitable<boost::system::result<std::shared_ptr<const Event>, std::error_code>> next(
        Context ctx);
    void close();

    std::size_t depth() const noexcept { return depth_.load(std::memory_order_relaxed); }
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    std::size_t capacity() const noexcept { return capacity_; }

private:
    using Channel = net::experimental::concurrent_channel<void(boost::system::error_code,
                                                               std::shared_ptr<const Event>)>;
    std::size_t capacity_;
    Channel channel_;
    std::atomic<std::size_t> depth_{0};
    std::atomic<std::uint64_t> dropped_{0};
};

// Per-topic counters (events_*_total{topic}); any family may be null. Topic label values are
// validated names (1..64 of [A-Za-z0-9_.-]).
struct EventMetrics {
    prometheus::Family<prometheus::Counter>* published = nullptr;
    prometheus::Family<prometheus::Counter>* processed = nullptr;
    prometheus::Family<prometheus::Counter>* dropped = nullptr;
    void count(prometheus::Family<prometheus::Counter>* family, const std::string& topic,
               double n = 1) const;
};

class EventBus final : public EventPublisher {
public:
    explicit EventBus(EventMetrics metrics = {}) : metrics_(metrics) {}

    // The subscriber `id` receives events of `topic` through `queue` until remove(id).
    void add(std::string topic, std::string id, std::shared_ptr<SubscriberQueue> queue);
    void remove(std::string_view id);

    // Offers the event to every subscriber of its topic; counts published and dropped.
    PublishResult publish(Event event) override;

    const EventMetrics& metrics() const noexcept { return metrics_; }

private:
    struct Subscriber {
        std::string id;
        std::shared_ptr<SubscriberQueue> queue;
    };
    EventMetrics metrics_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::vector<Subscriber>> topics_;
};

}  // namespace reqctx
