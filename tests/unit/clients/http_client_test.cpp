#include "clients/http/client.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "clients/http/error.hpp"
#include "clients/propagation.hpp"
#include "tests/support/recording_http_server.hpp"

namespace reqctx {
namespace {

using namespace std::chrono_literals;
using test::RecordingHttpServer;
using tcp = net::ip::tcp;

// Runs one coroutine to completion on a single-threaded io_context.
template <class T>
T run(net::io_context& io, net::awaitable<T> a) {
    auto fut = net::co_spawn(io, std::move(a), net::use_future);
    io.restart();
    io.run();
    return fut.get();
}

TraceContext sample_trace(std::uint8_t flags, std::string tracestate) {
    auto tp = parse_traceparent(
        std::vector<std::string_view>{"00-12345678901234567890123456789012-1234567890123456-00"});
    TraceContext tc = make_trace_context(tp, std::move(tracestate));
    tc.flags = flags;
    return tc;
}

Context request_context(Context parent, std::uint8_t flags = 0x01, std::string state = "") {
    Context ctx = with_value(std::move(parent), kTraceKey, sample_trace(flags, std::move(state)));
    return with_value(ctx, kRequestIdKey, RequestId{"req-1"});
}

// A port nothing listens on (bound, then released).
unsigned short closed_port() {
    net::io_context io;
    tcp::acceptor a(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// ---- URLs ------------------------------------------------------------------------------

// Fanout reports a failed call by this name: the HTTP contract spells it "cancelled".
TEST(HttpClientError, NamesUseTheContractsSpelling) {
    EXPECT_EQ(error_name(make_error_code(ContextErrc::canceled)), "cancelled");
    EXPECT_EQ(error_name(make_error_code(ContextErrc::deadline_exceeded)), "deadline_exceeded");
    EXPECT_EQ(error_name(make_error_code(HttpClientErrc::connect_failed)), "connect_failed");
}

TEST(HttpUrl, ParsesPlainHttp) {
    auto u = parse_http_url("http://127.0.0.1:8080/a/b?x=1#frag");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "127.0.0.1");
    EXPECT_EQ(u->port, 8080);
    EXPECT_EQ(u->target, "/a/b?x=1");
    EXPECT_EQ(u->authority(), "127.0.0.1:8080");
    u = parse_http_url("HTTP://LocalHost");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "localhost");
    EXPECT_EQ(u->port, 80);
    EXPECT_EQ(u->target, "/");
    u = parse_http_url("http://[::1]:9/");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "::1");
    EXPECT_EQ(u->authority(), "[::1]:9");
}

TEST(HttpUrl, RefusesEverythingElse) {
    for (std::string_view bad :
         {"https://127.0.0.1:1/", "ftp://h/", "//127.0.0.1:80/", "/path", "http:/x",
          "http://user@127.0.0.1:80/", "http://127.0.0.1:80@evil:80/", "http://127.0.0.1:0/",
          "http://127.0.0.1:99999/", "http://127.0.0.1:/", "http://%31%32%37.0.0.1:80/",
          "http://[v1.x]:80/", "", "not a url", "http://"}) {
        const auto u = parse_http_url(bad);
        EXPECT_FALSE(u) << bad;
        if (!u) {
            EXPECT_EQ(u.error(), HttpClientErrc::invalid_url) << bad;
        }
    }
}

// ---- propagation headers -----------------------------------------------------------------

TEST(PropagationHeaders, SetsEveryHeaderFromTheContext) {
    auto [ctx, cancel] = with_timeout(request_context(background(), 0xff, "foo=1"), 2s);
    http::fields fields;
    fields.set("traceparent", "stale");
    SpanId span{};
    span[7] = 0x42;
    ASSERT_FALSE(set_propagation_headers(ctx, Clock::now(), span, fields));
    EXPECT_EQ(fields["traceparent"], "00-12345678901234567890123456789012-0000000000000042-03");
    EXPECT_EQ(fields["tracestate"], "foo=1");
    EXPECT_EQ(fields["X-Request-ID"], "req-1");
    const int left = std::stoi(std::string(fields["X-Request-Timeout-Ms"]));
    EXPECT_GE(left, 1);
    EXPECT_LE(left, 2000);
    EXPECT_EQ(std::distance(fields.equal_range("traceparent").first,
                            fields.equal_range("traceparent").second),
              1);
}

TEST(PropagationHeaders, NoTracestateOrTimeoutWhenAbsent) {
    http::fields fields;
    ASSERT_FALSE(set_propagation_headers(request_context(background()), Clock::now(),
                                         random_span_id(), fields));
    EXPECT_EQ(fields.count("tracestate"), 0u);
    EXPECT_EQ(fields.count("X-Request-Timeout-Ms"), 0u);
}

TEST(PropagationHeaders, NewTraceWithoutOne) {
    http::fields fields;
    ASSERT_FALSE(set_propagation_headers(background(), Clock::now(), random_span_id(), fields));
    const auto tp = parse_traceparent({fields["traceparent"]});
    ASSERT_TRUE(tp);
    EXPECT_EQ(tp->flags, 0x03);
    EXPECT_EQ(fields.count("X-Request-ID"), 0u);
}

TEST(PropagationHeaders, NoTimeLeftMeansNoCall) {
    auto [ctx, cancel] = with_timeout(background(), 1h);
    http::fields fields;
    const auto deadline = *ctx.deadline();
    EXPECT_EQ(set_propagation_headers(ctx, deadline, random_span_id(), fields),
              ContextErrc::deadline_exceeded);
    EXPECT_EQ(set_propagation_headers(ctx, deadline - 999us, random_span_id(), fields),
              ContextErrc::deadline_exceeded);
    EXPECT_FALSE(set_propagation_headers(ctx, deadline - 1ms, random_span_id(), fields));
    EXPECT_EQ(fields["X-Request-Timeout-Ms"], "1");
    cancel.cancel();
    EXPECT_EQ(set_propagation_headers(ctx, Clock::now(), random_span_id(), fields),
              ContextErrc::canceled);
}

// ---- client against a real listener ------------------------------------------------------

TEST(HttpClient, PostsJsonWithPropagationHeaders) {
    RecordingHttpServer server;
    net::io_context io;
    HttpClient client;
    auto [ctx, cancel] = with_timeout(request_context(background(), 0x01, "a=1,b=2"), 5s);
    for (int i = 0; i < 3; ++i) {
        HttpResult r =
            run(io, client.post_json(ctx, server.url("/cb/" + std::to_string(i)), R"({"x":1})"));
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->result_int(), 200);
        EXPECT_EQ(r->body(), "null");
    }
    const auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 3u);
    std::set<std::string> spans;
    for (const auto& req : reqs) {
        EXPECT_EQ(req.method, "POST");
        EXPECT_EQ(req.body, R"({"x":1})");
        EXPECT_EQ(req.header("Content-Type"), "application/json");
        ASSERT_EQ(req.all("traceparent").size(), 1u);
        const auto tp = parse_traceparent({req.all("traceparent")[0]});
        ASSERT_TRUE(tp);
        EXPECT_EQ(to_hex(tp->trace_id), "12345678901234567890123456789012");
        EXPECT_EQ(tp->flags, 0x01);
        spans.insert(to_hex(tp->parent_id));
        EXPECT_EQ(req.all("tracestate"), std::vector<std::string>{"a=1,b=2"});
        EXPECT_EQ(req.header("X-Request-ID"), "req-1");
        const auto timeout = req.header("X-Request-Timeout-Ms");
        ASSERT_TRUE(timeout);
        EXPECT_GE(std::stoi(*timeout), 1);
        EXPECT_LT(std::stoi(*timeout), 5000);
        EXPECT_EQ(req.header("Host"), server.address());
    }
    EXPECT_EQ(spans.size(), 3u);  // a new span-id per call
    EXPECT_EQ(reqs[2].target, "/cb/2");
}

