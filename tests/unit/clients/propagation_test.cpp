#include "clients/propagation.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace reqctx {
namespace {

constexpr std::string_view kValid = "00-12345678901234567890123456789012-1234567890123456-01";
constexpr std::string_view kTraceHex = "12345678901234567890123456789012";

std::optional<TraceParent> parse1(std::string_view line) {
    return parse_traceparent(std::vector<std::string_view>{line});
}

std::optional<std::string> state(std::vector<std::string_view> lines) {
    return parse_tracestate(lines);
}

// ---- traceparent -------------------------------------------------------------------------

TEST(Traceparent, ParsesVersion00) {
    const auto tp = parse1(kValid);
    ASSERT_TRUE(tp);
    EXPECT_EQ(tp->version, 0);
    EXPECT_EQ(to_hex(tp->trace_id), kTraceHex);
    EXPECT_EQ(to_hex(tp->parent_id), "1234567890123456");
    EXPECT_EQ(tp->flags, 0x01);
}

TEST(Traceparent, AbsentIsInvalid) {
    EXPECT_FALSE(parse_traceparent({}));
}

TEST(Traceparent, DuplicatedLinesAreInvalidEvenWhenEqual) {
    EXPECT_FALSE(parse_traceparent({kValid, kValid}));
    EXPECT_FALSE(
        parse_traceparent({"00-12345678901234567890123456789011-1234567890123456-01", kValid}));
}

TEST(Traceparent, TrimsSurroundingSpacesAndTabs) {
    for (std::string_view v : {" 00-12345678901234567890123456789012-1234567890123456-01",
                               "\t00-12345678901234567890123456789012-1234567890123456-01",
                               "00-12345678901234567890123456789012-1234567890123456-01 ",
                               "00-12345678901234567890123456789012-1234567890123456-01\t",
                               "\t 00-12345678901234567890123456789012-1234567890123456-01 \t"}) {
        const auto tp = parse1(v);
        ASSERT_TRUE(tp) << v;
        EXPECT_EQ(to_hex(tp->trace_id), kTraceHex);
    }
}

TEST(Traceparent, InnerWhitespaceIsInvalid) {
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012 -1234567890123456-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456-0 1"));
}

TEST(Traceparent, Version00MustBeExactly55Characters) {
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456-01."));
    EXPECT_FALSE(
        parse1("00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456-0"));
    EXPECT_FALSE(parse1(""));
}

TEST(Traceparent, HigherVersionParsedByFirst55Characters) {
    auto tp = parse1("cc-12345678901234567890123456789012-1234567890123456-01");
    ASSERT_TRUE(tp);
    EXPECT_EQ(tp->version, 0xcc);
    EXPECT_EQ(to_hex(tp->trace_id), kTraceHex);
    tp = parse1("cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be");
    ASSERT_TRUE(tp);
    EXPECT_EQ(to_hex(tp->trace_id), kTraceHex);
    EXPECT_EQ(tp->flags, 0x01);
    // The 55 characters must be followed by '-' or the end.
    EXPECT_FALSE(parse1("cc-12345678901234567890123456789012-1234567890123456-01.what-the-future"));
    EXPECT_FALSE(parse1("cc-12345678901234567890123456789012-1234567890123456-0"));
    // The version-00 fields are still strict in a higher version.
    EXPECT_FALSE(parse1("cc-00000000000000000000000000000000-1234567890123456-01"));
    EXPECT_FALSE(parse1("cc-12345678901234567890123456789012-123456789012345.-01"));
    EXPECT_FALSE(parse1("cc-1234567890123456789012345678901-21234567890123456-01"));
}

TEST(Traceparent, HigherVersionIsSentOnAsVersion00) {
    const auto tp = parse1("cc-12345678901234567890123456789012-1234567890123456-ff-extra");
    ASSERT_TRUE(tp);
    const TraceContext tc = make_trace_context(tp, std::nullopt);
    EXPECT_EQ(format_traceparent(tc.trace_id, tc.span_id, tc.flags).substr(0, 36),
              "00-12345678901234567890123456789012-");
}

TEST(Traceparent, VersionFfIsInvalid) {
    EXPECT_FALSE(parse1("ff-12345678901234567890123456789012-1234567890123456-01"));
    EXPECT_FALSE(parse1("ff-12345678901234567890123456789012-1234567890123456-01-x"));
}

TEST(Traceparent, VersionMalformed) {
    EXPECT_FALSE(parse1(".0-12345678901234567890123456789012-1234567890123456-01"));
    EXPECT_FALSE(parse1("0.-12345678901234567890123456789012-1234567890123456-01"));
    EXPECT_FALSE(parse1("000-12345678901234567890123456789012-1234567890123456-01"));
    EXPECT_FALSE(parse1("0000-12345678901234567890123456789012-1234567890123456-01"));
    EXPECT_FALSE(parse1("0-12345678901234567890123456789012-1234567890123456-01"));
}

TEST(Traceparent, TraceIdRules) {
    EXPECT_FALSE(parse1("00-00000000000000000000000000000000-1234567890123456-01"));
    EXPECT_FALSE(parse1("00-.2345678901234567890123456789012-1234567890123456-01"));
    EXPECT_FALSE(parse1("00-1234567890123456789012345678901.-1234567890123456-01"));
    EXPECT_FALSE(parse1("00-123456789012345678901234567890123-1234567890123456-01"));
    EXPECT_FALSE(parse1("00-1234567890123456789012345678901-1234567890123456-01"));
}

TEST(Traceparent, ParentIdRules) {
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-0000000000000000-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-.234567890123456-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-123456789012345.-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-12345678901234567-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-123456789012345-01"));
}

TEST(Traceparent, FlagsRules) {
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456-.0"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456-0."));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456-001"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456-1"));
    const auto tp = parse1("00-12345678901234567890123456789012-1234567890123456-ff");
    ASSERT_TRUE(tp);
    EXPECT_EQ(tp->flags, 0xff);  // kept; masked only when sent on
}

