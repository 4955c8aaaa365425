// The header rules of docs/api.md ("Every request") against the real binary over real sockets:
// X-Request-ID, traceparent/tracestate, X-User-ID, X-Request-Timeout-Ms.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording_http_server.hpp"

namespace reqctx::test {
namespace {

constexpr const char* kTraceId = "0af7651916cd43dd8448eb211c80319c";
constexpr const char* kParentId = "b7ad6b7169203331";

bool is_lower_hex(const std::string& s, std::size_t n) {
    if (s.size() != n) return false;
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

bool is_uuid_v4(const std::string& s) {
    if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
        return false;
    }
    return s[14] == '4' && std::string("89ab").find(s[19]) != std::string::npos;
}

class ServerHeaders : public ::testing::Test {
protected:
    static void SetUpTestSuite() { service_ = new ServiceProcess({"--threads", "1"}); }
    static void TearDownTestSuite() {
        EXPECT_EQ(service_->terminate(), 0);
        delete service_;
        service_ = nullptr;
    }

    // GET /v1/whoami with headers; the parsed body (null when not 200).
    static std::pair<HttpResponse, nlohmann::json> whoami(const Headers& headers) {
        auto res = http_request(service_->port(), "GET", "/v1/whoami", headers);
        EXPECT_TRUE(res);
        if (!res) return {};
        // whoami sets no Content-Type field: the server's JSON default applies.
        if (res->status == 200) {
            EXPECT_EQ(res->header("Content-Type"), "application/json");
        }
        auto body = nlohmann::json::parse(res->body, nullptr, false);
        return {*res, body};
    }

