#pragma once

// GET/PUT/DELETE /v1/cache/{key}: bytes in memcache under a validated key. The memcache client is
// injected (tip 5: it is not request-scoped); every op takes the request context, so its deadline
// bounds the op and a client disconnect cancels it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>

#include "handlers/handler.hpp"

namespace reqctx {

namespace memcache {
class Client;
}

// api.md's key rule: 1..250 bytes, no whitespace or control bytes (0x00-0x20, 0x7f).
bool is_valid_cache_key(std::string_view key) noexcept;

// `?ttl=` value: a non-negative decimal integer of at most 10 digits that fits 32 bits; absent or
// empty query value means 0. nullopt when invalid.
std::optional<std::uint32_t> parse_ttl(std::optional<std::string_view> text) noexcept;

// The value of `name` in the request target's query string (percent-decoded), nullopt if absent.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

// The api.md code for a failed memcache op: "cache_unavailable" (503), "deadline_exceeded" (504),
// "cancelled" (client gone), "value_too_large" (413), else "cache_error" (502).
std::string_view cache_error_code(std::error_code ec) noexcept;

class CacheHandler {
public:
    using not_request_scoped = void;
    CacheHandler(memcache::Client& client, std::size_t max_item_bytes)
        : client_(client), max_item_bytes_(max_item_bytes) {}

    net::awaitable<Response> get(Context ctx, const Request& req, const RouteParams& params);
    net::awaitable<Response> put(Context ctx, const Request& req, const RouteParams& params);
    net::awaitable<Response> remove(Context ctx, const Request& req, const RouteParams& params);

private:
    memcache::Client& client_;
    std::size_t max_item_bytes_;
};

}  // namespace reqctx
