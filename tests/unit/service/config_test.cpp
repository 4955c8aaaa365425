// Configuration parsing (flags, env fallback, validation) and the router.

#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "service/config.hpp"
#include "service/router.hpp"

namespace reqctx {
namespace {

ConfigResult parse(std::vector<std::string> args, std::string* err_out = nullptr) {
    args.insert(args.begin(), "reqctx");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out;
    std::ostringstream err;
    auto r = parse_config(static_cast<int>(argv.size()), argv.data(), out, err);
    if (err_out != nullptr) *err_out = err.str();
    return r;
}

TEST(Config, DefaultsMatchTheApi) {
    auto r = parse({});
    ASSERT_TRUE(r.config);
    const Config& c = *r.config;
    EXPECT_EQ(c.listen_host, "127.0.0.1");
    EXPECT_EQ(c.listen_port, 8080);
    EXPECT_EQ(c.request_timeout.count(), 5000);
    EXPECT_EQ(c.max_request_timeout.count(), 30000);
    EXPECT_EQ(c.max_inflight, 1024U);
    EXPECT_EQ(c.max_body_bytes, 1024U * 1024U);
    EXPECT_EQ(c.idle_timeout.count(), 60000);
    EXPECT_EQ(c.header_timeout.count(), 10000);
    EXPECT_EQ(c.bulk_concurrency, 8U);
    EXPECT_EQ(c.bulk_max_inflight, 64U);
    EXPECT_EQ(c.bulk_max_entries, 10000U);
    EXPECT_EQ(c.subscriber_queue, 1024U);
    EXPECT_EQ(c.event_timeout.count(), 2000);
    EXPECT_EQ(c.shutdown_grace.count(), 10000);
    EXPECT_EQ(c.log_format, LogFormat::json);
    ASSERT_EQ(c.memcache.size(), 1U);
    EXPECT_EQ(c.memcache[0].port, 11211);
    EXPECT_TRUE(c.outbound_allow.empty());
    EXPECT_FALSE(c.enable_debug);
}

TEST(Config, ParsesListsAndAddresses) {
    auto r = parse({"--listen", "[::1]:0", "--memcache", "a:1:5, b:2", "--outbound-allow",
                    "127.0.0.1:9000,localhost:80", "--enable-debug", "--log-format", "text"});
    ASSERT_TRUE(r.config);
    EXPECT_EQ(r.config->listen_host, "::1");
    EXPECT_EQ(r.config->listen_port, 0);
    ASSERT_EQ(r.config->memcache.size(), 2U);
    EXPECT_EQ(r.config->memcache[0].host, "a");
    EXPECT_EQ(r.config->memcache[0].weight, 5U);
    EXPECT_EQ(r.config->memcache[1].port, 2);
    ASSERT_EQ(r.config->outbound_allow.size(), 2U);
    EXPECT_EQ(r.config->outbound_allow[1].host, "localhost");
    EXPECT_TRUE(r.config->enable_debug);
    EXPECT_EQ(r.config->log_format, LogFormat::text);
}

TEST(Config, EnvironmentIsAFallbackAndTheFlagWins) {
    ::setenv("REQCTX_MAX_INFLIGHT", "7", 1);
    auto env = parse({});
    auto flag = parse({"--max-inflight", "9"});
    ::unsetenv("REQCTX_MAX_INFLIGHT");
    ASSERT_TRUE(env.config);
    EXPECT_EQ(env.config->max_inflight, 7U);
    ASSERT_TRUE(flag.config);
    EXPECT_EQ(flag.config->max_inflight, 9U);
}

TEST(Config, InvalidValuesExitTwoWithAMessage) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--threads", "0"},
             {"--listen", "8080"},
             {"--listen", "host:99999"},
             {"--memcache", "a:0"},
             {"--memcache", "a:1,,b:2"},
             {"--memcache", "a:1:0"},
             {"--outbound-allow", "http://x:1"},
             {"--request-timeout-ms", "40000"},
             {"--log-level", "loud"},
             {"--max-body-bytes", "-1"},
             {"--bulk-max-inflight", "4", "--bulk-concurrency", "5"},
             {"--unknown"}}) {
        std::string err;
        auto r = parse(args, &err);
        EXPECT_FALSE(r.config) << args[0];
        EXPECT_EQ(r.exit_code, 2) << args[0];
        EXPECT_NE(err.find("invalid configuration"), std::string::npos) << err;
    }
}

