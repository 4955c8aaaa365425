// The real reqctx binary over real sockets: the first slice (--help, config errors, /healthz).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace reqctx::test {
namespace {

// True if `text` has a line that starts with `prefix`.
bool has_line_starting(const std::string& text, const std::string& prefix) {
    return text.starts_with(prefix) || text.find("\n" + prefix) != std::string::npos;
}

// The sum of the samples whose line starts with `prefix` (e.g. a name and some labels).
double sum_of(const std::string& exposition, const std::string& prefix) {
    double sum = 0;
    std::istringstream lines(exposition);
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with(prefix)) continue;
        sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
}

TEST(ServerBasic, HelpListsEveryFlagWithDefaults) {
    Process p(service_binary(), {"--help"});
    ASSERT_EQ(p.wait_exit(20s), 0);
    const std::string out = p.output();
    for (const char* flag : {"--listen",
                             "--threads",
                             "--memcache",
                             "--memcache-pool-size",
                             "--memcache-connect-timeout-ms",
                             "--request-timeout-ms",
                             "--max-request-timeout-ms",
                             "--max-inflight",
                             "--max-body-bytes",
                             "--idle-timeout-ms",
                             "--header-timeout-ms",
                             "--bulk-concurrency",
                             "--bulk-max-inflight",
                             "--bulk-max-entries",
                             "--subscriber-queue",
                             "--event-timeout-ms",
                             "--outbound-allow",
                             "--enable-debug",
                             "--shutdown-grace-ms",
                             "--log-format",
                             "--log-level"}) {
        EXPECT_NE(out.find(flag), std::string::npos) << flag << " missing from:\n" << out;
    }
    EXPECT_NE(out.find("127.0.0.1:8080"), std::string::npos) << out;
    EXPECT_NE(out.find("REQCTX_MAX_INFLIGHT"), std::string::npos) << out;
    EXPECT_NE(out.find("5000"), std::string::npos) << out;
}

TEST(ServerBasic, InvalidConfigExitsTwoWithAClearMessage) {
    Process bad_flag(service_binary(), {"--max-inflight", "zero"});
    EXPECT_EQ(bad_flag.wait_exit(20s), 2);
    EXPECT_NE(bad_flag.output().find("max-inflight"), std::string::npos) << bad_flag.output();

    Process bad_listen(service_binary(), {"--listen", "nowhere"});
    EXPECT_EQ(bad_listen.wait_exit(20s), 2);
    EXPECT_NE(bad_listen.output().find("--listen"), std::string::npos) << bad_listen.output();

    Process bad_env(service_binary(), {}, {{"REQCTX_LOG_FORMAT", "xml"}});
    EXPECT_EQ(bad_env.wait_exit(20s), 2);
    EXPECT_NE(bad_env.output().find("log-format"), std::string::npos) << bad_env.output();

    Process unknown(service_binary(), {"--no-such-flag"});
    EXPECT_EQ(unknown.wait_exit(20s), 2);
}

TEST(ServerBasic, HealthzAnswersOk) {
    ServiceProcess service;
    auto res = http_request(service.port(), "GET", "/healthz");
    ASSERT_TRUE(res) << service.output();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, R"({"status":"ok"})");
    EXPECT_EQ(res->header("Content-Type"), "application/json");
    EXPECT_TRUE(res->header("X-Request-ID"));
    EXPECT_TRUE(res->header("X-Trace-ID"));
    // RFC 9110 IMF-fixdate, e.g. "Thu, 26 Nov 2026 01:51:16 GMT".
    const auto date = res->header("Date");
    ASSERT_TRUE(date);
    EXPECT_EQ(date->size(), 29U) << *date;
    EXPECT_TRUE(date->ends_with(" GMT")) << *date;
    EXPECT_EQ(service.terminate(), 0) << service.output();
}

TEST(ServerBasic, FlagWinsOverEnvironment) {
    // The env asks for an invalid level; the flag's valid value wins.
    ServiceProcess service({"--log-level", "warn"}, {{"REQCTX_LOG_LEVEL", "nonsense"}});
    auto res = http_request(service.port(), "GET", "/healthz");
    ASSERT_TRUE(res) << service.output();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(service.terminate(), 0) << service.output();
}

