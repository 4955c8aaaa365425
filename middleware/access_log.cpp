#include "middleware/access_log.hpp"

#include <array>
#include <cmath>

#include "handlers/fixed_text.hpp"

namespace reqctx {
namespace {

void put_quoted(FixedText& out, std::string_view key, std::string_view value) {
    out.put(key);
    out.put("\"");
    out.put(value);
    out.put("\"");
}

}  // namespace

void AccessLog::write(const Exchange& e) {
    if (!logger_->enabled(spdlog::level::info)) return;
    if (logger_->format() == LogFormat::json && json_safe(e.method) && json_safe(e.route) &&
        json_safe(e.cancel_reason) && std::isfinite(e.duration_s)) {
        // The common case, formatted on the stack. Request IDs are validated, IDs are hex, and
        // the other strings were just checked: nothing needs escaping.
        std::array<char, 1024> storage;
        FixedText out(storage);
        out.put(R"("msg":"request")");
        if (e.request_id != nullptr) put_quoted(out, R"(,"request_id":)", e.request_id->value);
        if (e.trace != nullptr) {
            out.put(R"(,"trace_id":")");
            out.put_hex(e.trace->trace_id);
            out.put(R"(","span_id":")");
            out.put_hex(e.trace->span_id);
            out.put("\"");
        }
        put_quoted(out, R"(,"method":)", e.method);
        put_quoted(out, R"(,"route":)", e.route);
        out.put(R"(,"status":)");
        out.put_number(e.status);
        out.put(R"(,"duration_ms":)");
        char millis[kFixed3Capacity];
        out.put(std::string_view(millis, format_fixed3(millis, e.duration_s * 1000.0)));
        out.put(R"(,"bytes":)");
        out.put_number(static_cast<std::int64_t>(e.bytes));
        if (e.cancel_reason.empty()) {
            out.put(R"(,"cancel_reason":null)");
        } else {
            put_quoted(out, R"(,"cancel_reason":)", e.cancel_reason);
        }
        if (!out.overflow()) {
            logger_->write_text(spdlog::level::info, out.text());
            return;
        }
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
