// /v1/cache/{key} and /readyz against the real binary and real memcached behind the fault proxy:
// the api.md contract, deadlines on a stalled cache, and a cache that goes down and comes back.

#include <string>

#include <gtest/gtest.h>

#include "tests/e2e/business_test_util.hpp"

namespace reqctx::test {
namespace {

std::string error_code_of(const HttpResponse& r) {
    const auto doc = json_of(r);
    return doc.is_object() && doc.contains("error") ? doc["error"].value("code", "") : "";
}

TEST(BusinessCache, PutGetDeleteFollowTheContract) {
    BusinessStack stack;
    auto r = stack.request("GET", "/v1/cache/user:42");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(error_code_of(*r), "not_found");

    const std::string value("bin\0ary\xff", 8);
    r = stack.request("PUT", "/v1/cache/user:42?ttl=60", {}, value);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204) << r->body;

    r = stack.request("GET", "/v1/cache/user:42");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, value);
    EXPECT_EQ(r->header("Content-Type"), "application/octet-stream");

    // The key is the percent-decoded segment.
    r = stack.request("PUT", "/v1/cache/a%2Fb", {}, "slash");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204);
    r = stack.request("GET", "/v1/cache/a%2fb");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "slash");

    r = stack.request("DELETE", "/v1/cache/user:42");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204);
    r = stack.request("DELETE", "/v1/cache/user:42");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
}

TEST(BusinessCache, LargeValueRoundTripsAndNoContentHasNoLength) {
    BusinessStack stack;
    // Larger than a loopback socket's initial send buffer: the server's first non-blocking
    // write is partial and the rest goes out asynchronously.
    std::string value(900 * 1024, 'v');
    for (std::size_t i = 0; i < value.size(); i += 4096) value[i] = static_cast<char>('a' + i % 26);
    auto r = stack.request("PUT", "/v1/cache/large", {}, value);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204) << r->body;
    EXPECT_FALSE(r->header("Content-Length"));  // RFC 9110 8.6: not in a 204
    r = stack.request("GET", "/v1/cache/large");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("Content-Length"), std::to_string(value.size()));
    EXPECT_TRUE(r->body == value);
}

TEST(BusinessCache, RejectsBadKeysTtlsAndLargeValues) {
    BusinessStack stack;
    for (const char* target : {"/v1/cache/a%20b", "/v1/cache/a%0Ab", "/v1/cache/a%7Fb"}) {
        const auto r = stack.request("GET", target);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << target;
        EXPECT_EQ(error_code_of(*r), "invalid_key") << target;
    }
    const auto long_key = stack.request("PUT", "/v1/cache/" + std::string(251, 'k'), {}, "v");
    ASSERT_TRUE(long_key);
    EXPECT_EQ(long_key->status, 400);
    EXPECT_EQ(error_code_of(*long_key), "invalid_key");
    EXPECT_EQ(stack.request("PUT", "/v1/cache/" + std::string(250, 'k'), {}, "v")->status, 204);

    for (const char* ttl : {"=-1", "=abc", "=1.5", "=99999999999", "=", "", "=+5", "=%20"}) {
        const auto r = stack.request("PUT", std::string("/v1/cache/k?ttl") + ttl, {}, "v");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << ttl;
        EXPECT_EQ(error_code_of(*r), "invalid_ttl") << ttl;
    }
    // A repeated parameter: the first one counts.
    EXPECT_EQ(stack.request("PUT", "/v1/cache/k?ttl=5&ttl=x", {}, "v")->status, 204);
    EXPECT_EQ(stack.request("PUT", "/v1/cache/k?ttl=x&ttl=5", {}, "v")->status, 400);
    const auto big = stack.request("PUT", "/v1/cache/big", {}, std::string(1024 * 1024 + 1, 'x'));
    ASSERT_TRUE(big);
    EXPECT_EQ(big->status, 413);
}