TEST(HttpClient, ReusesKeepAliveConnections) {
    RecordingHttpServer server;
    net::io_context io;
    HttpClient client;
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(run(io, client.post_json(background(), server.url("/"), "[]")));
    }
    EXPECT_EQ(client.connections_opened(), 1u);
    EXPECT_EQ(server.connection_count(), 1u);
    EXPECT_EQ(client.idle_connections(), 1u);
    client.close_idle();
    EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, PeerClosedConnectionIsNotReused) {
    RecordingHttpServer server;
    server.close_after_response(true);
    net::io_context io;
    HttpClient client;
    for (int i = 0; i < 3; ++i) {
        auto r = run(io, client.post_json(background(), server.url("/"), "[]"));
        ASSERT_TRUE(r) << r.error().message();
    }
    EXPECT_EQ(server.connection_count(), 3u);
    EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, StaleIdleConnectionIsReplaced) {
    auto server = std::make_unique<RecordingHttpServer>();
    net::io_context io;
    HttpClient client;
    ASSERT_TRUE(run(io, client.post_json(background(), server->url("/"), "[]")));
    ASSERT_EQ(client.idle_connections(), 1u);
    // The server closes its side of the idle connection (stop), then a new one listens elsewhere.
    server->stop();
    RecordingHttpServer other;
    auto r = run(io, client.post_json(background(), other.url("/"), "[]"));
    ASSERT_TRUE(r) << r.error().message();
    // A call back to the dead address must not use the closed idle socket.
    r = run(io, client.post_json(background(), server->url("/"), "[]"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), HttpClientErrc::connect_failed);
}

