#include "handlers/log.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/sink.h>

#include "clients/propagation.hpp"
#include "handlers/errors.hpp"

namespace reqctx {
namespace {

constexpr auto kWriteInterval = std::chrono::milliseconds(20);
constexpr std::size_t kWakeBytes = 256 * 1024;         // a full batch wakes the writer early
constexpr std::size_t kMaxPending = 64 * 1024 * 1024;  // beyond this, lines are dropped

constexpr std::size_t kTimestampLength = 27;

// "00".."99": two digits with one load.
constexpr auto kDigitPairs = [] {
    std::array<char, 200> t{};
    for (int i = 0; i < 100; ++i) {
        t[static_cast<std::size_t>(2 * i)] = static_cast<char>('0' + i / 10);
        t[static_cast<std::size_t>(2 * i + 1)] = static_cast<char>('0' + i % 10);
    }
    return t;
}();

// "2026-11-26T00:33:15.630100Z" into out (kTimestampLength chars). The part up to the second is
// cached per thread: it changes once a second.
void format_utc(char* out) noexcept {
    using namespace std::chrono;
    struct Cache {
        std::int64_t second = -1;
        char text[20] = {};  // "2026-11-26T00:33:15."
    };
    thread_local Cache cache;
    const auto now = system_clock::now();
    const std::int64_t micros = duration_cast<microseconds>(now.time_since_epoch()).count();
    const std::int64_t second = micros / 1000000;
    if (second != cache.second) {
        const auto day = floor<days>(now);
        const year_month_day ymd{day};
        const auto secs = duration_cast<seconds>(now - day).count();
        char text[40];
        std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.",
                      static_cast<int>(ymd.year()) % 10000, static_cast<unsigned>(ymd.month()),
                      static_cast<unsigned>(ymd.day()), static_cast<int>(secs / 3600),
                      static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
        std::memcpy(cache.text, text, sizeof cache.text);
        cache.second = second;
    }
    std::memcpy(out, cache.text, sizeof cache.text);
    auto frac = static_cast<std::uint32_t>(micros - second * 1000000);
    if (micros < 0) frac = 0;  // before 1970: not a clock this service runs on
    char* p = out + sizeof cache.text;
    std::memcpy(p, &kDigitPairs[2 * (frac / 10000)], 2);
    std::memcpy(p + 2, &kDigitPairs[2 * (frac / 100 % 100)], 2);
    std::memcpy(p + 4, &kDigitPairs[2 * (frac % 100)], 2);
    p[6] = 'Z';
}

bool needs_quotes(std::string_view v) noexcept {
    if (v.empty()) return true;
    for (char c : v) {
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
    }
    return false;
}

void append_hex(std::string& out, const std::uint8_t* bytes, std::size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(kHex[bytes[i] >> 4]);
        out.push_back(kHex[bytes[i] & 0xf]);
    }
}

}  // namespace

void LogLine::reset(std::string_view msg) {
    buf_.clear();
    if (format_ == LogFormat::json) {
        buf_ += "\"msg\":\"";
        append_json_escaped(buf_, msg);
        buf_ += '"';
    } else {
        buf_.append(msg);
    }
}

void LogLine::key(std::string_view k) {
    if (format_ == LogFormat::json) {
        buf_ += ",\"";
        buf_.append(k);
        buf_ += "\":";
    } else {
        buf_ += ' ';
        buf_.append(k);
        buf_ += '=';
    }
}

LogLine& LogLine::str(std::string_view k, std::string_view value) {
    key(k);
    if (format_ == LogFormat::json || needs_quotes(value)) {
        buf_ += '"';
        append_json_escaped(buf_, value);
        buf_ += '"';
    } else {
        buf_.append(value);
    }
    return *this;
}

LogLine& LogLine::str_plain(std::string_view k, std::string_view value) {
    key(k);
    if (format_ == LogFormat::json) {
        buf_ += '"';
        buf_.append(value);
        buf_ += '"';
    } else {
        buf_.append(value);
    }
    return *this;
}

LogLine& LogLine::num(std::string_view k, std::int64_t value) {
    key(k);
    char tmp[24];
    auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, value);
    (void)ec;
    buf_.append(tmp, end);
    return *this;
}

LogLine& LogLine::real(std::string_view k, double value) {
    key(k);
    if (!std::isfinite(value)) {
        buf_ += format_ == LogFormat::json ? "null" : "nan";
        return *this;
    }
    char tmp[kFixed3Capacity];
    buf_.append(tmp, format_fixed3(tmp, value));
    return *this;
}

