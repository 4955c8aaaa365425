#include "clients/memcache/protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "clients/memcache/client.hpp"
#include "clients/memcache/errors.hpp"

namespace reqctx::memcache {
namespace {

using proto::Status;

// A response copied out of the parser's buffer.
struct Parsed {
    Status status;
    std::string data;
    std::string message;
    std::uint32_t flags;
    std::uint64_t cas;
    std::optional<std::uint32_t> opaque;
};

struct FeedResult {
    std::vector<Parsed> responses;
    std::error_code ec;
    std::size_t leftover = 0;
};

// Feeds `wire` to the parser `fragment` bytes at a time, as a connection's reader would.
FeedResult feed(std::string_view wire, std::size_t fragment, std::size_t max_value = 1 << 20) {
    FeedResult out;
    std::string buf;
    std::size_t pos = 0;
    while (pos < wire.size()) {
        const std::size_t n = std::min(fragment, wire.size() - pos);
        buf.append(wire.substr(pos, n));
        pos += n;
        for (;;) {
            proto::Response r;
            auto [used, ec] = proto::parse_response(buf, r, max_value);
            if (ec) {
                out.ec = ec;
                return out;
            }
            if (used == 0) break;
            out.responses.push_back(Parsed{r.status, std::string(r.data), std::string(r.message),
                                           r.flags, r.cas, r.opaque});
            buf.erase(0, used);
        }
    }
    out.leftover = buf.size();
    return out;
}

const std::vector<std::size_t> kFragments = {1, 2, 5, 10, 100, 1 << 30};

TEST(MemcacheProtocol, RelativeTtlAbove30DaysBecomesAnAbsoluteTimeCappedAt2038) {
    constexpr std::int64_t now = 1'800'000'000;  // 2027-01-15
    EXPECT_EQ(proto::wire_exptime(0, now), 0);
    EXPECT_EQ(proto::wire_exptime(-1, now), -1);  // expires at once, as memcached reads it
    EXPECT_EQ(proto::wire_exptime(60, now), 60);
    EXPECT_EQ(proto::wire_exptime(2'592'000, now), 2'592'000);  // exactly 30 days: relative
    EXPECT_EQ(proto::wire_exptime(2'592'001, now), now + 2'592'001);
    EXPECT_EQ(proto::wire_exptime(347'483'647, now), 2'147'483'647);  // lands on the cap
    EXPECT_EQ(proto::wire_exptime(347'483'648, now), 2'147'483'647);  // beyond it: capped
    EXPECT_EQ(proto::wire_exptime(4'294'967'295, now), 2'147'483'647);
}

// memcache_ops_total{result=...}: the HTTP contract spells it "cancelled".
TEST(MemcacheResultLabel, CancelledOpUsesTheContractsSpelling) {
    const OpEvent cancelled{Op::get, make_error_code(ContextErrc::canceled), {}, {}};
    EXPECT_EQ(result_label(cancelled), "cancelled");
    const OpEvent late{Op::set, make_error_code(ContextErrc::deadline_exceeded), {}, {}};
    EXPECT_EQ(result_label(late), "deadline_exceeded");
}

TEST(MemcacheProtocol, ParsesEveryResponseKindAtEveryFragmentSize) {
    const std::string value("a\r\nb\0c\0", 7);  // binary-safe: CRLF and NUL inside the value
    const std::string wire =
        "EN O1\r\n"
        "VA 7 f5 c42 O2\r\n" +
        value +
        "\r\n"
        "HD O3\r\n"
        "NS O4\r\n"
        "EX O5\r\n"
        "NF O6\r\n"
        "MN\r\n"
        "VERSION 1.6.18\r\n"
        "VA 0 f0 c6 O7\r\n\r\n"
        "SERVER_ERROR object too large for cache\r\n"
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        "ERROR\r\n"
        "VA 2 O8\r\n15\r\n";
    for (std::size_t frag : kFragments) {
        SCOPED_TRACE(frag);
        auto r = feed(wire, frag);
        ASSERT_FALSE(r.ec);
        EXPECT_EQ(r.leftover, 0u);
        ASSERT_EQ(r.responses.size(), 13u);
        EXPECT_EQ(r.responses[0].status, Status::miss);
        EXPECT_EQ(r.responses[0].opaque, 1u);
        EXPECT_EQ(r.responses[1].status, Status::value);
        EXPECT_EQ(r.responses[1].data, value);
        EXPECT_EQ(r.responses[1].flags, 5u);
        EXPECT_EQ(r.responses[1].cas, 42u);
        EXPECT_EQ(r.responses[1].opaque, 2u);
        EXPECT_EQ(r.responses[2].status, Status::stored);
        EXPECT_EQ(r.responses[3].status, Status::not_stored);
        EXPECT_EQ(r.responses[4].status, Status::exists);
        EXPECT_EQ(r.responses[5].status, Status::not_found);
        EXPECT_EQ(r.responses[5].opaque, 6u);
        EXPECT_EQ(r.responses[6].status, Status::noop);
        EXPECT_FALSE(r.responses[6].opaque);
        EXPECT_EQ(r.responses[7].status, Status::version);
        EXPECT_EQ(r.responses[7].message, "1.6.18");
        EXPECT_EQ(r.responses[8].status, Status::value);
        EXPECT_EQ(r.responses[8].data, "");
        EXPECT_EQ(r.responses[8].cas, 6u);
        EXPECT_EQ(r.responses[9].status, Status::server_error);
        EXPECT_EQ(r.responses[9].message, "object too large for cache");
        EXPECT_EQ(r.responses[10].status, Status::client_error);
        EXPECT_EQ(r.responses[11].status, Status::error);
        EXPECT_EQ(r.responses[12].data, "15");
    }
}

TEST(MemcacheProtocol, ParsesValueSplitAcrossReads) {
    const std::string big(100000, 'x');
    const std::string wire = "VA 100000 f1 c2 O9\r\n" + big + "\r\nHD O10\r\n";
    for (std::size_t frag : kFragments) {
        SCOPED_TRACE(frag);
        auto r = feed(wire, frag);
        ASSERT_FALSE(r.ec);
        ASSERT_EQ(r.responses.size(), 2u);
        EXPECT_EQ(r.responses[0].data, big);
        EXPECT_EQ(r.responses[1].opaque, 10u);
    }
}

TEST(MemcacheProtocol, IncompleteInputWaitsForMore) {
    for (std::string_view partial : {"", "V", "VA", "VA 5", "VA 5 f1\r", "VA 5 f1\r\nabc",
                                     "VA 5 f1\r\nabcde", "VA 5 f1\r\nabcde\r", "HD O1\r"}) {
        proto::Response r;
        auto res = proto::parse_response(partial, r, 1024);
        EXPECT_FALSE(res.ec) << partial;
        EXPECT_EQ(res.consumed, 0u) << partial;
    }
}

TEST(MemcacheProtocol, RejectsMalformedResponses) {
    for (std::string_view bad :
         {"XX\r\n", "VA\r\n", "VA x\r\n", "VA -1\r\n", "VA 3 f1\r\nabcXY", "VA 3 fnope\r\nabc\r\n",
          "VA 3 c99999999999999999999999\r\n", "HDX\r\n", "HD fbad\r\n", "\r\n", "STORED\r\n"}) {
        for (std::size_t frag : kFragments) {
            auto r = feed(bad, frag);
            EXPECT_EQ(r.ec, MemcacheErrc::protocol_error) << bad << " @" << frag;
        }
    }
}

TEST(MemcacheProtocol, RejectsValueLargerThanLimitAndEndlessHeader) {
    proto::Response r;
    EXPECT_EQ(proto::parse_response("VA 2000\r\n", r, 1000).ec, MemcacheErrc::protocol_error);
    const std::string endless(proto::kMaxLineLength + 1, 'V');
    EXPECT_EQ(proto::parse_response(endless, r, 1000).ec, MemcacheErrc::protocol_error);
    // A long but not yet complete header is fine up to the limit.
    EXPECT_FALSE(proto::parse_response(endless.substr(0, 100), r, 1000).ec);
}

TEST(MemcacheProtocol, NonNumericOpaqueNeverMatchesOurs) {
    proto::Response r;
    auto res = proto::parse_response("HD Ofoo\r\n", r, 10);
    ASSERT_FALSE(res.ec);
    EXPECT_EQ(r.opaque, UINT32_MAX);
}

TEST(MemcacheProtocol, EncodesMetaCommands) {
    std::string out;
    proto::encode_get(out, "k", 7);
    EXPECT_EQ(out, "mg k v f c O7\r\n");
    out.clear();
    proto::encode_touch(out, "k", 60, 8);
    EXPECT_EQ(out, "mg k T60 O8\r\n");
    out.clear();
    proto::encode_store(out, proto::StoreMode::set, "k", std::string_view("a\0b", 3), 0, 5, 0, 9);
    EXPECT_EQ(out, "ms k 3 T0 F5 O9\r\n" + std::string("a\0b", 3) + "\r\n");
    out.clear();
    proto::encode_store(out, proto::StoreMode::add, "k", "v", 10, 0, 0, 1);
    EXPECT_EQ(out, "ms k 1 T10 F0 ME O1\r\nv\r\n");
    out.clear();
    proto::encode_store(out, proto::StoreMode::replace, "k", "v", 0, 0, 0, 1);
    EXPECT_EQ(out, "ms k 1 T0 F0 MR O1\r\nv\r\n");
    out.clear();
    proto::encode_store(out, proto::StoreMode::append, "k", "v", 0, 0, 0, 1);
    EXPECT_EQ(out, "ms k 1 T0 F0 MA O1\r\nv\r\n");
    out.clear();
    proto::encode_store(out, proto::StoreMode::prepend, "k", "v", 0, 0, 0, 1);
    EXPECT_EQ(out, "ms k 1 T0 F0 MP O1\r\nv\r\n");
    out.clear();
    proto::encode_store(out, proto::StoreMode::set, "k", "v", 0, 0, 77, 1);
    EXPECT_EQ(out, "ms k 1 T0 F0 C77 O1\r\nv\r\n");
    out.clear();
    proto::encode_delete(out, "k", 3);
    EXPECT_EQ(out, "md k O3\r\n");
    out.clear();
    proto::encode_arith(out, true, "n", 5, std::nullopt, 0, 4);
    EXPECT_EQ(out, "ma n D5 v O4\r\n");
    out.clear();
    proto::encode_arith(out, false, "n", 5, 100, 30, 4);
    EXPECT_EQ(out, "ma n MD D5 N30 J100 v O4\r\n");
    out.clear();
    proto::encode_noop(out);
    proto::encode_version(out);
    EXPECT_EQ(out, "mn\r\nversion\r\n");
}

TEST(MemcacheProtocol, ParsesU64) {
    EXPECT_EQ(proto::parse_u64("0"), 0u);
    EXPECT_EQ(proto::parse_u64("18446744073709551615"), UINT64_MAX);
    EXPECT_FALSE(proto::parse_u64("18446744073709551616"));
    EXPECT_FALSE(proto::parse_u64(""));
    EXPECT_FALSE(proto::parse_u64("1a"));
    EXPECT_FALSE(proto::parse_u64("-1"));
}

TEST(MemcacheValidation, Keys) {
    EXPECT_FALSE(validate_key("a"));
    EXPECT_FALSE(validate_key(std::string(250, 'k')));
    EXPECT_FALSE(validate_key("utf8-\xc3\xa9"));
    EXPECT_EQ(validate_key(""), MemcacheErrc::invalid_key);
    EXPECT_EQ(validate_key(std::string(251, 'k')), MemcacheErrc::invalid_key);
    for (const std::string& bad : std::vector<std::string>{
             "a b", "a\tb", "a\rb", "a\nb", std::string("a\0b", 3), "a\x01", "\x7f"}) {
        EXPECT_EQ(validate_key(bad), MemcacheErrc::invalid_key) << bad;
    }
}

TEST(MemcacheValidation, ParsesServerLists) {
    auto s = parse_servers("127.0.0.1:11211,cache-b:11212:3, cache-c");
    ASSERT_TRUE(s);
    ASSERT_EQ(s->size(), 3u);
    EXPECT_EQ((*s)[0].host, "127.0.0.1");
    EXPECT_EQ((*s)[0].port, 11211);
    EXPECT_EQ((*s)[0].weight, 1u);
    EXPECT_EQ((*s)[1].port, 11212);
    EXPECT_EQ((*s)[1].weight, 3u);
    EXPECT_EQ((*s)[2].host, "cache-c");
    EXPECT_EQ((*s)[2].port, kDefaultPort);
    EXPECT_EQ((*s)[1].label(), "cache-b:11212");
    auto v6 = parse_servers("[::1]:11300:2");
    ASSERT_TRUE(v6);
    EXPECT_EQ((*v6)[0].host, "::1");
    EXPECT_EQ((*v6)[0].label(), "[::1]:11300");
    for (std::string_view bad :
         {"", ",", "h:", ":11211", "h:0", "h:65536", "h:1:0", "h:x", "h:1:2:3", "[::1", "a,,b"}) {
        EXPECT_EQ(parse_servers(bad).error(), MemcacheErrc::invalid_server) << bad;
    }
}

TEST(MemcacheErrors, DistinctCodesAndLabels) {
    EXPECT_NE(make_error_code(MemcacheErrc::not_stored), make_error_code(MemcacheErrc::exists));
    EXPECT_EQ(make_error_code(MemcacheErrc::invalid_key).category().name(),
              std::string("memcache"));
    EXPECT_FALSE(make_error_code(MemcacheErrc::server_unreachable).message().empty());
    OpEvent e{Op::get, {}, true, {}};
    EXPECT_EQ(result_label(e), "hit");
    e.hit = false;
    EXPECT_EQ(result_label(e), "miss");
    e.hit.reset();
    EXPECT_EQ(result_label(e), "ok");
    e.ec = make_error_code(ContextErrc::deadline_exceeded);
    EXPECT_EQ(result_label(e), "deadline_exceeded");
    e.ec = make_error_code(MemcacheErrc::not_stored);
    EXPECT_EQ(result_label(e), "not_stored");
    EXPECT_EQ(to_string(Op::remove), "delete");
}

}  // namespace
}  // namespace reqctx::memcache
