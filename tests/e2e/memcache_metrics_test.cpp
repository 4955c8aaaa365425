// The real binary with a real memcached: /metrics exports memcache_ops_total{op,result},
// memcache_op_duration_seconds{op} and memcache_pool_connections{server,state} (api.md).

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "tests/e2e/business_test_util.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace reqctx::test {
namespace {

std::string scrape(unsigned short port) {
    auto r = http_request(port, "GET", "/metrics");
    if (!r || r->status != 200) return {};
    return r->body;
}

TEST(MemcacheMetrics, OpsDurationsAndPoolConnectionsAreExported) {
    MemcachedServer mc;
    ServiceProcess svc({"--memcache", mc.address()});
    const std::string server = "server=\"" + mc.address() + "\"";

    // The pool connects eagerly: wait until a connection shows up as connected.
    const std::string connected = "memcache_pool_connections{" + server + ",state=\"connected\"}";
    ASSERT_TRUE(wait_until([&] { return metric_value(scrape(svc.port()), connected) >= 1.0; }))
        << scrape(svc.port());

    auto put = http_request(svc.port(), "PUT", "/v1/cache/k", {}, "v1");
    ASSERT_TRUE(put);
    EXPECT_EQ(put->status, 204) << put->body;
    auto get = http_request(svc.port(), "GET", "/v1/cache/k");
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200) << get->body;
    EXPECT_EQ(get->body, "v1");
    auto miss = http_request(svc.port(), "GET", "/v1/cache/absent");
    ASSERT_TRUE(miss);
    EXPECT_EQ(miss->status, 404) << miss->body;

    const std::string text = scrape(svc.port());
    ASSERT_FALSE(text.empty());
    EXPECT_NE(text.find("# TYPE memcache_ops_total counter"), std::string::npos) << text;
    EXPECT_GE(metric_value(text, R"(memcache_ops_total{op="set",result="ok"})").value_or(0), 1.0)
        << text;
    EXPECT_GE(metric_value(text, R"(memcache_ops_total{op="get",result="hit"})").value_or(0), 1.0)
        << text;
    EXPECT_GE(metric_value(text, R"(memcache_ops_total{op="get",result="miss"})").value_or(0), 1.0)
        << text;

    EXPECT_NE(text.find("# TYPE memcache_op_duration_seconds histogram"), std::string::npos);
    EXPECT_GE(metric_value(text, R"(memcache_op_duration_seconds_count{op="set"})").value_or(0),
              1.0)
        << text;
    EXPECT_GE(metric_value(text, R"(memcache_op_duration_seconds_count{op="get"})").value_or(0),
              2.0)
        << text;
    EXPECT_GE(metric_value(text, R"(memcache_op_duration_seconds_bucket{op="get",le="+Inf"})")
                  .value_or(0),
              2.0)
        << text;

    // Every state appears for the server, 0 when no connection is in it.
    for (const char* state : {"connecting", "connected", "disconnected"}) {
        const std::string series =
            "memcache_pool_connections{" + server + ",state=\"" + state + "\"}";
        EXPECT_TRUE(metric_value(text, series).has_value()) << series << "\n" << text;
    }
    EXPECT_GE(metric_value(text, connected).value_or(0), 1.0) << text;

    EXPECT_EQ(svc.terminate(), 0) << svc.output();
}

}  // namespace
}  // namespace reqctx::test
