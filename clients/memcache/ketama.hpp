#pragma once

// Weighted ketama consistent hashing, byte-compatible with libmemcached's
// MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (MD5; 160 points per server scaled by weight, 4 points per
// digest; point label "host:port-N", or "host-N" on the default port 11211). Immutable.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "clients/memcache/client.hpp"

namespace reqctx::memcache {

// RFC 1321 MD5 of `data`.
std::array<std::uint8_t, 16> md5(std::string_view data) noexcept;

// libhashkit's MD5 key hash: the digest's first four bytes read little-endian.
std::uint32_t ketama_key_hash(std::string_view key) noexcept;

class KetamaRing {
public:
    // Builds the continuum over servers[i] for which live[i] is true (live may be empty = all).
    KetamaRing(const std::vector<ServerAddress>& servers, const std::vector<bool>& live = {});

    // Index (into the constructor's `servers`) owning `key`; nullopt when no server is live.
    std::optional<std::size_t> pick(std::string_view key) const noexcept;
    std::size_t live_count() const noexcept { return live_count_; }
    std::size_t points() const noexcept { return points_.size(); }

private:
    struct Point {
        std::uint32_t value;
        std::uint32_t server;
    };
    std::vector<Point> points_;
    std::size_t live_count_ = 0;
};

}  // namespace reqctx::memcache