TEST(Traceparent, UpperCaseHexIsInvalidInEveryField) {
    EXPECT_FALSE(parse1("00-ABCDEF78901234567890123456789012-1234567890123456-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-ABCDEF7890123456-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456-0A"));
    EXPECT_FALSE(parse1("CC-12345678901234567890123456789012-1234567890123456-01"));
    EXPECT_TRUE(parse1("00-abcdef78901234567890123456789012-abcdef7890123456-0a"));
}

TEST(Traceparent, WrongDelimiters) {
    EXPECT_FALSE(parse1("00_12345678901234567890123456789012-1234567890123456-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012_1234567890123456-01"));
    EXPECT_FALSE(parse1("00-12345678901234567890123456789012-1234567890123456_01"));
}

// ---- tracestate --------------------------------------------------------------------------

TEST(Tracestate, AbsentOrEmptyIsValidAndEmpty) {
    EXPECT_EQ(state({}), "");
    EXPECT_EQ(state({""}), "");
    EXPECT_EQ(state({" \t ", ",", " , ,\t,"}), "");
}

TEST(Tracestate, JoinsLinesInOrder) {
    EXPECT_EQ(state({"foo=1,bar=2", "rojo=1,congo=2", "baz=3"}),
              "foo=1,bar=2,rojo=1,congo=2,baz=3");
    EXPECT_EQ(state({"foo=1", ""}), "foo=1");
    EXPECT_EQ(state({"", "foo=1"}), "foo=1");
}

TEST(Tracestate, TrimsMembers) {
    EXPECT_EQ(state({"foo=1 \t , \t bar=2, \t baz=3"}), "foo=1,bar=2,baz=3");
    EXPECT_EQ(state({"foo=1\t \t,\t \tbar=2,\t \tbaz=3"}), "foo=1,bar=2,baz=3");
    EXPECT_EQ(state({" foo=1"}), "foo=1");
    EXPECT_EQ(state({"\tfoo=1"}), "foo=1");
    EXPECT_EQ(state({"foo=1 "}), "foo=1");
    EXPECT_EQ(state({"foo=1\t"}), "foo=1");
    EXPECT_EQ(state({"\t foo=1 \t"}), "foo=1");
}

TEST(Tracestate, EmptyMembersAreIgnored) {
    EXPECT_EQ(state({"foo=1,,bar=2,"}), "foo=1,bar=2");
    EXPECT_EQ(state({",foo=1, ,\t,bar=2"}), "foo=1,bar=2");
}

TEST(Tracestate, ValueKeepsLeadingSpaces) {
    EXPECT_EQ(state({"foo=  x"}), "foo=  x");
}

