#include "handlers/fanout.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include "clients/propagation.hpp"
#include "tests/support/recording_http_server.hpp"

namespace reqctx {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using test::RecordingHttpServer;

const std::vector<AllowedTarget> kAllow = {{"127.0.0.1", 7777}, {"LocalHost", 8080}, {"::1", 9}};

const InputError* error_of(const std::variant<std::vector<FanoutCall>, InputError>& r) {
    return std::get_if<InputError>(&r);
}

// ---- parsing (pure) ----------------------------------------------------------------------

TEST(FanoutParse, ArrayOfCalls) {
    auto r = parse_fanout_request(
        R"([{"url":"http://127.0.0.1:7777/a","arguments":[{"url":"x"}]},
            {"url":"http://localhost:8080/b?q=1"},
            {"url":"http://[::1]:9/c","arguments":null}])",
        kAllow);
    ASSERT_FALSE(error_of(r)) << error_of(r)->message;
    const auto& calls = std::get<std::vector<FanoutCall>>(r);
    ASSERT_EQ(calls.size(), 3u);
    EXPECT_EQ(calls[0].url, "http://127.0.0.1:7777/a");
    EXPECT_EQ(calls[0].target.target, "/a");
    EXPECT_EQ(calls[0].body, R"([{"url":"x"}])");
    EXPECT_EQ(calls[1].body, "[]");  // absent arguments
    EXPECT_EQ(calls[1].target.target, "/b?q=1");
    EXPECT_EQ(calls[2].body, "null");
}

TEST(FanoutParse, SingleObjectIsOneCall) {
    auto r =
        parse_fanout_request(R"({"url":"http://127.0.0.1:7777/x","arguments":{"a":1}})", kAllow);
    ASSERT_FALSE(error_of(r));
    const auto& calls = std::get<std::vector<FanoutCall>>(r);
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].body, R"({"a":1})");
}

TEST(FanoutParse, EmptyArrayIsNoCalls) {
    auto r = parse_fanout_request("[]", kAllow);
    ASSERT_FALSE(error_of(r));
    EXPECT_TRUE(std::get<std::vector<FanoutCall>>(r).empty());
}

TEST(FanoutParse, InvalidJson) {
    auto r = parse_fanout_request("[{\"url\":", kAllow);
    ASSERT_TRUE(error_of(r));
    EXPECT_EQ(error_of(r)->code, "invalid_json");
}

TEST(FanoutParse, WrongShapeIsInvalidRequest) {
    for (std::string_view body : {"1", "\"x\"", "null", "[1]", "[{}]", R"([{"url":1}])",
                                  R"([{"arguments":[]}])", R"({"url":null})"}) {
        auto r = parse_fanout_request(body, kAllow);
        ASSERT_TRUE(error_of(r)) << body;
        EXPECT_EQ(error_of(r)->code, "invalid_request") << body;
    }
}

TEST(FanoutParse, AtMost16Calls) {
    json calls = json::array();
    for (int i = 0; i < 16; ++i) calls.push_back({{"url", "http://127.0.0.1:7777/"}});
    EXPECT_FALSE(error_of(parse_fanout_request(calls.dump(), kAllow)));
    calls.push_back({{"url", "http://127.0.0.1:7777/"}});
    auto r = parse_fanout_request(calls.dump(), kAllow);
    ASSERT_TRUE(error_of(r));
    EXPECT_EQ(error_of(r)->code, "invalid_request");
}

