#pragma once

// POST /v1/events: publish one event to the in-process bus. Publishing never waits: each running
// subscriber of the topic gets the event through its own bounded queue or drops it.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "handlers/handler.hpp"
#include "handlers/request_body.hpp"

namespace reqctx {

inline constexpr std::size_t kMaxEventPayloadBytes = 64 * 1024;

// An event as it travels to subscribers: the payload serialized, and the publishing request's IDs.
struct Event {
    std::string topic;
    std::string payload;
    std::string trace_id;
    std::string request_id;
};

struct EventParse {
    std::string topic;
    std::string payload;  // serialized JSON
    std::optional<InputError> error;
    bool too_large = false;  // error is payload_too_large (413)
};

// Parses {"topic":..,"payload":<any JSON>}; payload at most 64 KiB serialized.
EventParse parse_event(std::string_view body);

struct PublishResult {
    std::size_t delivered = 0;
    std::size_t dropped = 0;
};

// The bus as the events route sees it. publish never blocks and never waits; thread-safe.
class EventPublisher {
public:
    using not_request_scoped = void;
    virtual ~EventPublisher() = default;
    virtual PublishResult publish(Event event) = 0;
};

class EventsHandler {
public:
    using not_request_scoped = void;
    explicit EventsHandler(EventPublisher& publisher) : publisher_(publisher) {}

    net::awaitable<Response> post(Context ctx, const Request& req, const RouteParams& params);

private:
    EventPublisher& publisher_;
};

}  // namespace reqctx
