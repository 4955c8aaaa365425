// The server built in-process (reqctx::service) with test-only routes that the shipped binary
// never has: a handler that waits on its context proves that a client disconnect, the deadline
// and the shutdown each cancel the request context with their own cause, and that the access log
// and the metrics record it. Real sockets, bounded polling, no sleeps.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "context/asio.hpp"
#include "handlers/errors.hpp"
#include "handlers/metrics.hpp"
#include "service/app.hpp"
#include "service/router.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace reqctx::test {
namespace {

// What the test-only handlers saw.
struct Probe {
    std::atomic<int> started{0};
    std::mutex mu;
    std::vector<std::string> causes;

    std::size_t finished() {
        std::lock_guard lock(mu);
        return causes.size();
    }
    std::string cause(std::size_t i) {
        std::lock_guard lock(mu);
        return i < causes.size() ? causes[i] : std::string{};
    }
};

// Waits until its context is done, records why, answers with the mapped error.
net::awaitable<Response> wait_for_context(std::shared_ptr<Probe> probe, Context ctx,
                                          const Request& req) {
    probe->started.fetch_add(1);
    auto [ec] = co_await async_wait(ctx, net::as_tuple(net::use_awaitable));
    (void)ec;
    {
        std::lock_guard lock(probe->mu);
        probe->causes.emplace_back(cancel_reason_name(ctx));
    }
    co_return context_error_response(ctx, req);
}

net::awaitable<Response> throw_bug(Context, const Request&, const RouteParams&) {
    throw std::logic_error("test bug");
    co_return Response{};
}

class InProcessServer {
public:
    explicit InProcessServer(Config config = {})
        : probe_(std::make_shared<Probe>()),
          sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10000)) {
        config.listen_host = "127.0.0.1";
        config.listen_port = 0;
        config.memcache = {{"127.0.0.1", free_port(), 1}};
        AppOptions options;
        options.log_sink = sink_;
        options.handle_signals = false;
        options.extra_routes = [probe = probe_](Router& r) {
            r.add(http::verb::get, "/test/wait",
                  [probe](Context ctx, const Request& req, const RouteParams&) {
                      return wait_for_context(probe, std::move(ctx), req);
                  });
            r.add(http::verb::get, "/test/throw", &throw_bug);
        };
        app_ = std::make_unique<App>(std::move(config), std::move(options));
        app_->listen();
        auto [root, cancel] = with_cancel(background());
        thread_ = std::thread([this, root = root, cancel = std::move(cancel)]() mutable {
            leaked_ = app_->run(root, std::move(cancel));
        });
    }
    ~InProcessServer() { stop(); }

    // Starts the shutdown (as SIGTERM would) without waiting.
    void begin_shutdown() { app_->request_shutdown(); }
    void stop() {
        if (!thread_.joinable()) return;
        app_->request_shutdown();
        thread_.join();
    }

    unsigned short port() const { return app_->port(); }
    bool draining() const { return app_->draining(); }
    std::size_t connections() const { return app_->connections(); }
    Probe& probe() { return *probe_; }
    std::size_t leaked() const { return leaked_; }
    std::string metrics() { return app_->metrics().scrape(); }
    std::vector<std::string> log_lines() { return sink_->last_formatted(); }
    bool log_has(const std::vector<std::string>& needles) {
        for (const auto& line : log_lines()) {
            bool all = true;
            for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
            if (all) return true;
        }
        return false;
    }

private:
    std::shared_ptr<Probe> probe_;
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
    std::unique_ptr<App> app_;
    std::thread thread_;
    std::size_t leaked_ = 0;
};

