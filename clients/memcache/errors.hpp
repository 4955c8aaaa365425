#pragma once

// Error codes of the memcache client. Deadline and cancellation are not here: they surface as
// the caller's context codes (reqctx::ContextErrc::deadline_exceeded / canceled).

#include <system_error>
#include <type_traits>

namespace reqctx::memcache {

enum class MemcacheErrc {
    invalid_key = 1,     // empty, longer than 250 bytes, or containing whitespace/control bytes
    value_too_large,     // larger than ClientConfig::max_item_size (or refused by the server)
    not_stored,          // add on an existing key, replace/append/prepend on a missing one
    exists,              // cas: the item changed since the cas value was read
    not_found,           // cas/incr/decr on a missing key (without auto-create)
    non_numeric_value,   // incr/decr on a value that is not a decimal number
    server_unreachable,  // connect failed, server ejected/dead, or connection lost mid-op
    server_error,        // SERVER_ERROR from memcached
    protocol_error,      // malformed or unexpected response; the connection is closed
    no_servers,          // the client has no (live) server for the key
    invalid_server,      // bad "host:port[:weight]" spec or server index out of range
    closed,              // the client is not started or is closed
};

const std::error_category& memcache_category() noexcept;
std::error_code make_error_code(MemcacheErrc e) noexcept;

}  // namespace reqctx::memcache

template <>
struct std::is_error_code_enum<reqctx::memcache::MemcacheErrc> : std::true_type {};
