// reqctx::RequestParser against Beast's own http::request_parser<http::string_body> as the
// oracle: the same bytes, fed the way the server feeds them, must give the same outcome (error,
// bytes used, start line, fields, framing, body). The server used Beast's parser before, so any
// difference is a change in what the server accepts or what handlers see.

#include "service/request_parser.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/optional/optional.hpp>

#include <gtest/gtest.h>

#include "tests/support/request_lines.hpp"

namespace reqctx {
namespace {

using boost::beast::error_code;
using Oracle = http::request_parser<http::string_body>;
using test::Line;
using namespace std::string_literals;
using namespace std::string_view_literals;

// As the server: a 16 KiB header limit, and the configured body limit (1 MiB by default) set
// once the header is read.
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr std::uint64_t kBodyLimit = 1024 * 1024;
constexpr std::size_t kWhole = std::numeric_limits<std::size_t>::max();
constexpr std::array<std::size_t, 6> kFragmentSizes{1, 2, 5, 10, 100, kWhole};

// ---------------------------------------------------------------------------------------------
// Observing a parse.

// Everything the server and its handlers can read after a parse, as owned values.
struct Outcome {
    error_code ec;
    std::size_t consumed = 0;
    bool got_some = false;
    bool header_done = false;
    bool done = false;
    // Known once the header is done (nullopt before).
    std::optional<bool> keep_alive;
    std::optional<bool> chunked;
    std::optional<std::uint64_t> content_length;
    http::verb method = http::verb::unknown;
    std::string method_string;
    std::string target;
    unsigned version = 0;
    std::vector<Line> fields;  // in the order of Beast's message (see beast_order)
    std::vector<std::optional<std::string>> found;  // find() of each of kProbed
    std::string body;
    bool operator==(const Outcome&) const = default;
};

std::string escaped(std::string_view bytes, std::size_t max = 600) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '\r') {
            out += "\\r";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\\' || c == '"') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (bytes.size() > max) out += "...(" + std::to_string(bytes.size()) + " bytes)";
    return "\"" + out + "\"";
}

template <class T>
std::string show(const std::optional<T>& v) {
    if (!v) return "none";
    std::ostringstream os;
    os << std::boolalpha << *v;
    return os.str();
}

void PrintTo(const Outcome& o, std::ostream* os) {
    *os << "{ec=" << (o.ec ? o.ec.message() : "none") << " consumed=" << o.consumed
        << " got_some=" << o.got_some << " header_done=" << o.header_done << " done=" << o.done
        << " keep_alive=" << show(o.keep_alive) << " chunked=" << show(o.chunked)
        << " content_length=" << show(o.content_length) << " method=" << static_cast<int>(o.method)
        << " method_string=" << escaped(o.method_string) << " target=" << escaped(o.target)
        << " version=" << o.version << " fields=[";
    for (const Line& l : o.fields) {
        *os << "(" << static_cast<int>(l.name) << " " << escaped(l.name_string) << " "
            << escaped(l.value) << ")";
    }
    *os << "] found=[";
    for (const auto& f : o.found) *os << (f ? escaped(*f) : "none") << " ";
    *os << "] body=" << escaped(o.body, 80) << "}";
}

// Fields whose find() is compared (the ones the server and middleware look up, and framing).
constexpr std::array kProbed{
    http::field::host,
    http::field::connection,
    http::field::content_length,
    http::field::transfer_encoding,
    http::field::expect,
    http::field::user_agent,
    http::field::accept,
    http::field::content_type,
    http::field::via,
    http::field::cookie,
    http::field::authorization,
    http::field::upgrade,
};

std::optional<std::string> found(const Outcome& o, http::field name) {
    const auto at = std::find(kProbed.begin(), kProbed.end(), name);
    const auto i = static_cast<std::size_t>(at - kProbed.begin());
    return at == kProbed.end() || i >= o.found.size() ? std::nullopt : o.found[i];
}

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        const auto lower = [](char c) {
            return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
        };
        return lower(x) == lower(y);
    });
}

