// Header lookup by name: case-insensitive, every occurrence counted, in order.

#include "middleware/field_lookup.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace reqctx {
namespace {

TEST(FieldLookup, FindsByNameIgnoringAsciiCase) {
    boost::beast::http::fields headers;
    headers.insert("x-request-id", "abc");
    headers.insert(boost::beast::http::field::host, "h");
    const auto found = find_field_values(headers, "X-Request-ID");
    EXPECT_EQ(found.count, 1U);
    EXPECT_EQ(found.first, "abc");
    EXPECT_EQ(find_field_values(headers, "HOST").first, "h");
    EXPECT_EQ(find_field_values(headers, "X-Missing").count, 0U);
}

TEST(FieldLookup, CountsRepeatsAndKeepsTheirOrder) {
    boost::beast::http::fields headers;
    headers.insert("tracestate", "a=1");
    headers.insert("Other", "x");
    headers.insert("TraceState", "b=2");
    EXPECT_EQ(find_field_values(headers, "tracestate").count, 2U);
    EXPECT_EQ(find_field_values(headers, "tracestate").first, "a=1");
    std::vector<std::string> seen;
    for_each_field_value(headers, "tracestate",
                         [&seen](std::string_view v) { seen.emplace_back(v); });
    EXPECT_EQ(seen, (std::vector<std::string>{"a=1", "b=2"}));
}

TEST(FieldLookup, OnlyLettersFoldCase) {
    EXPECT_TRUE(field_name_equals("X-User-ID", "x-user-id"));
    EXPECT_FALSE(field_name_equals("X-User-ID", "X-User-I"));
    // '-' (0x2d) and '\r' (0x0d) differ in bit 0x20 only; they are not the same character.
    EXPECT_FALSE(field_name_equals("a-b", "a\rb"));
    EXPECT_FALSE(field_name_equals("a@b", "a`b"));  // 0x40 and 0x60: not letters
}

}  // namespace
}  // namespace reqctx
