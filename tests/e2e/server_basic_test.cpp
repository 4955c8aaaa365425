// The real reqctx binary over real sockets: the first slice (--help, config errors, /healthz).

#include <gtest/gtest.h>

#include <string>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace reqctx::test {
namespace {

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

}  // namespace
}  // namespace reqctx::test
