// The middleware steps' pure functions: request ID, trace, deadline, user.

#include <gtest/gtest.h>

#include <string>

#include "middleware/deadline.hpp"
#include "middleware/request_id.hpp"
#include "middleware/trace.hpp"
#include "middleware/user.hpp"

namespace reqctx {
namespace {

using std::chrono::milliseconds;
using Fields = Request;

Fields with(std::initializer_list<std::pair<const char*, std::string>> items) {
    Fields f;
    for (const auto& [k, v] : items) f.add_field(k, v);
    return f;
}

TEST(RequestIdStep, KeepsAValidId) {
    EXPECT_EQ(resolve_request_id(with({{"X-Request-ID", "abc.DEF_1:2-3"}})).value, "abc.DEF_1:2-3");
    EXPECT_EQ(resolve_request_id(with({{"x-request-id", "lower"}})).value, "lower");
}

TEST(RequestIdStep, ReplacesInvalidMissingAndRepeatedIds) {
    for (const std::string& bad : {std::string(""), std::string(129, 'a'), std::string("a b"),
                                   std::string("é"), std::string("a/b")}) {
        const auto id = resolve_request_id(with({{"X-Request-ID", bad}})).value;
        EXPECT_NE(id, bad);
        EXPECT_EQ(id.size(), 36U) << bad;
    }
    EXPECT_EQ(resolve_request_id(Fields{}).value.size(), 36U);
    const auto twice = resolve_request_id(with({{"X-Request-ID", "a"}, {"X-Request-ID", "b"}}));
    EXPECT_EQ(twice.value.size(), 36U);
}

TEST(TraceStep, ContinuesAValidParent) {
    const auto t = resolve_trace(
        with({{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
              {"tracestate", "a=1"},
              {"tracestate", "b=2"}}));
    EXPECT_EQ(to_hex(t.trace_id), "0af7651916cd43dd8448eb211c80319c");
    ASSERT_TRUE(t.parent_span_id);
    EXPECT_EQ(to_hex(*t.parent_span_id), "b7ad6b7169203331");
    EXPECT_NE(to_hex(t.span_id), "b7ad6b7169203331");
    EXPECT_EQ(t.flags, 0x01);
    EXPECT_EQ(t.tracestate, "a=1,b=2");
}

TEST(TraceStep, DropsTracestateWithAnInvalidParentOrAnInvalidMember) {
    const auto bad_parent = resolve_trace(
        with({{"traceparent", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"},
              {"tracestate", "a=1"}}));
    EXPECT_FALSE(bad_parent.parent_span_id);
    EXPECT_EQ(bad_parent.flags, 0x03);
    EXPECT_TRUE(bad_parent.tracestate.empty());

    const auto bad_member = resolve_trace(
        with({{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
              {"tracestate", "a=1,B=2"}}));
    EXPECT_TRUE(bad_member.parent_span_id);
    EXPECT_TRUE(bad_member.tracestate.empty());
}

TEST(TraceStep, DuplicatedTraceparentStartsANewTrace) {
    const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const auto t = resolve_trace(with({{"traceparent", tp}, {"Traceparent", tp}}));
    EXPECT_FALSE(t.parent_span_id);
    EXPECT_NE(to_hex(t.trace_id), "0af7651916cd43dd8448eb211c80319c");
}

TEST(TraceStep, AbsentStartsANewSampledTrace) {
    const auto t = resolve_trace(Fields{});
    EXPECT_FALSE(t.parent_span_id);
    EXPECT_EQ(t.flags, 0x03);
    EXPECT_NE(to_hex(t.trace_id), std::string(32, '0'));
}

TEST(DeadlineStep, DefaultWhenAbsent) {
    EXPECT_EQ(resolve_request_timeout(Fields{}, milliseconds(5000), milliseconds(30000)),
              milliseconds(5000));
}

TEST(DeadlineStep, AcceptsIntegersWithinTheCap) {
    auto parse = [](const std::string& v) {
        return resolve_request_timeout(with({{"X-Request-Timeout-Ms", v}}), milliseconds(5000),
                                       milliseconds(30000));
    };
    EXPECT_EQ(parse("1"), milliseconds(1));
    EXPECT_EQ(parse("30000"), milliseconds(30000));
    EXPECT_EQ(parse("0250"), milliseconds(250));
    for (const char* bad :
         {"0", "30001", "-1", "+1", "1.0", "1e3", "abc", "", "99999999999999999999", "1 2"}) {
        EXPECT_FALSE(parse(bad)) << bad;
    }
    EXPECT_FALSE(resolve_request_timeout(
        with({{"X-Request-Timeout-Ms", "10"}, {"X-Request-Timeout-Ms", "20"}}), milliseconds(5000),
        milliseconds(30000)));
}

TEST(UserStep, ParsesTypedUserOrRejects) {
    EXPECT_TRUE(resolve_user(Fields{}).valid);
    EXPECT_FALSE(resolve_user(Fields{}).user);
    const auto ok = resolve_user(with({{"X-User-ID", "alice_01-x"}}));
    ASSERT_TRUE(ok.valid);
    ASSERT_TRUE(ok.user);
    EXPECT_EQ(ok.user->id, "alice_01-x");
    EXPECT_TRUE(resolve_user(with({{"X-User-ID", std::string(64, 'a')}})).valid);
    for (const std::string& bad : {std::string(""), std::string(65, 'a'), std::string("a b"),
                                   std::string("a.b"), std::string("a:b")}) {
        EXPECT_FALSE(resolve_user(with({{"X-User-ID", bad}})).valid) << bad;
    }
    EXPECT_FALSE(resolve_user(with({{"X-User-ID", "a"}, {"X-User-ID", "b"}})).valid);
}

}  // namespace
}  // namespace reqctx