// A smaller semaphore alone is a valid configuration: the default share follows it down.
TEST(Config, BulkCapacityBelowTheDefaultConcurrencyLowersTheDefault) {
    auto r = parse({"--bulk-max-inflight", "4"});
    ASSERT_TRUE(r.config);
    EXPECT_EQ(r.config->bulk_max_inflight, 4U);
    EXPECT_EQ(r.config->bulk_concurrency, 4U);
    auto explicit_share = parse({"--bulk-max-inflight", "4", "--bulk-concurrency", "2"});
    ASSERT_TRUE(explicit_share.config);
    EXPECT_EQ(explicit_share.config->bulk_concurrency, 2U);
}

TEST(Config, HelpExitsZero) {
    auto r = parse({"--help"});
    EXPECT_FALSE(r.config);
    EXPECT_EQ(r.exit_code, 0);
}

Handler noop() {
    return [](Context, const Request&, const RouteParams&) -> net::awaitable<Response> {
        co_return Response{};
    };
}

TEST(Router, MatchesLiteralsAndDecodesParameters) {
    Router r;
    r.add(http::verb::get, "/healthz", noop());
    r.add(http::verb::get, "/v1/cache/{key}", noop());
    r.add(http::verb::put, "/v1/cache/{key}", noop());
    auto m = r.match(http::verb::get, "/v1/cache/user%3A42%20x?ttl=3");
    ASSERT_EQ(m.outcome, Router::Outcome::found);
    EXPECT_EQ(m.pattern, "/v1/cache/{key}");
    EXPECT_EQ(m.params.get("key"), "user:42 x");
    EXPECT_EQ(r.match(http::verb::get, "/healthz").outcome, Router::Outcome::found);
    EXPECT_EQ(r.match(http::verb::get, "/healthz/").outcome, Router::Outcome::not_found);
    EXPECT_EQ(r.match(http::verb::get, "/v1/cache/").outcome, Router::Outcome::not_found);
    EXPECT_EQ(r.match(http::verb::get, "/v1/cache/a/b").outcome, Router::Outcome::not_found);
    EXPECT_EQ(r.match(http::verb::get, "/v1/cache/%zz").outcome, Router::Outcome::bad_path);
    EXPECT_EQ(r.match(http::verb::get, "/nope").pattern, "unmatched");
}

TEST(Router, WrongMethodListsAllowed) {
    Router r;
    r.add(http::verb::get, "/v1/cache/{key}", noop());
    r.add(http::verb::put, "/v1/cache/{key}", noop());
    auto m = r.match(http::verb::post, "/v1/cache/k");
    EXPECT_EQ(m.outcome, Router::Outcome::method_not_allowed);
    EXPECT_EQ(m.allow, "GET, PUT");
    EXPECT_EQ(m.pattern, "/v1/cache/{key}");
}

TEST(Router, RejectsDuplicatesAndMalformedPatterns) {
    Router r;
    r.add(http::verb::get, "/a", noop());
    EXPECT_THROW(r.add(http::verb::get, "/a", noop()), std::invalid_argument);
    EXPECT_THROW(r.add(http::verb::get, "no-slash", noop()), std::invalid_argument);
    EXPECT_THROW(r.add(http::verb::get, "/x/{bad", noop()), std::invalid_argument);
}

TEST(PercentDecode, DecodesAndRejectsMalformed) {
    std::string out;
    EXPECT_TRUE(percent_decode("a%2Fb%41", out));
    EXPECT_EQ(out, "a/bA");
    EXPECT_FALSE(percent_decode("a%4", out));
    EXPECT_FALSE(percent_decode("%", out));
    EXPECT_FALSE(percent_decode("%g0", out));
}

}  // namespace
}  // namespace reqctx