    static ServiceProcess* service_;
};
ServiceProcess* ServerHeaders::service_ = nullptr;

TEST_F(ServerHeaders, ValidRequestIdIsKeptAndEchoed) {
    const std::string id = "Req-1._:abc-XYZ";
    auto [res, body] = whoami({{"X-Request-ID", id}});
    EXPECT_EQ(res.header("X-Request-ID"), id);
    EXPECT_EQ(body["request_id"], id);
    const std::string max(128, 'a');
    auto [res2, body2] = whoami({{"X-Request-ID", max}});
    EXPECT_EQ(res2.header("X-Request-ID"), max);
}

TEST_F(ServerHeaders, InvalidRequestIdIsReplacedAndNeverEchoedOrLogged) {
    for (const std::string& bad :
         {std::string("has space"), std::string(129, 'a'), std::string("evil<script>marker"),
          std::string("semi;colon-zz")}) {
        auto [res, body] = whoami({{"X-Request-ID", bad}});
        ASSERT_EQ(res.status, 200);
        const auto id = res.header("X-Request-ID").value_or("");
        EXPECT_TRUE(is_uuid_v4(id)) << id;
        EXPECT_EQ(body["request_id"], id);
        EXPECT_EQ(res.body.find(bad), std::string::npos);
        for (const auto& [name, value] : res.headers) {
            EXPECT_EQ(value.find(bad), std::string::npos) << name;
        }
    }
    // Absent: generated.
    auto [res, body] = whoami({});
    EXPECT_TRUE(is_uuid_v4(res.header("X-Request-ID").value_or("")));
    // Empty: generated.
    auto [res_empty, body_empty] = whoami({{"X-Request-ID", ""}});
    EXPECT_TRUE(is_uuid_v4(res_empty.header("X-Request-ID").value_or("")));
    // Logs are asynchronous: wait for this request's line, then check the markers never appear.
    const std::string last = res_empty.header("X-Request-ID").value_or("?");
    ASSERT_TRUE(wait_until([&] { return service_->output().find(last) != std::string::npos; }));
    const std::string log = service_->output();
    EXPECT_EQ(log.find("evil<script>marker"), std::string::npos);
    EXPECT_EQ(log.find("semi;colon-zz"), std::string::npos);
    EXPECT_EQ(log.find("has space"), std::string::npos);
}

TEST_F(ServerHeaders, ErrorBodiesCarryTheRequestId) {
    auto res = http_request(service_->port(), "GET", "/no/such/path", {{"X-Request-ID", "e-1"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404);
    EXPECT_EQ(res->header("Content-Type"), "application/json");
    EXPECT_EQ(
        res->body,
        R"({"error":{"code":"not_found","message":"No route matches the request path."},"request_id":"e-1"})");
    EXPECT_EQ(res->header("X-Request-ID"), "e-1");
    EXPECT_TRUE(is_lower_hex(res->header("X-Trace-ID").value_or(""), 32));
}

TEST_F(ServerHeaders, ValidTraceparentContinuesTheTrace) {
    const std::string tp = std::string("00-") + kTraceId + "-" + kParentId + "-01";
    auto [res, body] = whoami({{"traceparent", tp}});
    EXPECT_EQ(res.header("X-Trace-ID"), kTraceId);
    EXPECT_EQ(body["trace_id"], kTraceId);
    EXPECT_EQ(body["parent_span_id"], kParentId);
    const std::string span = body["span_id"];
    EXPECT_TRUE(is_lower_hex(span, 16));
    EXPECT_NE(span, kParentId);
    // Header names are case-insensitive.
    auto [res2, body2] = whoami({{"TraceParent", tp}});
    EXPECT_EQ(res2.header("X-Trace-ID"), kTraceId);
}

TEST_F(ServerHeaders, InvalidTraceparentStartsANewTrace) {
    const std::string t = kTraceId;
    const std::string p = kParentId;
    for (const std::string& bad :
         {"00-" + std::string("0AF7651916CD43DD8448EB211C80319C") + "-" + p + "-01",  // upper
          "ff-" + t + "-" + p + "-01",                                                // version ff
          "00-" + std::string(32, '0') + "-" + p + "-01",                             // zero trace
          "00-" + t + "-" + std::string(16, '0') + "-01",                             // zero parent
          "00-" + t + "-" + p + "-01-extra",  // v00 with extra data
          "00-" + t + "-" + p,                // too short
          std::string("garbage")}) {
        auto [res, body] = whoami({{"traceparent", bad}});
        ASSERT_EQ(res.status, 200) << bad;
        const auto trace = res.header("X-Trace-ID").value_or("");
        EXPECT_TRUE(is_lower_hex(trace, 32)) << bad;
        EXPECT_NE(trace, t) << bad;
        EXPECT_TRUE(body["parent_span_id"].is_null()) << bad;
    }
}

TEST_F(ServerHeaders, DuplicatedTraceparentIsInvalid) {
    const std::string tp = std::string("00-") + kTraceId + "-" + kParentId + "-01";
    HttpClient client(service_->port());
    ASSERT_TRUE(client.send_raw("GET /v1/whoami HTTP/1.1\r\nHost: t\r\ntraceparent: " + tp +
                                "\r\nTRACEPARENT: " + tp + "\r\n\r\n"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_NE(res->header("X-Trace-ID"), kTraceId);
    auto body = nlohmann::json::parse(res->body, nullptr, false);
    EXPECT_TRUE(body["parent_span_id"].is_null());
}

TEST_F(ServerHeaders, FutureVersionIsParsedForwardCompatibly) {
    const std::string t = kTraceId;
    const std::string p = kParentId;
    for (const std::string& tp :
         {"01-" + t + "-" + p + "-01", "cc-" + t + "-" + p + "-01-what-ever"}) {
        auto [res, body] = whoami({{"traceparent", tp}});
        EXPECT_EQ(res.header("X-Trace-ID"), t) << tp;
        EXPECT_EQ(body["parent_span_id"], p) << tp;
    }
}

TEST_F(ServerHeaders, UserIdIsTypedOrRejected) {
    auto [res, body] = whoami({{"X-User-ID", "user_42-x"}});
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(body["user"]["id"], "user_42-x");
    auto [anon, anon_body] = whoami({});
    EXPECT_TRUE(anon_body["user"].is_null());
    auto [max, max_body] = whoami({{"X-User-ID", std::string(64, 'u')}});
    EXPECT_EQ(max.status, 200);

    for (const std::string& bad :
         {std::string("bad user"), std::string(65, 'u'), std::string("a.b"), std::string("x@y")}) {
        auto res_bad = http_request(service_->port(), "GET", "/v1/whoami",
                                    {{"X-User-ID", bad}, {"X-Request-ID", "u-1"}});
        ASSERT_TRUE(res_bad);
        EXPECT_EQ(res_bad->status, 400) << bad;
        auto err = nlohmann::json::parse(res_bad->body, nullptr, false);
        EXPECT_EQ(err["error"]["code"], "invalid_user") << bad;
        EXPECT_EQ(err["request_id"], "u-1");
    }
    auto empty = http_request(service_->port(), "GET", "/v1/whoami", {{"X-User-ID", ""}});
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->status, 400);
}

TEST_F(ServerHeaders, TimeoutHeaderSetsTheDeadlineWithinTheCap) {
    auto [res, body] = whoami({{"X-Request-Timeout-Ms", "250"}});
    EXPECT_EQ(res.status, 200);
    EXPECT_LE(body["deadline_remaining_ms"].get<int>(), 250);
    EXPECT_GE(body["deadline_remaining_ms"].get<int>(), 0);
    auto [cap, cap_body] = whoami({{"X-Request-Timeout-Ms", "30000"}});
    EXPECT_EQ(cap.status, 200);
    EXPECT_GT(cap_body["deadline_remaining_ms"].get<int>(), 5000);  // longer than the default
    auto [dflt, dflt_body] = whoami({});
    EXPECT_LE(dflt_body["deadline_remaining_ms"].get<int>(), 5000);

    for (const char* bad : {"0", "-5", "abc", "30001", "1.5", "", "99999999999999999999"}) {
        auto r =
            http_request(service_->port(), "GET", "/v1/whoami", {{"X-Request-Timeout-Ms", bad}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << bad;
        auto err = nlohmann::json::parse(r->body, nullptr, false);
        EXPECT_EQ(err["error"]["code"], "invalid_timeout") << bad;
    }
}

// tracestate is observable where it leaves the service: the outgoing call of /v1/fanout.
TEST(ServerTracestate, KeptOnlyWithAValidParentAndAValidList) {
    RecordingHttpServer downstream;
    ServiceProcess service({"--outbound-allow", downstream.address()});
    const std::string tp = std::string("00-") + kTraceId + "-" + kParentId + "-01";
    const std::string body = R"([{"url":")" + downstream.url("/hop") + R"("}])";
    auto call = [&](const std::string& extra_headers) {
        HttpClient client(service.port());
        EXPECT_TRUE(client.send_raw("POST /v1/fanout HTTP/1.1\r\nHost: t\r\n" + extra_headers +
                                    "Content-Type: application/json\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body));
        auto res = client.read_response();
        EXPECT_TRUE(res);
        if (res) {
            EXPECT_EQ(res->status, 200) << res->body;
        }
    };

    // Valid parent, two tracestate lines: joined in order.
    call("traceparent: " + tp + "\r\ntracestate: a=1\r\ntracestate: b=2\r\n");
    ASSERT_TRUE(downstream.wait_for_requests(1, 10s));
    auto r1 = downstream.requests().back();
    EXPECT_EQ(r1.all("tracestate"), std::vector<std::string>{"a=1,b=2"});
    ASSERT_EQ(r1.all("traceparent").size(), 1U);
    EXPECT_EQ(r1.all("traceparent")[0].substr(3, 32), kTraceId);

    // Invalid parent: a new trace, tracestate dropped.
    call("traceparent: 00-" + std::string(32, 'Z') + "-" + kParentId +
         "-01\r\ntracestate: a=1\r\n");
    ASSERT_TRUE(downstream.wait_for_requests(2, 10s));
    auto r2 = downstream.requests().back();
    EXPECT_TRUE(r2.all("tracestate").empty());
    EXPECT_NE(r2.all("traceparent").at(0).substr(3, 32), kTraceId);

    // Valid parent, an invalid member: the whole header is dropped.
    call("traceparent: " + tp + "\r\ntracestate: a=1,UPPER=2\r\n");
    ASSERT_TRUE(downstream.wait_for_requests(3, 10s));
    EXPECT_TRUE(downstream.requests().back().all("tracestate").empty());

    // More than 32 members: dropped.
    std::string many;
    for (int i = 0; i < 33; ++i)
        many += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
    call("traceparent: " + tp + "\r\ntracestate: " + many + "\r\n");
    ASSERT_TRUE(downstream.wait_for_requests(4, 10s));
    EXPECT_TRUE(downstream.requests().back().all("tracestate").empty());
    EXPECT_EQ(service.terminate(), 0);
}

}  // namespace
}  // namespace reqctx::test