TEST(FanoutParse, OnlyAllowedPlainHttpTargets) {
    for (std::string_view url :
         {"http://127.0.0.1:7778/", "http://127.0.0.2:7777/", "https://127.0.0.1:7777/",
          "http://127.0.0.1/", "http://localhost:7777/", "http://evil:7777/",
          "http://127.0.0.1:7777@evil:7777/", "ftp://127.0.0.1:7777/", "not a url",
          "http://[::2]:9/", "//127.0.0.1:7777/"}) {
        json body = json::array({{{"url", "http://127.0.0.1:7777/ok"}}, {{"url", url}}});
        auto r = parse_fanout_request(body.dump(), kAllow);
        ASSERT_TRUE(error_of(r)) << url;
        EXPECT_EQ(error_of(r)->code, "url_not_allowed") << url;
    }
    // Host names compare case-insensitively; IP literals canonically.
    EXPECT_FALSE(error_of(parse_fanout_request(R"({"url":"http://LOCALHOST:8080/"})", kAllow)));
    EXPECT_FALSE(error_of(parse_fanout_request(R"({"url":"http://[0:0::1]:9/"})", kAllow)));
}

// ---- the handler against a real listener ------------------------------------------------

Response run(net::io_context& io, const Handler& h, Context ctx, const Request& req) {
    RouteParams params;
    auto fut = net::co_spawn(io, h(std::move(ctx), req, params), net::use_future);
    io.restart();
    io.run();
    return fut.get();
}

Request fanout_request(std::string body) {
    Request req{http::verb::post, "/v1/fanout", 11};
    req.add_field(http::field::content_type, "application/json");
    req.body() = std::move(body);
    return req;
}

Context request_context(Context parent) {
    auto tp = parse_traceparent(
        std::vector<std::string_view>{"00-12345678901234567890123456789012-1234567890123456-01"});
    Context ctx = with_value(std::move(parent), kTraceKey, make_trace_context(tp, "k=v"));
    return with_value(ctx, kRequestIdKey, RequestId{"fanout-test"});
}

TEST(FanoutHandler, CallsEachUrlInOrderWithPropagation) {
    RecordingHttpServer server;
    server.respond_with("/teapot", 418);
    net::io_context io;
    HttpClient client;
    Handler h = make_fanout_handler(client, {{"127.0.0.1", server.port()}});
    json body = json::array({{{"url", server.url("/one")}, {"arguments", {{"a", 1}}}},
                             {{"url", server.url("/teapot")}},
                             {{"url", server.url("/three")}, {"arguments", json::array()}}});
    auto [ctx, cancel] = with_timeout(request_context(background()), 5s);
    Response res = run(io, h, ctx, fanout_request(body.dump()));
    ASSERT_EQ(res.result_int(), 200) << res.body();
    const json out = json::parse(res.body());
    ASSERT_EQ(out["calls"].size(), 3u);
    EXPECT_EQ(out["calls"][0]["url"], server.url("/one"));
    EXPECT_EQ(out["calls"][0]["status"], 200);
    EXPECT_TRUE(out["calls"][0]["duration_ms"].is_number());
    EXPECT_EQ(out["calls"][1]["status"], 418);
    const auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 3u);
    EXPECT_EQ(reqs[0].target, "/one");
    EXPECT_EQ(reqs[0].body, R"({"a":1})");
    EXPECT_EQ(reqs[1].body, "[]");
    EXPECT_EQ(reqs[2].target, "/three");
    for (const auto& r : reqs) {
        ASSERT_EQ(r.all("traceparent").size(), 1u);
        EXPECT_EQ(r.all("traceparent")[0].substr(0, 36), "00-12345678901234567890123456789012-");
        EXPECT_EQ(r.header("tracestate"), "k=v");
        EXPECT_EQ(r.header("X-Request-ID"), "fanout-test");
        ASSERT_TRUE(r.header("X-Request-Timeout-Ms"));
        EXPECT_LT(std::stoi(*r.header("X-Request-Timeout-Ms")), 5000);
    }
}

TEST(FanoutHandler, ConnectFailureIsReportedAndTheRestStillRun) {
    RecordingHttpServer server;
    unsigned short dead = 0;
    {
        RecordingHttpServer gone;
        dead = gone.port();
    }
    net::io_context io;
    HttpClient client;
    Handler h = make_fanout_handler(client, {{"127.0.0.1", server.port()}, {"127.0.0.1", dead}});
    const std::string dead_url = "http://127.0.0.1:" + std::to_string(dead) + "/";
    json body = json::array({{{"url", dead_url}}, {{"url", server.url("/after")}}});
    Response res = run(io, h, request_context(background()), fanout_request(body.dump()));
    ASSERT_EQ(res.result_int(), 200) << res.body();
    const json out = json::parse(res.body());
    EXPECT_EQ(out["calls"][0], (json{{"url", dead_url}, {"error", "connect_failed"}}));
    EXPECT_EQ(out["calls"][1]["status"], 200);
}

TEST(FanoutHandler, RefusedUrlMeansNoCallAtAll) {
    RecordingHttpServer server;
    net::io_context io;
    HttpClient client;
    Handler h = make_fanout_handler(client, {{"127.0.0.1", server.port()}});
    json body = json::array({{{"url", server.url("/ok")}}, {{"url", "http://127.0.0.1:1/"}}});
    Response res = run(io, h, request_context(background()), fanout_request(body.dump()));
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(json::parse(res.body())["error"]["code"], "url_not_allowed");
    EXPECT_EQ(json::parse(res.body())["request_id"], "fanout-test");
    EXPECT_EQ(server.request_count(), 0u);
    EXPECT_EQ(server.connection_count(), 0u);
}

TEST(FanoutHandler, DeadlineGives504WithPartialResults) {
    RecordingHttpServer server;
    server.hang_on("/hang");
    net::io_context io;
    HttpClient client;
    Handler h = make_fanout_handler(client, {{"127.0.0.1", server.port()}});
    json body = json::array({{{"url", server.url("/ok")}},
                             {{"url", server.url("/hang")}},
                             {{"url", server.url("/never")}}});
    auto [ctx, cancel] = with_timeout(request_context(background()), 300ms);
    Response res = run(io, h, ctx, fanout_request(body.dump()));
    EXPECT_EQ(res.result_int(), 504) << res.body();
    const json out = json::parse(res.body());
    EXPECT_EQ(out["error"]["code"], "deadline_exceeded");
    ASSERT_EQ(out["calls"].size(), 2u);
    EXPECT_EQ(out["calls"][0]["status"], 200);
    EXPECT_EQ(out["calls"][1]["error"], "deadline_exceeded");
    EXPECT_EQ(server.request_count(), 2u);  // /never was not called
}

TEST(FanoutHandler, CancelStopsTheRemainingCalls) {
    RecordingHttpServer server;
    server.hang_on("/hang");
    net::io_context io;
    HttpClient client;
    Handler h = make_fanout_handler(client, {{"127.0.0.1", server.port()}});
    json body = json::array({{{"url", server.url("/hang")}}, {{"url", server.url("/never")}}});
    auto [ctx, cancel] = with_cancel(request_context(background()));
    std::thread canceller([&server, &cancel] {
        server.wait_for_requests(1, 10s);
        cancel.cancel();
    });
    Response res = run(io, h, ctx, fanout_request(body.dump()));
    canceller.join();
    EXPECT_NE(res.result_int(), 200);
    EXPECT_EQ(server.request_count(), 1u);
    EXPECT_TRUE(server.wait_connections_closed(10s));
}

}  // namespace
}  // namespace reqctx
