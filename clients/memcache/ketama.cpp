#include "clients/memcache/ketama.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace reqctx::memcache {

namespace {

// RFC 1321, section 3.4: per-round shift amounts and the sine-derived constants.
constexpr std::array<std::uint32_t, 64> kShift = {
    7,  12, 17, 22, 7,  12, 17, 22, 7,  12, 17, 22, 7,  12, 17, 22, 5,  9,  14, 20, 5,  9,
    14, 20, 5,  9,  14, 20, 5,  9,  14, 20, 4,  11, 16, 23, 4,  11, 16, 23, 4,  11, 16, 23,
    4,  11, 16, 23, 6,  10, 15, 21, 6,  10, 15, 21, 6,  10, 15, 21, 6,  10, 15, 21};

constexpr std::array<std::uint32_t, 64> kSine = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

std::uint32_t rotl(std::uint32_t x, std::uint32_t n) noexcept {
    return (x << n) | (x >> (32 - n));
}

void md5_block(std::array<std::uint32_t, 4>& state, const std::uint8_t* block) noexcept {
    std::array<std::uint32_t, 16> m{};
    for (std::size_t i = 0; i < 16; ++i) {
        m[i] = std::uint32_t{block[i * 4]} | (std::uint32_t{block[i * 4 + 1]} << 8) |
               (std::uint32_t{block[i * 4 + 2]} << 16) | (std::uint32_t{block[i * 4 + 3]} << 24);
    }
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (std::uint32_t i = 0; i < 64; ++i) {
        std::uint32_t f = 0;
        std::uint32_t g = 0;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        const std::uint32_t next_d = c;
        c = b;
        b = b + rotl(a + f + kSine[i] + m[g], kShift[i]);
        a = d;
        d = next_d;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

}  // namespace

std::array<std::uint8_t, 16> md5(std::string_view data) noexcept {
    std::array<std::uint32_t, 4> state = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(data.data());
    std::size_t full = data.size() / 64;
    for (std::size_t i = 0; i < full; ++i) md5_block(state, bytes + i * 64);

    // Padding: 0x80, zeros, then the bit length little-endian, to a multiple of 64 bytes.
    std::array<std::uint8_t, 128> tail{};
    const std::size_t rest = data.size() - full * 64;
    std::memcpy(tail.data(), bytes + full * 64, rest);
    tail[rest] = 0x80;
    const std::size_t tail_len = rest < 56 ? 64 : 128;
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    for (std::size_t i = 0; i < 8; ++i) {
        tail[tail_len - 8 + i] = static_cast<std::uint8_t>(bits >> (8 * i));
    }
    md5_block(state, tail.data());
    if (tail_len == 128) md5_block(state, tail.data() + 64);

    std::array<std::uint8_t, 16> digest{};
    for (std::size_t i = 0; i < 4; ++i) {
        for (std::size_t j = 0; j < 4; ++j) {
            digest[i * 4 + j] = static_cast<std::uint8_t>(state[i] >> (8 * j));
        }
    }
    return digest;
}

namespace {
std::uint32_t digest_word(const std::array<std::uint8_t, 16>& d, std::size_t word) noexcept {
    return std::uint32_t{d[word * 4]} | (std::uint32_t{d[word * 4 + 1]} << 8) |
           (std::uint32_t{d[word * 4 + 2]} << 16) | (std::uint32_t{d[word * 4 + 3]} << 24);
}
}  // namespace

std::uint32_t ketama_key_hash(std::string_view key) noexcept {
    return digest_word(md5(key), 0);
}

KetamaRing::KetamaRing(const std::vector<ServerAddress>& servers, const std::vector<bool>& live) {
    auto is_live = [&](std::size_t i) { return live.empty() || (i < live.size() && live[i]); };
    std::uint64_t total_weight = 0;
    for (std::size_t i = 0; i < servers.size(); ++i) {
        if (!is_live(i)) continue;
        ++live_count_;
        total_weight += servers[i].weight;
    }
    if (live_count_ == 0 || total_weight == 0) return;

    constexpr std::uint32_t kPointsPerServer = 160;
    constexpr std::uint32_t kPointsPerHash = 4;
    std::string label;
    for (std::size_t i = 0; i < servers.size(); ++i) {
        if (!is_live(i)) continue;
        const ServerAddress& s = servers[i];
        // Single-precision arithmetic exactly as libmemcached computes it.
        const float pct = static_cast<float>(s.weight) / static_cast<float>(total_weight);
        const auto points = static_cast<std::uint32_t>(
            std::floor(static_cast<float>(pct * static_cast<float>(kPointsPerServer) / 4.0F *
                                              static_cast<float>(live_count_) +
                                          0.0000000001F)) *
            4);
        for (std::uint32_t n = 0; n < points / kPointsPerHash; ++n) {
            label = s.host;
            if (s.port != kDefaultPort) {
                label += ':';
                label += std::to_string(s.port);
            }
            label += '-';
            label += std::to_string(n);
            const auto digest = md5(label);
            for (std::size_t x = 0; x < kPointsPerHash; ++x) {
                points_.push_back(Point{digest_word(digest, x), static_cast<std::uint32_t>(i)});
            }
        }
    }
    std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
        return a.value != b.value ? a.value < b.value : a.server < b.server;
    });
}

std::optional<std::size_t> KetamaRing::pick(std::string_view key) const noexcept {
    if (points_.empty()) return std::nullopt;
    // libmemcached skips hashing when there is one server at all; the answer is the same.
    const std::uint32_t hash = ketama_key_hash(key);
    auto it = std::lower_bound(points_.begin(), points_.end(), hash,
                               [](const Point& p, std::uint32_t h) { return p.value < h; });
    if (it == points_.end()) it = points_.begin();
    return it->server;
}

}  // namespace reqctx::memcache
