#include <string>

#include <gtest/gtest.h>

#include "handlers/events.hpp"
#include "handlers/subscriptions.hpp"

namespace reqctx {
namespace {

TEST(SubscriptionName, AcceptsTheAllowedAlphabet) {
    EXPECT_TRUE(is_valid_name("alerts-eu"));
    EXPECT_TRUE(is_valid_name("a.b_c-D9"));
    EXPECT_TRUE(is_valid_name(std::string(64, 'x')));
    EXPECT_FALSE(is_valid_name(""));
    EXPECT_FALSE(is_valid_name(std::string(65, 'x')));
    EXPECT_FALSE(is_valid_name("a b"));
    EXPECT_FALSE(is_valid_name("a/b"));
    EXPECT_FALSE(is_valid_name("a:b"));
}

TEST(SubscriptionsParse, ParsesConsumers) {
    const auto p = parse_subscriptions(
        R"({"consumers":[{"name":"alerts-eu","topic":"alerts"},{"name":"b","topic":"t"}]})");
    ASSERT_FALSE(p.error);
    ASSERT_EQ(p.consumers.size(), 2u);
    EXPECT_EQ(p.consumers[0].name, "alerts-eu");
    EXPECT_EQ(p.consumers[0].topic, "alerts");
}

TEST(SubscriptionsParse, RejectsBadShapes) {
    EXPECT_EQ(parse_subscriptions("{").error->code, "invalid_json");
    for (const char* body :
         {"[]", "{}", R"({"consumers":[]})", R"({"consumers":[1]})",
          R"({"consumers":[{"name":"a b","topic":"t"}]})", R"({"consumers":[{"name":"a"}]})",
          R"({"consumers":[{"name":"a","topic":""}]})"}) {
        const auto p = parse_subscriptions(body);
        ASSERT_TRUE(p.error) << body;
        EXPECT_EQ(p.error->code, "invalid_request") << body;
    }
    std::string many = R"({"consumers":[)";
    for (int i = 0; i < 101; ++i) many += std::string(i ? "," : "") + R"({"name":"n","topic":"t"})";
    many += "]}";
    EXPECT_EQ(parse_subscriptions(many).error->code, "invalid_request");
}

TEST(EventParse, SerializesAnyPayload) {
    const auto p = parse_event(R"({"topic":"alerts","payload":{"level":"high","n":[1,2]}})");
    ASSERT_FALSE(p.error);
    EXPECT_EQ(p.topic, "alerts");
    EXPECT_EQ(nlohmann::json::parse(p.payload),
              nlohmann::json::parse(R"({"level":"high","n":[1,2]})"));
    EXPECT_EQ(parse_event(R"({"topic":"t","payload":null})").payload, "null");
}

TEST(EventParse, RejectsBadTopicMissingPayloadAndLargePayload) {
    EXPECT_EQ(parse_event(R"({"topic":"a b","payload":1})").error->code, "invalid_request");
    EXPECT_EQ(parse_event(R"({"payload":1})").error->code, "invalid_request");
    EXPECT_EQ(parse_event(R"({"topic":"t"})").error->code, "invalid_request");
    const std::string big = R"({"topic":"t","payload":")" + std::string(64 * 1024, 'x') + "\"}";
    const auto p = parse_event(big);
    ASSERT_TRUE(p.error);
    EXPECT_TRUE(p.too_large);
    EXPECT_EQ(p.error->code, "payload_too_large");
}

}  // namespace
}  // namespace reqctx
