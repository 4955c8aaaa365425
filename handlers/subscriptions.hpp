#pragma once

// /v1/subscriptions: background subscribers that outlive the request that created them (tip 2).
// The handler owns no subscriber: it talks to a SubscriptionService (implemented in service/ by
// the subscription registry) injected into its constructor (tip 5).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "handlers/handler.hpp"
#include "handlers/request_body.hpp"

namespace reqctx {

// 1..64 of [A-Za-z0-9_.-]: subscription names and topics.
bool is_valid_name(std::string_view name) noexcept;

struct ConsumerSpec {
    std::string name;
    std::string topic;
};

inline constexpr std::size_t kMaxConsumersPerCall = 100;

struct SubscriptionsParse {
    std::vector<ConsumerSpec> consumers;
    std::optional<InputError> error;  // invalid_json / invalid_request naming the field
};

// Parses {"consumers":[{"name":..,"topic":..},..]} (1..100 consumers).
SubscriptionsParse parse_subscriptions(std::string_view body);

enum class SubscriptionState : std::uint8_t { running, stopping, stopped };
std::string_view to_string(SubscriptionState s) noexcept;

// A snapshot of one subscription, as GET shows it.
struct SubscriptionView {
    std::string id;
    std::string name;
    std::string topic;
    SubscriptionState state = SubscriptionState::running;
    std::uint64_t processed = 0;
    std::uint64_t failed = 0;
    std::uint64_t dropped = 0;
    std::uint64_t queue_depth = 0;
    std::string origin_request_id;
    std::string origin_trace_id;
    std::string created_at;  // RFC 3339 UTC
};

// What the subscription routes need from the service. Implementations are thread-safe.
class SubscriptionService {
public:
    using not_request_scoped = void;
    virtual ~SubscriptionService() = default;

    // Starts one background subscriber per consumer on with_cancel(without_cancel(ctx)): it keeps
    // ctx's values (its origin IDs) and never sees ctx's deadline or cancellation. Does not wait.
    // Fails (nothing started) with ContextErrc::canceled while the server shuts down.
    virtual std::error_code create(Context ctx, const std::vector<ConsumerSpec>& consumers,
                                   std::vector<SubscriptionView>& created) = 0;
    virtual std::vector<SubscriptionView> list() const = 0;
    virtual std::optional<SubscriptionView> find(std::string_view id) const = 0;
    // Cancels the subscriber and waits, bounded by ctx, until it has stopped. Errors: not_found
    // (std::errc::no_such_file_or_directory) for an unknown id; ctx's error when it gave up.
    virtual net::awaitable<std::error_code> stop(Context ctx, std::string id) = 0;
};

// One subscription as JSON (the GET shape).
std::string subscription_json(const SubscriptionView& view);

class SubscriptionsHandler {
public:
    using not_request_scoped = void;
    explicit SubscriptionsHandler(SubscriptionService& service) : service_(service) {}

    net::awaitable<Response> create(Context ctx, const Request& req, const RouteParams& params);
    net::awaitable<Response> list(Context ctx, const Request& req, const RouteParams& params);
    net::awaitable<Response> get(Context ctx, const Request& req, const RouteParams& params);
    net::awaitable<Response> remove(Context ctx, const Request& req, const RouteParams& params);

private:
    SubscriptionService& service_;
};

}  // namespace reqctx