TEST(ServerInProcess, ClientDisconnectCancelsTheRequestContext) {
    InProcessServer server;
    HttpClient client(server.port());
    ASSERT_TRUE(
        client.send_raw("GET /test/wait HTTP/1.1\r\nHost: t\r\nX-Request-ID: gone-1\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return server.probe().started.load() == 1; }, 10s));
    EXPECT_EQ(server.probe().finished(), 0U);  // still waiting: nothing else cancels it

    client.close();
    ASSERT_TRUE(wait_until([&] { return server.probe().finished() == 1; }, 10s));
    EXPECT_EQ(server.probe().cause(0), "client_disconnect");

    ASSERT_TRUE(wait_until(
        [&] {
            return server.log_has({R"("request_id":"gone-1")", R"("status":499)",
                                   R"("cancel_reason":"client_disconnect")",
                                   R"("route":"/test/wait")"});
        },
        10s))
        << ::testing::PrintToString(server.log_lines());
    EXPECT_TRUE(wait_until(
        [&] {
            const std::string m = server.metrics();
            return m.find(R"(http_requests_cancelled_total{reason="client_disconnect"} 1)") !=
                       std::string::npos &&
                   m.find(R"(route="/test/wait",status="499"} 1)") != std::string::npos;
        },
        10s))
        << server.metrics();

    server.stop();
    EXPECT_EQ(server.leaked(), 0U);
}

// Bytes of further requests (pipelined, sent with the first or while it runs) do not hide the
// client leaving: the waiting request is cancelled, and the requests behind it never start.
TEST(ServerInProcess, ClientDisconnectIsSeenBehindPipelinedBytes) {
    InProcessServer server;
    HttpClient client(server.port());
    ASSERT_TRUE(
        client.send_raw("GET /test/wait HTTP/1.1\r\nHost: t\r\nX-Request-ID: piped-1\r\n\r\n"
                        "GET /test/wait HTTP/1.1\r\nHost: t\r\nX-Request-ID: piped-2\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return server.probe().started.load() == 1; }, 10s));
    ASSERT_TRUE(client.send_raw("G"));  // more bytes while the first request waits

    client.close();
    ASSERT_TRUE(wait_until([&] { return server.probe().finished() == 1; }, 10s));
    EXPECT_EQ(server.probe().cause(0), "client_disconnect");
    ASSERT_TRUE(wait_until(
        [&] {
            return server.log_has({R"("request_id":"piped-1")", R"("status":499)",
                                   R"("cancel_reason":"client_disconnect")"});
        },
        10s))
        << ::testing::PrintToString(server.log_lines());
    server.stop();
    EXPECT_EQ(server.probe().started.load(), 1);  // the pipelined request never started
    EXPECT_EQ(server.leaked(), 0U);
}

// Disconnect watches start once per event-loop turn for every handler entered in it: several
// handlers that wait at once are each watched, and each learns of its own client leaving.
TEST(ServerInProcess, EveryWaitingHandlerIsWatchedForItsClient) {
    InProcessServer server;
    constexpr int kClients = 8;
    std::vector<std::unique_ptr<HttpClient>> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(std::make_unique<HttpClient>(server.port()));
        ASSERT_TRUE(clients.back()->send_raw("GET /test/wait HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    ASSERT_TRUE(wait_until([&] { return server.probe().started.load() == kClients; }, 10s));
    EXPECT_EQ(server.probe().finished(), 0U);

    for (auto& c : clients) c->close();
    ASSERT_TRUE(wait_until([&] { return server.probe().finished() == kClients; }, 10s))
        << server.probe().finished();
    for (int i = 0; i < kClients; ++i) EXPECT_EQ(server.probe().cause(i), "client_disconnect");
    server.stop();
    EXPECT_EQ(server.leaked(), 0U);
}

TEST(ServerInProcess, DeadlineCancelsWithCauseDeadlineAndAnswers504) {
    InProcessServer server;
    auto res = http_request(server.port(), "GET", "/test/wait",
                            {{"X-Request-Timeout-Ms", "50"}, {"X-Request-ID", "late-1"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 504);
    EXPECT_NE(res->body.find(R"("code":"deadline_exceeded")"), std::string::npos) << res->body;
    EXPECT_NE(res->body.find(R"("request_id":"late-1")"), std::string::npos) << res->body;
    ASSERT_EQ(server.probe().finished(), 1U);
    EXPECT_EQ(server.probe().cause(0), "deadline");
    ASSERT_TRUE(wait_until(
        [&] {
            return server.log_has(
                {R"("request_id":"late-1")", R"("status":504)", R"("cancel_reason":"deadline")"});
        },
        10s))
        << ::testing::PrintToString(server.log_lines());
    // Metrics are recorded once the response is written: poll.
    EXPECT_TRUE(wait_until(
        [&] {
            return server.metrics().find(R"(http_requests_cancelled_total{reason="deadline"} 1)") !=
                   std::string::npos;
        },
        10s))
        << server.metrics();
}

TEST(ServerInProcess, ShutdownCancelsRunningRequestsAfterTheGrace) {
    Config config;
    config.shutdown_grace = std::chrono::milliseconds(100);
    InProcessServer server(config);
    HttpClient client(server.port());
    ASSERT_TRUE(
        client.send_raw("GET /test/wait HTTP/1.1\r\nHost: t\r\nX-Request-ID: run-1\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return server.probe().started.load() == 1; }, 10s));

    server.begin_shutdown();
    auto res = client.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_NE(res->body.find(R"("code":"shutting_down")"), std::string::npos) << res->body;
    EXPECT_EQ(res->header("Connection"), "close");
    EXPECT_EQ(server.probe().cause(0), "shutdown");

    server.stop();
    EXPECT_EQ(server.leaked(), 0U);
    const auto lines = server.log_lines();
    ASSERT_FALSE(lines.empty());
    EXPECT_NE(lines.back().find(R"("leaked_tasks":0)"), std::string::npos) << lines.back();
    EXPECT_TRUE(server.log_has(
        {R"("request_id":"run-1")", R"("status":503)", R"("cancel_reason":"shutdown")"}));
}

TEST(ServerInProcess, OverloadIsShedWithRetryAfter) {
    Config config;
    config.max_inflight = 1;
    InProcessServer server(config);
    HttpClient busy(server.port());
    ASSERT_TRUE(busy.send_raw("GET /test/wait HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return server.probe().started.load() == 1; }, 10s));

    auto res = http_request(server.port(), "GET", "/healthz");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->header("Retry-After"), "1");
    EXPECT_NE(res->body.find(R"("code":"overloaded")"), std::string::npos) << res->body;

    busy.close();
    ASSERT_TRUE(wait_until([&] { return server.probe().finished() == 1; }, 10s));
    // The slot is free again.
    ASSERT_TRUE(wait_until(
        [&] {
            auto ok = http_request(server.port(), "GET", "/healthz");
            return ok && ok->status == 200;
        },
        10s));
}

TEST(ServerInProcess, OverloadIsAnsweredWithoutReadingTheBody) {
    Config config;
    config.max_inflight = 1;
    InProcessServer server(config);
    HttpClient busy(server.port());
    ASSERT_TRUE(busy.send_raw("GET /test/wait HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return server.probe().started.load() == 1; }, 10s));

    // Announces a body it never sends: the 503 must come anyway, then the connection closes.
    HttpClient shed(server.port());
    ASSERT_TRUE(
        shed.send_raw("POST /v1/whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n"));
    auto res = shed.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->header("Connection"), "close");
    EXPECT_TRUE(shed.wait_closed(10s));
}

TEST(ServerInProcess, HandlerExceptionBecomes500AndTheServerKeepsServing) {
    InProcessServer server;
    HttpClient client(server.port());
    auto res = client.request("GET", "/test/throw", {{"X-Request-ID", "bug-1"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 500);
    EXPECT_EQ(
        res->body,
        R"({"error":{"code":"internal","message":"Internal server error."},"request_id":"bug-1"})");
    // Same connection, next request.
    auto ok = client.request("GET", "/healthz");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    ASSERT_TRUE(wait_until(
        [&] {
            return server.log_has({R"("msg":"handler threw")", R"("request_id":"bug-1")",
                                   R"("trace_id":")", R"("exception":"test bug")"});
        },
        10s))
        << ::testing::PrintToString(server.log_lines());
}

// After a response, a keep-alive session waits for its next request (that read starts at the end
// of the event-loop turn); a client that leaves then, or sends its next request later, is seen.
TEST(ServerInProcess, AnIdleKeepAliveSessionEndsWhenItsClientLeaves) {
    InProcessServer server;
    HttpClient kept(server.port());
    auto first = kept.request("GET", "/healthz");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 200);
    ASSERT_TRUE(wait_until([&] { return server.connections() == 1; }, 10s));
    auto second = kept.request("GET", "/healthz");  // the session read it after waiting
    ASSERT_TRUE(second);
    EXPECT_EQ(second->status, 200);
    EXPECT_EQ(server.connections(), 1U);

    kept.close();
    EXPECT_TRUE(wait_until([&] { return server.connections() == 0; }, 10s))
        << server.connections() << " connections still open";
}

TEST(ServerInProcess, ReadyzIs503WhileDraining) {
    Config config;
    config.shutdown_grace = std::chrono::milliseconds(20000);
    InProcessServer server(config);
    // Keeps the drain going: a request in flight.
    HttpClient busy(server.port());
    ASSERT_TRUE(busy.send_raw("GET /test/wait HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return server.probe().started.load() == 1; }, 10s));
    // A /readyz whose header is still arriving when the drain starts.
    HttpClient probe(server.port());
    ASSERT_TRUE(probe.send_raw("GET /readyz HTTP/1.1\r\nHost: t\r\n"));
    // A keep-alive connection, idle when the drain starts.
    HttpClient kept(server.port());
    ASSERT_TRUE(kept.request("GET", "/healthz"));

    server.begin_shutdown();
    ASSERT_TRUE(wait_until([&] { return server.draining(); }, 10s));
    ASSERT_TRUE(probe.send_raw("\r\n"));
    auto res = probe.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_NE(res->body.find(R"("status":"not_ready")"), std::string::npos) << res->body;
    EXPECT_NE(res->body.find(R"("draining":true)"), std::string::npos) << res->body;
    EXPECT_EQ(res->header("Connection"), "close");
    // The idle connection is still there while a request is in flight, and asking it is
    // answered (and then it closes).
    auto asked = kept.request("GET", "/readyz");
    ASSERT_TRUE(asked);
    EXPECT_EQ(asked->status, 503);
    EXPECT_EQ(asked->header("Connection"), "close");
    EXPECT_TRUE(kept.wait_closed(10s));

    // The in-flight request ends (its client leaves), so the drain completes before the grace.
    busy.close();
    server.stop();
    EXPECT_EQ(server.leaked(), 0U);
}

}  // namespace
}  // namespace reqctx::test
