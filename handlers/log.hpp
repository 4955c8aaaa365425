#pragma once

// Structured logging: one JSON object per line (or key=value text for humans), with request_id,
// trace_id and span_id read from the request context on every line written for a request
// (origin_request_id / origin_trace_id for background work). Thread-safe and asynchronous: a
// caller formats its line and appends it to a buffer under a short lock; one writer thread hands
// the lines to the sink (stdout, or any spdlog sink) in batches every 20 ms, at once for warnings
// and errors. Batching matters: spdlog's own async logger wakes its worker (a futex) and stdout
// sink flushes (a write) once per line, which was 35% of a request's CPU (docs/performance.md).
//
//   logger.info(ctx, "cache miss", {{"key", key}, {"latency_ms", 0.2}});
//   logger.info_origin(sub_ctx, "event processed", {{"topic", topic}});
//   logger.info("listening", {{"address", addr}});            // no request

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <variant>

#include <spdlog/common.h>

#include "context/context.hpp"

namespace reqctx {

enum class LogFormat { json, text };

// A field value: text, integer, real, boolean or null. Holds views: build it for the call only.
class LogValue {
public:
    LogValue(std::nullptr_t) noexcept : v_(nullptr) {}
    LogValue(std::string_view s) noexcept : v_(s) {}
    LogValue(const char* s) noexcept : v_(std::string_view(s)) {}
    LogValue(const std::string& s) noexcept : v_(std::string_view(s)) {}
    LogValue(bool b) noexcept : v_(b) {}
    LogValue(double d) noexcept : v_(d) {}
    template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    LogValue(I i) noexcept : v_(static_cast<std::int64_t>(i)) {}

    const std::variant<std::nullptr_t, std::string_view, std::int64_t, double, bool>& get()
        const noexcept {
        return v_;
    }

private:
    std::variant<std::nullptr_t, std::string_view, std::int64_t, double, bool> v_;
};

struct LogField {
    std::string_view key;
    LogValue value;
};

// One line's fields, rendered as JSON members or key=value pairs. Reusable (reset).
// A finite value with three decimals ("12.345"; printf for magnitudes of 1e15 and more), written
// to out (kFixed3Capacity bytes); returns the length. Non-finite values are the caller's case.
inline constexpr std::size_t kFixed3Capacity = 48;
std::size_t format_fixed3(char* out, double value) noexcept;

class LogLine {
public:
    explicit LogLine(LogFormat format) : format_(format) {}
    void set_format(LogFormat format) noexcept { format_ = format; }
    void reset(std::string_view msg);
    LogLine& field(std::string_view key, const LogValue& value);
    LogLine& str(std::string_view key, std::string_view value);
    // For values known to need no escaping or quoting (hex IDs, validated request IDs, route
    // patterns, HTTP method tokens): appended as they are.
    LogLine& str_plain(std::string_view key, std::string_view value);
    LogLine& num(std::string_view key, std::int64_t value);
    LogLine& real(std::string_view key, double value);
    const std::string& text() const noexcept { return buf_; }

private:
    void key(std::string_view k);
    LogFormat format_;
    std::string buf_;
};

class Logger {
public:
    using not_request_scoped = void;

    // Writes to stdout (sink == nullptr) or to `sink` (its formatter is set to "%v": lines
    // arrive complete, with their timestamp and level).
    Logger(LogFormat format, spdlog::level::level_enum level, spdlog::sink_ptr sink = nullptr);
    ~Logger();  // writes every queued line, then joins the writer thread
    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;

    LogFormat format() const noexcept { return format_; }
    bool enabled(spdlog::level::level_enum level) const noexcept {
        return static_cast<int>(level) >= level_.load(std::memory_order_relaxed) &&
               level != spdlog::level::off;
    }

