// Subscriptions and events against the real binary and real memcached behind the fault proxy:
// subscribers outlive the request that created them, log its IDs, stop on DELETE and on
// shutdown, and a full queue drops (and counts) instead of blocking the publisher.

#include <string>

#include <gtest/gtest.h>

#include "tests/e2e/business_test_util.hpp"

namespace reqctx::test {
namespace {

constexpr const char* kOriginRequestId = "origin-req-4711";
constexpr const char* kOriginTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
constexpr const char* kOriginTraceId = "0af7651916cd43dd8448eb211c80319c";
constexpr const char* kEventTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr const char* kEventTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

// Creates subscriptions on a fresh connection that is closed when this returns.
nlohmann::json create(BusinessStack& stack, const std::string& body) {
    const auto r = stack.request("POST", "/v1/subscriptions",
                                 {{"X-Request-ID", kOriginRequestId},
                                  {"traceparent", kOriginTrace},
                                  {"Content-Type", "application/json"}},
                                 body);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 201) << r->body;
    return json_of(*r);
}

nlohmann::json publish(BusinessStack& stack, const std::string& topic, const std::string& payload) {
    const auto r = stack.request("POST", "/v1/events", {{"traceparent", kEventTrace}},
                                 R"({"topic":")" + topic + R"(","payload":)" + payload + "}");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 202) << r->body;
    return json_of(*r);
}

nlohmann::json get_sub(BusinessStack& stack, const std::string& id) {
    const auto r = stack.request("GET", "/v1/subscriptions/" + id);
    return r && r->status == 200 ? json_of(*r) : nlohmann::json{};
}

double background_tasks(BusinessStack& stack) {
    return metric_value(stack.metrics(), "reqctx_background_tasks_live").value_or(-1);
}

TEST(BusinessSubscriptions, SubscriberOutlivesItsRequestAndStopsOnDelete) {
    BusinessStack stack;
    const double tasks_before = background_tasks(stack);
    const auto created = create(stack, R"({"consumers":[{"name":"alerts-eu","topic":"alerts"}]})");
    ASSERT_EQ(created["subscriptions"].size(), 1u);
    const std::string id = created["subscriptions"][0]["id"];
    EXPECT_EQ(created["subscriptions"][0]["name"], "alerts-eu");
    EXPECT_EQ(created["subscriptions"][0]["topic"], "alerts");
    EXPECT_EQ(created["subscriptions"][0]["state"], "running");
    EXPECT_EQ(background_tasks(stack), tasks_before + 1);

    // The creating request completed and its connection is closed: events are still processed.
    for (int i = 1; i <= 3; ++i) {
        const auto r = publish(stack, "alerts", R"({"n":)" + std::to_string(i) + "}");
        EXPECT_EQ(r["delivered"], 1);
        EXPECT_EQ(r["dropped"], 0);
    }
    ASSERT_TRUE(wait_until([&] { return get_sub(stack, id)["processed"] == 3; }));
    const auto sub = get_sub(stack, id);
    EXPECT_EQ(sub["state"], "running");
    EXPECT_EQ(sub["failed"], 0);
    EXPECT_EQ(sub["dropped"], 0);
    EXPECT_EQ(sub["queue_depth"], 0);
    EXPECT_EQ(sub["origin_request_id"], kOriginRequestId);
    EXPECT_EQ(sub["origin_trace_id"], kOriginTraceId);
    EXPECT_TRUE(sub["created_at"].is_string());

    // The subscriber wrote through to memcache.
    const auto last = stack.request("GET", "/v1/cache/sub:" + id + ":last");
    ASSERT_TRUE(last);
    EXPECT_EQ(nlohmann::json::parse(last->body), nlohmann::json::parse(R"({"n":3})"));
    EXPECT_EQ(stack.request("GET", "/v1/cache/sub:" + id + ":count")->body, "3");

    // Its log lines carry the creating request's IDs and the event's trace id.
    ASSERT_TRUE(wait_until([&] {
        const std::string out = stack.service().output();
        return out.find(std::string("\"origin_request_id\":\"") + kOriginRequestId) !=
                   std::string::npos &&
               out.find(std::string("\"origin_trace_id\":\"") + kOriginTraceId) !=
                   std::string::npos &&
               out.find(kEventTraceId) != std::string::npos;
    }));

    const auto listed = json_of(*stack.request("GET", "/v1/subscriptions"));
    ASSERT_TRUE(listed["subscriptions"].is_array());
    EXPECT_EQ(listed["subscriptions"].size(), 1u);

    const auto del = stack.request("DELETE", "/v1/subscriptions/" + id);
    ASSERT_TRUE(del);
    EXPECT_EQ(del->status, 204);
    EXPECT_EQ(get_sub(stack, id)["state"], "stopped");
    ASSERT_TRUE(wait_until([&] { return background_tasks(stack) == tasks_before; }));
    EXPECT_EQ(metric_value(stack.metrics(), "subscriptions_active"), 0);
    // A stopped subscriber receives nothing.
    EXPECT_EQ(publish(stack, "alerts", "1")["delivered"], 0);

    const auto missing = stack.request("DELETE", "/v1/subscriptions/nope");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
    EXPECT_EQ(stack.request("GET", "/v1/subscriptions/nope")->status, 404);
}