TEST(HttpClient, ReturnsAnyStatus) {
    RecordingHttpServer server;
    server.respond_with("/fail", 503);
    net::io_context io;
    HttpClient client;
    auto r = run(io, client.post_json(background(), server.url("/fail"), "[]"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 503);
}

TEST(HttpClient, ConnectFailed) {
    net::io_context io;
    HttpClient client;
    const auto port = closed_port();
    auto r = run(
        io, client.post_json(background(), "http://127.0.0.1:" + std::to_string(port) + "/", "[]"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), HttpClientErrc::connect_failed);
    EXPECT_EQ(error_name(r.error()), "connect_failed");
}

TEST(HttpClient, InvalidUrl) {
    net::io_context io;
    HttpClient client;
    auto r = run(io, client.post_json(background(), "https://127.0.0.1:1/", "[]"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), HttpClientErrc::invalid_url);
}

TEST(HttpClient, DeadlineCutsAHangingCallAndClosesTheConnection) {
    RecordingHttpServer server;
    server.hang_on("/hang");
    net::io_context io;
    HttpClient client;
    // Warm one pooled connection so the cut one is a reused connection too.
    ASSERT_TRUE(run(io, client.post_json(background(), server.url("/ok"), "[]")));
    auto [ctx, cancel] = with_timeout(background(), 200ms);
    auto r = run(io, client.post_json(ctx, server.url("/hang"), "[]"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), ContextErrc::deadline_exceeded);
    EXPECT_EQ(client.idle_connections(), 0u);
    EXPECT_TRUE(server.wait_connections_closed(10s));
}

TEST(HttpClient, CancelCutsAHangingCall) {
    RecordingHttpServer server;
    server.hang_on("/hang");
    net::io_context io;
    HttpClient client;
    auto [ctx, cancel] = with_cancel(background());
    std::thread canceller([&server, &cancel] {
        server.wait_for_requests(1, 10s);
        cancel.cancel();
    });
    auto r = run(io, client.post_json(ctx, server.url("/hang"), "[]"));
    canceller.join();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), ContextErrc::canceled);
    EXPECT_EQ(client.idle_connections(), 0u);
    EXPECT_TRUE(server.wait_connections_closed(10s));
}

TEST(HttpClient, NoCallWithoutTimeLeft) {
    RecordingHttpServer server;
    net::io_context io;
    HttpClient client;
    auto [ctx, cancel] = with_deadline(background(), Clock::now() - 1ms);
    auto r = run(io, client.post_json(ctx, server.url("/"), "[]"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), ContextErrc::deadline_exceeded);
    auto [ctx2, cancel2] = with_cancel(background());
    cancel2.cancel();
    r = run(io, client.post_json(ctx2, server.url("/"), "[]"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), ContextErrc::canceled);
    EXPECT_EQ(server.connection_count(), 0u);
    EXPECT_EQ(server.request_count(), 0u);
}

TEST(HttpClient, MalformedResponseIsAProtocolError) {
    net::io_context server_io;
    tcp::acceptor acceptor(server_io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    const auto port = acceptor.local_endpoint().port();
    std::thread server([&acceptor, &server_io] {
        tcp::socket s(server_io);
        acceptor.accept(s);
        char buf[4096];
        boost::system::error_code ec;
        s.read_some(net::buffer(buf), ec);
        net::write(s, net::buffer(std::string_view("HTTP/9.9 abc nonsense\r\n\r\n")), ec);
        s.shutdown(tcp::socket::shutdown_both, ec);
    });
    net::io_context io;
    HttpClient client;
    auto r = run(
        io, client.post_json(background(), "http://127.0.0.1:" + std::to_string(port) + "/", "[]"));
    server.join();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), HttpClientErrc::protocol_error);
    EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, ConnectionClosedMidResponse) {
    net::io_context server_io;
    tcp::acceptor acceptor(server_io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    const auto port = acceptor.local_endpoint().port();
    std::thread server([&acceptor, &server_io] {
        tcp::socket s(server_io);
        acceptor.accept(s);
        char buf[4096];
        boost::system::error_code ec;
        s.read_some(net::buffer(buf), ec);
        net::write(s,
                   net::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")),
                   ec);
        s.shutdown(tcp::socket::shutdown_both, ec);
    });
    net::io_context io;
    HttpClient client;
    auto r = run(
        io, client.post_json(background(), "http://127.0.0.1:" + std::to_string(port) + "/", "[]"));
    server.join();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), HttpClientErrc::connection_closed);
}

TEST(HttpClient, ResponseTooLarge) {
    net::io_context server_io;
    tcp::acceptor acceptor(server_io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    const auto port = acceptor.local_endpoint().port();
    std::thread server([&acceptor, &server_io] {
        tcp::socket s(server_io);
        acceptor.accept(s);
        char buf[4096];
        boost::system::error_code ec;
        s.read_some(net::buffer(buf), ec);
        net::write(
            s, net::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")), ec);
        net::write(s, net::buffer(std::string(100, 'x')), ec);
        s.shutdown(tcp::socket::shutdown_both, ec);
    });
    net::io_context io;
    HttpClientOptions options;
    options.max_response_body = 10;
    HttpClient client(options);
    auto r = run(
        io, client.post_json(background(), "http://127.0.0.1:" + std::to_string(port) + "/", "[]"));
    server.join();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), HttpClientErrc::response_too_large);
}

}  // namespace
}  // namespace reqctx
