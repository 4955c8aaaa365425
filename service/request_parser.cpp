#include "service/request_parser.hpp"

#include <array>
#include <bit>
#include <cstring>
#include <string_view>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

namespace reqctx {
namespace {

std::string_view std_view(boost::beast::string_view s) noexcept {
    return {s.data(), s.size()};
}

// Byte classes of the one-pass path, exactly as Beast's parser defines them: a token (method,
// field name: RFC 9110 tchar), a request-target byte (any octet but controls, SP and DEL), a
// field-value byte (visible, SP, HTAB, obs-text).
enum : std::uint8_t { kToken = 1, kTarget = 2, kValue = 4 };

constexpr std::array<std::uint8_t, 256> make_classes() {
    std::array<std::uint8_t, 256> classes{};
    constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
    for (unsigned c = 0; c < 256; ++c) {
        const bool alnum =
            (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (alnum ||
            (c < 128 && kTokenPunctuation.find(static_cast<char>(c)) != std::string_view::npos)) {
            classes[c] |= kToken;
        }
        if (c > 0x20 && c != 0x7f) classes[c] |= kTarget;
        if ((c >= 0x20 && c != 0x7f) || c == '\t') classes[c] |= kValue;
    }
    return classes;
}
constexpr std::array<std::uint8_t, 256> kClasses = make_classes();

// Fields whose meaning Beast's parser keeps (framing, connection options, upgrade): a request
// carrying one is left to it.
bool interpreted_by_beast(http::field f) noexcept {
    return f == http::field::content_length || f == http::field::transfer_encoding ||
           f == http::field::connection || f == http::field::proxy_connection ||
           f == http::field::upgrade;
}

// Requests with more fields than this are rare enough to leave to Beast.
constexpr std::size_t kMaxCommonFields = 32;

// Plain members (no initializers): the parse's array of them is not zeroed first.
struct FieldAt {
    http::field name;
    std::uint32_t name_at;
    std::uint32_t name_size;
    std::uint32_t value_at;
    std::uint32_t value_size;
};

// Skips bytes from p until the first that is below `below` (0x20: controls; 0x21: controls and
// SP) or DEL, eight bytes per step, and returns where it stopped (end when fewer than eight
// bytes remain: the caller's byte-wise scan finishes). Any byte of a word below n shows in
// (x - n·0x01..) & ~x & 0x80..; the lowest flag marks exactly the first such byte.
const char* skip_plain(const char* p, const char* end, std::uint64_t below) noexcept {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        std::uint64_t x;
        std::memcpy(&x, p, sizeof x);
        if constexpr (std::endian::native != std::endian::little) x = __builtin_bswap64(x);
        const std::uint64_t del = x ^ (kOnes * 0x7f);
        const std::uint64_t flags = (((x - kOnes * below) & ~x) | ((del - kOnes) & ~del)) & kHighs;
        if (flags != 0) return p + std::countr_zero(flags) / 8;
        p += 8;
    }
    return p;
}

// The one-pass header parse: true with `used` set when [begin, end) starts with a whole common
// header (see request_parser.hpp), false for anything else, incomplete or invalid headers
// included (Beast's parser then reads the same bytes and reports what it finds).
bool parse_common_head(const char* const begin, const char* const end, std::size_t header_limit,
                       Request& req, std::size_t& used) {
    const char* p = begin;
    const auto scan = [&p, end](std::uint8_t cls) {
        while (p != end && (kClasses[static_cast<unsigned char>(*p)] & cls) != 0) ++p;
    };
    const auto part = [begin](const char* from, const char* to) {
        return Request::Part{static_cast<std::uint32_t>(from - begin),
                             static_cast<std::uint32_t>(to - from)};
    };

    // request-line = method SP request-target SP HTTP-version CRLF
    const char* const method = p;
    scan(kToken);
    if (p == end || *p != ' ' || p == method) return false;
    const char* const method_end = p++;
    const char* const target = p;
    p = skip_plain(p, end, 0x21);
    scan(kTarget);
    if (p == end || *p != ' ' || p == target) return false;
    const char* const target_end = p++;
    if (end - p < 10 || std::memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != '\r' || p[9] != '\n') {
        return false;
    }
    const unsigned version = p[7] == '1' ? 11 : 10;
    p += 10;

    // *( field-name ":" OWS field-value OWS CRLF ) CRLF
    std::array<FieldAt, kMaxCommonFields> fields;
    std::size_t count = 0;
    for (;;) {
        if (end - p < 2) return false;
        if (*p == '\r') {
            if (p[1] != '\n') return false;
            p += 2;
            break;
        }
        if (count == fields.size()) return false;
        const char* const name = p;
        scan(kToken);
        if (p == end || *p != ':' || p == name) return false;
        const char* const name_end = p++;
        while (p != end && (*p == ' ' || *p == '\t')) ++p;
        const char* const value = p;
        p = skip_plain(p, end, 0x20);
        scan(kValue);
        // The line ends with CRLF, and the next does not continue it (obs-fold).
        if (end - p < 3 || p[0] != '\r' || p[1] != '\n' || p[2] == ' ' || p[2] == '\t') {
            return false;
        }
        const char* value_end = p;
        while (value_end != value && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
        p += 2;
        const auto f = http::string_to_field(
            boost::beast::string_view(name, static_cast<std::size_t>(name_end - name)));
        if (interpreted_by_beast(f)) return false;
        const Request::Part n = part(name, name_end);
        const Request::Part v = part(value, value_end);
        fields[count++] = FieldAt{f, n.offset, n.size, v.offset, v.size};
    }
    used = static_cast<std::size_t>(p - begin);
    if (used > header_limit) return false;

    const auto base = req.append_text(std::string_view(begin, used)).offset;
    const auto rebase = [base](Request::Part at) {
        return Request::Part{at.offset + base, at.size};
    };
    const auto method_string =
        boost::beast::string_view(method, static_cast<std::size_t>(method_end - method));
    req.set_start_line(http::string_to_verb(method_string), rebase(part(method, method_end)),
                       rebase(part(target, target_end)), version);
    for (std::size_t i = 0; i < count; ++i) {
        const FieldAt& at = fields[i];
        req.add_field(at.name, rebase({at.name_at, at.name_size}),
                      rebase({at.value_at, at.value_size}));
    }
    return true;
}

}  // namespace

std::size_t RequestParser::put(boost::asio::const_buffer buffer, boost::beast::error_code& ec) {
    if (common_) {
        ec = {};  // the message is complete: a common request has no body
        return 0;
    }
    if (!beast_.got_some()) {
        const char* const begin = static_cast<const char*>(buffer.data());
        std::size_t used = 0;
        if (parse_common_head(begin, begin + buffer.size(), header_limit_, req_, used)) {
            common_ = true;
            ec = {};
            return used;
        }
    }
    return beast_.put(buffer, ec);
}

void RequestParser::put_eof(boost::beast::error_code& ec) {
    if (common_) {
        ec = {};
        return;
    }
    beast_.put_eof(ec);
}

void RequestParser::BeastParser::on_request_impl(http::verb method,
                                                 boost::beast::string_view method_string,
                                                 boost::beast::string_view target, int version,
                                                 boost::beast::error_code&) {
    req_.set_start_line(method, std_view(method_string), std_view(target),
                        static_cast<unsigned>(version));
}

void RequestParser::BeastParser::on_response_impl(int, boost::beast::string_view, int,
                                                  boost::beast::error_code&) {
    // Never called: basic_parser<true> parses requests only.
}

void RequestParser::BeastParser::on_field_impl(http::field name,
                                               boost::beast::string_view name_string,
                                               boost::beast::string_view value,
                                               boost::beast::error_code&) {
    req_.add_field(name, std_view(name_string), std_view(value));
}

void RequestParser::BeastParser::on_header_impl(boost::beast::error_code&) {
    req_.set_keep_alive(keep_alive());
}

void RequestParser::BeastParser::on_body_init_impl(
    const boost::optional<std::uint64_t>& content_length, boost::beast::error_code& ec) {
    // As Beast's string_body: a declared length is reserved at once (the body limit has
    // already refused one that is too large).
    if (!content_length) return;
    if (*content_length > req_.body().max_size()) {
        ec = http::error::buffer_overflow;
        return;
    }
    req_.body().reserve(static_cast<std::size_t>(*content_length));
}

std::size_t RequestParser::BeastParser::on_body_impl(boost::beast::string_view body,
                                                     boost::beast::error_code& ec) {
    return append_body(body, ec);
}

void RequestParser::BeastParser::on_chunk_header_impl(std::uint64_t, boost::beast::string_view,
                                                      boost::beast::error_code&) {}

std::size_t RequestParser::BeastParser::on_chunk_body_impl(std::uint64_t,
                                                           boost::beast::string_view body,
                                                           boost::beast::error_code& ec) {
    return append_body(body, ec);
}

void RequestParser::BeastParser::on_finish_impl(boost::beast::error_code&) {}

std::size_t RequestParser::BeastParser::append_body(boost::beast::string_view data,
                                                    boost::beast::error_code& ec) {
    std::string& body = req_.body();
    if (data.size() > body.max_size() - body.size()) {
        ec = http::error::buffer_overflow;
        return 0;
    }
    body.append(data.data(), data.size());
    return data.size();
}

}  // namespace reqctx
