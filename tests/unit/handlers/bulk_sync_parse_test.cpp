#include <string>

#include <gtest/gtest.h>

#include "handlers/bulk_sync.hpp"

namespace reqctx {
namespace {

BulkSyncLimits limits() {
    BulkSyncLimits l;
    l.max_entries = 3;
    l.max_inflight = 16;
    l.default_concurrency = 8;
    l.max_value_bytes = 10;
    return l;
}

TEST(BulkSyncParse, ParsesEntriesWithDefaults) {
    const auto p = parse_bulk_sync(
        R"({"entries":[{"key":"k1","value":"v1","ttl":60},{"key":"k2","value":""}]})", limits());
    ASSERT_FALSE(p.error) << p.error->message;
    ASSERT_EQ(p.request.entries.size(), 2u);
    EXPECT_EQ(p.request.entries[0].key, "k1");
    EXPECT_EQ(p.request.entries[0].value, "v1");
    EXPECT_EQ(p.request.entries[0].ttl, 60u);
    EXPECT_EQ(p.request.entries[1].ttl, 0u);
    EXPECT_EQ(p.request.concurrency, 8u);
}

TEST(BulkSyncParse, ReportsInvalidJsonWithPosition) {
    const auto p = parse_bulk_sync(R"({"entries":[}])", limits());
    ASSERT_TRUE(p.error);
    EXPECT_EQ(p.error->code, "invalid_json");
    EXPECT_NE(p.error->message.find("byte"), std::string::npos) << p.error->message;
}

TEST(BulkSyncParse, NamesTheBadField) {
    struct Case {
        const char* body;
        const char* field;
    };
    for (const Case& c :
         {Case{"[]", "entries"}, Case{"{}", "entries"}, Case{R"({"entries":{}})", "entries"},
          Case{R"({"entries":[1]})", "entries[0]"},
          Case{R"({"entries":[{"value":"v"}]})", "entries[0].key"},
          Case{R"({"entries":[{"key":"k","value":"v"},{"key":"k"}]})", "entries[1].value"},
          Case{R"({"entries":[],"concurrency":0})", "concurrency"},
          Case{R"({"entries":[],"concurrency":17})", "concurrency"},
          Case{R"({"entries":[],"concurrency":"4"})", "concurrency"},
          Case{R"({"entries":[],"concurrency":2.5})", "concurrency"}}) {
        const auto p = parse_bulk_sync(c.body, limits());
        ASSERT_TRUE(p.error) << c.body;
        EXPECT_EQ(p.error->code, "invalid_request") << c.body;
        EXPECT_NE(p.error->message.find(c.field), std::string::npos)
            << c.body << " -> " << p.error->message;
    }
}

TEST(BulkSyncParse, RejectsTooManyEntries) {
    const auto p = parse_bulk_sync(
        R"({"entries":[{"key":"a","value":""},{"key":"b","value":""},{"key":"c","value":""},
                       {"key":"d","value":""}]})",
        limits());
    ASSERT_TRUE(p.error);
    EXPECT_EQ(p.error->code, "too_many_entries");
}

TEST(BulkSyncParse, BadEntriesFailAlone) {
    const auto p = parse_bulk_sync(
        R"({"entries":[{"key":"bad key","value":"v"},{"key":"ok","value":"01234567890"},
                       {"key":"t","value":"v","ttl":-1}],"concurrency":16})",
        limits());
    ASSERT_FALSE(p.error) << p.error->message;
    ASSERT_EQ(p.request.entries.size(), 3u);
    EXPECT_EQ(p.request.entries[0].error, "invalid_key");
    EXPECT_EQ(p.request.entries[1].error, "value_too_large");
    EXPECT_EQ(p.request.entries[2].error, "invalid_ttl");
    EXPECT_EQ(p.request.concurrency, 16u);
}

TEST(BulkSyncParse, TtlOfTheWrongJsonTypeFailsTheRequestNamingTheField) {
    for (const char* ttl : {R"("5")", "true", "{}", "[1]"}) {
        const auto p = parse_bulk_sync(
            std::string(R"({"entries":[{"key":"a","value":""},{"key":"b","value":"","ttl":)") +
                ttl + "}]}",
            limits());
        ASSERT_TRUE(p.error) << ttl;
        EXPECT_EQ(p.error->code, "invalid_request") << ttl;
        EXPECT_NE(p.error->message.find("entries[1].ttl"), std::string::npos) << p.error->message;
    }
    // A number that is not a 32-bit non-negative integer fails its entry alone; null is absent.
    const auto p = parse_bulk_sync(
        R"({"entries":[{"key":"a","value":"","ttl":1.5},{"key":"b","value":"","ttl":4294967296},
                       {"key":"c","value":"","ttl":null}]})",
        limits());
    ASSERT_FALSE(p.error) << p.error->message;
    ASSERT_EQ(p.request.entries.size(), 3u);
    EXPECT_EQ(p.request.entries[0].error, "invalid_ttl");
    EXPECT_EQ(p.request.entries[1].error, "invalid_ttl");
    EXPECT_EQ(p.request.entries[2].error, "");
    EXPECT_EQ(p.request.entries[2].ttl, 0u);
    const auto largest =
        parse_bulk_sync(R"({"entries":[{"key":"d","value":"","ttl":4294967295}]})", limits());
    ASSERT_FALSE(largest.error) << largest.error->message;
    EXPECT_EQ(largest.request.entries[0].error, "");
    EXPECT_EQ(largest.request.entries[0].ttl, 4294967295u);
}

TEST(BulkSyncBody, ListsResultsInRequestOrder) {
    std::vector<SyncEntry> entries(3);
    entries[0].key = "k1";
    entries[1].key = "bad key";
    entries[1].error = "invalid_key";
    entries[2].key = "k\"3";
    std::vector<EntryResult> results(3);
    results[0].status = EntryStatus::ok;
    results[1].status = EntryStatus::error;
    results[2].status = EntryStatus::cancelled;
    const std::string body =
        bulk_sync_body(entries, results, 1.5, [](std::error_code) { return "x"; });
    const auto doc = nlohmann::json::parse(body);
    EXPECT_EQ(doc["total"], 3);
    EXPECT_EQ(doc["synced"], 1);
    EXPECT_EQ(doc["failed"], 1);
    EXPECT_EQ(doc["cancelled"], 1);
    EXPECT_DOUBLE_EQ(doc["duration_ms"].get<double>(), 1.5);
    ASSERT_EQ(doc["results"].size(), 3u);
    EXPECT_EQ(doc["results"][0], (nlohmann::json{{"key", "k1"}, {"status", "ok"}}));
    EXPECT_EQ(doc["results"][1],
              (nlohmann::json{{"key", "bad key"}, {"status", "error"}, {"error", "invalid_key"}}));
    EXPECT_EQ(doc["results"][2], (nlohmann::json{{"key", "k\"3"}, {"status", "cancelled"}}));
}

}  // namespace
}  // namespace reqctx
