// POST /v1/bulk-sync against the real binary and real memcached behind the fault proxy: the
// service-wide semaphore bounds writes in flight, a departed client stops its writes, and a
// short deadline gives 504 with partial results.

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/business_test_util.hpp"

namespace reqctx::test {
namespace {

TEST(BusinessBulkSync, WritesEveryEntryAndReportsPerEntryStatus) {
    BusinessStack stack;
    const std::string body =
        R"({"entries":[{"key":"k1","value":"v1","ttl":60},{"key":"bad key","value":"x"},)"
        R"({"key":"k3","value":"v3"}],"concurrency":2})";
    const auto r =
        stack.request("POST", "/v1/bulk-sync", {{"Content-Type", "application/json"}}, body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto doc = json_of(*r);
    EXPECT_EQ(doc["total"], 3);
    EXPECT_EQ(doc["synced"], 2);
    EXPECT_EQ(doc["failed"], 1);
    EXPECT_EQ(doc["cancelled"], 0);
    EXPECT_TRUE(doc["duration_ms"].is_number());
    ASSERT_EQ(doc["results"].size(), 3u);
    EXPECT_EQ(doc["results"][0]["key"], "k1");
    EXPECT_EQ(doc["results"][0]["status"], "ok");
    EXPECT_EQ(doc["results"][1]["status"], "error");
    EXPECT_EQ(doc["results"][1]["error"], "invalid_key");
    EXPECT_EQ(doc["results"][2]["key"], "k3");

    const auto got = stack.request("GET", "/v1/cache/k3");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, 200);
    EXPECT_EQ(got->body, "v3");

    const auto bad = stack.request("POST", "/v1/bulk-sync", {}, R"({"entries":[}])");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(json_of(*bad)["error"]["code"], "invalid_json");
    const auto conc =
        stack.request("POST", "/v1/bulk-sync", {}, R"({"entries":[],"concurrency":65})");
    ASSERT_TRUE(conc);
    EXPECT_EQ(conc->status, 400);
    EXPECT_EQ(json_of(*conc)["error"]["code"], "invalid_request");
}

TEST(BusinessBulkSync, TtlOfTheWrongTypeFailsTheRequestABadNumberFailsItsEntry) {
    BusinessStack stack;
    for (const char* ttl : {R"("5")", "true", R"({"s":5})"}) {
        const std::string body =
            std::string(R"({"entries":[{"key":"w0","value":"v"},{"key":"w1","value":"v"},)") +
            R"({"key":"w2","value":"v"},{"key":"w3","value":"v","ttl":)" + ttl + "}]}";
        const auto r = stack.request("POST", "/v1/bulk-sync", {}, body);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << ttl << " " << r->body;
        EXPECT_EQ(json_of(*r)["error"]["code"], "invalid_request") << ttl;
        EXPECT_NE(r->body.find("entries[3].ttl"), std::string::npos) << r->body;
    }
    EXPECT_EQ(stack.request("GET", "/v1/cache/w0")->status, 404);  // nothing was written

    const auto r = stack.request(
        "POST", "/v1/bulk-sync", {},
        R"({"entries":[{"key":"n0","value":"v","ttl":-1},{"key":"n1","value":"v","ttl":1.5},)"
        R"({"key":"n2","value":"v","ttl":null},{"key":"n3","value":"v","ttl":2592001}]})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto doc = json_of(*r);
    EXPECT_EQ(doc["results"][0]["error"], "invalid_ttl");
    EXPECT_EQ(doc["results"][1]["error"], "invalid_ttl");
    EXPECT_EQ(doc["results"][2]["status"], "ok");
    EXPECT_EQ(doc["results"][3]["status"], "ok");
    EXPECT_EQ(stack.request("GET", "/v1/cache/n2")->status, 200);
    // A ttl above 30 days is seconds from now here too: the value stays readable.
    EXPECT_EQ(stack.request("GET", "/v1/cache/n3")->status, 200);
}

TEST(BusinessBulkSync, NeverMoreWritesInFlightThanTheSemaphoreAllows) {
    constexpr int kCapacity = 4;
    BusinessStack stack({"--bulk-max-inflight", std::to_string(kCapacity), "--bulk-concurrency",
                         std::to_string(kCapacity)});
    stack.proxy().set_latency(std::chrono::milliseconds(5));
    stack.proxy().reset_counters();

    // Six requests, each asking for the full capacity: together they want 24 writes at once.
    constexpr int kRequests = 6;
    constexpr int kEntries = 60;
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int i = 0; i < kRequests; ++i) {
        clients.emplace_back([&stack, &ok, i] {
            const auto r =
                stack.request("POST", "/v1/bulk-sync", {{"X-Request-Timeout-Ms", "30000"}},
                              bulk_body("c" + std::to_string(i) + "-", kEntries, kCapacity));
            if (r && r->status == 200 && json_of(*r)["synced"] == kEntries) ++ok;
        });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(ok.load(), kRequests);
    EXPECT_GE(stack.proxy().total_writes(), kRequests * kEntries);
    RecordProperty("max_in_flight", static_cast<int>(stack.proxy().max_in_flight()));
    EXPECT_LE(stack.proxy().max_in_flight(), kCapacity);
    EXPECT_GE(stack.proxy().max_in_flight(), 1);

    const std::string m = stack.metrics();
    EXPECT_EQ(metric_value(m, "bulk_sync_semaphore_capacity"), kCapacity);
    EXPECT_EQ(metric_value(m, "bulk_sync_semaphore_in_use"), 0);
    EXPECT_EQ(metric_value(m, "bulk_sync_semaphore_waiters"), 0);
    EXPECT_GE(metric_sum(m, "bulk_sync_entries_total", R"(result="ok")"), kRequests * kEntries);
}

TEST(BusinessBulkSync, ClientDisconnectStopsItsWrites) {
    BusinessStack stack({"--bulk-max-inflight", "4", "--bulk-concurrency", "4"});
    stack.proxy().set_latency(std::chrono::milliseconds(20));
    stack.proxy().reset_counters();

    constexpr int kEntries = 3000;
    const std::string body = bulk_body("gone-", kEntries, 4);
    HttpClient client(stack.port());
    ASSERT_TRUE(
        client.send_raw("POST /v1/bulk-sync HTTP/1.1\r\nHost: t\r\n"
                        "Content-Type: application/json\r\nX-Request-Timeout-Ms: 30000\r\n"
                        "Content-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body));
    ASSERT_TRUE(wait_until([&] { return stack.proxy().total_writes() >= 8; }, 20s));
    client.close();

    // The number of writes stops growing: two polls 300 ms apart see the same count.
    std::int64_t last = -1;
    ASSERT_TRUE(wait_until(
        [&] {
            const auto now = stack.proxy().total_writes();
            const bool stable = now == last;
            last = now;
            return stable;
        },
        20s, 300ms));
    RecordProperty("writes_after_disconnect", static_cast<int>(last));
    EXPECT_LT(last, kEntries);

    ASSERT_TRUE(wait_until(
        [&] {
            const std::string m = stack.metrics();
            return metric_value(m, "bulk_sync_semaphore_in_use") == 0 &&
                   metric_value(m, "bulk_sync_semaphore_waiters") == 0 &&
                   metric_sum(m, "bulk_sync_entries_total", R"(result="cancelled")") > 0;
        },
        10s));
    const auto dbg = stack.request("GET", "/debug/contexts");
    ASSERT_TRUE(dbg);
    if (dbg->status == 200) {
        const auto d = json_of(*dbg);
        EXPECT_EQ(d["semaphore"]["in_use"], 0);
        EXPECT_EQ(d["semaphore"]["waiters"], 0);
    }
    const std::string m = stack.metrics();
    EXPECT_EQ(metric_sum(m, "bulk_sync_entries_total", R"(result="cancelled")") +
                  metric_sum(m, "bulk_sync_entries_total", R"(result="ok")") +
                  metric_sum(m, "bulk_sync_entries_total", R"(result="error")"),
              kEntries);
}

TEST(BusinessBulkSync, ShortDeadlineGives504WithPartialResults) {
    BusinessStack stack({"--bulk-max-inflight", "2", "--bulk-concurrency", "2"});
    stack.proxy().set_latency(std::chrono::milliseconds(50));
    constexpr int kEntries = 200;
    const auto r = stack.request("POST", "/v1/bulk-sync", {{"X-Request-Timeout-Ms", "300"}},
                                 bulk_body("late-", kEntries, 2));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 504) << r->body;
    const auto doc = json_of(*r);
    ASSERT_TRUE(doc.is_object()) << r->body;
    EXPECT_EQ(doc["total"], kEntries);
    EXPECT_GT(doc["cancelled"].get<int>(), 0);
    EXPECT_EQ(doc["synced"].get<int>() + doc["failed"].get<int>() + doc["cancelled"].get<int>(),
              kEntries);
    ASSERT_EQ(doc["results"].size(), static_cast<std::size_t>(kEntries));
    for (std::size_t i = 0; i < doc["results"].size(); ++i) {
        EXPECT_EQ(doc["results"][i]["key"], "late-" + std::to_string(i));
    }
    EXPECT_EQ(doc["results"][kEntries - 1]["status"], "cancelled");
    // Nothing of the request is left behind.
    ASSERT_TRUE(wait_until(
        [&] {
            const std::string m = stack.metrics();
            return metric_value(m, "bulk_sync_semaphore_in_use") == 0 &&
                   metric_value(m, "bulk_sync_semaphore_waiters") == 0;
        },
        10s));
}

}  // namespace
}  // namespace reqctx::test
