#include "middleware/access_log.hpp"

#include <cmath>
#include <cstdint>

#include "handlers/fixed_text.hpp"

namespace reqctx {
namespace {

// The longest line the stack path formats: start, literals, hex IDs, numbers, then the strings.
constexpr std::size_t kFixedPart =
    Logger::kLineStartCapacity + 200 + 48 + 20 + 20 + kFixed3Capacity;

}  // namespace

void AccessLog::write(const Exchange& e) {
    if (!logger_->enabled(spdlog::level::info)) return;
    const std::size_t variable =
        e.request_id.size() + e.method.size() + e.route.size() + e.cancel_reason.size();
    if (logger_->format() == LogFormat::json && kFixedPart + variable <= 1024 &&
        json_safe(e.method) && json_safe(e.route) && json_safe(e.cancel_reason) &&
        std::isfinite(e.duration_s)) {
        // The common case: the whole line formatted on the stack, queued with one copy. Request
        // IDs are validated, IDs are hex, and the other strings were just checked: nothing
        // needs escaping.
        using namespace std::string_view_literals;
        char storage[1024];
        TextCursor out(storage + logger_->line_start(spdlog::level::info, storage));
        out.put(R"("msg":"request")"sv);
        if (!e.request_id.empty()) {
            out.put(R"(,"request_id":")"sv);
            out.put(e.request_id);
            out.put('"');
        }
        if (e.trace) {
            out.put(R"(,"trace_id":")"sv);
            out.put_hex(e.trace->trace_id);
            out.put(R"(","span_id":")"sv);
            out.put_hex(e.trace->span_id);
            out.put('"');
        }
        out.put(R"(,"method":")"sv);
        out.put(e.method);
        out.put(R"(","route":")"sv);
        out.put(e.route);
        out.put(R"(","status":)"sv);
        out.put_number(e.status);
        out.put(R"(,"duration_ms":)"sv);
        out.advance(format_fixed3(out.at(), e.duration_s * 1000.0));
        out.put(R"(,"bytes":)"sv);
        out.put_number(e.bytes);
        if (e.cancel_reason.empty()) {
            out.put(",\"cancel_reason\":null}\n"sv);
        } else {
            out.put(R"(,"cancel_reason":")"sv);
            out.put(e.cancel_reason);
            out.put("\"}\n"sv);
        }
        logger_->write_line(
            spdlog::level::info,
            std::string_view(storage, static_cast<std::size_t>(out.at() - storage)));
        return;
    }

    // Any other case (logfmt, a value that needs escaping, a line too long for the buffer).
    thread_local LogLine line(LogFormat::json);
    line.set_format(logger_->format());
    line.reset("request");
    if (!e.request_id.empty()) line.str_plain("request_id", e.request_id);
    if (e.trace) {
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