TEST(BusinessSubscriptions, FullQueueDropsAndCountsWithoutBlockingThePublisher) {
    BusinessStack stack({"--subscriber-queue", "2", "--event-timeout-ms", "20000"});
    const auto created = create(stack, R"({"consumers":[{"name":"slow","topic":"burst"}]})");
    const std::string id = created["subscriptions"][0]["id"];

    // The cache hangs: the subscriber is stuck on its first event, its queue fills up.
    stack.proxy().stall();
    int delivered = 0;
    int dropped = 0;
    constexpr int kEvents = 10;
    for (int i = 0; i < kEvents; ++i) {
        const auto r = publish(stack, "burst", std::to_string(i));  // answered while stalled
        delivered += r["delivered"].get<int>();
        dropped += r["dropped"].get<int>();
    }
    EXPECT_EQ(delivered + dropped, kEvents);
    EXPECT_GE(dropped, kEvents - 3);  // at most one in hand and two queued
    const auto sub = get_sub(stack, id);
    EXPECT_EQ(sub["dropped"], dropped);
    EXPECT_LE(sub["queue_depth"].get<int>(), 2);
    EXPECT_EQ(metric_sum(stack.metrics(), "events_dropped_total", R"(topic="burst")"), dropped);
    EXPECT_EQ(metric_sum(stack.metrics(), "events_published_total", R"(topic="burst")"), kEvents);

    stack.proxy().resume();
    ASSERT_TRUE(wait_until([&] { return get_sub(stack, id)["processed"] == delivered; }, 30s));
    EXPECT_EQ(metric_sum(stack.metrics(), "events_processed_total", R"(topic="burst")"), delivered);
}

// A client told "stopped" (DELETE's 204) finds the subscriber gone from the task and context
// counts at once, even when its scrape is served by another I/O thread.
TEST(BusinessSubscriptions, DeletedSubscriberIsGoneFromTheCountsWhenDeleteAnswers) {
    BusinessStack stack({"--threads", "2"});
    HttpClient client(stack.port());
    HttpClient scraper(stack.port());
    const auto live = [&scraper](const char* name) {
        const auto r = scraper.request("GET", "/metrics");
        return r ? metric_value(r->body, name).value_or(-1) : -1;
    };
    // Both connections' sessions run (and hold their connection contexts) before counting.
    ASSERT_TRUE(client.request("GET", "/healthz"));
    for (int i = 0; i < 40; ++i) {
        // Contexts left over from the start-up (probe connections still closing) may go at
        // any time: the count may fall, it must not stay up.
        const double before = live("reqctx_contexts_live");
        ASSERT_GT(before, 0) << "round " << i;
        const auto created = client.request("POST", "/v1/subscriptions", {},
                                            R"({"consumers":[{"name":"a","topic":"t"}]})");
        ASSERT_TRUE(created);
        ASSERT_EQ(created->status, 201) << created->body;
        const std::string id = json_of(*created)["subscriptions"][0]["id"];
        const double running = live("reqctx_contexts_live");
        const auto deleted = client.request("DELETE", "/v1/subscriptions/" + id);
        ASSERT_TRUE(deleted);
        ASSERT_EQ(deleted->status, 204);
        ASSERT_EQ(live("reqctx_background_tasks_live"), 0) << "round " << i;
        const double after = live("reqctx_contexts_live");
        ASSERT_LE(after, before) << "round " << i;
        ASSERT_LT(after, running) << "round " << i;  // the subscriber's were counted, and went
    }
}

TEST(BusinessSubscriptions, ShutdownStopsRunningSubscribersWithoutLeaks) {
    BusinessStack stack;
    create(stack, R"({"consumers":[{"name":"a","topic":"t1"},{"name":"b","topic":"t1"},)"
                  R"({"name":"c","topic":"t2"}]})");
    EXPECT_EQ(publish(stack, "t1", R"("x")")["delivered"], 2);
    EXPECT_EQ(metric_value(stack.metrics(), "subscriptions_active"), 3);
    const auto code = stack.service().terminate();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0);
    const std::string out = stack.service().output();
    EXPECT_NE(out.find("\"leaked_tasks\":0"), std::string::npos)
        << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
}

TEST(BusinessSubscriptions, RejectsBadBodies) {
    BusinessStack stack;
    for (const char* body :
         {"{", R"({"consumers":[]})", R"({"consumers":[{"name":"a b","topic":"t"}]})"}) {
        const auto r = stack.request("POST", "/v1/subscriptions", {}, body);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << body;
    }
    const auto big = stack.request("POST", "/v1/events", {},
                                   R"({"topic":"t","payload":")" + std::string(70000, 'x') + "\"}");
    ASSERT_TRUE(big);
    EXPECT_EQ(big->status, 413);
    const auto bad = stack.request("POST", "/v1/events", {}, R"({"topic":"t"})");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
}

}  // namespace
}  // namespace reqctx::test
