// Connection handling of the real binary: routing errors, malformed HTTP, body limits,
// keep-alive, pipelining, header (slow-loris) and idle timeouts, graceful shutdown with a
// request in flight.

#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace reqctx::test {
namespace {

std::string error_code_of(const HttpResponse& res) {
    auto body = nlohmann::json::parse(res.body, nullptr, false);
    if (!body.is_object() || !body.contains("error")) return "<no error body: " + res.body + ">";
    return body["error"]["code"].get<std::string>();
}

TEST(ServerConnection, UnknownPathIs404AndWrongMethodIs405WithAllow) {
    ServiceProcess service;
    auto nf = http_request(service.port(), "GET", "/nope?x=1");
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    EXPECT_EQ(error_code_of(*nf), "not_found");
    auto na = http_request(service.port(), "DELETE", "/healthz");
    ASSERT_TRUE(na);
    EXPECT_EQ(na->status, 405);
    EXPECT_EQ(error_code_of(*na), "method_not_allowed");
    EXPECT_EQ(na->header("Allow"), "GET");
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, MalformedRequestGets400JsonThenClose) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(client.send_raw("THIS IS NOT HTTP\r\n\r\n"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(res->header("Content-Type"), "application/json");
    EXPECT_EQ(error_code_of(*res), "invalid_request");
    EXPECT_NE(res->body.find("Malformed HTTP request"), std::string::npos) << res->body;
    EXPECT_TRUE(res->header("X-Request-ID"));
    EXPECT_EQ(res->header("X-Trace-ID").value_or("").size(), 32U);  // every response has one
    EXPECT_TRUE(client.wait_closed(10s));

    HttpClient bad_header(service.port());
    ASSERT_TRUE(bad_header.send_raw("GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n"));
    auto res2 = bad_header.read_response();
    ASSERT_TRUE(res2);
    EXPECT_EQ(res2->status, 400);
    EXPECT_TRUE(bad_header.wait_closed(10s));
    EXPECT_EQ(service.terminate(), 0);
}

// RFC 9112 6.3: a Transfer-Encoding whose final coding is not chunked cannot be framed; reading
// on would take its body for the next request (request smuggling).
TEST(ServerConnection, TransferEncodingNotEndingInChunkedIs400ThenClose) {
    ServiceProcess service;
    for (const char* coding : {"gzip", "chunked, gzip"}) {
        HttpClient client(service.port());
        ASSERT_TRUE(client.send_raw(std::string("POST /v1/events HTTP/1.1\r\nHost: t\r\n"
                                                "Transfer-Encoding: ") +
                                    coding +
                                    "\r\n\r\nGET /v1/whoami HTTP/1.1\r\nHost: t\r\n"
                                    "X-Request-ID: smuggled\r\n\r\n"));
        auto res = client.read_response();
        ASSERT_TRUE(res) << coding;
        EXPECT_EQ(res->status, 400) << coding;
        EXPECT_EQ(error_code_of(*res), "invalid_request") << coding;
        EXPECT_EQ(res->header("Connection"), "close") << coding;
        EXPECT_TRUE(client.wait_closed(10s)) << coding;  // and no answer to the smuggled request
    }
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, Http11WithoutExactlyOneHostIs400) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(client.send_raw("GET /healthz HTTP/1.1\r\n\r\n"));
    auto none = client.read_response();
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 400);
    EXPECT_EQ(error_code_of(*none), "invalid_request");
    ASSERT_TRUE(client.send_raw("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
    auto two = client.read_response();
    ASSERT_TRUE(two);
    EXPECT_EQ(two->status, 400);
    ASSERT_TRUE(client.send_raw("GET /healthz HTTP/1.0\r\n\r\n"));  // 1.0: Host optional
    auto old = client.read_response();
    ASSERT_TRUE(old);
    EXPECT_EQ(old->status, 200);
    EXPECT_EQ(service.terminate(), 0);
}

// RFC 9112 3.2.2: a server must accept the absolute-form a client sends to a proxy.
TEST(ServerConnection, AbsoluteFormTargetIsRoutedByItsPath) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(client.send_raw("GET http://t/healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, R"({"status":"ok"})");
    EXPECT_EQ(service.terminate(), 0);
}

// The deadline runs from the header: a body that arrives after it is answered 504, the handler
// does not run.
TEST(ServerConnection, BodyArrivingAfterTheDeadlineIs504) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(
        client.send_raw("POST /v1/events HTTP/1.1\r\nHost: t\r\nX-Request-Timeout-Ms: 1\r\n"
                        "Content-Length: 31\r\n\r\n"));
    // The deadline is 1 ms after the header: wait until it has surely passed (a bounded wait on
    // the clock, not on the server).
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(client.send_raw(R"({"topic":"t","payload":{"n":1}})"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 504);
    EXPECT_EQ(error_code_of(*res), "deadline_exceeded");
    EXPECT_EQ(service.terminate(), 0);
}

// A body still arriving when the deadline passes is answered 504 then (not at the idle timeout,
// a minute by default); the connection closes, its framing lost.
TEST(ServerConnection, BodyStalledPastTheDeadlineIs504AtTheDeadline) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(
        client.send_raw("PUT /v1/cache/k HTTP/1.1\r\nHost: t\r\nX-Request-Timeout-Ms: 200\r\n"
                        "Content-Length: 10\r\n\r\nab"));
    auto res = client.read_response();  // the client's own read gives up after 10 s
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 504);
    EXPECT_EQ(error_code_of(*res), "deadline_exceeded");
    EXPECT_EQ(res->header("Connection"), "close");
    EXPECT_EQ(service.terminate(), 0);
}

// The deadline runs from the request's first byte: a header trickling in past it is 504.
TEST(ServerConnection, HeaderTricklingPastTheDeadlineIs504) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(
        client.send_raw("GET /v1/whoami HTTP/1.1\r\nHost: t\r\nX-Request-Timeout-Ms: 20\r\n"));
    std::this_thread::sleep_for(100ms);  // the clock passing the deadline is the point here
    ASSERT_TRUE(client.send_raw("\r\n"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 504);
    EXPECT_EQ(error_code_of(*res), "deadline_exceeded");
    EXPECT_EQ(service.terminate(), 0);
}

// RFC 9110 9.3.2: an answer to HEAD has the head an answer to GET would have, and no content;
// a keep-alive client reading the next answer stays in step.
TEST(ServerConnection, AnswerToHeadHasNoBody) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(client.send_raw(
        "HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto head = client.read_response(/*to_head=*/true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 405);
    EXPECT_EQ(head->header("Allow"), "GET");
    EXPECT_NE(head->header("Content-Length").value_or("0"), "0");  // what GET's would say
    auto next = client.read_response();
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200);
    EXPECT_EQ(next->body, R"({"status":"ok"})");
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, ExpectContinueOnAnUnknownPathGetsTheFinalAnswerAtOnce) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(client.send_raw(
        "POST /nope HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404);  // not 100 Continue: the body is not wanted
    EXPECT_EQ(res->header("Connection"), "close");
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, OversizedBodyIs413) {
    ServiceProcess service({"--max-body-bytes", "100"});
    // Declared length over the limit: answered from the header, as the request it is (its IDs,
    // its route), like every other answer.
    auto res =
        http_request(service.port(), "POST", "/v1/whoami",
                     {{"X-Request-ID", "too-big-1"},
                      {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
                     std::string(101, 'x'));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 413);
    EXPECT_EQ(error_code_of(*res), "body_too_large");
    EXPECT_EQ(res->header("X-Request-ID"), "too-big-1");
    EXPECT_EQ(res->header("X-Trace-ID"), "4bf92f3577b34da6a3ce929d0e0e4736");
    // Chunked body growing over the limit.
    HttpClient chunked(service.port());
    ASSERT_TRUE(chunked.send_raw(
        "POST /v1/whoami HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
        "\r\n\r\n40\r\n" +
        std::string(64, 'a') + "\r\n40\r\n" + std::string(64, 'b') + "\r\n0\r\n\r\n"));
    auto res2 = chunked.read_response();
    ASSERT_TRUE(res2);
    EXPECT_EQ(res2->status, 413);
    EXPECT_EQ(error_code_of(*res2), "body_too_large");
    // Within the limit: routed (405 here, as whoami is GET only).
    auto ok = http_request(service.port(), "POST", "/v1/whoami", {}, std::string(100, 'x'));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 405);
    auto metrics = http_request(service.port(), "GET", "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find(
                  R"(http_requests_total{method="POST",route="/v1/whoami",status="413"} 2)"),
              std::string::npos)
        << metrics->body;
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, KeepAliveServesManyRequestsOnOneConnection) {
    ServiceProcess service;
    HttpClient client(service.port());
    for (int i = 0; i < 5; ++i) {
        auto res = client.request("GET", "/healthz", {{"X-Request-ID", "ka-" + std::to_string(i)}});
        ASSERT_TRUE(res) << i;
        EXPECT_EQ(res->status, 200);
        EXPECT_EQ(res->header("X-Request-ID"), "ka-" + std::to_string(i));
    }
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, PipelinedRequestsAreAnsweredInOrder) {
    ServiceProcess service;
    HttpClient client(service.port());
    std::string batch;
    for (int i = 0; i < 4; ++i) {
        batch += "GET /" + std::string(i % 2 == 0 ? "healthz" : "v1/whoami") +
                 " HTTP/1.1\r\nHost: t\r\nX-Request-ID: p-" + std::to_string(i) + "\r\n\r\n";
    }
    ASSERT_TRUE(client.send_raw(batch));
    for (int i = 0; i < 4; ++i) {
        auto res = client.read_response();
        ASSERT_TRUE(res) << i;
        EXPECT_EQ(res->status, 200);
        EXPECT_EQ(res->header("X-Request-ID"), "p-" + std::to_string(i));
    }
    // A request split across writes right after a response still works.
    ASSERT_TRUE(client.send_raw("GET /healthz HTTP/1.1\r\nHo"));
    ASSERT_TRUE(client.send_raw("st: t\r\n\r\n"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, Http10KeepsAliveOnlyWhenAsked) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(client.send_raw("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->header("Connection"), "keep-alive");
    EXPECT_EQ(res->header("Content-Length"), std::to_string(res->body.size()));
    // Still open: a second request on the same connection is answered, then closed because
    // this one does not ask to keep the connection.
    ASSERT_TRUE(client.send_raw("GET /v1/whoami HTTP/1.0\r\n\r\n"));
    res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_FALSE(res->header("Connection"));
    EXPECT_TRUE(client.wait_closed(10s));
    EXPECT_EQ(service.terminate(), 0);
}

// Every Connection line counts (RFC 9110 7.6.1: the field is a list, and repeated lines are
// one list), not only the first.
TEST(ServerConnection, CloseInALaterConnectionLineEndsTheConnection) {
    ServiceProcess service;
    HttpClient client(service.port());
    ASSERT_TRUE(client.send_raw(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: foo\r\nConnection: close\r\n\r\n"));
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->header("Connection"), "close");
    EXPECT_TRUE(client.wait_closed(10s));
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, EveryResponseCarriesItsFramingAndIds) {
    ServiceProcess service;
    HttpClient client(service.port());
    for (const char* target : {"/healthz", "/v1/whoami", "/nope", "/metrics"}) {
        auto res = client.request("GET", target, {{"X-Request-ID", "framing-1"}});
        ASSERT_TRUE(res) << target;
        EXPECT_EQ(res->header("Content-Length"), std::to_string(res->body.size())) << target;
        EXPECT_EQ(res->header("X-Request-ID"), "framing-1") << target;
        EXPECT_EQ(res->header("X-Trace-ID").value_or("").size(), 32U) << target;
        EXPECT_TRUE(res->header("Date")) << target;
        EXPECT_FALSE(res->header("Connection")) << target;  // HTTP/1.1 keep-alive is implied
    }
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, SlowHeaderGetsTheConnectionClosed) {
    ServiceProcess service({"--header-timeout-ms", "200"});
    HttpClient slow(service.port());
    ASSERT_TRUE(slow.send_raw("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "));
    EXPECT_TRUE(slow.wait_closed(10s));
    // Nothing to answer, but the begun request is recorded (a 408).
    EXPECT_TRUE(wait_until([&] {
        const std::string out = service.output();
        return out.find(R"("status":408)") != std::string::npos;
    })) << service.output();
    // Connecting and sending nothing is closed too.
    HttpClient silent(service.port());
    EXPECT_TRUE(silent.wait_closed(10s));
    // The server keeps serving.
    auto res = http_request(service.port(), "GET", "/healthz");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(service.terminate(), 0);
}

// A body that stalls past the idle timeout is the server's timeout, not the client leaving: the
// connection is closed and the request is recorded as 408 with no cancel reason.
TEST(ServerConnection, StalledBodyIsClosedAndRecordedAsATimeout) {
    ServiceProcess service({"--idle-timeout-ms", "200"});
    HttpClient slow(service.port());
    ASSERT_TRUE(
        slow.send_raw("POST /v1/events HTTP/1.1\r\nHost: t\r\nX-Request-ID: stalled-1\r\n"
                      "Content-Length: 10\r\n\r\n{"));
    EXPECT_TRUE(slow.wait_closed(10s));
    ASSERT_TRUE(wait_until(
        [&] { return service.output().find(R"("request_id":"stalled-1")") != std::string::npos; }));
    const std::string log = service.output();
    const std::string line = log.substr(log.find(R"("request_id":"stalled-1")"));
    const std::string first_line = line.substr(0, line.find('\n'));
    EXPECT_NE(first_line.find(R"("status":408)"), std::string::npos) << first_line;
    EXPECT_NE(first_line.find(R"("cancel_reason":null)"), std::string::npos) << first_line;
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, IdleKeepAliveConnectionIsClosed) {
    ServiceProcess service({"--idle-timeout-ms", "200"});
    HttpClient client(service.port());
    auto res = client.request("GET", "/healthz");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_TRUE(client.wait_closed(10s));
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, GracefulShutdownFinishesTheRequestInFlight) {
    ServiceProcess service({"--shutdown-grace-ms", "10000"});
    // A request in flight: its header is in, its body is still coming.
    HttpClient inflight(service.port());
    ASSERT_TRUE(
        inflight.send_raw("POST /v1/whoami HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                          "last-1\r\nContent-Length: 6\r\n\r\nabc"));
    ASSERT_TRUE(wait_until([&] {
        auto m = http_request(service.port(), "GET", "/metrics");
        return m && m->body.find("http_requests_in_flight 2") != std::string::npos;
    }));  // 2: the in-flight POST and the /metrics request itself

    service.process().signal(SIGTERM);
    // The listener closes: new connections are refused.
    ASSERT_TRUE(wait_until([&] { return !wait_for_port(service.port(), 50ms); }));
    ASSERT_TRUE(inflight.send_raw("def"));
    auto res = inflight.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 405);  // the request was served to its end
    EXPECT_EQ(res->header("Connection"), "close");
    EXPECT_EQ(res->header("X-Request-ID"), "last-1");

    EXPECT_EQ(service.process().wait_exit(20s), 0);
    const std::string log = service.output();
    const auto last_line_start = log.rfind('\n', log.size() - 2);
    const std::string last = log.substr(last_line_start == std::string::npos ? 0 : last_line_start);
    EXPECT_NE(last.find(R"("leaked_tasks":0)"), std::string::npos) << log;
}

// A second SIGTERM/SIGINT ends the grace at once; the shutdown still completes in order.
TEST(ServerConnection, SecondSignalEndsTheGraceAtOnce) {
    ServiceProcess service({"--shutdown-grace-ms", "600000"});
    HttpClient inflight(service.port());
    ASSERT_TRUE(
        inflight.send_raw("POST /v1/whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nabc"));
    ASSERT_TRUE(wait_until([&] {
        auto m = http_request(service.port(), "GET", "/metrics");
        return m && m->body.find("http_requests_in_flight 2") != std::string::npos;
    }));
    service.process().signal(SIGTERM);
    ASSERT_TRUE(
        wait_until([&] { return service.output().find("shutdown started") != std::string::npos; }));
    service.process().signal(SIGTERM);
    EXPECT_EQ(service.process().wait_exit(20s), 0);  // not the ten minutes of grace
    const std::string log = service.output();
    EXPECT_NE(log.find("signal received again"), std::string::npos) << log;
    EXPECT_NE(log.find(R"("leaked_tasks":0)"), std::string::npos) << log;
}

TEST(ServerConnection, ShutdownClosesConnectionsThatHaveNoRequestAtOnce) {
    // Timeouts and grace far beyond the bounds below: only the drain can close these in time.
    ServiceProcess service({"--shutdown-grace-ms", "60000", "--header-timeout-ms", "60000",
                            "--idle-timeout-ms", "60000"});
    HttpClient kept(service.port());
    auto res = kept.request("GET", "/healthz");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    HttpClient silent(service.port());  // connected, never sends a byte

    service.process().signal(SIGTERM);
    EXPECT_TRUE(kept.wait_closed(20s));
    EXPECT_TRUE(silent.wait_closed(20s));
    EXPECT_EQ(service.process().wait_exit(20s), 0);
}

TEST(ServerConnection, MetricsExposeTheHttpFamiliesWithRoutePatterns) {
    ServiceProcess service;
    ASSERT_TRUE(http_request(service.port(), "GET", "/healthz"));
    ASSERT_TRUE(http_request(service.port(), "GET", "/v1/cache/some%20key"));
    ASSERT_TRUE(http_request(service.port(), "GET", "/nothing/here"));
    auto res = http_request(service.port(), "GET", "/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_NE(res->header("Content-Type").value_or("").find("version=0.0.4"), std::string::npos);
    const std::string& m = res->body;
    for (const char* name :
         {"http_requests_total{", "http_request_duration_seconds_bucket{",
          "http_requests_in_flight", "http_requests_cancelled_total{reason=\"client_disconnect\"}",
          "http_requests_cancelled_total{reason=\"deadline\"}",
          "http_requests_cancelled_total{reason=\"shutdown\"}", "reqctx_contexts_live"}) {
        EXPECT_NE(m.find(name), std::string::npos) << name;
    }
    EXPECT_NE(m.find(R"(route="/healthz",status="200")"), std::string::npos) << m;
    EXPECT_NE(m.find(R"(route="/v1/cache/{key}")"), std::string::npos) << m;
    EXPECT_NE(m.find(R"(route="unmatched",status="404")"), std::string::npos) << m;
    EXPECT_EQ(m.find("some%20key"), std::string::npos);
    EXPECT_EQ(m.find("/nothing/here"), std::string::npos);
    EXPECT_EQ(service.terminate(), 0);
}

// A client that holds its response and then scrapes finds its request counted, no longer in
// flight and its contexts released, even when the scrape is served by another I/O thread
// (connections are spread over the threads in turn, so the two below land on different ones).
TEST(ServerConnection, AnsweredRequestIsCountedBeforeItsClientCanScrape) {
    ServiceProcess service({"--threads", "2"});
    HttpClient worker(service.port());
    HttpClient scraper(service.port());
    const std::string counted =
        R"(http_requests_total{method="GET",route="/healthz",status="200"} )";
    long contexts_live = 0;
    for (int i = 1; i <= 200; ++i) {
        auto res = worker.request("GET", "/healthz");
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 200);
        auto scrape = scraper.request("GET", "/metrics");
        ASSERT_TRUE(scrape);
        const std::string& m = scrape->body;
        ASSERT_NE(m.find(counted + std::to_string(i) + "\n"), std::string::npos)
            << "after request " << i << ":\n"
            << m;
        // Only the scrape itself is in flight.
        ASSERT_NE(m.find("\nhttp_requests_in_flight 1\n"), std::string::npos)
            << "after request " << i << ":\n"
            << m;
        // Live contexts: the two connections' and the scrape's own. Start-up leftovers (the
        // readiness probe's connection closing) may go at any time: never more than at first.
        const std::size_t at = m.find("\nreqctx_contexts_live ");
        ASSERT_NE(at, std::string::npos) << m;
        const long live = std::stol(m.substr(at + std::strlen("\nreqctx_contexts_live ")));
        if (i == 1) contexts_live = live;
        ASSERT_LE(live, contexts_live) << "after request " << i;
    }
    EXPECT_EQ(service.terminate(), 0);
}

TEST(ServerConnection, DebugContextsOnlyWithTheFlag) {
    ServiceProcess plain;
    auto off = http_request(plain.port(), "GET", "/debug/contexts");
    ASSERT_TRUE(off);
    EXPECT_EQ(off->status, 404);
    EXPECT_EQ(plain.terminate(), 0);

    ServiceProcess debug({"--enable-debug"});
    auto on = http_request(debug.port(), "GET", "/debug/contexts");
    ASSERT_TRUE(on);
    EXPECT_EQ(on->status, 200);
    auto body = nlohmann::json::parse(on->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << on->body;
    EXPECT_EQ(body["requests_in_flight"], 1);  // this request
    EXPECT_TRUE(body["contexts_live"].is_number());
    EXPECT_TRUE(body["background_tasks"].is_array());
    EXPECT_EQ(body["semaphore"]["capacity"], 64);
    EXPECT_EQ(body["semaphore"]["in_use"], 0);
    EXPECT_EQ(body["semaphore"]["waiters"], 0);
    EXPECT_EQ(debug.terminate(), 0);
}

TEST(ServerConnection, LogLinesAreJsonWithRequestIds) {
    ServiceProcess service;
    ASSERT_TRUE(http_request(service.port(), "GET", "/healthz", {{"X-Request-ID", "log-1"}}));
    ASSERT_TRUE(wait_until([&] { return service.output().find("log-1") != std::string::npos; }));
    std::string line;
    const std::string out = service.output();
    const auto at = out.find("log-1");
    const auto start = out.rfind('\n', at);
    const auto end = out.find('\n', at);
    line = out.substr(start == std::string::npos ? 0 : start + 1, end - start - 1);
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_EQ(j["request_id"], "log-1");
    EXPECT_EQ(j["route"], "/healthz");
    EXPECT_EQ(j["method"], "GET");
    EXPECT_EQ(j["status"], 200);
    EXPECT_TRUE(j["trace_id"].is_string());
    EXPECT_TRUE(j["span_id"].is_string());
    EXPECT_TRUE(j["duration_ms"].is_number());
    EXPECT_EQ(j["bytes"], 15);
    EXPECT_TRUE(j["cancel_reason"].is_null());
    EXPECT_EQ(service.terminate(), 0);
}

}  // namespace
}  // namespace reqctx::test