TEST(Tracestate, AllAllowedCharacters) {
    std::string key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    std::string value;
    for (char c = 0x20; c <= 0x7e; ++c) {
        if (c != ',' && c != '=') value += c;
    }
    const std::string member = key + "=" + value;
    EXPECT_EQ(state({member}), member);
    const std::string vendor = key + "@a-z0-9_-*/=" + value;
    EXPECT_EQ(state({vendor}), vendor);
}

TEST(Tracestate, InvalidKeysDropTheWholeHeader) {
    for (std::string_view bad :
         {"foo =1", "FOO=1", "foo.bar=1", "@foo=1", "_foo=1", "=1", "fo o=1", "foo\x01=1"}) {
        EXPECT_FALSE(state({"ok=1", bad})) << bad;
    }
}

TEST(Tracestate, KeysMayStartWithDigitAndContainAtSigns) {
    EXPECT_EQ(state({"1foo=1"}), "1foo=1");
    EXPECT_EQ(state({"foo@=1,bar=2"}), "foo@=1,bar=2");
    EXPECT_EQ(state({"foo@@bar=1,bar=2"}), "foo@@bar=1,bar=2");
    EXPECT_EQ(state({"foo@bar@baz=1,bar=2"}), "foo@bar@baz=1,bar=2");
}

TEST(Tracestate, KeyLengthLimit) {
    const std::string k256(256, 'z');
    EXPECT_EQ(state({"foo=1", k256 + "=1"}), "foo=1," + k256 + "=1");
    EXPECT_FALSE(state({"foo=1", std::string(257, 'z') + "=1"}));
    const std::string tenant = std::string(241, 't') + "@" + std::string(14, 'v');
    EXPECT_EQ(state({tenant + "=1"}), tenant + "=1");
    const std::string tenant2 = std::string(242, 't') + "@v";
    EXPECT_EQ(state({tenant2 + "=1"}), tenant2 + "=1");
    const std::string tenant3 = "t@" + std::string(15, 'v');
    EXPECT_EQ(state({tenant3 + "=1"}), tenant3 + "=1");
}

TEST(Tracestate, InvalidValuesDropTheWholeHeader) {
    EXPECT_FALSE(state({"foo=bar=baz"}));
    EXPECT_FALSE(state({"foo=,bar=3"}));
    EXPECT_FALSE(state({"foo"}));
    EXPECT_FALSE(state({"foo=a\tb"}));
    EXPECT_FALSE(state({"foo=\x7f"}));
    EXPECT_FALSE(state({"foo=\xc3\xa9"}));
    EXPECT_FALSE(state({"foo=" + std::string(257, 'v')}));
    EXPECT_EQ(state({"foo=" + std::string(256, 'v')}), "foo=" + std::string(256, 'v'));
}

TEST(Tracestate, MemberCountLimit) {
    const std::vector<std::string> lines = {
        "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
        "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
        "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
        "bar31=31,bar32=32"};
    std::vector<std::string_view> views(lines.begin(), lines.end());
    const auto ok = parse_tracestate(views);
    ASSERT_TRUE(ok);
    EXPECT_EQ(std::count(ok->begin(), ok->end(), ',') + 1, 32);
    views.push_back("bar33=33");
    EXPECT_FALSE(parse_tracestate(views));
    // Empty members do not count toward the limit.
    views.pop_back();
    views.push_back(" , ,");
    EXPECT_TRUE(parse_tracestate(views));
}

TEST(Tracestate, DuplicateKeysKeepTheLeftMost) {
    EXPECT_EQ(state({"foo=1,foo=1"}), "foo=1");
    EXPECT_EQ(state({"foo=1,foo=2"}), "foo=1");
    EXPECT_EQ(state({"foo=1", "foo=2"}), "foo=1");
    EXPECT_EQ(state({"foo=1,bar=2,foo=3,baz=4"}), "foo=1,bar=2,baz=4");
}

// ---- trace context -----------------------------------------------------------------------

