#pragma once

// memcached meta text protocol: request encoders (append to a buffer) and an incremental,
// allocation-light response parser. Pure functions, no I/O; the client and the unit tests use
// them directly.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace reqctx::memcache::proto {

enum class StoreMode : std::uint8_t { set, add, replace, append, prepend };

// memcached reads an exptime above 30 days as an absolute unix time, and keeps it in a signed
// 32-bit field. A relative ttl up to 30 days (or <= 0) goes on the wire as is; a longer one
// becomes now + ttl, capped at INT32_MAX (2038-01-19T03:14:07Z).
inline constexpr std::int64_t kMaxRelativeExptime = 60 * 60 * 24 * 30;
inline constexpr std::int64_t kMaxAbsoluteExptime = 2147483647;
std::int64_t wire_exptime(std::int64_t ttl_seconds, std::int64_t now_unix_seconds) noexcept;

// `mg <key> v f c O<opaque>`: value, client flags, cas.
void encode_get(std::string& out, std::string_view key, std::uint32_t opaque);
// `mg <key> T<ttl> O<opaque>`: touch without fetching.
void encode_touch(std::string& out, std::string_view key, std::int64_t ttl, std::uint32_t opaque);
// `ms <key> <len> T<ttl> F<flags> [M<mode>] [C<cas>] O<opaque>` + data. cas 0 = none.
void encode_store(std::string& out, StoreMode mode, std::string_view key, std::string_view value,
                  std::int64_t ttl, std::uint32_t flags, std::uint64_t cas, std::uint32_t opaque);
// `md <key> O<opaque>`
void encode_delete(std::string& out, std::string_view key, std::uint32_t opaque);
// `ma <key> [MD] D<delta> [N<ttl> J<initial>] v O<opaque>`
void encode_arith(std::string& out, bool incr, std::string_view key, std::uint64_t delta,
                  std::optional<std::uint64_t> initial, std::int64_t ttl, std::uint32_t opaque);
// `mn`: no-op, answered with MN.
void encode_noop(std::string& out);
// `version`
void encode_version(std::string& out);

enum class Status : std::uint8_t {
    value,         // VA <size> <flags>* \r\n <data> \r\n
    stored,        // HD (success without value)
    miss,          // EN
    not_stored,    // NS
    exists,        // EX
    not_found,     // NF
    noop,          // MN
    version,       // VERSION <text>
    error,         // ERROR (unknown command)
    client_error,  // CLIENT_ERROR <text>
    server_error,  // SERVER_ERROR <text>
};

// A parsed response. `data` and `message` view the parser's input buffer: valid until the
// caller consumes those bytes.
struct Response {
    Status status = Status::noop;
    std::string_view data;                // VA payload
    std::string_view message;             // VERSION / *_ERROR text
    std::uint32_t flags = 0;              // f
    std::uint64_t cas = 0;                // c
    std::optional<std::uint32_t> opaque;  // O (when numeric)
};

// Parses the first response in `in`. Returns the number of bytes it spans (> 0) and fills `out`;
// 0 when `in` holds only part of a response; protocol_error when the bytes are malformed, a
// header line exceeds kMaxLineLength, or a value exceeds `max_value`.
inline constexpr std::size_t kMaxLineLength = 8192;
struct ParseResult {
    std::size_t consumed = 0;
    std::error_code ec;
};
ParseResult parse_response(std::string_view in, Response& out, std::size_t max_value);

// Parses a decimal uint64 (the whole view); nullopt on anything else or overflow.
std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept;

}  // namespace reqctx::memcache::proto