    // With the request's request_id, trace_id, span_id (when present on ctx).
    void log(spdlog::level::level_enum level, const Context& ctx, std::string_view msg,
             std::initializer_list<LogField> fields = {});
    void debug(const Context& ctx, std::string_view msg, std::initializer_list<LogField> f = {}) {
        log(spdlog::level::debug, ctx, msg, f);
    }
    void info(const Context& ctx, std::string_view msg, std::initializer_list<LogField> f = {}) {
        log(spdlog::level::info, ctx, msg, f);
    }
    void warn(const Context& ctx, std::string_view msg, std::initializer_list<LogField> f = {}) {
        log(spdlog::level::warn, ctx, msg, f);
    }
    void error(const Context& ctx, std::string_view msg, std::initializer_list<LogField> f = {}) {
        log(spdlog::level::err, ctx, msg, f);
    }

    // Background work: the IDs of the request that started it, as origin_request_id and
    // origin_trace_id.
    void log_origin(spdlog::level::level_enum level, const Context& ctx, std::string_view msg,
                    std::initializer_list<LogField> fields = {});
    void info_origin(const Context& ctx, std::string_view msg,
                     std::initializer_list<LogField> f = {}) {
        log_origin(spdlog::level::info, ctx, msg, f);
    }
    void warn_origin(const Context& ctx, std::string_view msg,
                     std::initializer_list<LogField> f = {}) {
        log_origin(spdlog::level::warn, ctx, msg, f);
    }

    // Not on behalf of a request (startup, shutdown).
    void log(spdlog::level::level_enum level, std::string_view msg,
             std::initializer_list<LogField> fields = {});
    void info(std::string_view msg, std::initializer_list<LogField> f = {}) {
        log(spdlog::level::info, msg, f);
    }
    void warn(std::string_view msg, std::initializer_list<LogField> f = {}) {
        log(spdlog::level::warn, msg, f);
    }
    void error(std::string_view msg, std::initializer_list<LogField> f = {}) {
        log(spdlog::level::err, msg, f);
    }

    // A line built by the caller.
    void write(spdlog::level::level_enum level, const LogLine& line);
    // `fields` is a LogLine's text made by other means.
    void write_text(spdlog::level::level_enum level, std::string_view fields);

    // The access log's hot path: the caller formats a whole line in its own buffer, starting
    // with line_start() (timestamp and level), then the fields as a LogLine would render them,
    // then line_end(); write_line() queues it with one copy under the lock (the caller has
    // checked enabled()).
    static constexpr std::size_t kLineStartCapacity = 64;
    std::size_t line_start(spdlog::level::level_enum level, char* out) const noexcept;
    std::string_view line_end() const noexcept {
        return format_ == LogFormat::json ? std::string_view("}\n") : std::string_view("\n");
    }
    void write_line(spdlog::level::level_enum level, std::string_view line);

    // Asks the writer to hand over what is queued now (does not wait; the destructor does).
    void flush();
    // Returns once every line written before the call has reached the sink.
    void sync();

private:
    void append_ids(LogLine& line, const Context& ctx, bool origin) const;
    void run_writer();
    void emit(const std::string& batch);

    // Guards the queued lines: held for one append or one swap, so a test-and-set with a short
    // spin (then yield) is cheaper than a mutex (one locked instruction per line, not two).
    class PendingLock {
    public:
        void lock() noexcept;
        void unlock() noexcept { locked_.store(false, std::memory_order_release); }

    private:
        std::atomic<bool> locked_{false};
    };

    LogFormat format_;
    std::atomic<int> level_;
    spdlog::sink_ptr sink_;
    PendingLock pending_lock_;
    std::string pending_;          // complete lines, guarded by pending_lock_
    bool full_signalled_ = false;  // pending_ reached kWakeBytes; guarded by pending_lock_
    std::mutex mutex_;
    std::condition_variable wake_;
    bool urgent_ = false;                // guarded by mutex_
    bool stop_ = false;                  // guarded by mutex_
    std::uint64_t batches_taken_ = 0;    // guarded by mutex_
    std::uint64_t batches_emitted_ = 0;  // guarded by mutex_
    std::condition_variable emitted_;
    std::thread writer_;
};

}  // namespace reqctx