// api.md's GET /metrics families: each has its # HELP and # TYPE lines from the first scrape,
// before anything happened that would give it a sample.
TEST(ServerBasic, MetricsListsEveryContractFamilyOnAFreshInstance) {
    MemcachedServer mc;
    ServiceProcess service({"--memcache", mc.address()});
    const auto res = http_request(service.port(), "GET", "/metrics");
    ASSERT_TRUE(res) << service.output();
    ASSERT_EQ(res->status, 200);
    const std::pair<std::string, std::string> families[] = {
        {"http_requests_total", "counter"},        {"http_request_duration_seconds", "histogram"},
        {"http_requests_in_flight", "gauge"},      {"http_requests_cancelled_total", "counter"},
        {"reqctx_contexts_live", "gauge"},         {"reqctx_background_tasks_live", "gauge"},
        {"bulk_sync_semaphore_capacity", "gauge"}, {"bulk_sync_semaphore_in_use", "gauge"},
        {"bulk_sync_semaphore_waiters", "gauge"},  {"bulk_sync_entries_total", "counter"},
        {"memcache_ops_total", "counter"},         {"memcache_op_duration_seconds", "histogram"},
        {"memcache_pool_connections", "gauge"},    {"subscriptions_active", "gauge"},
        {"events_published_total", "counter"},     {"events_processed_total", "counter"},
        {"events_dropped_total", "counter"},
    };
    for (const auto& [name, type] : families) {
        EXPECT_TRUE(has_line_starting(res->body, "# HELP " + name + " ")) << name << "\n"
                                                                          << res->body;
        EXPECT_TRUE(has_line_starting(res->body, "# TYPE " + name + " " + type + "\n")) << name;
    }
    // No request had ended when this scrape ran: no sample is made up for an empty family.
    EXPECT_FALSE(has_line_starting(res->body, "http_requests_total")) << res->body;
    EXPECT_FALSE(has_line_starting(res->body, "events_published_total")) << res->body;
    EXPECT_EQ(service.terminate(), 0) << service.output();
}

// A made-up method is counted as method="other" (bounded label values); the access log keeps
// the method as sent, one valid JSON line even for a 4000-byte method.
TEST(ServerBasic, UnknownMethodsShareOneMetricsLabelAndAreLoggedAsSent) {
    ServiceProcess service;
    const std::string long_method(4000, 'Q');
    for (const std::string& method : {std::string("ZZZA"), long_method}) {
        const auto res = http_request(service.port(), method, "/v1/whoami");
        ASSERT_TRUE(res) << method.size() << " " << service.output().substr(0, 2000);
    }
    const auto metrics = http_request(service.port(), "GET", "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(sum_of(metrics->body, R"(http_requests_total{method="other",route="/v1/whoami",)"),
              2.0)
        << metrics->body;
    EXPECT_EQ(metrics->body.find("ZZZA"), std::string::npos);
    EXPECT_EQ(metrics->body.find("QQQQ"), std::string::npos);

    // The access line is written once the last byte is sent: poll for both.
    const auto logged_lines = [&service](const std::string& method) {
        std::vector<std::string> found;
        std::istringstream lines(service.output());
        for (std::string line; std::getline(lines, line);) {
            if (line.find(R"("method":")" + method + "\"") != std::string::npos) {
                found.push_back(line);
            }
        }
        return found;
    };
    ASSERT_TRUE(wait_until([&] {
        return !logged_lines("ZZZA").empty() && !logged_lines(long_method).empty();
    })) << service.output().substr(0, 4000);
    for (const std::string& method : {std::string("ZZZA"), long_method}) {
        const auto lines = logged_lines(method);
        ASSERT_EQ(lines.size(), 1U) << method.size();
        const auto line = nlohmann::json::parse(lines[0], nullptr, false);
        ASSERT_FALSE(line.is_discarded()) << lines[0];
        ASSERT_TRUE(line.is_object()) << lines[0];
        EXPECT_EQ(line.value("method", ""), method);
        EXPECT_EQ(line.value("route", ""), "/v1/whoami") << lines[0];
    }
    EXPECT_EQ(service.terminate(), 0) << service.output().substr(0, 4000);
}

}  // namespace
}  // namespace reqctx::test
