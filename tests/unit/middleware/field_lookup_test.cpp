// Header lookup by name: case-insensitive, every occurrence counted, in order.

#include "middleware/field_lookup.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace reqctx {
namespace {

TEST(FieldLookup, FindsByNameIgnoringAsciiCase) {
    Request headers;
    headers.add_field("x-request-id", "abc");
    headers.add_field(boost::beast::http::field::host, "h");
    const auto found = find_field_values(headers, "X-Request-ID");
    EXPECT_EQ(found.count, 1U);
    EXPECT_EQ(found.first, "abc");
    EXPECT_EQ(find_field_values(headers, "HOST").first, "h");
    EXPECT_EQ(find_field_values(headers, "X-Missing").count, 0U);
}

TEST(FieldLookup, CountsRepeatsAndKeepsTheirOrder) {
    Request headers;
    headers.add_field("tracestate", "a=1");
    headers.add_field("Other", "x");
    headers.add_field("TraceState", "b=2");
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

// The server's one pass finds exactly what a lookup per name finds, repeats and order included.
TEST(FieldLookup, OnePassFindsWhatLookupsByNameFind) {
    Request headers;
    headers.add_field(boost::beast::http::field::host, "h");
    headers.add_field("TRACEPARENT", "tp-1");
    headers.add_field("x-request-id", "rid-1");
    headers.add_field("tracestate", "a=1");
    headers.add_field("X-User-Id", "u1");
    headers.add_field("X-Request-Timeout-Ms", "250");
    headers.add_field("traceparent", "tp-2");
    headers.add_field("X-User-ID", "u2");
    headers.add_field("X-Request-Id2", "not-it");  // same length as no known name
    headers.add_field("TraceState", "b=2");

    const KnownFields known = scan_known_fields(headers);
    const auto same = [&](const FieldValues& got, std::string_view name) {
        const FieldValues want = find_field_values(headers, name);
        EXPECT_EQ(got.count, want.count) << name;
        EXPECT_EQ(got.first, want.first) << name;
    };
    same(known.request_id, "X-Request-ID");
    same(known.user_id, "X-User-ID");
    same(known.request_timeout, "X-Request-Timeout-Ms");
    EXPECT_EQ(known.user_id.count, 2U);
    const auto lines = [](const FieldLines& l) {
        return std::vector<std::string>(l.begin(), l.end());
    };
    EXPECT_EQ(lines(known.traceparent), (std::vector<std::string>{"tp-1", "tp-2"}));
    EXPECT_EQ(lines(known.tracestate), (std::vector<std::string>{"a=1", "b=2"}));

    const KnownFields none = scan_known_fields(Request{});
    EXPECT_EQ(none.request_id.count + none.user_id.count + none.request_timeout.count, 0U);
    EXPECT_TRUE(none.traceparent.empty() && none.tracestate.empty());
}

}  // namespace
}  // namespace reqctx