// Beast's message keeps the lines of one name together (a repeated name is inserted after the
// last line of that name, http/impl/fields.hpp insert()), otherwise in the order received. A
// Request keeps them strictly in the order received; this regroups a Request's lines the way
// Beast would, so that both can be compared (the strict order is asserted separately).
std::vector<Line> beast_order(const std::vector<Line>& received) {
    std::vector<Line> out;
    std::vector<bool> taken(received.size(), false);
    for (std::size_t i = 0; i < received.size(); ++i) {
        if (taken[i]) continue;
        for (std::size_t j = i; j < received.size(); ++j) {
            if (!taken[j] && iequals(received[j].name_string, received[i].name_string)) {
                out.push_back(received[j]);
                taken[j] = true;
            }
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Driving a parser as the server does.

// The connection's flat buffer: bytes arrive `fragment` at a time, and whatever the parser did
// not use is offered again together with the next arrival (beast::flat_buffer's role).
class Connection {
public:
    Connection(std::string_view input, std::size_t fragment) : input_(input), fragment_(fragment) {}

    // put()s the buffered bytes until `ready()`, an error, or the end of the input (then
    // put_eof() if the parser got some bytes, as both the server's header loop and Beast's
    // http::read do; end_of_stream otherwise).
    template <class Parser, class Ready>
    error_code pump(Parser& parser, Ready ready) {
        for (;;) {
            if (ready()) return {};
            if (!buffer_.empty()) {
                error_code ec;
                const std::size_t used =
                    parser.put(boost::asio::const_buffer(buffer_.data(), buffer_.size()), ec);
                // A parser claiming more than it was given: shown as an error, not erased past.
                if (used > buffer_.size()) return http::error::buffer_overflow;
                buffer_.erase(0, used);
                consumed_ += used;
                if (ec && ec != http::error::need_more) return ec;
                if (ready()) return {};
                // Progress and no verdict: the rest is offered again before more is read, as
                // Beast's read loop does.
                if (!ec && used > 0 && !buffer_.empty()) continue;
            }
            if (arrived_ == input_.size()) {
                error_code ec = http::error::end_of_stream;
                if (parser.got_some()) parser.put_eof(ec);
                return ec;
            }
            const std::size_t n = std::min(fragment_, input_.size() - arrived_);
            buffer_.append(input_.substr(arrived_, n));
            arrived_ += n;
        }
    }

    std::size_t consumed() const noexcept { return consumed_; }

private:
    std::string_view input_;
    std::size_t fragment_;
    std::size_t arrived_ = 0;
    std::size_t consumed_ = 0;
    std::string buffer_;
};

http::basic_parser<true>& body_parser_of(RequestParser& p) {
    return p.body_parser();
}
http::basic_parser<true>& body_parser_of(Oracle& p) {
    return p;
}

struct Driven {
    error_code ec;
    std::size_t consumed = 0;
    std::optional<bool> keep_alive_at_header;
};

// The server's sequence: the header with no body limit and not eager; then, unless the message
// is already complete, the body through the Beast parser (http::async_read makes it eager) with
// the body limit set.
template <class Parser>
Driven drive(Parser& parser, std::string_view input, std::size_t fragment,
             std::uint64_t body_limit) {
    parser.header_limit(kHeaderLimit);
    parser.body_limit(boost::none);
    parser.eager(false);
    Connection conn(input, fragment);
    Driven d;
    d.ec = conn.pump(parser, [&parser] { return parser.is_header_done(); });
    if (!d.ec) {
        d.keep_alive_at_header = parser.keep_alive();
        if (!parser.is_done()) {
            parser.body_limit(body_limit);
            http::basic_parser<true>& body = body_parser_of(parser);
            body.eager(true);
            d.ec = conn.pump(body, [&body] { return body.is_done(); });
        }
    }
    d.consumed = conn.consumed();
    return d;
}

template <class Parser>
void observe_framing(const Parser& p, Outcome& o) {
    o.got_some = p.got_some();
    o.header_done = p.is_header_done();
    o.done = p.is_done();
    if (o.header_done) {
        o.chunked = p.chunked();
        const boost::optional<std::uint64_t> length = p.content_length();
        if (length) o.content_length = *length;
    }
}

Outcome observe(const RequestParser& p, const Driven& d) {
    Outcome o;
    o.ec = d.ec;
    o.consumed = d.consumed;
    observe_framing(p, o);
    const Request& req = p.get();
    // What handlers read, after the body: the decision the header made must still stand.
    if (o.header_done) o.keep_alive = req.keep_alive();
    o.method = req.method();
    o.method_string = std::string(req.method_string());
    o.target = std::string(req.target());
    o.version = req.version();
    o.fields = beast_order(test::lines(req));
    for (const http::field f : kProbed) {
        const auto v = req.find(f);
        o.found.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
    }
    o.body = req.body();
    return o;
}

Outcome observe(const Oracle& p, const Driven& d) {
    Outcome o;
    o.ec = d.ec;
    o.consumed = d.consumed;
    observe_framing(p, o);
    // The parser's own keep_alive() when the header was done: every Connection line counts
    // (do_field), where the message's keep_alive() reads only the first; and trailers read later
    // can change the parser's flags, which the server does not see (it decides after the header).
    o.keep_alive = d.keep_alive_at_header;
    const auto& m = p.get();
    o.method = m.method();
    o.method_string = std::string(m.method_string());
    o.target = std::string(m.target());
    o.version = m.version();
    for (const auto& f : m) {
        o.fields.push_back({f.name(), std::string(f.name_string()), std::string(f.value())});
    }
    for (const http::field f : kProbed) {
        const auto it = m.find(f);
        o.found.push_back(it == m.end() ? std::nullopt
                                        : std::optional<std::string>(std::string(it->value())));
    }
    o.body = m.body();
    return o;
}

struct Both {
    Outcome ours;
    Outcome beast;
};

Both run_both(std::string_view input, std::size_t fragment, std::uint64_t body_limit) {
    RequestParser ours;
    const Driven a = drive(ours, input, fragment, body_limit);
    Oracle beast;
    const Driven b = drive(beast, input, fragment, body_limit);
    return {observe(ours, a), observe(beast, b)};
}

std::string fragment_name(std::size_t fragment) {
    return fragment == kWhole ? "whole"s : std::to_string(fragment);
}

// Both parsers at every fragment size must agree; returns our outcome for the whole buffer
// (for the caller's own expectations).
Outcome expect_same_outcome(std::string_view input, std::uint64_t body_limit = kBodyLimit) {
    Outcome whole;
    for (const std::size_t fragment : kFragmentSizes) {
        const Both r = run_both(input, fragment, body_limit);
        EXPECT_EQ(r.ours, r.beast) << "fragment size " << fragment_name(fragment) << ", body limit "
                                   << body_limit << ", input " << escaped(input);
        if (fragment == kWhole) whole = r.ours;
    }
    return whole;
}

std::vector<Line> lines_of(std::string_view input) {
    RequestParser p;
    drive(p, input, kWhole, kBodyLimit);
    return test::lines(p.get());
}

// ---------------------------------------------------------------------------------------------
// Requests as clients send them.

const std::string kCurlGet =
    "GET /healthz HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "\r\n";

const std::string kWrkGet =
    "GET /v1/items/42?fields=name HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    "X-Request-ID: 8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60\r\n"
    "X-User-ID: user-1234\r\n"
    "\r\n";

const std::string kHttp10 = "GET /status HTTP/1.0\r\nHost: h\r\n\r\n";
const std::string kHttp10KeepAlive =
    "GET /status HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n";
const std::string kHttp11Close = "GET /status HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
const std::string kUnknownMethod = "BREW /pot-1 HTTP/1.1\r\nHost: h\r\n\r\n";
const std::string kAbsoluteForm =
    "GET http://example.com:8080/a/b?c=d&e=%20f HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
const std::string kDuplicates =
    "GET / HTTP/1.1\r\n"
    "Accept: text/html\r\n"
    "X-Tag: one\r\n"
    "accept: application/json\r\n"
    "HOST: example.com\r\n"
    "x-TAG: two\r\n"
    "ACCEPT: */*\r\n"
    "\r\n";
const std::string kEmptyValues = "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Blank:   \t \r\n\r\n";
const std::string kWhitespace =
    "GET / HTTP/1.1\r\nHost:h\r\nX-Pad: \t  inner  spaces\tand tab \t \r\nX-Tab:\tv\r\n\r\n";
const std::string kObsFold =
    "GET / HTTP/1.1\r\nHost: h\r\nX-Folded: first\r\n  second\r\n\tthird  \r\nX-Next: n\r\n\r\n";
const std::string kContentLengthZero =
    "POST /v1/items HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
const std::string kContentLengthSmall =
    "POST /v1/items HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    "Content-Length: 13\r\n\r\n{\"name\":\"x\"}\n";
const std::string kContentLengthLarge =
    "PUT /v1/blob HTTP/1.1\r\nHost: h\r\nContent-Length: 300\r\n\r\n" + std::string(300, 'b');
const std::string kSameContentLengthTwice =
    "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc";
const std::string kChunked =
    "POST /upload HTTP/1.1\r\n"
    "Host: h\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Trailer: X-Checksum\r\n"
    "\r\n"
    "5;name=value\r\nhello\r\n"
    "6 ; quoted=\"a b\";flag\r\n world\r\n"
    "A\r\n0123456789\r\n"
    "0;last=1\r\n"
    "X-Checksum: abc123\r\n"
    "Host: trailer-host\r\n"
    "\r\n";
const std::string kPipelined =
    "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nfirst"
    "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";

std::vector<std::string> valid_corpus() {
    return {kCurlGet,
            kWrkGet,
            kHttp10,
            kHttp10KeepAlive,
            kHttp11Close,
            kUnknownMethod,
            kAbsoluteForm,
            kDuplicates,
            kEmptyValues,
            kWhitespace,
            kObsFold,
            kContentLengthZero,
            kContentLengthSmall,
            kContentLengthLarge,
            kSameContentLengthTwice,
            kChunked,
            kPipelined};
}

// ---------------------------------------------------------------------------------------------
// Well-formed requests.

TEST(RequestParser, MatchesBeastOnCurlGet) {
    const Outcome o = expect_same_outcome(kCurlGet);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_TRUE(o.done);
    EXPECT_EQ(o.consumed, kCurlGet.size());
    EXPECT_EQ(o.method, http::verb::get);
    EXPECT_EQ(o.method_string, "GET");
    EXPECT_EQ(o.target, "/healthz");
    EXPECT_EQ(o.version, 11U);
    EXPECT_EQ(o.keep_alive, true);
    EXPECT_EQ(o.chunked, false);
    EXPECT_EQ(o.content_length, std::nullopt);
    EXPECT_EQ(lines_of(kCurlGet), (std::vector<Line>{
                                      {http::field::host, "Host", "127.0.0.1:8080"},
                                      {http::field::user_agent, "User-Agent", "curl/7.88.1"},
                                      {http::field::accept, "Accept", "*/*"},
                                  }));
}

TEST(RequestParser, MatchesBeastOnWrkGetWithTraceHeaders) {
    const Outcome o = expect_same_outcome(kWrkGet);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(o.target, "/v1/items/42?fields=name");
    EXPECT_EQ(lines_of(kWrkGet),
              (std::vector<Line>{
                  {http::field::host, "Host", "localhost:8080"},
                  {http::field::unknown, "traceparent",
                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                  {http::field::unknown, "X-Request-ID", "8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60"},
                  {http::field::unknown, "X-User-ID", "user-1234"},
              }));
}

TEST(RequestParser, MatchesBeastOnHttp10KeepAlive) {
    const Outcome closes = expect_same_outcome(kHttp10);
    EXPECT_FALSE(closes.ec) << closes.ec.message();
    EXPECT_EQ(closes.version, 10U);
    EXPECT_EQ(closes.keep_alive, false);

    const Outcome stays = expect_same_outcome(kHttp10KeepAlive);
    EXPECT_FALSE(stays.ec) << stays.ec.message();
    EXPECT_EQ(stays.version, 10U);
    EXPECT_EQ(stays.keep_alive, true);
}

TEST(RequestParser, MatchesBeastOnConnectionClose) {
    const Outcome o = expect_same_outcome(kHttp11Close);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(o.keep_alive, false);
    EXPECT_EQ(found(o, http::field::connection), "close");
}

TEST(RequestParser, MatchesBeastOnKeepAliveFromSeveralConnectionLines) {
    // Beast's parser reads every Connection (and Proxy-Connection) line; its message's
    // keep_alive() reads only the first Connection line. The server used the message's before.
    const Outcome later_close =
        expect_same_outcome("GET / HTTP/1.1\r\nConnection: foo\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(later_close.keep_alive, false);
    const Outcome proxy_close =
        expect_same_outcome("GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n");
    EXPECT_EQ(proxy_close.keep_alive, false);
    const Outcome later_keep_alive =
        expect_same_outcome("GET / HTTP/1.0\r\nConnection: foo\r\nconnection: Keep-Alive\r\n\r\n");
    EXPECT_EQ(later_keep_alive.keep_alive, true);
    const Outcome list =
        expect_same_outcome("GET / HTTP/1.1\r\nConnection: upgrade, CLOSE\r\n\r\n");
    EXPECT_EQ(list.keep_alive, false);
}

TEST(RequestParser, KeepAliveIsDecidedByTheHeaderNotByTrailers) {
    // A Connection line in the trailer (which RFC 9110 forbids) sets Beast's parser flags after
    // the header; the server reads keep-alive from the header, and so must the Request.
    const std::string input =
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nConnection: "
        "close\r\n\r\n";
    const Outcome o = expect_same_outcome(input);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(o.keep_alive, true);
    EXPECT_EQ(o.body, "a");
}

TEST(RequestParser, MatchesBeastOnUnknownMethod) {
    const Outcome o = expect_same_outcome(kUnknownMethod);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(o.method, http::verb::unknown);
    EXPECT_EQ(o.method_string, "BREW");

    // Beast knows some extension methods (PURGE, M-SEARCH) by name.
    const Outcome purge = expect_same_outcome("PURGE /cache/key HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_FALSE(purge.ec) << purge.ec.message();
    EXPECT_EQ(purge.method, http::verb::purge);
    EXPECT_EQ(purge.method_string, "PURGE");

    // Methods are case-sensitive: a lower-case known name is an unknown method.
    const Outcome lower = expect_same_outcome("get / HTTP/1.1\r\n\r\n");
    EXPECT_FALSE(lower.ec) << lower.ec.message();
    EXPECT_EQ(lower.method, http::verb::unknown);
    EXPECT_EQ(lower.method_string, "get");
}

TEST(RequestParser, MatchesBeastOnAbsoluteFormTarget) {
    const Outcome o = expect_same_outcome(kAbsoluteForm);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(o.target, "http://example.com:8080/a/b?c=d&e=%20f");

    // Any byte but controls, SP and DEL may stand in a target, obs-text included.
    const Outcome high = expect_same_outcome("GET /caf\xc3\xa9/\x80\xff~ HTTP/1.1\r\n\r\n");
    EXPECT_FALSE(high.ec) << high.ec.message();
    EXPECT_EQ(high.target, "/caf\xc3\xa9/\x80\xff~");
}

TEST(RequestParser, MatchesBeastOnDuplicatedFieldsAndMixedCaseNames) {
    const Outcome o = expect_same_outcome(kDuplicates);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(found(o, http::field::host), "example.com");  // named HOST
    EXPECT_EQ(found(o, http::field::accept), "text/html");  // the first of three
    // Beast's message groups repeated names; the Request keeps the order received.
    EXPECT_EQ(lines_of(kDuplicates), (std::vector<Line>{
                                         {http::field::accept, "Accept", "text/html"},
                                         {http::field::unknown, "X-Tag", "one"},
                                         {http::field::accept, "accept", "application/json"},
                                         {http::field::host, "HOST", "example.com"},
                                         {http::field::unknown, "x-TAG", "two"},
                                         {http::field::accept, "ACCEPT", "*/*"},
                                     }));
}

TEST(RequestParser, MatchesBeastOnEmptyFieldValues) {
    const Outcome o = expect_same_outcome(kEmptyValues);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(lines_of(kEmptyValues), (std::vector<Line>{
                                          {http::field::host, "Host", "h"},
                                          {http::field::unknown, "X-Empty", ""},
                                          {http::field::unknown, "X-Blank", ""},
                                      }));
}

TEST(RequestParser, MatchesBeastOnWhitespaceAroundValues) {
    const Outcome o = expect_same_outcome(kWhitespace);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(lines_of(kWhitespace), (std::vector<Line>{
                                         {http::field::host, "Host", "h"},
                                         {http::field::unknown, "X-Pad", "inner  spaces\tand tab"},
                                         {http::field::unknown, "X-Tab", "v"},
                                     }));
}

TEST(RequestParser, MatchesBeastOnObsFold) {
    const Outcome o = expect_same_outcome(kObsFold);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(lines_of(kObsFold), (std::vector<Line>{
                                      {http::field::host, "Host", "h"},
                                      {http::field::unknown, "X-Folded", "first second third"},
                                      {http::field::unknown, "X-Next", "n"},
                                  }));
    // A fold after an empty first line, and a fold of the last line before the blank one.
    const Outcome empty_first = expect_same_outcome("GET / HTTP/1.1\r\nX-A:\r\n b\r\n\r\n");
    EXPECT_FALSE(empty_first.ec) << empty_first.ec.message();
}

TEST(RequestParser, MatchesBeastOnContentLengthBodies) {
    const Outcome zero = expect_same_outcome(kContentLengthZero);
    EXPECT_FALSE(zero.ec) << zero.ec.message();
    EXPECT_TRUE(zero.done);
    EXPECT_EQ(zero.content_length, 0U);
    EXPECT_EQ(zero.body, "");

    const Outcome small = expect_same_outcome(kContentLengthSmall);
    EXPECT_FALSE(small.ec) << small.ec.message();
    EXPECT_EQ(small.content_length, 13U);
    EXPECT_EQ(small.body, "{\"name\":\"x\"}\n");
    EXPECT_EQ(small.consumed, kContentLengthSmall.size());

    const Outcome large = expect_same_outcome(kContentLengthLarge);
    EXPECT_FALSE(large.ec) << large.ec.message();
    EXPECT_EQ(large.body, std::string(300, 'b'));

    const Outcome twice = expect_same_outcome(kSameContentLengthTwice);
    EXPECT_FALSE(twice.ec) << twice.ec.message();
    EXPECT_EQ(twice.body, "abc");
}

TEST(RequestParser, MatchesBeastOnChunkedBodyWithExtensionsAndTrailers) {
    const Outcome o = expect_same_outcome(kChunked);
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_TRUE(o.done);
    EXPECT_EQ(o.chunked, true);
    EXPECT_EQ(o.body, "hello world0123456789");
    EXPECT_EQ(o.consumed, kChunked.size());
    // Trailer lines are appended to the fields, after the header's.
    const std::vector<Line> lines = lines_of(kChunked);
    ASSERT_EQ(lines.size(), 5U);
    EXPECT_EQ(lines[3], (Line{http::field::unknown, "X-Checksum", "abc123"}));
    EXPECT_EQ(lines[4], (Line{http::field::host, "Host", "trailer-host"}));
    EXPECT_EQ(found(o, http::field::host), "h");  // the header's Host comes first
}

TEST(RequestParser, MatchesBeastOnPipelinedRequests) {
    const Outcome first = expect_same_outcome(kPipelined);
    EXPECT_FALSE(first.ec) << first.ec.message();
    EXPECT_TRUE(first.done);
    EXPECT_EQ(first.body, "first");
    const std::size_t first_size = kPipelined.find("GET /b");
    // The second request stays in the buffer for the next parser.
    EXPECT_EQ(first.consumed, first_size);

    const Outcome second = expect_same_outcome(std::string_view(kPipelined).substr(first.consumed));
    EXPECT_FALSE(second.ec) << second.ec.message();
    EXPECT_EQ(second.target, "/b");
    EXPECT_EQ(second.consumed, kPipelined.size() - first_size);

    // Two requests without bodies: the header alone is used.
    const std::string gets = kCurlGet + kWrkGet;
    const Outcome get = expect_same_outcome(gets);
    EXPECT_FALSE(get.ec) << get.ec.message();
    EXPECT_EQ(get.consumed, kCurlGet.size());
    EXPECT_EQ(get.target, "/healthz");
}

TEST(RequestParser, MatchesBeastOnManyFields) {
    // Around the one-pass path's 32 field slots, and far past them.
    for (const int count : {31, 32, 33, 40, 200}) {
        SCOPED_TRACE(count);
        std::string input = "GET / HTTP/1.1\r\n";
        for (int i = 0; i < count; ++i) {
            input += "X-F" + std::to_string(i) + ": v" + std::to_string(i) + "\r\n";
        }
        input += "\r\n";
        const Outcome o = expect_same_outcome(input);
        EXPECT_FALSE(o.ec) << o.ec.message();
        EXPECT_EQ(o.fields.size(), static_cast<std::size_t>(count));
    }
}

// ---------------------------------------------------------------------------------------------
// Limits.

// A GET whose header is exactly `size` bytes (one padding field fills it).
std::string header_of_size(std::size_t size) {
    const std::string head = "GET / HTTP/1.1\r\nX-Pad: ";
    const std::string tail = "\r\n\r\n";
    return head + std::string(size - head.size() - tail.size(), 'p') + tail;
}

TEST(RequestParser, MatchesBeastAtTheHeaderLimit) {
    const Outcome at = expect_same_outcome(header_of_size(kHeaderLimit));
    EXPECT_FALSE(at.ec) << at.ec.message();
    EXPECT_EQ(at.consumed, kHeaderLimit);
    // Beast limits the start line and the fields each (whole buffer) but the whole header when
    // it arrives in parts; either way the outcome must be Beast's.
    expect_same_outcome(header_of_size(kHeaderLimit + 1));
    expect_same_outcome(header_of_size(kHeaderLimit - 1) + kCurlGet);
    expect_same_outcome(header_of_size(kHeaderLimit) + kCurlGet);
}

TEST(RequestParser, MatchesBeastOnHeaderOverTheLimit) {
    const Outcome o = expect_same_outcome(header_of_size(kHeaderLimit * 2 + 100));
    EXPECT_EQ(o.ec, http::error::header_limit);
    EXPECT_FALSE(o.header_done);
    // No end of header in sight at all.
    const Outcome endless =
        expect_same_outcome("GET / HTTP/1.1\r\nX-Pad: " + std::string(kHeaderLimit + 10, 'p'));
    EXPECT_EQ(endless.ec, http::error::header_limit);
}

TEST(RequestParser, MatchesBeastOnBodyOverTheBodyLimit) {
    const std::string chunked =
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n20\r\n" +
        std::string(32, 'x') + "\r\n0\r\n\r\n";
    const Outcome over = expect_same_outcome(chunked, 16);
    EXPECT_EQ(over.ec, http::error::body_limit);
    EXPECT_TRUE(over.header_done);
    EXPECT_EQ(over.body, "12345678");
    const Outcome within = expect_same_outcome(chunked, 40);
    EXPECT_FALSE(within.ec) << within.ec.message();

    // A declared length is checked by the server itself (body_limit is set only after the
    // header, when Beast no longer compares it), so the parser reads the body.
    const std::string declared =
        "POST / HTTP/1.1\r\nContent-Length: 32\r\n\r\n" + std::string(32, 'y');
    const Outcome read = expect_same_outcome(declared, 16);
    EXPECT_FALSE(read.ec) << read.ec.message();
    EXPECT_EQ(read.content_length, 32U);
}

// ---------------------------------------------------------------------------------------------
// Malformed and truncated requests.

struct Malformed {
    const char* what;
    std::string bytes;
    http::error expected;
};

TEST(RequestParser, MatchesBeastOnMalformedRequests) {
    const std::vector<Malformed> cases = {
        {"bad method char", "G(ET / HTTP/1.1\r\nHost: h\r\n\r\n", http::error::bad_method},
        {"empty method", " / HTTP/1.1\r\n\r\n", http::error::bad_method},
        {"leading empty line", "\r\nGET / HTTP/1.1\r\n\r\n", http::error::bad_method},
        {"double space", "GET  / HTTP/1.1\r\n\r\n", http::error::bad_target},
        {"control in target", "GET /a\x01z HTTP/1.1\r\n\r\n", http::error::bad_target},
        {"DEL in target", "GET /a\x7fz HTTP/1.1\r\n\r\n", http::error::bad_target},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", http::error::bad_version},
        {"HTTP/1.x", "GET / HTTP/1.x\r\nHost: h\r\n\r\n", http::error::bad_version},
        {"HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", http::error::bad_version},
        {"lower-case version", "GET / http/1.1\r\n\r\n", http::error::bad_version},
        {"bare LF after start line", "GET / HTTP/1.1\nHost: h\n\n", http::error::bad_version},
        {"space after version", "GET / HTTP/1.1 \r\n\r\n", http::error::bad_version},
        {"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", http::error::bad_field},
        {"missing colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", http::error::bad_field},
        {"empty name", "GET / HTTP/1.1\r\n: v\r\n\r\n", http::error::bad_field},
        {"fold before any field", "GET / HTTP/1.1\r\n X: v\r\n\r\n", http::error::bad_field},
        {"control in value", "GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n", http::error::bad_value},
        {"NUL in value", "GET / HTTP/1.1\r\nX-A: a"s + '\0' + "z\r\n\r\n"s, http::error::bad_value},
        {"DEL in value", "GET / HTTP/1.1\r\nX-A: a\x7fz\r\n\r\n", http::error::bad_value},
        {"control in folded line", "GET / HTTP/1.1\r\nX-A: a\r\n b\x02\r\n\r\n",
         http::error::bad_value},
        {"CR without LF in value", "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
         http::error::bad_line_ending},
        {"bare LF in header", "GET / HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n", http::error::bad_value},
        {"duplicate differing Content-Length",
         "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         http::error::multiple_content_length},
        {"Content-Length list that differs", "POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\nab",
         http::error::multiple_content_length},
        {"non-numeric Content-Length", "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
         http::error::bad_content_length},
        {"Content-Length then chunked",
         "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         http::error::bad_transfer_encoding},
        {"chunked then Content-Length",
         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
         http::error::bad_content_length},
        {"chunked twice",
         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         http::error::bad_transfer_encoding},
        {"bad chunk size",
         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
         http::error::bad_chunk},
        {"chunk data longer than its size",
         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
         http::error::bad_chunk},
        {"bad chunk extension",
         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;=\r\nab\r\n0\r\n\r\n",
         http::error::bad_chunk_extension},
        {"Content-Length in the trailer",
         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nContent-Length: "
         "2\r\n\r\n",
         http::error::bad_content_length},
        {"Connection with an invalid list", "GET / HTTP/1.1\r\nConnection: a b\r\n\r\n",
         http::error::bad_value},
    };
    for (const Malformed& c : cases) {
        SCOPED_TRACE(c.what);
        const Outcome o = expect_same_outcome(c.bytes);
        EXPECT_EQ(o.ec, c.expected) << o.ec.message();
    }
}

TEST(RequestParser, MatchesBeastOnTruncatedRequests) {
    // The peer leaving before the request is whole: put_eof, as the server does.
    for (const std::string& whole : valid_corpus()) {
        for (std::size_t cut = 0; cut < whole.size(); ++cut) {
            SCOPED_TRACE(cut);
            const Outcome o = expect_same_outcome(std::string_view(whole).substr(0, cut));
            if (o.done) continue;  // a pipelined pair cut after its first request
            EXPECT_EQ(o.ec, cut == 0 ? http::error::end_of_stream : http::error::partial_message)
                << escaped(std::string_view(whole).substr(0, cut));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeded mutations and generated requests: the same outcome on inputs nobody wrote by hand.

// Bytes and pieces that matter to an HTTP/1 parser.
constexpr std::array kPieces{
    "\r\n"sv,
    "\r"sv,
    "\n"sv,
    ":"sv,
    " "sv,
    "\t"sv,
    ","sv,
    ";"sv,
    "\0"sv,
    "\x01"sv,
    "\x7f"sv,
    "\x80"sv,
    "\xff"sv,
    "0"sv,
    "f"sv,
    "="sv,
    "\""sv,
    "chunked"sv,
    "close"sv,
    "keep-alive"sv,
    "\r\n\r\n"sv,
    "0\r\n\r\n"sv,
    "HTTP/1.0"sv,
    "  "sv,
    "\r\n "sv,
    "Content-Length: 3\r\n"sv,
    "Transfer-Encoding: chunked\r\n"sv,
    "Connection: close\r\n"sv,
    "Connection: keep-alive\r\n"sv,
    "Upgrade: h2c\r\n"sv,
    "Proxy-Connection: close\r\n"sv,
    "X-A: b\r\n"sv,
    "Host: h\r\n"sv,
    "Expect: 100-continue\r\n"sv,
};

std::size_t below(std::mt19937& rng, std::size_t n) {
    return n == 0 ? 0 : rng() % n;
}

std::string mutate(std::string s, std::mt19937& rng) {
    const std::size_t edits = 1 + below(rng, 3);
    for (std::size_t e = 0; e < edits; ++e) {
        const std::size_t at = below(rng, s.size() + 1);
        switch (below(rng, 7)) {
            case 0:  // replace a byte with any byte
                if (at < s.size()) s[at] = static_cast<char>(rng() & 0xff);
                break;
            case 1:  // replace a byte with one that matters
                if (at < s.size()) s[at] = kPieces[below(rng, kPieces.size())].front();
                break;
            case 2:  // insert a piece
                s.insert(at, kPieces[below(rng, kPieces.size())]);
                break;
            case 3:  // delete a few bytes
                s.erase(at, 1 + below(rng, 8));
                break;
            case 4:  // truncate
                s.resize(at);
                break;
            case 5: {  // repeat a run (a line, a chunk) somewhere else
                const std::size_t from = below(rng, s.size() + 1);
                const std::string run = s.substr(from, 1 + below(rng, 40));
                s.insert(below(rng, s.size() + 1), run);
                break;
            }
            default:  // swap the case of a byte
                if (at < s.size() && std::isalpha(static_cast<unsigned char>(s[at]))) {
                    s[at] = static_cast<char>(s[at] ^ 0x20);
                }
                break;
        }
    }
    return s;
}

// A byte for a generated target or value: mostly printable, sometimes one at a class boundary
// (the one-pass header path tests eight bytes at a time against these).
char generated_byte(std::mt19937& rng, bool in_value) {
    static constexpr std::string_view kPlain =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/?=&%-._~!$'()*+,;:@";
    static constexpr std::array<unsigned char, 14> kEdges{0x00, 0x01, 0x08, 0x09, 0x0a, 0x0d, 0x1f,
                                                          0x20, 0x21, 0x7e, 0x7f, 0x80, 0xa0, 0xff};
    if (below(rng, 60) == 0) return static_cast<char>(kEdges[below(rng, kEdges.size())]);
    if (in_value && below(rng, 8) == 0) return below(rng, 4) == 0 ? '\t' : ' ';
    if (below(rng, 20) == 0) return static_cast<char>(0x80 + below(rng, 0x80));  // obs-text
    return kPlain[below(rng, kPlain.size())];
}

std::string generated_run(std::mt19937& rng, std::size_t max_size, bool in_value) {
    std::string s(below(rng, max_size + 1), ' ');
    for (char& c : s) c = generated_byte(rng, in_value);
    return s;
}

// A request built from the grammar's parts with occasional faults: mostly headers the one-pass
// path takes, at every length around its eight-byte steps, and the nearby ones it must decline.
std::string generate(std::mt19937& rng) {
    static constexpr std::array<std::string_view, 9> kMethods{
        "GET", "GET", "POST", "PURGE", "M-SEARCH", "get", "G\x01T", "", "GET/"};
    static constexpr std::array<std::string_view, 8> kVersions{"HTTP/1.1",  "HTTP/1.1", "HTTP/1.1",
                                                               "HTTP/1.0",  "HTTP/1.2", "HTTP/2.0",
                                                               "HTTP/1.1 ", "http/1.1"};
    static constexpr std::array<std::string_view, 20> kNames{"Host",
                                                             "host",
                                                             "User-Agent",
                                                             "Accept",
                                                             "X-Request-ID",
                                                             "traceparent",
                                                             "X-User-ID",
                                                             "Cookie",
                                                             "X-A",
                                                             "Expect",
                                                             "Connection",
                                                             "Content-Length",
                                                             "Transfer-Encoding",
                                                             "Upgrade",
                                                             "Proxy-Connection",
                                                             "Keep-Alive",
                                                             "Trailer",
                                                             "X-Forwarded-For",
                                                             "a",
                                                             "X(Bad)"};
    static constexpr std::array<std::string_view, 6> kOws{"", " ", " ", "  ", "\t", " \t"};

    std::string s;
    s += kMethods[below(rng, below(rng, 8) == 0 ? kMethods.size() : 3)];
    s += below(rng, 30) == 0 ? "  " : " ";
    s += "/" + generated_run(rng, 40, false);
    s += " ";
    s += kVersions[below(rng, below(rng, 8) == 0 ? kVersions.size() : 4)];
    s += below(rng, 100) == 0 ? "\n" : "\r\n";
    const std::size_t count = below(rng, 8) == 0 ? below(rng, 40) : below(rng, 8);
    bool has_body_framing = false;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string_view name = kNames[below(rng, below(rng, 4) == 0 ? kNames.size() : 10)];
        s += name;
        s += below(rng, 100) == 0 ? " :" : ":";
        s += kOws[below(rng, kOws.size())];
        if (name == "Content-Length") {
            s += std::to_string(below(rng, 12));
            has_body_framing = true;
        } else if (name == "Transfer-Encoding") {
            s += below(rng, 2) == 0 ? "chunked" : "gzip, chunked";
            has_body_framing = true;
        } else if (name == "Connection" || name == "Proxy-Connection") {
            static constexpr std::array<std::string_view, 5> kOptions{
                "close", "keep-alive", "Upgrade", "foo, close", "x y"};
            s += kOptions[below(rng, kOptions.size())];
        } else {
            s += generated_run(rng, 30, true);
        }
        s += kOws[below(rng, kOws.size())];
        if (below(rng, 25) == 0) s += "\r\n " + generated_run(rng, 10, true);  // obs-fold
        s += below(rng, 100) == 0 ? "\n" : "\r\n";
    }
    s += "\r\n";
    // What follows the header: nothing, a body, or the next request.
    switch (below(rng, 4)) {
        case 0:
            s += has_body_framing ? "5\r\nhello\r\n0\r\n\r\nabcdefghijkl" : "";
            break;
        case 1:
            s += kCurlGet;
            break;
        case 2:
            s += generated_run(rng, 20, true);
            break;
        default:
            break;
    }
    return s;
}

// Compares both parsers on `input` whole and at one more fragment size; reports at most a few
// mismatches in full (the first ones are the useful ones).
void check_random(std::string_view input, std::size_t fragment, std::uint64_t body_limit,
                  int& failures) {
    for (const std::size_t f : {kWhole, fragment}) {
        const Both r = run_both(input, f, body_limit);
        if (r.ours == r.beast) continue;
        if (++failures <= 5) {
            ADD_FAILURE() << "fragment size " << fragment_name(f) << ", body limit " << body_limit
                          << ", input " << escaped(input)
                          << "\n  ours:  " << ::testing::PrintToString(r.ours)
                          << "\n  beast: " << ::testing::PrintToString(r.beast);
        }
    }
}

constexpr int kMutations = 10000;
constexpr int kGenerated = 10000;

TEST(RequestParser, MatchesBeastOnMutatedRequests) {
    std::mt19937 rng(20240611);
    const std::vector<std::string> corpus = valid_corpus();
    int failures = 0;
    for (int i = 0; i < kMutations; ++i) {
        const std::string input = mutate(corpus[below(rng, corpus.size())], rng);
        const std::size_t fragment = kFragmentSizes[below(rng, kFragmentSizes.size() - 1)];
        const std::uint64_t limit = below(rng, 4) == 0 ? 8 : kBodyLimit;
        check_random(input, fragment, limit, failures);
    }
    EXPECT_EQ(failures, 0);
}

TEST(RequestParser, MatchesBeastOnGeneratedRequests) {
    std::mt19937 rng(7);
    int failures = 0;
    int accepted = 0;
    for (int i = 0; i < kGenerated; ++i) {
        const std::string input = generate(rng);
        const std::size_t fragment = kFragmentSizes[below(rng, kFragmentSizes.size() - 1)];
        check_random(input, fragment, kBodyLimit, failures);
        RequestParser p;
        if (!drive(p, input, kWhole, kBodyLimit).ec) ++accepted;
    }
    EXPECT_EQ(failures, 0);
    // The generator must keep producing mostly valid requests, or it tests only the rejections.
    EXPECT_GT(accepted, kGenerated / 4);
    EXPECT_LT(accepted, kGenerated);
}

}  // namespace
}  // namespace reqctx