// ttl is seconds from now even above 30 days (memcached alone would read it as a unix time long
// past and drop the value at once); beyond 2038 it is capped there.
TEST(BusinessCache, TtlAbove30DaysKeepsTheValueReadable) {
    BusinessStack stack;
    for (const char* ttl : {"2592000", "2592001", "31536000", "4294967295"}) {
        const std::string key = std::string("long-ttl-") + ttl;
        const auto put = stack.request("PUT", "/v1/cache/" + key + "?ttl=" + ttl, {}, ttl);
        ASSERT_TRUE(put);
        EXPECT_EQ(put->status, 204) << ttl;
        const auto get = stack.request("GET", "/v1/cache/" + key);
        ASSERT_TRUE(get);
        EXPECT_EQ(get->status, 200) << ttl;
        EXPECT_EQ(get->body, ttl);
    }
}

TEST(BusinessCache, StalledCacheGives504AtTheDeadline) {
    BusinessStack stack;
    ASSERT_EQ(stack.request("PUT", "/v1/cache/slow", {}, "v")->status, 204);
    stack.proxy().stall();
    const auto r = stack.request("GET", "/v1/cache/slow", {{"X-Request-Timeout-Ms", "200"}});
    stack.proxy().resume();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 504);
    EXPECT_EQ(error_code_of(*r), "deadline_exceeded");
    // The service still answers once the cache moves again.
    ASSERT_TRUE(wait_until([&] {
        const auto g = stack.request("GET", "/v1/cache/slow");
        return g && g->status == 200 && g->body == "v";
    }));
}

// A client that hangs up mid-op cancels it; the metric spells it as the contract does.
TEST(BusinessCache, OpCancelledByADepartedClientIsCountedAsCancelled) {
    BusinessStack stack;
    stack.proxy().stall();
    {
        HttpClient client(stack.port());
        ASSERT_TRUE(client.send_raw("GET /v1/cache/gone HTTP/1.1\r\nHost: x\r\n\r\n"));
        ASSERT_TRUE(wait_until([&] {
            return metric_value(stack.metrics(), "http_requests_in_flight").value_or(0) >= 2;
        }));
        client.close();
    }
    const auto cancelled = [&] {
        return metric_sum(stack.metrics(), "memcache_ops_total", R"(result="cancelled")");
    };
    EXPECT_TRUE(wait_until([&] { return cancelled() >= 1; })) << stack.metrics();
    EXPECT_EQ(stack.metrics().find(R"(result="canceled")"), std::string::npos);
    stack.proxy().resume();
}

TEST(BusinessCache, CacheDownGives503AndRecovers) {
    BusinessStack stack;
    ASSERT_TRUE(wait_until([&] {
        const auto r = stack.request("GET", "/readyz");
        return r && r->status == 200;
    }));
    const auto ready = json_of(*stack.request("GET", "/readyz"));
    EXPECT_EQ(ready["status"], "ready");

    stack.memcached().stop();
    stack.proxy().reset_all();
    ASSERT_TRUE(wait_until([&] {
        const auto r = stack.request("GET", "/v1/cache/k", {{"X-Request-Timeout-Ms", "2000"}});
        return r && r->status == 503 && error_code_of(*r) == "cache_unavailable";
    }));
    const auto put = stack.request("PUT", "/v1/cache/k", {}, "v");
    ASSERT_TRUE(put);
    EXPECT_EQ(put->status, 503);
    ASSERT_TRUE(wait_until([&] {
        const auto r = stack.request("GET", "/readyz");
        return r && r->status == 503 && json_of(*r)["status"] == "not_ready";
    }));
    const auto health = stack.request("GET", "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);

    stack.memcached().start();
    ASSERT_TRUE(wait_until(
        [&] {
            const auto r = stack.request("PUT", "/v1/cache/k", {}, "back");
            return r && r->status == 204;
        },
        20s, 50ms));
    EXPECT_EQ(stack.request("GET", "/v1/cache/k")->body, "back");
    ASSERT_TRUE(wait_until([&] {
        const auto r = stack.request("GET", "/readyz");
        return r && r->status == 200;
    }));
}

}  // namespace
}  // namespace reqctx::test