std::size_t format_fixed3(char* out, double value) noexcept {
    if (value >= 1e15 || value <= -1e15) {
        const int n = std::snprintf(out, kFixed3Capacity, "%.3f", value);
        return n > 0 ? std::min(static_cast<std::size_t>(n), kFixed3Capacity - 1) : 0;
    }
    // Three decimals by integer arithmetic: printf's floating-point path is slow for a hot log.
    // Rounded half away from zero, as std::llround (without the library call): below 2^52 the
    // fraction y - trunc(y) is exact; above, y is already whole.
    const bool negative = value < 0;
    const double y = (negative ? -value : value) * 1000.0;
    auto thousandths = static_cast<std::int64_t>(y);
    if (y - static_cast<double>(thousandths) >= 0.5) ++thousandths;
    std::size_t len = 0;
    if (negative && thousandths != 0) out[len++] = '-';
    auto [end, ec] = std::to_chars(out + len, out + kFixed3Capacity, thousandths / 1000);
    (void)ec;
    len = static_cast<std::size_t>(end - out);
    const auto frac = static_cast<int>(thousandths % 1000);
    out[len++] = '.';
    out[len++] = static_cast<char>('0' + frac / 100);
    out[len++] = static_cast<char>('0' + frac / 10 % 10);
    out[len++] = static_cast<char>('0' + frac % 10);
    return len;
}

LogLine& LogLine::field(std::string_view k, const LogValue& value) {
    const auto& v = value.get();
    if (const auto* s = std::get_if<std::string_view>(&v)) return str(k, *s);
    if (const auto* i = std::get_if<std::int64_t>(&v)) return num(k, *i);
    if (const auto* d = std::get_if<double>(&v)) return real(k, *d);
    key(k);
    if (const auto* b = std::get_if<bool>(&v)) {
        buf_ += *b ? "true" : "false";
    } else {
        buf_ += "null";
    }
    return *this;
}

Logger::Logger(LogFormat format, spdlog::level::level_enum level, spdlog::sink_ptr sink)
    : format_(format), level_(static_cast<int>(level)), sink_(std::move(sink)) {
    if (sink_) sink_->set_formatter(std::make_unique<spdlog::pattern_formatter>("%v"));
    pending_.reserve(kWakeBytes);
    writer_ = std::thread([this] { run_writer(); });
}

Logger::~Logger() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    writer_.join();
}

void Logger::PendingLock::lock() noexcept {
    for (int spins = 0; locked_.exchange(true, std::memory_order_acquire);) {
        while (locked_.load(std::memory_order_relaxed)) {
            if (++spins > 64) std::this_thread::yield();  // the holder may have been preempted
        }
    }
}

void Logger::run_writer() {
    std::string batch;
    batch.reserve(kWakeBytes);
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait_for(lock, kWriteInterval, [this] { return stop_ || urgent_; });
        urgent_ = false;
        {
            std::lock_guard pending(pending_lock_);
            batch.swap(pending_);
            full_signalled_ = false;
        }
        const std::uint64_t taken = ++batches_taken_;
        const bool stopping = stop_;
        lock.unlock();
        if (!batch.empty()) emit(batch);
        batch.clear();
        lock.lock();
        batches_emitted_ = taken;
        emitted_.notify_all();
        if (stopping) {
            std::lock_guard pending(pending_lock_);
            if (pending_.empty()) return;
        }
    }
}

void Logger::emit(const std::string& batch) {
    if (!sink_) {
        std::fwrite(batch.data(), 1, batch.size(), stdout);
        std::fflush(stdout);
        return;
    }
    std::size_t start = 0;
    while (start < batch.size()) {
        std::size_t end = batch.find('\n', start);
        if (end == std::string::npos) end = batch.size();
        spdlog::details::log_msg msg(spdlog::string_view_t{}, spdlog::level::info,
                                     spdlog::string_view_t(batch.data() + start, end - start));
        sink_->log(msg);
        start = end + 1;
    }
    sink_->flush();
}

void Logger::append_ids(LogLine& line, const Context& ctx, bool origin) const {
    if (const RequestId* id = ctx.value(kRequestIdKey)) {
        line.str(origin ? "origin_request_id" : "request_id", id->value);
    }
    if (const TraceContext* trace = ctx.value(kTraceKey)) {
        std::string hex;
        hex.reserve(32);
        append_hex(hex, trace->trace_id.data(), trace->trace_id.size());
        line.str(origin ? "origin_trace_id" : "trace_id", hex);
        if (!origin) {
            hex.clear();
            append_hex(hex, trace->span_id.data(), trace->span_id.size());
            line.str("span_id", hex);
        }
    }
}

