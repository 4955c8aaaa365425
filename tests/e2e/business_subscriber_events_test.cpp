// Subscriber events and memcache servers going away, against the real binary and real memcached:
// the log line of a processed event names its own IDs beside the origin IDs, an event in flight at
// shutdown ends cancelled (not failed), and a dead server's keys answer 503 instead of moving.

#include <algorithm>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/business_test_util.hpp"

namespace reqctx::test {
namespace {

using namespace std::chrono_literals;

// The JSON log lines of `output` whose "msg" is `msg`.
std::vector<nlohmann::json> log_lines(const std::string& output, std::string_view msg) {
    std::vector<nlohmann::json> out;
    std::istringstream in(output);
    std::string line;
    while (std::getline(in, line)) {
        auto doc = nlohmann::json::parse(line, nullptr, false);
        if (doc.is_object() && doc.value("msg", "") == msg) out.push_back(std::move(doc));
    }
    return out;
}

std::string tail(const std::string& s) {
    return s.substr(s.size() > 3000 ? s.size() - 3000 : 0);
}

TEST(BusinessSubscriberEvents, ProcessedEventIsLoggedWithItsTraceAndRequestId) {
    BusinessStack stack;
    const auto created =
        stack.request("POST", "/v1/subscriptions",
                      {{"X-Request-ID", "origin-req-1"},
                       {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
                      R"({"consumers":[{"name":"a","topic":"t"}]})");
    ASSERT_TRUE(created);
    ASSERT_EQ(created->status, 201) << created->body;
    const auto published =
        stack.request("POST", "/v1/events",
                      {{"X-Request-ID", "event-req-1"},
                       {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
                      R"({"topic":"t","payload":1})");
    ASSERT_TRUE(published);
    ASSERT_EQ(published->status, 202) << published->body;

    ASSERT_TRUE(wait_until([&] {
        return !log_lines(stack.service().output(), "event processed").empty();
    })) << tail(stack.service().output());
    const auto line = log_lines(stack.service().output(), "event processed").front();
    EXPECT_EQ(line.value("trace_id", ""), "4bf92f3577b34da6a3ce929d0e0e4736") << line;
    EXPECT_EQ(line.value("request_id", ""), "event-req-1") << line;
    EXPECT_EQ(line.value("origin_request_id", ""), "origin-req-1") << line;
    EXPECT_EQ(line.value("origin_trace_id", ""), "0af7651916cd43dd8448eb211c80319c") << line;
    EXPECT_FALSE(line.contains("event_trace_id")) << line;
    EXPECT_FALSE(line.contains("event_request_id")) << line;
}

// The memcache client keeps serving the subscribers until they are joined: an event stuck on a
// stalled memcached at SIGTERM is cancelled with its subscriber, not failed by a closed client.
// A request held past the grace keeps the shutdown between "root cancelled" and the subscribers'
// cancellation long enough for a client stopped with the root to fail the event first.
TEST(BusinessSubscriberEvents, EventInFlightAtShutdownEndsCancelledNotFailed) {
    BusinessStack stack({"--event-timeout-ms", "60000", "--shutdown-grace-ms", "200"});
    const auto created = stack.request("POST", "/v1/subscriptions", {},
                                       R"({"consumers":[{"name":"a","topic":"t"}]})");
    ASSERT_TRUE(created);
    ASSERT_EQ(created->status, 201) << created->body;
    const std::string id = json_of(*created)["subscriptions"][0]["id"];

    stack.memcached().pause();  // SIGSTOP: connections stay up, nothing is answered
    const auto published =
        stack.request("POST", "/v1/events", {}, R"({"topic":"t","payload":"stuck"})");
    ASSERT_TRUE(published);
    ASSERT_EQ(published->status, 202) << published->body;
    // Taken off the queue: the subscriber is waiting on memcached.
    ASSERT_TRUE(wait_until([&] {
        const auto r = stack.request("GET", "/v1/subscriptions/" + id);
        return r && r->status == 200 && json_of(*r)["queue_depth"] == 0;
    }));

    std::optional<HttpResponse> held;
    std::thread holder([&] { held = stack.request("GET", "/v1/cache/held"); });
    ASSERT_TRUE(wait_until([&] {
        const auto r = stack.request("GET", "/metrics");
        return r && metric_value(r->body, "http_requests_in_flight").value_or(0) >= 2;
    }));

    const auto code = stack.service().terminate();
    holder.join();
    stack.memcached().resume();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0);
    ASSERT_TRUE(held);
    EXPECT_EQ(held->status, 503) << held->body;  // shutting_down, after the grace
    const std::string out = stack.service().output();
    EXPECT_TRUE(log_lines(out, "event failed").empty()) << tail(out);
    EXPECT_EQ(out.find("memcache client not started"), std::string::npos) << tail(out);
    auto stopped = log_lines(out, "subscriber stopped");
    std::erase_if(stopped, [&](const nlohmann::json& l) { return l["subscription_id"] != id; });
    ASSERT_EQ(stopped.size(), 1u) << tail(out);
    EXPECT_EQ(stopped[0].value("failed", -1), 0);
    EXPECT_EQ(stopped[0].value("processed", -1), 0);
    EXPECT_NE(out.find("\"leaked_tasks\":0"), std::string::npos) << tail(out);
}

// Two memcached servers, one killed: its keys answer 503 cache_unavailable (they do not move to
// the other server, where writes would be lost once it is back), logged once dead and once back.
TEST(BusinessSubscriberEvents, KilledServersKeysAnswer503AndDoNotMove) {
    MemcachedServer a;
    MemcachedServer b;
    ServiceProcess service({"--memcache", a.address() + "," + b.address(), "--log-format", "json"});
    const auto get = [&](const std::string& key) {
        return http_request(service.port(), "GET", "/v1/cache/" + key);
    };
    constexpr int kKeys = 24;
    const auto key = [](int i) { return "spread-" + std::to_string(i); };
    for (int i = 0; i < kKeys; ++i) {
        const auto put = http_request(service.port(), "PUT", "/v1/cache/" + key(i), {}, "v");
        ASSERT_TRUE(put);
        ASSERT_EQ(put->status, 204) << put->body;
    }

    a.stop();
    // The first sweep that finds a's keys gone (a missing value or a 503).
    ASSERT_TRUE(wait_until([&] {
        for (int i = 0; i < kKeys; ++i) {
            const auto r = get(key(i));
            if (r && (r->status == 404 || r->status == 503)) return true;
        }
        return false;
    }));
    std::vector<int> on_a;
    for (int i = 0; i < kKeys; ++i) {
        const auto r = get(key(i));
        ASSERT_TRUE(r);
        if (r->status == 200) continue;
        EXPECT_EQ(r->status, 503) << key(i) << " " << r->body;
        EXPECT_EQ(json_of(*r)["error"]["code"], "cache_unavailable") << r->body;
        on_a.push_back(i);
    }
    ASSERT_FALSE(on_a.empty());
    ASSERT_LT(on_a.size(), static_cast<std::size_t>(kKeys));
    // Writes do not move to b either.
    const auto put = http_request(service.port(), "PUT", "/v1/cache/" + key(on_a[0]), {}, "w");
    ASSERT_TRUE(put);
    EXPECT_EQ(put->status, 503) << put->body;
    // The server's last change logged is "marked dead" (warn); a connect accepted while the
    // killed process was still going away may log a short dead/back flap first.
    const auto last_change = [&] {
        auto lines = log_lines(service.output(), "memcache server marked dead");
        auto back = log_lines(service.output(), "memcache server back");
        lines.insert(lines.end(), back.begin(), back.end());
        std::sort(lines.begin(), lines.end(),
                  [](const auto& x, const auto& y) { return x["ts"] < y["ts"]; });
        return lines.empty() ? nlohmann::json{} : lines.back();
    };
    ASSERT_TRUE(wait_until([&] {
        return last_change().value("msg", "") == "memcache server marked dead";
    })) << tail(service.output());
    EXPECT_EQ(last_change().value("level", ""), "warn");
    EXPECT_EQ(last_change().value("server", ""), a.address());

    a.start();  // same port, empty
    ASSERT_TRUE(wait_until([&] {
        return last_change().value("msg", "") == "memcache server back";
    })) << tail(service.output());
    EXPECT_EQ(last_change().value("level", ""), "info");
    EXPECT_EQ(last_change().value("server", ""), a.address());
    ASSERT_TRUE(wait_until([&] {
        const auto r = get(key(on_a[0]));
        return r && r->status == 404;  // a lost its values when it died
    }));
    const auto again = http_request(service.port(), "PUT", "/v1/cache/" + key(on_a[0]), {}, "w");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 204);
    EXPECT_EQ(get(key(on_a[0]))->body, "w");
    for (int i = 0; i < kKeys; ++i) {
        if (std::find(on_a.begin(), on_a.end(), i) == on_a.end()) {
            EXPECT_EQ(get(key(i))->status, 200) << key(i);
        }
    }
    const auto code = service.terminate();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace reqctx::test
