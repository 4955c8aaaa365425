#include "clients/memcache/protocol.hpp"

#include <charconv>

#include "clients/memcache/errors.hpp"

namespace reqctx::memcache::proto {

namespace {

template <class T>
void append_number(std::string& out, T value) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    out.append(buf, end);
}

void append_flag(std::string& out, char flag, std::uint64_t value) {
    out += ' ';
    out += flag;
    append_number(out, value);
}

void append_opaque(std::string& out, std::uint32_t opaque) {
    out += " O";
    append_number(out, opaque);
}

std::error_code protocol_error() {
    return make_error_code(MemcacheErrc::protocol_error);
}

template <class T>
std::optional<T> parse_unsigned(std::string_view s) noexcept {
    if (s.empty()) return std::nullopt;
    T value{};
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
    return value;
}

// Splits off the next space-separated token of `rest`.
std::string_view next_token(std::string_view& rest) noexcept {
    const auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) {
        rest = {};
        return {};
    }
    rest.remove_prefix(start);
    const auto end = rest.find(' ');
    std::string_view tok = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    return tok;
}

// Reads the return flags we ask for (f, c, O); others are ignored.
bool parse_flags(std::string_view rest, Response& out) noexcept {
    for (auto tok = next_token(rest); !tok.empty(); tok = next_token(rest)) {
        const std::string_view value = tok.substr(1);
        switch (tok[0]) {
            case 'f': {
                auto v = parse_unsigned<std::uint32_t>(value);
                if (!v) return false;
                out.flags = *v;
                break;
            }
            case 'c': {
                auto v = parse_unsigned<std::uint64_t>(value);
                if (!v) return false;
                out.cas = *v;
                break;
            }
            case 'O':
                // We only send numeric opaques; anything else cannot match one of ours.
                out.opaque = parse_unsigned<std::uint32_t>(value);
                if (!out.opaque) out.opaque = UINT32_MAX;
                break;
            default:
                break;
        }
    }
    return true;
}

}  // namespace

std::int64_t wire_exptime(std::int64_t ttl_seconds, std::int64_t now_unix_seconds) noexcept {
    if (ttl_seconds <= kMaxRelativeExptime) return ttl_seconds;
    if (ttl_seconds >= kMaxAbsoluteExptime - now_unix_seconds) return kMaxAbsoluteExptime;
    return now_unix_seconds + ttl_seconds;
}

void encode_get(std::string& out, std::string_view key, std::uint32_t opaque) {
    out += "mg ";
    out += key;
    out += " v f c";
    append_opaque(out, opaque);
    out += "\r\n";
}

void encode_touch(std::string& out, std::string_view key, std::int64_t ttl, std::uint32_t opaque) {
    out += "mg ";
    out += key;
    out += " T";
    append_number(out, ttl);
    append_opaque(out, opaque);
    out += "\r\n";
}

void encode_store(std::string& out, StoreMode mode, std::string_view key, std::string_view value,
                  std::int64_t ttl, std::uint32_t flags, std::uint64_t cas, std::uint32_t opaque) {
    out += "ms ";
    out += key;
    out += ' ';
    append_number(out, value.size());
    out += " T";
    append_number(out, ttl);
    append_flag(out, 'F', flags);
    switch (mode) {
        case StoreMode::set:
            break;
        case StoreMode::add:
            out += " ME";
            break;
        case StoreMode::replace:
            out += " MR";
            break;
        case StoreMode::append:
            out += " MA";
            break;
        case StoreMode::prepend:
            out += " MP";
            break;
    }
    if (cas != 0) append_flag(out, 'C', cas);
    append_opaque(out, opaque);
    out += "\r\n";
    out += value;
    out += "\r\n";
}

void encode_delete(std::string& out, std::string_view key, std::uint32_t opaque) {
    out += "md ";
    out += key;
    append_opaque(out, opaque);
    out += "\r\n";
}

void encode_arith(std::string& out, bool incr, std::string_view key, std::uint64_t delta,
                  std::optional<std::uint64_t> initial, std::int64_t ttl, std::uint32_t opaque) {
    out += "ma ";
    out += key;
    if (!incr) out += " MD";
    append_flag(out, 'D', delta);
    if (initial) {
        out += " N";
        append_number(out, ttl);
        append_flag(out, 'J', *initial);
    }
    out += " v";
    append_opaque(out, opaque);
    out += "\r\n";
}

void encode_noop(std::string& out) {
    out += "mn\r\n";
}

void encode_version(std::string& out) {
    out += "version\r\n";
}

std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept {
    return parse_unsigned<std::uint64_t>(s);
}

ParseResult parse_response(std::string_view in, Response& out, std::size_t max_value) {
    const auto eol = in.find("\r\n");
    if (eol == std::string_view::npos) {
        // A header longer than any we can legitimately receive means we are out of sync.
        if (in.size() > kMaxLineLength) return {0, protocol_error()};
        return {0, {}};
    }
    if (eol > kMaxLineLength) return {0, protocol_error()};
    out = Response{};
    const std::string_view line = in.substr(0, eol);
    const std::size_t header_len = eol + 2;

    auto starts = [&](std::string_view p) { return line.substr(0, p.size()) == p; };
    // Two-letter meta codes: exactly the code, or the code followed by flags.
    auto meta = [&](std::string_view code) {
        return line.size() >= 2 && line.substr(0, 2) == code &&
               (line.size() == 2 || line[2] == ' ');
    };

    if (meta("VA")) {
        std::string_view rest = line.substr(2);
        const auto size_tok = next_token(rest);
        const auto size = parse_unsigned<std::size_t>(size_tok);
        if (!size || *size > max_value) return {0, protocol_error()};
        if (!parse_flags(rest, out)) return {0, protocol_error()};
        if (in.size() < header_len + *size + 2) return {0, {}};
        if (in.substr(header_len + *size, 2) != "\r\n") return {0, protocol_error()};
        out.status = Status::value;
        out.data = in.substr(header_len, *size);
        return {header_len + *size + 2, {}};
    }
    struct Simple {
        std::string_view code;
        Status status;
    };
    static constexpr Simple kSimple[] = {
        {"HD", Status::stored}, {"EN", Status::miss},      {"NS", Status::not_stored},
        {"EX", Status::exists}, {"NF", Status::not_found}, {"MN", Status::noop},
    };
    for (const auto& s : kSimple) {
        if (meta(s.code)) {
            if (!parse_flags(line.substr(2), out)) return {0, protocol_error()};
            out.status = s.status;
            return {header_len, {}};
        }
    }
    if (starts("VERSION ")) {
        out.status = Status::version;
        out.message = line.substr(8);
        return {header_len, {}};
    }
    if (line == "ERROR") {
        out.status = Status::error;
        return {header_len, {}};
    }
    if (starts("CLIENT_ERROR")) {
        out.status = Status::client_error;
        out.message = line.size() > 13 ? line.substr(13) : std::string_view{};
        return {header_len, {}};
    }
    if (starts("SERVER_ERROR")) {
        out.status = Status::server_error;
        out.message = line.size() > 13 ? line.substr(13) : std::string_view{};
        return {header_len, {}};
    }
    return {0, protocol_error()};
}

}  // namespace reqctx::memcache::proto