TEST(TraceContext, ContinuesAValidParent) {
    const auto tp = parse1("00-12345678901234567890123456789012-1234567890123456-02");
    const TraceContext tc = make_trace_context(tp, std::string("foo=1"));
    EXPECT_EQ(to_hex(tc.trace_id), kTraceHex);
    ASSERT_TRUE(tc.parent_span_id);
    EXPECT_EQ(to_hex(*tc.parent_span_id), "1234567890123456");
    EXPECT_NE(to_hex(tc.span_id), "1234567890123456");
    EXPECT_EQ(tc.flags, 0x02);
    EXPECT_EQ(tc.tracestate, "foo=1");
}

TEST(TraceContext, InvalidTracestateWithValidParentIsDropped) {
    const TraceContext tc = make_trace_context(parse1(kValid), std::nullopt);
    EXPECT_TRUE(tc.tracestate.empty());
}

TEST(TraceContext, NewTraceHasRandomIdsFlags03AndNoTracestate) {
    const TraceContext a = make_trace_context(std::nullopt, std::string("foo=1"));
    const TraceContext b = make_trace_context(std::nullopt, std::nullopt);
    EXPECT_EQ(a.flags, 0x03);
    EXPECT_FALSE(a.parent_span_id);
    EXPECT_TRUE(a.tracestate.empty());
    EXPECT_NE(a.trace_id, b.trace_id);
    EXPECT_NE(a.span_id, b.span_id);
}

TEST(TraceContext, FreshSpanIdEveryTime) {
    std::set<std::string> spans;
    for (int i = 0; i < 1000; ++i) {
        spans.insert(to_hex(make_trace_context(parse1(kValid), std::nullopt).span_id));
    }
    EXPECT_EQ(spans.size(), 1000u);
}

TEST(FormatTraceparent, Version00MaskedFlags) {
    TraceId t{};
    t[15] = 1;
    SpanId s{};
    s[0] = 0xab;
    EXPECT_EQ(format_traceparent(t, s, 0xff),
              "00-00000000000000000000000000000001-ab00000000000000-03");
    EXPECT_EQ(format_traceparent(t, s, 0x01),
              "00-00000000000000000000000000000001-ab00000000000000-01");
    EXPECT_EQ(format_traceparent(t, s, 0x04),
              "00-00000000000000000000000000000001-ab00000000000000-00");
}

TEST(FormatTraceparent, RoundTrips) {
    for (int i = 0; i < 100; ++i) {
        const TraceId t = random_trace_id();
        const SpanId s = random_span_id();
        const std::string text = format_traceparent(t, s, 0x01);
        const auto tp = parse1(text);
        ASSERT_TRUE(tp) << text;
        EXPECT_EQ(tp->trace_id, t);
        EXPECT_EQ(tp->parent_id, s);
    }
}

TEST(RandomIds, NeverAllZeroAndLowercaseHex) {
    for (int i = 0; i < 1000; ++i) {
        const std::string t = to_hex(random_trace_id());
        const std::string s = to_hex(random_span_id());
        EXPECT_NE(t, std::string(32, '0'));
        EXPECT_NE(s, std::string(16, '0'));
        EXPECT_EQ(t.find_first_not_of("0123456789abcdef"), std::string::npos);
        EXPECT_EQ(s.size(), 16u);
    }
}

// ---- request id --------------------------------------------------------------------------

TEST(RequestId, Validation) {
    EXPECT_TRUE(is_valid_request_id("a"));
    EXPECT_TRUE(is_valid_request_id("Abc-123_x.y:z"));
    EXPECT_TRUE(is_valid_request_id(std::string(128, 'x')));
    EXPECT_FALSE(is_valid_request_id(""));
    EXPECT_FALSE(is_valid_request_id(std::string(129, 'x')));
    for (std::string_view bad : {"a b", "a/b", "a\tb", "a\nb", "a@b", "\xc3\xa9", "a,b", "a=b"}) {
        EXPECT_FALSE(is_valid_request_id(bad)) << bad;
    }
}

TEST(RequestId, GeneratesUuidV4) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const std::string id = generate_request_id();
        ASSERT_EQ(id.size(), 36u);
        EXPECT_EQ(id[8], '-');
        EXPECT_EQ(id[13], '-');
        EXPECT_EQ(id[18], '-');
        EXPECT_EQ(id[23], '-');
        EXPECT_EQ(id[14], '4');
        EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);
        EXPECT_EQ(id.find_first_not_of("0123456789abcdef-"), std::string::npos);
        EXPECT_TRUE(is_valid_request_id(id));
        seen.insert(id);
    }
    EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace reqctx