void Logger::log(spdlog::level::level_enum level, const Context& ctx, std::string_view msg,
                 std::initializer_list<LogField> fields) {
    if (!enabled(level)) return;
    LogLine line(format_);
    line.reset(msg);
    append_ids(line, ctx, false);
    for (const auto& f : fields) line.field(f.key, f.value);
    write(level, line);
}

void Logger::log_origin(spdlog::level::level_enum level, const Context& ctx, std::string_view msg,
                        std::initializer_list<LogField> fields) {
    if (!enabled(level)) return;
    LogLine line(format_);
    line.reset(msg);
    append_ids(line, ctx, true);
    for (const auto& f : fields) line.field(f.key, f.value);
    write(level, line);
}

void Logger::log(spdlog::level::level_enum level, std::string_view msg,
                 std::initializer_list<LogField> fields) {
    if (!enabled(level)) return;
    LogLine line(format_);
    line.reset(msg);
    for (const auto& f : fields) line.field(f.key, f.value);
    write(level, line);
}

void Logger::write(spdlog::level::level_enum level, const LogLine& line) {
    write_text(level, line.text());
}

namespace {

// The names --log-level accepts (spdlog calls warn "warning").
std::string_view level_name(spdlog::level::level_enum level) noexcept {
    if (level == spdlog::level::warn) return "warn";
    const auto name = spdlog::level::to_string_view(level);
    return {name.data(), name.size()};
}

}  // namespace

std::size_t Logger::line_start(spdlog::level::level_enum level, char* out) const noexcept {
    const auto name = level_name(level);
    const std::size_t name_len = std::min<std::size_t>(name.size(), 16);
    char* p = out;
    if (format_ == LogFormat::json) {
        std::memcpy(p, R"({"ts":")", 7);
        p += 7;
        format_utc(p);
        p += kTimestampLength;
        std::memcpy(p, R"(","level":")", 11);
        p += 11;
        std::memcpy(p, name.data(), name_len);
        p += name_len;
        std::memcpy(p, "\",", 2);
        p += 2;
    } else {
        format_utc(p);
        p += kTimestampLength;
        *p++ = ' ';
        std::memcpy(p, name.data(), name_len);
        p += name_len;
        *p++ = ' ';
    }
    return static_cast<std::size_t>(p - out);
}
static_assert(7 + kTimestampLength + 11 + 16 + 2 <= Logger::kLineStartCapacity);

void Logger::write_line(spdlog::level::level_enum level, std::string_view line) {
    bool wake = level >= spdlog::level::warn;  // at once; info lines wait for the batch
    {
        std::lock_guard pending(pending_lock_);
        if (pending_.size() > kMaxPending) return;  // the sink cannot keep up: shed, never block
        pending_.append(line);
        if (pending_.size() >= kWakeBytes && !full_signalled_) {
            full_signalled_ = true;
            wake = true;
        }
    }
    if (wake) {
        {
            std::lock_guard lock(mutex_);
            urgent_ = true;
        }
        wake_.notify_one();
    }
}

void Logger::write_text(spdlog::level::level_enum level, std::string_view text) {
    if (!enabled(level)) return;
    std::array<char, 1024> stack;
    const std::string_view end = line_end();
    if (kLineStartCapacity + text.size() + end.size() <= stack.size()) {
        std::size_t len = line_start(level, stack.data());
        std::memcpy(stack.data() + len, text.data(), text.size());
        len += text.size();
        std::memcpy(stack.data() + len, end.data(), end.size());
        write_line(level, std::string_view(stack.data(), len + end.size()));
        return;
    }
    std::string line;
    line.resize(kLineStartCapacity);
    line.resize(line_start(level, line.data()));
    line += text;
    line += end;
    write_line(level, line);
}

void Logger::sync() {
    std::unique_lock lock(mutex_);
    // The next batch taken holds every line queued so far.
    const std::uint64_t target = batches_taken_ + 1;
    urgent_ = true;
    wake_.notify_one();
    emitted_.wait(lock, [&] { return batches_emitted_ >= target || stop_; });
}

void Logger::flush() {
    {
        std::lock_guard lock(mutex_);
        urgent_ = true;
    }
    wake_.notify_one();
}

}  // namespace reqctx
