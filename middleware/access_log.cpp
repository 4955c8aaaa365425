#include "middleware/access_log.hpp"

#include <array>

namespace reqctx {
namespace {

template <std::size_t N>
std::string_view hex(const std::array<std::uint8_t, N>& bytes, char (&out)[2 * N]) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < N; ++i) {
        out[2 * i] = kHex[bytes[i] >> 4];
        out[2 * i + 1] = kHex[bytes[i] & 0xf];
    }
    return {out, 2 * N};
}

}  // namespace

void AccessLog::write(const Exchange& e) {
    if (!logger_->enabled(spdlog::level::info)) return;
    // One buffer per I/O thread, reused: no allocation per request once warm.
    thread_local LogLine line(LogFormat::json);
    line.set_format(logger_->format());
    line.reset("request");
    // Every string here is safe as it is: validated request IDs, hex, method tokens, patterns.
    if (e.request_id != nullptr) line.str_plain("request_id", e.request_id->value);
    if (e.trace != nullptr) {
        char trace_hex[32];
        char span_hex[16];
        line.str_plain("trace_id", hex(e.trace->trace_id, trace_hex));
        line.str_plain("span_id", hex(e.trace->span_id, span_hex));
    }
    line.str("method", e.method);
    line.str_plain("route", e.route);
    line.num("status", e.status);
    line.real("duration_ms", e.duration_s * 1000.0);
    line.num("bytes", static_cast<std::int64_t>(e.bytes));
    if (e.cancel_reason.empty()) {
        line.field("cancel_reason", nullptr);
    } else {
        line.str_plain("cancel_reason", e.cancel_reason);
    }
    logger_->write(spdlog::level::info, line);
}

}  // namespace reqctx
