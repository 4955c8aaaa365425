#include "clients/memcache/ketama.hpp"

#include <gtest/gtest.h>
#include <libmemcached/memcached.h>

#include <cstdio>
#include <map>
#include <string>

namespace reqctx::memcache {
namespace {

std::string hex(const std::array<std::uint8_t, 16>& d) {
    std::string s;
    char b[3];
    for (auto x : d) {
        std::snprintf(b, sizeof(b), "%02x", x);
        s += b;
    }
    return s;
}

TEST(MemcacheKetama, Md5MatchesRfc1321TestSuite) {
    EXPECT_EQ(hex(md5("")), "d41d8cd98f00b204e9800998ecf8427e");
    EXPECT_EQ(hex(md5("a")), "0cc175b9c0f1b6a831c399e269772661");
    EXPECT_EQ(hex(md5("abc")), "900150983cd24fb0d6963f7d28e17f72");
    EXPECT_EQ(hex(md5("message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
    EXPECT_EQ(hex(md5("abcdefghijklmnopqrstuvwxyz")), "c3fcd3d76192e4007dfb496cca67e13b");
    EXPECT_EQ(hex(md5("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")),
              "d174ab98d277d9f5a5611c2c9f419d9f");
    EXPECT_EQ(hex(md5("1234567890123456789012345678901234567890123456789012345678901234567890"
                      "1234567890")),
              "57edf4a22be3c955ac49da2e2107b67a");
    // Lengths around the padding boundary (55, 56, 63, 64 bytes) against libhashkit.
    for (std::size_t n : {55u, 56u, 63u, 64u, 65u, 119u, 120u}) {
        const std::string s(n, 'q');
        EXPECT_EQ(ketama_key_hash(s),
                  memcached_generate_hash_value(s.data(), s.size(), MEMCACHED_HASH_MD5))
            << n;
    }
}

// libmemcached configured as weighted ketama (the behaviour other ketama clients share).
struct Libmemcached {
    memcached_st* m = memcached_create(nullptr);
    explicit Libmemcached(const std::vector<ServerAddress>& servers) {
        memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
        memcached_behavior_set_key_hash(m, MEMCACHED_HASH_MD5);
        for (const auto& s : servers) {
            memcached_server_add_with_weight(m, s.host.c_str(), s.port, s.weight);
        }
    }
    ~Libmemcached() { memcached_free(m); }
    std::size_t pick(const std::string& key) const {
        return memcached_generate_hash(m, key.data(), key.size());
    }
};

void expect_same_choices(const std::vector<ServerAddress>& servers) {
    Libmemcached lib(servers);
    KetamaRing ring(servers);
    std::map<std::size_t, int> spread;
    int mismatches = 0;
    for (int i = 0; i < 10000; ++i) {
        const std::string key = "key:" + std::to_string(i) + ":" + std::to_string(i * 7919);
        const auto ours = ring.pick(key);
        ASSERT_TRUE(ours);
        if (*ours != lib.pick(key)) ++mismatches;
        ++spread[*ours];
    }
    EXPECT_EQ(mismatches, 0);
    EXPECT_EQ(spread.size(), servers.size());  // every server owns some keys
}

TEST(MemcacheKetama, MatchesLibmemcachedForTenThousandKeysOverThreeWeightedServers) {
    expect_same_choices({{"127.0.0.1", 11211, 1}, {"127.0.0.1", 11212, 2}, {"10.0.0.7", 22122, 5}});
}

TEST(MemcacheKetama, MatchesLibmemcachedWithDefaultPortLabelsAndEqualWeights) {
    expect_same_choices({{"cache-a", 11211, 1}, {"cache-b", 11211, 1}, {"cache-c", 11213, 1}});
    expect_same_choices({{"cache-a", 11211, 3}, {"cache-b", 11211, 1}, {"cache-c", 11211, 2}});
}

TEST(MemcacheKetama, PointCountsFollowWeights) {
    KetamaRing equal({{"a", 1, 1}, {"b", 1, 1}, {"c", 1, 1}});
    EXPECT_EQ(equal.points(), 480u);
    KetamaRing weighted({{"a", 1, 1}, {"b", 1, 3}});
    // floor(0.25*160/4*2)*4 + floor(0.75*160/4*2)*4 = 80 + 240
    EXPECT_EQ(weighted.points(), 320u);
}

TEST(MemcacheKetama, EjectedServersLeaveTheRing) {
    std::vector<ServerAddress> servers = {{"h", 1, 1}, {"h", 2, 1}, {"h", 3, 1}};
    KetamaRing full(servers);
    KetamaRing without_b(servers, {true, false, true});
    EXPECT_EQ(without_b.live_count(), 2u);
    int moved = 0;
    for (int i = 0; i < 2000; ++i) {
        const std::string key = "k" + std::to_string(i);
        const auto a = *full.pick(key);
        const auto b = *without_b.pick(key);
        EXPECT_NE(b, 1u);
        if (a != 1u && a != b) ++moved;
    }
    // Consistent hashing: keys of live servers mostly stay (libmemcached rescales the weights
    // of the remaining servers, so a few move).
    EXPECT_LT(moved, 400);
    KetamaRing none(servers, {false, false, false});
    EXPECT_FALSE(none.pick("k"));
}

}  // namespace
}  // namespace reqctx::memcache
