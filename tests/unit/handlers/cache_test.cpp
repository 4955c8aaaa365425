#include "handlers/cache.hpp"

#include <string>

#include <gtest/gtest.h>

namespace reqctx {
namespace {

TEST(CacheKey, AcceptsPrintableKeysUpTo250Bytes) {
    EXPECT_TRUE(is_valid_cache_key("k"));
    EXPECT_TRUE(is_valid_cache_key("user:42/profile?x=1"));
    EXPECT_TRUE(is_valid_cache_key(std::string(250, 'a')));
    EXPECT_TRUE(is_valid_cache_key("caf\xc3\xa9"));  // UTF-8 bytes are not control bytes
}

TEST(CacheKey, RejectsEmptyLongWhitespaceAndControl) {
    EXPECT_FALSE(is_valid_cache_key(""));
    EXPECT_FALSE(is_valid_cache_key(std::string(251, 'a')));
    EXPECT_FALSE(is_valid_cache_key("bad key"));
    EXPECT_FALSE(is_valid_cache_key("tab\tkey"));
    EXPECT_FALSE(is_valid_cache_key("nl\nkey"));
    EXPECT_FALSE(is_valid_cache_key(std::string("nul\0key", 7)));
    EXPECT_FALSE(is_valid_cache_key("del\x7fkey"));
}

TEST(CacheTtl, DefaultsToZeroAndAcceptsNonNegativeIntegers) {
    EXPECT_EQ(parse_ttl(std::nullopt), 0u);
    EXPECT_EQ(parse_ttl("0"), 0u);
    EXPECT_EQ(parse_ttl("60"), 60u);
    EXPECT_EQ(parse_ttl("4294967295"), 4294967295u);
}

TEST(CacheTtl, RejectsEverythingElse) {
    for (const char* bad :
         {"", "-1", "+5", "1.5", "abc", "10s", " 1", "4294967296", "99999999999", "0x10"}) {
        EXPECT_FALSE(parse_ttl(bad).has_value()) << bad;
    }
}

TEST(CacheQuery, FindsAndDecodesParameters) {
    EXPECT_EQ(query_param("/v1/cache/k?ttl=60", "ttl"), "60");
    EXPECT_EQ(query_param("/v1/cache/k?a=1&ttl=%33%30&b", "ttl"), "30");
    EXPECT_EQ(query_param("/v1/cache/k?ttl", "ttl"), "");
    EXPECT_EQ(query_param("/v1/cache/k?x=1", "ttl"), std::nullopt);
    EXPECT_EQ(query_param("/v1/cache/k", "ttl"), std::nullopt);
}

}  // namespace
}  // namespace reqctx
