#include "clients/propagation.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <random>
#include <unordered_set>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace reqctx {
namespace {

constexpr std::size_t kTraceparentLength = 55;  // "vv-" + 32 + "-" + 16 + "-" + 2
constexpr std::size_t kMaxTracestateMembers = 32;
constexpr std::size_t kMaxKeyLength = 256;
constexpr std::size_t kMaxValueLength = 256;
constexpr char kHexDigits[] = "0123456789abcdef";

bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// Lower-case hex only (the spec's HEXDIGLC): a digit's value, or 0xff for any other byte.
// Tables rather than range tests: parsing and printing IDs is on every request's path.
constexpr std::array<std::uint8_t, 256> kHexValue = [] {
    std::array<std::uint8_t, 256> t{};
    for (auto& v : t) v = 0xff;
    for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<std::uint8_t>(c - '0');
    for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<std::uint8_t>(c - 'a' + 10);
    return t;
}();

// Each byte's two lower-case hex digits.
constexpr std::array<std::array<char, 2>, 256> kHexPair = [] {
    std::array<std::array<char, 2>, 256> t{};
    for (std::size_t b = 0; b < t.size(); ++b) t[b] = {kHexDigits[b >> 4], kHexDigits[b & 0x0f]};
    return t;
}();

// Decodes out.size()*2 lower-case hex characters starting at `text` (the caller checked the
// length).
template <std::size_t N>
bool decode_hex(const char* text, std::array<std::uint8_t, N>& out) noexcept {
    unsigned bad = 0;  // any 0xff digit sets the high bits: one test at the end
    for (std::size_t i = 0; i < N; ++i) {
        const unsigned hi = kHexValue[static_cast<unsigned char>(text[2 * i])];
        const unsigned lo = kHexValue[static_cast<unsigned char>(text[2 * i + 1])];
        bad |= hi | lo;
        out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    return bad < 16;
}

bool decode_byte(const char* text, std::uint8_t& out) noexcept {
    std::array<std::uint8_t, 1> b{};
    if (!decode_hex(text, b)) return false;
    out = b[0];
    return true;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& id) noexcept {
    std::uint8_t any = 0;  // no early exit: the compiler folds the bytes in a few wide ORs
    for (const std::uint8_t b : id) any |= b;
    return any == 0;
}

template <std::size_t N>
std::string hex_of(const std::array<std::uint8_t, N>& id) {
    std::string out(2 * N, '0');
    write_hex(id, out.data());
    return out;
}

// One traceparent value (already trimmed) by the rules of its version.
std::optional<TraceParent> parse_traceparent_value(std::string_view v) {
    if (v.size() < kTraceparentLength) return std::nullopt;
    TraceParent tp;
    // The length was checked above: every offset below is inside v.
    const char* text = v.data();
    if (!decode_byte(text, tp.version) || tp.version == 0xff) return std::nullopt;
    if (tp.version == 0x00 && v.size() != kTraceparentLength) return std::nullopt;
    // Higher versions: the version-00 layout is a prefix, followed by '-' or the end.
    if (v.size() > kTraceparentLength && v[kTraceparentLength] != '-') return std::nullopt;
    if (v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
    if (!decode_hex(text + 3, tp.trace_id) || all_zero(tp.trace_id)) return std::nullopt;
    if (!decode_hex(text + 36, tp.parent_id) || all_zero(tp.parent_id)) return std::nullopt;
    if (!decode_byte(text + 53, tp.flags)) return std::nullopt;
    return tp;
}

bool is_key_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/' || c == '@';
}

// key = ( lcalpha / DIGIT ) 0*255( keychar ); the multi-tenant "tenant@system" form is a
// subset of this grammar in Trace Context level 2.
bool is_valid_key(std::string_view key) noexcept {
    if (key.empty() || key.size() > kMaxKeyLength) return false;
    const char first = key.front();
    if (!((first >= 'a' && first <= 'z') || (first >= '0' && first <= '9'))) return false;
    return std::all_of(key.begin(), key.end(), is_key_char);
}

// value = 0*255(chr) nblk-chr; chr = 0x20-0x7E except ',' and '='.
bool is_valid_value(std::string_view value) noexcept {
    if (value.empty() || value.size() > kMaxValueLength || value.back() == ' ') return false;
    return std::all_of(value.begin(), value.end(),
                       [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

// Per-thread generator: no lock, no shared state; seeded once per thread from the OS.
// xoshiro256** (Blackman and Vigna): IDs need uniqueness and unpredictability to the casual
// observer, not cryptographic strength, and this is a few instructions per 64 bits where
// mt19937_64 costs a table regeneration every 312 draws. Seeded per thread from the OS.
class IdGenerator {
public:
    IdGenerator() {
        std::random_device rd;
        for (auto& word : state_) {
            word = (static_cast<std::uint64_t>(rd()) << 32) | rd();
        }
        if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) state_[0] = 1;
    }
    std::uint64_t operator()() noexcept {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept {
        return (x << k) | (x >> (64 - k));
    }
    std::array<std::uint64_t, 4> state_{};
};

IdGenerator& thread_rng() {
    thread_local IdGenerator rng;
    return rng;
}

template <std::size_t N>
void fill_random(std::array<std::uint8_t, N>& out) {
    auto& rng = thread_rng();
    for (std::size_t i = 0; i < N; i += 8) {
        const std::uint64_t word = rng();
        std::memcpy(out.data() + i, &word, std::min<std::size_t>(8, N - i));
    }
}

template <std::size_t N>
std::array<std::uint8_t, N> random_nonzero_id() {
    std::array<std::uint8_t, N> id{};
    do {
        fill_random(id);
    } while (all_zero(id));
    return id;
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::span<const std::string_view> lines) {
    // More than one traceparent line is ambiguous: the spec says restart the trace.
    if (lines.size() != 1) return std::nullopt;
    return parse_traceparent_value(trim_ows(lines.front()));
}

std::optional<std::string> parse_tracestate(std::span<const std::string_view> lines) {
    std::string out;
    std::unordered_set<std::string_view> keys;
    std::size_t members = 0;
    for (const std::string_view line : lines) {
        std::string_view rest = line;
        while (true) {
            const std::size_t comma = rest.find(',');
            const std::string_view member = trim_ows(rest.substr(0, comma));
            // Empty and whitespace-only members are allowed and carry nothing.
            if (!member.empty()) {
                if (++members > kMaxTracestateMembers) return std::nullopt;
                const std::size_t eq = member.find('=');
                if (eq == std::string_view::npos) return std::nullopt;
                const std::string_view key = member.substr(0, eq);
                const std::string_view value = member.substr(eq + 1);
                if (!is_valid_key(key) || !is_valid_value(value)) return std::nullopt;
                // A repeated key is dropped (the spec allows it); the left-most is the newest.
                if (keys.insert(key).second) {
                    if (!out.empty()) out += ',';
                    out.append(key).append("=").append(value);
                }
            }
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return out;
}

TraceContext make_trace_context(const std::optional<TraceParent>& parent,
                                std::optional<std::string> tracestate) {
    TraceContext tc;
    tc.span_id = random_span_id();
    if (parent) {
        tc.trace_id = parent->trace_id;
        tc.parent_span_id = parent->parent_id;
        tc.flags = parent->flags;
        if (tracestate) tc.tracestate = std::move(*tracestate);
    } else {
        tc.trace_id = random_trace_id();
        // Sampled, and the level-2 random-trace-id bit: all 16 bytes are random.
        tc.flags = 0x03;
    }
    return tc;
}

std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, std::uint8_t flags) {
    std::string out;
    out.reserve(kTraceparentLength);
    out += "00-";
    out += hex_of(trace_id);
    out += '-';
    out += hex_of(span_id);
    out += '-';
    const std::uint8_t known = flags & 0x03;  // other flags are reserved: sent as zero
    out += kHexDigits[known >> 4];
    out += kHexDigits[known & 0x0f];
    return out;
}

TraceId random_trace_id() {
    return random_nonzero_id<16>();
}
SpanId random_span_id() {
    return random_nonzero_id<8>();
}

std::string to_hex(const TraceId& id) {
    return hex_of(id);
}
std::string to_hex(const SpanId& id) {
    return hex_of(id);
}

bool is_valid_request_id(std::string_view candidate) noexcept {
    static constexpr std::array<bool, 256> kAllowed = [] {
        std::array<bool, 256> t{};
        for (int c = 0; c < 256; ++c) {
            t[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == ':' || c == '-';
        }
        return t;
    }();
    if (candidate.empty() || candidate.size() > kMaxRequestIdLength) return false;
    bool ok = true;  // no early exit: one table load and one AND per character
    for (const char c : candidate) ok &= kAllowed[static_cast<unsigned char>(c)];
    return ok;
}

void write_hex(std::span<const std::uint8_t> bytes, char* out) noexcept {
    std::size_t i = 0;
#if defined(__SSE2__)
    // Eight bytes at a time (IDs are 8 or 16 bytes): the nibbles interleaved high-then-low,
    // then '0' + n, plus 39 more for 'a'..'f'.
    for (; i + 8 <= bytes.size(); i += 8) {
        const __m128i in = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes.data() + i));
        const __m128i low_mask = _mm_set1_epi8(0x0f);
        const __m128i high = _mm_and_si128(_mm_srli_epi16(in, 4), low_mask);
        const __m128i low = _mm_and_si128(in, low_mask);
        const __m128i nibbles = _mm_unpacklo_epi8(high, low);
        const __m128i letters =
            _mm_and_si128(_mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10));
        const __m128i text = _mm_add_epi8(_mm_add_epi8(nibbles, _mm_set1_epi8('0')), letters);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), text);
    }
#endif
    for (char* at = out + 2 * i; i < bytes.size(); ++i, at += 2) {
        std::memcpy(at, kHexPair[bytes[i]].data(), 2);
    }
}

std::string generate_request_id() {
    std::array<std::uint8_t, 16> b{};
    fill_random(b);
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    // 8-4-4-4-12 hex digits written in place: one allocation, no intermediate string.
    std::string out(36, '-');
    const std::span<const std::uint8_t> bytes(b);
    write_hex(bytes.subspan(0, 4), out.data());
    write_hex(bytes.subspan(4, 2), out.data() + 9);
    write_hex(bytes.subspan(6, 2), out.data() + 14);
    write_hex(bytes.subspan(8, 2), out.data() + 19);
    write_hex(bytes.subspan(10, 6), out.data() + 24);
    return out;
}

}  // namespace reqctx
