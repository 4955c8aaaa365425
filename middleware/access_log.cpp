#include "middleware/access_log.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "handlers/fixed_text.hpp"

namespace reqctx {
namespace {

// Appending to a buffer the caller sized for the whole line (no checks here).
template <std::size_t N>
inline void put(char*& p, const char (&literal)[N]) noexcept {
    std::memcpy(p, literal, N - 1);
    p += N - 1;
}
inline void put(char*& p, std::string_view s) noexcept {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
}
template <std::size_t N>
inline void put_hex(char*& p, const std::array<std::uint8_t, N>& bytes) noexcept {
    write_hex(bytes, p);
    p += 2 * N;
}
inline void put_number(char*& p, std::uint64_t value) noexcept {
    if (value >= 100 && value <= 999) {  // a status, most byte counts
        p[0] = static_cast<char>('0' + value / 100);
        p[1] = static_cast<char>('0' + value / 10 % 10);
        p[2] = static_cast<char>('0' + value % 10);
        p += 3;
        return;
    }
    p = std::to_chars(p, p + 20, value).ptr;
}

// The longest line the stack path formats: start, literals, hex IDs, numbers, then the strings.
constexpr std::size_t kFixedPart =
    Logger::kLineStartCapacity + 200 + 48 + 20 + 20 + kFixed3Capacity;

}  // namespace

void AccessLog::write(const Exchange& e) {
    if (!logger_->enabled(spdlog::level::info)) return;
    const std::size_t variable = (e.request_id ? e.request_id->value.size() : 0) + e.method.size() +
                                 e.route.size() + e.cancel_reason.size();
    if (logger_->format() == LogFormat::json && kFixedPart + variable <= 1024 &&
        json_safe(e.method) && json_safe(e.route) && json_safe(e.cancel_reason) &&
        std::isfinite(e.duration_s)) {
        // The common case: the whole line formatted on the stack, queued with one copy. Request
        // IDs are validated, IDs are hex, and the other strings were just checked: nothing
        // needs escaping.
        char storage[1024];
        char* p = storage + logger_->line_start(spdlog::level::info, storage);
        put(p, R"("msg":"request")");
        if (e.request_id != nullptr) {
            put(p, R"(,"request_id":")");
            put(p, e.request_id->value);
            *p++ = '"';
        }
        if (e.trace != nullptr) {
            put(p, R"(,"trace_id":")");
            put_hex(p, e.trace->trace_id);
            put(p, R"(","span_id":")");
            put_hex(p, e.trace->span_id);
            *p++ = '"';
        }
        put(p, R"(,"method":")");
        put(p, e.method);
        put(p, R"(","route":")");
        put(p, e.route);
        put(p, R"(","status":)");
        put_number(p, e.status);
        put(p, R"(,"duration_ms":)");
        p += format_fixed3(p, e.duration_s * 1000.0);
        put(p, R"(,"bytes":)");
        put_number(p, e.bytes);
        if (e.cancel_reason.empty()) {
            put(p, R"(,"cancel_reason":null})"
                   "\n");
        } else {
            put(p, R"(,"cancel_reason":")");
            put(p, e.cancel_reason);
            put(p, "\"}\n");
        }
        logger_->write_line(spdlog::level::info,
                            std::string_view(storage, static_cast<std::size_t>(p - storage)));
        return;
    }

    // Any other case (logfmt, a value that needs escaping, a line too long for the buffer).
    thread_local LogLine line(LogFormat::json);
    line.set_format(logger_->format());
    line.reset("request");
    if (e.request_id != nullptr) line.str_plain("request_id", e.request_id->value);
    if (e.trace != nullptr) {
        char trace_hex[32];
        char span_hex[16];
        write_hex(e.trace->trace_id, trace_hex);
        write_hex(e.trace->span_id, span_hex);
        line.str_plain("trace_id", std::string_view(trace_hex, sizeof trace_hex));
        line.str_plain("span_id", std::string_view(span_hex, sizeof span_hex));
    }
    line.str("method", e.method);
    line.str("route", e.route);
    line.num("status", e.status);
    line.real("duration_ms", e.duration_s * 1000.0);
    line.num("bytes", static_cast<std::int64_t>(e.bytes));
    if (e.cancel_reason.empty()) {
        line.field("cancel_reason", nullptr);
    } else {
        line.str("cancel_reason", e.cancel_reason);
    }
    logger_->write(spdlog::level::info, line);
}

}  // namespace reqctx
