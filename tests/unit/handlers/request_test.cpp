// reqctx::Request on its own: the start line, fields by enum and by name, insertion order, and
// views that stay valid through copies and moves (fields are offsets into the request's own text,
// inline up to 512 bytes and on the heap beyond).

#include "handlers/request.hpp"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/request_lines.hpp"

namespace reqctx {
namespace {

using namespace std::string_view_literals;
using test::Line;
using test::lines;

// Everything a handler can read, as owned strings: two requests are equal when all of it is.
struct Snapshot {
    http::verb method;
    std::string method_string;
    std::string target;
    unsigned version;
    bool keep_alive;
    std::vector<Line> fields;
    std::string body;
    bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const Request& req) {
    return {req.method(),
            std::string(req.method_string()),
            std::string(req.target()),
            req.version(),
            req.keep_alive(),
            lines(req),
            req.body()};
}

// True when `view` points into the bytes of `req` itself rather than at some other object's.
bool points_into(std::string_view view, const Request& req) {
    const auto* lo = reinterpret_cast<const char*>(&req);
    const auto* hi = lo + sizeof(Request);
    return view.data() >= lo && view.data() + view.size() <= hi;
}

// A request whose header text fits the inline storage (no allocation to share or steal).
Request small_request() {
    Request req(http::verb::post, "/v1/items?limit=10", 11);
    req.add_field(http::field::host, "localhost:8080");
    req.add_field("X-Request-ID"sv, "req-1");
    req.add_field(http::field::content_type, "application/json");
    req.body() = R"({"a":1})";
    return req;
}

// A request whose header text is well past the 512 inline bytes (and past 12 field slots).
Request large_request() {
    Request req(http::verb::get, "/" + std::string(300, 't'), 11);
    for (int i = 0; i < 20; ++i) {
        req.add_field("X-Field-" + std::to_string(i), std::string(40, static_cast<char>('a' + i)));
    }
    req.add_field(http::field::user_agent, "wrk");
    req.body() = std::string(2000, 'b');
    return req;
}

TEST(Request, DefaultIsAnEmptyHttp11Request) {
    const Request req;
    EXPECT_EQ(req.method(), http::verb::unknown);
    EXPECT_EQ(req.method_string(), "");
    EXPECT_EQ(req.target(), "");
    EXPECT_EQ(req.version(), 11U);
    EXPECT_TRUE(req.keep_alive());
    EXPECT_EQ(req.fields().begin(), req.fields().end());
    EXPECT_EQ(req.find(http::field::host), std::nullopt);
    EXPECT_EQ(req.body(), "");
}

TEST(Request, BuiltInCodeSpellsTheMethodAsBeastDoes) {
    const Request req(http::verb::delete_, "/v1/items/7", 11);
    EXPECT_EQ(req.method(), http::verb::delete_);
    EXPECT_EQ(req.method_string(), "DELETE");
    EXPECT_EQ(req.target(), "/v1/items/7");
    EXPECT_EQ(req.version(), 11U);
    EXPECT_EQ(lines(req), std::vector<Line>{});
}

TEST(Request, KeepAliveDefaultsFollowTheVersion) {
    // HTTP/1.1 connections persist unless closed; HTTP/1.0 ones close unless asked to persist.
    EXPECT_TRUE(Request(http::verb::get, "/", 11).keep_alive());
    EXPECT_FALSE(Request(http::verb::get, "/", 10).keep_alive());

    Request req(http::verb::get, "/", 10);
    req.set_keep_alive(true);
    EXPECT_TRUE(req.keep_alive());
    req.set_keep_alive(false);
    EXPECT_FALSE(req.keep_alive());
}

TEST(Request, StartLineReplacesTheEarlierOneAndItsKeepAlive) {
    Request req(http::verb::get, "/first", 11);
    req.add_field(http::field::host, "h");
    req.set_start_line(http::verb::unknown, "PURGE", "/second", 10);
    EXPECT_EQ(req.method(), http::verb::unknown);
    EXPECT_EQ(req.method_string(), "PURGE");
    EXPECT_EQ(req.target(), "/second");
    EXPECT_EQ(req.version(), 10U);
    EXPECT_FALSE(req.keep_alive());
    // The fields added before stay, and still read back correctly after the text grew.
    EXPECT_EQ(lines(req), (std::vector<Line>{{http::field::host, "Host", "h"}}));
}

TEST(Request, AddFieldByEnumUsesBeastsSpelling) {
    Request req(http::verb::get, "/", 11);
    req.add_field(http::field::content_length, "0");
    req.add_field(http::field::forwarded, "for=10.0.0.1");
    EXPECT_EQ(lines(req), (std::vector<Line>{
                              {http::field::content_length, "Content-Length", "0"},
                              {http::field::forwarded, "Forwarded", "for=10.0.0.1"},
                          }));
}

TEST(Request, AddFieldByNameKeepsTheSpellingAndMapsKnownNames) {
    Request req(http::verb::get, "/", 11);
    req.add_field("content-TYPE"sv, "text/plain");
    req.add_field("X-Request-ID"sv, "abc");  // not among Beast's known fields
    req.add_field("traceparent"sv, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    req.add_field("HOST"sv, "example.com");
    EXPECT_EQ(lines(req), (std::vector<Line>{
                              {http::field::content_type, "content-TYPE", "text/plain"},
                              {http::field::unknown, "X-Request-ID", "abc"},
                              {http::field::unknown, "traceparent",
                               "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                              {http::field::host, "HOST", "example.com"},
                          }));
}

TEST(Request, AddFieldWithExplicitNameStoresBothAsGiven) {
    // The parser passes the enum it looked up and the name as received; neither is re-derived.
    Request req(http::verb::get, "/", 11);
    req.add_field(http::field::accept, "aCCept", "*/*");
    req.add_field(http::field::unknown, "X-Odd", "");
    EXPECT_EQ(lines(req), (std::vector<Line>{
                              {http::field::accept, "aCCept", "*/*"},
                              {http::field::unknown, "X-Odd", ""},
                          }));
}

TEST(Request, PartsNameTheAppendedText) {
    // The parser's one-copy path: the header text goes in once, the start line and the fields
    // are named by their place in it.
    const std::string head = "PURGE /k HTTP/1.1\r\nHost: h1\r\nX-Id:  7 \r\n";
    Request req;
    const Request::Part all = req.append_text(head);
    EXPECT_EQ(all.offset, 0U);
    EXPECT_EQ(all.size, head.size());
    const auto at = [&head, &all](std::string_view s, std::size_t from = 0) {
        return Request::Part{all.offset + static_cast<std::uint32_t>(head.find(s, from)),
                             static_cast<std::uint32_t>(s.size())};
    };
    req.set_start_line(http::verb::purge, at("PURGE"), at("/k"), 11);
    req.add_field(http::field::host, at("Host"), at("h1"));
    req.add_field(http::field::unknown, at("X-Id"), at("7"));
    EXPECT_EQ(req.method_string(), "PURGE");
    EXPECT_EQ(req.target(), "/k");
    EXPECT_EQ(lines(req), (std::vector<Line>{
                              {http::field::host, "Host", "h1"},
                              {http::field::unknown, "X-Id", "7"},
                          }));

    // Text appended later lands after the earlier text, which keeps its parts.
    const Request::Part more = req.append_text(std::string(600, 'z') + "late");
    EXPECT_EQ(more.offset, head.size());
    req.add_field(http::field::unknown, at("X-Id"), {more.offset + 600, 4});
    EXPECT_EQ(req.target(), "/k");
    ASSERT_EQ(lines(req).size(), 3U);
    EXPECT_EQ(lines(req)[2].value, "late");
    EXPECT_EQ(snapshot(Request(req)), snapshot(req));
}

TEST(Request, FieldsIterateInInsertionOrderIncludingSplitDuplicates) {
    // Beast's own fields container groups duplicate names together; a Request must not.
    Request req(http::verb::get, "/", 11);
    req.add_field("Accept"sv, "a");
    req.add_field("X-Tag"sv, "1");
    req.add_field("accept"sv, "b");
    req.add_field("X-Tag"sv, "2");
    req.add_field("Accept"sv, "c");
    EXPECT_EQ(lines(req), (std::vector<Line>{
                              {http::field::accept, "Accept", "a"},
                              {http::field::unknown, "X-Tag", "1"},
                              {http::field::accept, "accept", "b"},
                              {http::field::unknown, "X-Tag", "2"},
                              {http::field::accept, "Accept", "c"},
                          }));

    auto it = req.fields().begin();
    const auto was = it++;
    EXPECT_EQ((*was).value, "a");
    EXPECT_EQ((*it).value, "1");
    EXPECT_EQ(std::distance(req.fields().begin(), req.fields().end()), 5);
}

TEST(Request, FindReturnsTheFirstLineOfAField) {
    Request req(http::verb::get, "/", 11);
    req.add_field("Via"sv, "1.1 a");
    req.add_field("Cookie"sv, "a=1");
    req.add_field("via"sv, "1.1 b");
    req.add_field("X-Empty"sv, "");
    req.add_field(http::field::expect, "");
    EXPECT_EQ(req.find(http::field::via), "1.1 a");
    EXPECT_EQ(req.find(http::field::cookie), "a=1");
    // An empty value is a present field, unlike an absent one.
    ASSERT_TRUE(req.find(http::field::expect).has_value());
    EXPECT_EQ(*req.find(http::field::expect), "");
    EXPECT_EQ(req.find(http::field::host), std::nullopt);
    EXPECT_EQ(req.find(http::field::authorization), std::nullopt);
}

TEST(Request, ManyFieldsPastTheInlineSlotsReadBackInOrder) {
    Request req(http::verb::get, "/", 11);
    std::vector<Line> expected;
    for (int i = 0; i < 40; ++i) {
        const std::string name = "X-N" + std::to_string(i);
        const std::string value = std::string(static_cast<std::size_t>(i), 'v');
        req.add_field(name, value);
        expected.push_back({http::field::unknown, name, value});
        // Every earlier field must still read back after each growth of the text and slots.
        ASSERT_EQ(lines(req), expected) << "after " << i + 1 << " fields";
    }
}

TEST(Request, BodyIsReadAndWritten) {
    Request req(http::verb::put, "/v1/items/1", 11);
    EXPECT_EQ(req.body(), "");
    req.body() = "payload";
    req.body().append(" more");
    const Request& view = req;
    EXPECT_EQ(view.body(), "payload more");
}

TEST(Request, CopyOfASmallRequestHasItsOwnEqualViews) {
    const Request original = small_request();
    const Request copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
    EXPECT_EQ(snapshot(copy), snapshot(original));
    // Inline text: the copy's views must be into the copy, not into the original.
    EXPECT_TRUE(points_into(copy.target(), copy));
    EXPECT_TRUE(points_into(copy.method_string(), copy));
    for (const Request::Field f : copy.fields()) {
        EXPECT_TRUE(points_into(f.name_string, copy)) << f.name_string;
        EXPECT_TRUE(points_into(f.value, copy)) << f.name_string;
    }
    EXPECT_EQ(copy.find(http::field::host), "localhost:8080");
}

TEST(Request, CopyOutlivesItsOriginal) {
    for (const bool large : {false, true}) {
        SCOPED_TRACE(large ? "large" : "small");
        auto original = std::make_unique<Request>(large ? large_request() : small_request());
        const Snapshot expected = snapshot(*original);
        const Request copy = *original;
        original.reset();  // ASan reports any view of the copy that still reads the original
        EXPECT_EQ(snapshot(copy), expected);
    }
}

TEST(Request, CopyOfALargeRequestHasItsOwnEqualViews) {
    const Request original = large_request();
    const Request copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
    EXPECT_EQ(snapshot(copy), snapshot(original));
    EXPECT_NE(copy.target().data(), original.target().data());
    EXPECT_EQ(copy.target(), "/" + std::string(300, 't'));
    EXPECT_EQ(copy.find(http::field::user_agent), "wrk");
    EXPECT_EQ(std::distance(copy.fields().begin(), copy.fields().end()), 21);
}

TEST(Request, MoveKeepsEveryView) {
    for (const bool large : {false, true}) {
        SCOPED_TRACE(large ? "large" : "small");
        Request original = large ? large_request() : small_request();
        const Snapshot expected = snapshot(original);
        Request moved = std::move(original);
        EXPECT_EQ(snapshot(moved), expected);
        // An inline request cannot hand its storage over: the moved-to one must read its own.
        if (!large) {
            EXPECT_TRUE(points_into(moved.target(), moved));
        }
        auto holder = std::make_unique<Request>(std::move(moved));
        const Request last = std::move(*holder);
        holder.reset();
        EXPECT_EQ(snapshot(last), expected);
    }
}

TEST(Request, CopyAndMoveAssignmentReplaceEverything) {
    for (const bool large : {false, true}) {
        SCOPED_TRACE(large ? "large" : "small");
        const Request source = large ? large_request() : small_request();
        const Snapshot expected = snapshot(source);

        Request assigned(http::verb::options, "*", 10);
        assigned.add_field("X-Old"sv, "old");
        assigned.body() = "old body";
        assigned = source;
        EXPECT_EQ(snapshot(assigned), expected);

        Request target = large ? small_request() : large_request();
        target = std::move(assigned);
        EXPECT_EQ(snapshot(target), expected);
    }
}

TEST(Request, GrowingACopyLeavesTheOriginalUntouched) {
    const Request original = small_request();
    Request copy = original;
    for (int i = 0; i < 30; ++i) copy.add_field("X-More"sv, std::string(30, 'm'));
    copy.body() = "changed";
    EXPECT_EQ(snapshot(original), snapshot(small_request()));
    EXPECT_EQ(std::distance(copy.fields().begin(), copy.fields().end()), 33);
}

}  // namespace
}  // namespace reqctx
