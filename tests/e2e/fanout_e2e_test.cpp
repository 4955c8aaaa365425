// POST /v1/fanout on the real binary: a recording listener inside the test sees what the
// service's outgoing HTTP client sends (trace context, request ID, remaining deadline), and how
// refusals, deadlines and client disconnects end the calls.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "clients/propagation.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording_http_server.hpp"

namespace reqctx::test {
namespace {

using json = nlohmann::json;

constexpr std::string_view kParent = "00-12345678901234567890123456789012-1234567890123456-01";
constexpr std::string_view kTraceHex = "12345678901234567890123456789012";

std::string calls_to(const RecordingHttpServer& listener,
                     std::initializer_list<const char*> paths) {
    json body = json::array();
    for (const char* p : paths)
        body.push_back({{"url", listener.url(p)}, {"arguments", json::array()}});
    return body.dump();
}

// The trace-id and span-id a recorded call carried (asserting exactly one traceparent).
std::optional<TraceParent> traceparent_of(const RecordedRequest& r) {
    const auto lines = r.all("traceparent");
    EXPECT_EQ(lines.size(), 1u) << r.target;
    if (lines.size() != 1) return std::nullopt;
    EXPECT_EQ(lines[0].substr(0, 3), "00-");
    return parse_traceparent(std::vector<std::string_view>{lines[0]});
}

class FanoutE2E : public ::testing::Test {
protected:
    RecordingHttpServer listener;
    ServiceProcess service{{"--outbound-allow", listener.address()}};
};

TEST(FanoutDisabled, RouteDoesNotExistWithoutOutboundAllow) {
    ServiceProcess service;
    auto res = http_request(service.port(), "POST", "/v1/fanout",
                            {{"Content-Type", "application/json"}}, "[]");
    ASSERT_TRUE(res) << service.output();
    EXPECT_EQ(res->status, 404);
}

TEST_F(FanoutE2E, ContinuesTheTraceWithANewSpanPerCall) {
    auto res = http_request(service.port(), "POST", "/v1/fanout",
                            {{"Content-Type", "application/json"},
                             {"traceparent", std::string(kParent)},
                             {"tracestate", "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"},
                             {"X-Request-ID", "fanout-e2e-1"},
                             {"X-Request-Timeout-Ms", "3000"}},
                            calls_to(listener, {"/a", "/b", "/c"}));
    ASSERT_TRUE(res) << service.output();
    ASSERT_EQ(res->status, 200) << res->body;
    const json body = json::parse(res->body);
    ASSERT_EQ(body["calls"].size(), 3u);
    for (const auto& c : body["calls"]) EXPECT_EQ(c["status"], 200) << c;

    const auto reqs = listener.requests();
    ASSERT_EQ(reqs.size(), 3u);
    std::set<std::string> spans;
    for (const auto& r : reqs) {
        const auto tp = traceparent_of(r);
        ASSERT_TRUE(tp);
        EXPECT_EQ(to_hex(tp->trace_id), kTraceHex);
        EXPECT_NE(to_hex(tp->parent_id), "1234567890123456");
        EXPECT_EQ(tp->flags, 0x01);
        spans.insert(to_hex(tp->parent_id));
        EXPECT_EQ(r.all("tracestate"),
                  std::vector<std::string>{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"});
        EXPECT_EQ(r.header("X-Request-ID"), "fanout-e2e-1");
        const auto left = r.header("X-Request-Timeout-Ms");
        ASSERT_TRUE(left);
        EXPECT_GE(std::stoi(*left), 1);
        EXPECT_LT(std::stoi(*left), 3000);
        EXPECT_EQ(r.method, "POST");
        EXPECT_EQ(r.body, "[]");
    }
    EXPECT_EQ(spans.size(), 3u);
    EXPECT_EQ(reqs[0].target, "/a");
    EXPECT_EQ(reqs[2].target, "/c");
    // Pooled outgoing connections do not hold up a clean shutdown.
    EXPECT_EQ(service.terminate(), 0) << service.output();
}

TEST_F(FanoutE2E, DuplicatedTraceparentRestartsTheTraceAndDropsTracestate) {
    auto res = http_request(service.port(), "POST", "/v1/fanout",
                            {{"Content-Type", "application/json"},
                             {"traceparent", std::string(kParent)},
                             {"traceparent", std::string(kParent)},
                             {"tracestate", "foo=1"}},
                            calls_to(listener, {"/x"}));
    ASSERT_TRUE(res) << service.output();
    ASSERT_EQ(res->status, 200) << res->body;
    ASSERT_TRUE(listener.wait_for_requests(1, 10s));
    const auto r = listener.requests().at(0);
    const auto tp = traceparent_of(r);
    ASSERT_TRUE(tp);
    EXPECT_NE(to_hex(tp->trace_id), kTraceHex);
    EXPECT_EQ(tp->flags, 0x03);  // new trace: sampled + random trace-id
    EXPECT_TRUE(r.all("tracestate").empty());
    EXPECT_EQ(res->header("X-Trace-ID"), to_hex(tp->trace_id));
}

TEST_F(FanoutE2E, InvalidTracestateIsDroppedTraceKept) {
    auto res =
        http_request(service.port(), "POST", "/v1/fanout",
                     {{"Content-Type", "application/json"},
                      {"traceparent", "cc-12345678901234567890123456789012-1234567890123456-03-x"},
                      {"tracestate", "foo=1"},
                      {"tracestate", "BAD=2"}},
                     calls_to(listener, {"/x"}));
    ASSERT_TRUE(res) << service.output();
    ASSERT_EQ(res->status, 200) << res->body;
    const auto r = listener.requests().at(0);
    const auto tp = traceparent_of(r);
    ASSERT_TRUE(tp);
    EXPECT_EQ(to_hex(tp->trace_id), kTraceHex);  // a higher version is sent on as 00
    EXPECT_EQ(tp->flags, 0x03);
    EXPECT_TRUE(r.all("tracestate").empty());
}

TEST_F(FanoutE2E, OffListUrlIsRefusedBeforeAnyCall) {
    json body =
        json::array({{{"url", listener.url("/ok")}}, {{"url", "http://127.0.0.1:1/elsewhere"}}});
    auto res = http_request(service.port(), "POST", "/v1/fanout",
                            {{"Content-Type", "application/json"}}, body.dump());
    ASSERT_TRUE(res) << service.output();
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "url_not_allowed");
    EXPECT_EQ(listener.request_count(), 0u);
    EXPECT_EQ(listener.connection_count(), 0u);
}

TEST_F(FanoutE2E, TooManyCallsIsInvalidRequest) {
    json body = json::array();
    for (int i = 0; i < 17; ++i) body.push_back({{"url", listener.url("/")}});
    auto res = http_request(service.port(), "POST", "/v1/fanout",
                            {{"Content-Type", "application/json"}}, body.dump());
    ASSERT_TRUE(res) << service.output();
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "invalid_request");
    EXPECT_EQ(listener.request_count(), 0u);
}

TEST_F(FanoutE2E, DownstreamThatNeverAnswersIsCutAtTheDeadline) {
    listener.hang_on("/hang");
    auto res = http_request(service.port(), "POST", "/v1/fanout",
                            {{"Content-Type", "application/json"}, {"X-Request-Timeout-Ms", "400"}},
                            calls_to(listener, {"/ok", "/hang", "/never"}));
    ASSERT_TRUE(res) << service.output();
    EXPECT_EQ(res->status, 504) << res->body;
    const json body = json::parse(res->body);
    EXPECT_EQ(body["error"]["code"], "deadline_exceeded");
    EXPECT_EQ(listener.request_count(), 2u);  // /never was not called
    // The interrupted connection is closed, not kept for reuse.
    EXPECT_TRUE(listener.wait_connections_closed(10s));
}

TEST_F(FanoutE2E, ClientDisconnectCancelsTheCallsNotYetMade) {
    listener.hang_on("/hang");
    HttpClient client(service.port());
    const std::string body = calls_to(listener, {"/hang", "/never"});
    ASSERT_TRUE(
        client.send_raw("POST /v1/fanout HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body));
    ASSERT_TRUE(listener.wait_for_requests(1, 10s)) << service.output();
    client.close();
    // The in-flight call is cut (its connection closed) and the next one never starts.
    EXPECT_TRUE(listener.wait_connections_closed(10s));
    auto health = http_request(service.port(), "GET", "/healthz");  // the service keeps serving
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(listener.request_count(), 1u);
    EXPECT_EQ(service.terminate(), 0) << service.output();
}

}  // namespace
}  // namespace reqctx::test
