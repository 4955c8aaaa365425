#include "service/server.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <exception>
#include <list>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "clients/propagation.hpp"
#include "context/asio.hpp"
#include "handlers/errors.hpp"
#include "handlers/fixed_text.hpp"
#include "middleware/deadline.hpp"
#include "middleware/recovery.hpp"
#include "middleware/request_id.hpp"
#include "middleware/trace.hpp"
#include "middleware/user.hpp"
#include "service/request_parser.hpp"

namespace reqctx {
namespace {

using tcp = net::ip::tcp;
namespace beast = boost::beast;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);
constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kReadChunk = 4096;
constexpr std::size_t kMonitorChunk = 1024;
// The monitor keeps reading (pipelined requests) while less than this is buffered; past it the
// client waits for its answers (back-pressure) and a disconnect shows at the next read.
constexpr std::size_t kMonitorBufferLimit = 64 * 1024;
constexpr auto kLingerBound = std::chrono::milliseconds(1000);
constexpr auto kShutdownPoll = std::chrono::milliseconds(5);
constexpr auto kSessionsBound = std::chrono::milliseconds(5000);
constexpr auto kBackgroundBound = std::chrono::milliseconds(10000);
constexpr Clock::time_point kNever = Clock::time_point::max();

// idle: waiting for the first byte of a request (a shutdown closes it once no request is in
// flight); reading: a request has begun (it is in flight from here on); handling; writing.
enum class Phase { idle, reading, handling, writing };

struct Worker {
    // Touched only on this worker's thread.
    std::list<struct Session*> sessions;
    // Sessions whose handler was entered since the last monitor check (Session::monitor_soon):
    // one posted check per event-loop turn serves them all. A destroyed session nulls its slot.
    std::vector<struct Session*> entered;
    bool check_posted = false;
    // Sessions whose idle read waits for the end of this event-loop turn (read_after_turn):
    // one posted call per turn starts them all (moved to `starting` while it walks them).
    std::vector<struct Session*> parked;
    std::vector<struct Session*> starting;
    bool parked_posted = false;
    // Sessions of this worker with a request under way (Server::Impl::set_phase). Written only
    // by this worker's thread (a load and a store, no locked instruction), read by the drain.
    std::atomic<std::size_t> busy{0};
    // Last: destroyed first, so that sessions its pending handlers still own can reach the
    // members above as they go.
    net::io_context ioc{1};

    ~Worker();
};

// The completion handler of a session's idle read while it waits for the end of the turn,
// stored in place (no allocation per request). It owns the session's coroutine, which owns the
// session: Worker's destructor lets go of those a stopped event loop never started.
class ParkedRead {
public:
    ParkedRead() = default;
    ParkedRead(const ParkedRead&) = delete;
    ParkedRead& operator=(const ParkedRead&) = delete;
    ~ParkedRead() { reset(); }

    template <typename Handler>
    void park(Handler&& handler) {
        using H = std::decay_t<Handler>;
        static_assert(sizeof(H) <= sizeof(storage_) && alignof(H) <= alignof(std::max_align_t));
        ::new (static_cast<void*>(storage_)) H(std::forward<Handler>(handler));
        start_ = [](void* storage, tcp::socket& socket, net::mutable_buffer into) {
            H& parked = *static_cast<H*>(storage);
            H h(std::move(parked));
            parked.~H();
            socket.async_read_some(into, std::move(h));
        };
        complete_ = [](void* storage, boost::system::error_code ec, std::size_t n) {
            H& parked = *static_cast<H*>(storage);
            H h(std::move(parked));
            parked.~H();
            std::move(h)(ec, n);
        };
        destroy_ = [](void* storage) { static_cast<H*>(storage)->~H(); };
    }

    // Starts the read with the parked handler (its completion is posted, never run inline).
    void start(tcp::socket& socket, net::mutable_buffer into) {
        auto run = std::exchange(start_, nullptr);
        clear();
        run(storage_, socket, into);
    }

    // Completes the read now with a result obtained by the caller: the handler runs inline
    // (the session's coroutine resumes before this returns).
    void complete(boost::system::error_code ec, std::size_t n) {
        auto run = std::exchange(complete_, nullptr);
        clear();
        run(storage_, ec, n);
    }

    void reset() noexcept {
        if (destroy_ != nullptr) std::exchange(destroy_, nullptr)(storage_);
        clear();
    }

private:
    void clear() noexcept {
        start_ = nullptr;
        complete_ = nullptr;
        destroy_ = nullptr;
    }

    alignas(std::max_align_t) std::byte storage_[64];
    void (*start_)(void*, tcp::socket&, net::mutable_buffer) = nullptr;
    void (*complete_)(void*, boost::system::error_code, std::size_t) = nullptr;
    void (*destroy_)(void*) = nullptr;
};

constexpr std::size_t kNotEntered = static_cast<std::size_t>(-1);
void start_entered_monitors(Worker* w);

// One connection. Owned by its coroutine and by its pending timer/monitor handlers.
struct Session : std::enable_shared_from_this<Session> {
    Session(Worker* w, tcp::socket s)
        : worker(w),
          socket(std::move(s)),
          watchdog(socket.get_executor()),
          monitor_done(socket.get_executor()) {}

    Worker* worker;
    tcp::socket socket;
    beast::flat_buffer buffer;
    net::steady_timer watchdog;      // closes the socket once `deadline` has passed
    net::steady_timer monitor_done;  // an event: cancelled when the monitor read completes
    Clock::time_point deadline = kNever;
    Clock::time_point armed = kNever;
    Phase phase = Phase::idle;
    // The serialized status line and fields of the response being written: in head_buffer when
    // they fit (nearly always), else in head.
    std::array<char, 1024> head_buffer;
    std::string head;
    bool timed_out = false;
    bool closed = false;
    // The read kept pending while a handler runs (client-disconnect detection).
    bool monitor_pending = false;
    bool peer_gone = false;
    CancelHandle* monitor_target = nullptr;
    CancelHandle* handling_target = nullptr;  // the request's cancel handle, while handling
    std::size_t entered_slot = kNotEntered;   // index in worker->entered while listed there
    std::list<Session*>::iterator self;
    ParkedRead idle_read;  // while listed in worker->parked

    void close() {
        if (closed) return;
        closed = true;
        boost::system::error_code ignored;
        socket.close(ignored);
        watchdog.cancel();
    }

    // Sets the phase deadline. The timer is moved only when the new deadline is earlier than
    // the armed one; otherwise it fires early and re-arms itself (cheap on the hot path).
    void set_deadline(Clock::time_point d) {
        deadline = d;
        if (d < armed && !closed) {
            armed = d;
            watchdog.expires_at(d);
            watchdog.async_wait([self = shared_from_this()](boost::system::error_code ec) {
                self->on_watchdog(ec);
            });
        }
    }

    void on_watchdog(boost::system::error_code ec) {
        if (ec == net::error::operation_aborted || closed) return;
        armed = kNever;
        if (deadline <= Clock::now()) {
            timed_out = true;
            close();
            return;
        }
        if (deadline != kNever) set_deadline(deadline);
    }

    ~Session() {
        if (entered_slot != kNotEntered) worker->entered[entered_slot] = nullptr;
    }

    // The monitor starts one event-loop turn after the handler was entered: a handler that
    // completes without suspending (most of /healthz, /v1/whoami) never needs it, and saves a
    // recv syscall and a cancellation. One that waits is watched from its first suspension.
    // The turn is marked by one post per worker, not one per request.
    void monitor_soon(CancelHandle* target) {
        handling_target = target;
        if (entered_slot == kNotEntered) {
            entered_slot = worker->entered.size();
            worker->entered.push_back(this);
        }
        if (!worker->check_posted) {
            worker->check_posted = true;
            net::post(worker->ioc, [w = worker] { start_entered_monitors(w); });
        }
    }

    // Called by the turn's check: still in the handler that was entered, so it waits.
    void monitor_if_still_handling() {
        entered_slot = kNotEntered;
        if (phase == Phase::handling && handling_target != nullptr && !closed && !monitor_pending &&
            buffer.size() < kMonitorBufferLimit) {
            start_monitor(handling_target);
        }
    }

    void start_monitor(CancelHandle* target) {
        monitor_pending = true;
        peer_gone = false;
        monitor_target = target;
        monitor_done.expires_at(kNever);
        read_monitor();
    }

    void read_monitor() {
        socket.async_read_some(
            buffer.prepare(kMonitorChunk),
            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                self->buffer.commit(n);
                if (!ec && self->monitor_target != nullptr &&
                    self->buffer.size() < kMonitorBufferLimit) {
                    // Bytes of the next requests: kept, and the watch for the client leaving
                    // goes on (it may send more, then close).
                    self->read_monitor();
                    return;
                }
                self->monitor_pending = false;
                if (ec && ec != net::error::operation_aborted) {
                    // EOF or reset: the client is gone; cancel its request now.
                    self->peer_gone = true;
                    if (self->monitor_target != nullptr) {
                        self->monitor_target->cancel(CancelReason::client_disconnect);
                    }
                }
                self->monitor_target = nullptr;
                self->monitor_done.cancel();
            });
    }

    // After the handler: the monitor read is cancelled (its completion is queued, not run).
    void stop_monitor() {
        handling_target = nullptr;
        monitor_target = nullptr;
        if (!monitor_pending) return;
        boost::system::error_code ignored;
        socket.cancel(ignored);
    }

    // Before the buffer is used again: the monitor's completion has committed its bytes. It
    // normally ran already (it was queued before the response write completed).
    net::awaitable<void> await_monitor() {
        while (monitor_pending) {
            auto [ec] = co_await monitor_done.async_wait(use_nothrow);
            (void)ec;
        }
    }
};

void start_entered_monitors(Worker* w) {
    w->check_posted = false;
    // start_monitor only initiates a read (its handler never runs inline), so the list cannot
    // change while it is walked.
    for (Session* s : w->entered) {
        if (s != nullptr) s->monitor_if_still_handling();
    }
    w->entered.clear();
}

// Reads each parked session's socket once, without waiting: a session whose next request (or
// end of stream) is there resumes at once, inline; only the others wait through the reactor.
// An asynchronous read would post even a read that succeeds at once, one more pass through
// the event loop's queue per request (about 900 instructions). Sessions that park again while
// this runs wait for the next call.
void start_parked_reads(Worker* w) {
    w->parked_posted = false;
    std::swap(w->parked, w->starting);
    for (Session* s : w->starting) {
        const auto into = s->buffer.prepare(kReadChunk);
        boost::system::error_code ec;
        const std::size_t n = s->socket.read_some(into, ec);  // non-blocking socket
        if (ec == net::error::would_block || ec == net::error::try_again) {
            s->idle_read.start(s->socket, into);
        } else {
            s->idle_read.complete(ec, n);
        }
    }
    w->starting.clear();
}

Worker::~Worker() {
    // Sessions parked when the event loop stopped: their handlers own their coroutines (and so
    // the sessions); destroying them here, while ioc still exists, unwinds those coroutines
    // through it.
    for (Session* s : parked) s->idle_read.reset();
    parked.clear();
    for (Session* s : starting) s->idle_read.reset();
    starting.clear();
}

// A session's read of its next request, started at the end of the current event-loop turn
// rather than at once. Started at once, right after the response, it finds nothing about half
// the time (the client has not answered yet): a recvfrom that fails with EAGAIN, the reactor's
// queueing, then a later epoll event. At the end of the turn, after the other ready
// connections were served, the next request is usually there, as nginx reads only once epoll
// reports data. One post per worker per turn serves every parked session (start_parked_reads).
auto read_after_turn(Session& s) {
    return net::async_initiate<decltype(use_nothrow), void(boost::system::error_code, std::size_t)>(
        [](auto handler, Session* session) {
            Worker* w = session->worker;
            session->idle_read.park(std::move(handler));
            w->parked.push_back(session);
            if (!w->parked_posted) {
                w->parked_posted = true;
                net::post(w->ioc, [w] { start_parked_reads(w); });
            }
        },
        use_nothrow, &s);
}

// Feeds the buffered bytes to the parser: need_more until the whole header is there (the
// parser, not eager, stops after the header).
boost::system::error_code parse_buffered(beast::flat_buffer& buffer, RequestParser& parser) {
    boost::system::error_code ec = http::error::need_more;
    if (buffer.size() == 0) return ec;
    ec = {};
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (!ec && !parser.is_header_done()) ec = http::error::need_more;
    return ec;
}

bool is_parse_error(const boost::system::error_code& ec) {
    return ec.category() == beast::http::make_error_code(beast::http::error::bad_method).category();
}

bool expects_continue(const Request& req) {
    const auto expect = req.find(http::field::expect);
    return expect && beast::iequals(*expect, "100-continue");
}

// Releases an in-flight slot at scope exit.
struct InflightSlot {
    InflightLimiter* limiter = nullptr;
    InflightSlot() = default;
    InflightSlot(const InflightSlot&) = delete;
    InflightSlot& operator=(const InflightSlot&) = delete;
    ~InflightSlot() { release(); }
    void release() noexcept {
        if (limiter != nullptr) limiter->release();
        limiter = nullptr;
    }
};

// Ends a handle's share now rather than at the end of its scope (a moved-from handle is empty).
template <class Handle>
void release_now(Handle& handle) noexcept {
    Handle ended = std::move(handle);
}

// What the server adds to every response: the framing and the request's identifiers.
struct ResponseFrame {
    unsigned version = 11;
    bool keep_alive = true;
    std::string_view request_id;
    std::string_view trace_id_hex;  // empty: no X-Trace-ID
    bool head_only = false;         // a HEAD request: the head as for GET, no body (RFC 9110)
};

// The origin-form of a request target (path and query): an absolute-form target ("http://host/p",
// RFC 9112 3.2.2: meant for proxies, yet every server must accept it) loses its scheme and host.
std::string_view origin_form(std::string_view t) {
    if (t.empty() || t.front() == '/') return t;
    const std::size_t scheme_end = t.find("://");
    if (scheme_end == std::string_view::npos) return t;  // "*" or authority-form: not routed
    const std::size_t path = t.find_first_of("/?", scheme_end + 3);
    if (path == std::string_view::npos || t[path] == '?') return "/";
    return t.substr(path);
}

bool has_no_body(unsigned status) {
    return status < 200 || status == 204 || status == 304;
}

// What start_write left: nothing (done), a failure, or bytes for finish_write.
struct WriteStart {
    bool failed = false;
    std::array<net::const_buffer, 2> rest{};
    bool done() const noexcept { return failed || rest[0].size() + rest[1].size() == 0; }
};

// serialize_head's sink for the rare head that does not fit the session's buffer (the common
// one is a TextCursor there, once head_bound said it fits).
struct StringText {
    std::string& out;
    void put(std::string_view text) { out.append(text.data(), text.size()); }
};

}  // namespace

struct Server::Impl {
    Impl(ServerOptions o, const Router& r, Logger& l, AccessLog& a, HttpMetrics& m,
         InflightLimiter& li)
        : options(std::move(o)), router(r), logger(l), access_log(a), metrics(m), limiter(li) {
        const unsigned n = std::max(1U, options.threads);
        for (unsigned i = 0; i < n; ++i) workers.push_back(std::make_unique<Worker>());
        acceptor.emplace(workers[0]->ioc);
        trigger.emplace(workers[0]->ioc);
        trigger->expires_at(kNever);
    }

    ServerOptions options;
    const Router& router;
    Logger& logger;
    AccessLog& access_log;
    HttpMetrics& metrics;
    InflightLimiter& limiter;

    std::vector<std::unique_ptr<Worker>> workers;
    std::optional<tcp::acceptor> acceptor;
    std::optional<net::steady_timer> trigger;  // cancelled to start the shutdown (thread 0)
    bool shutdown_requested = false;           // thread 0 only
    bool hurry = false;                      // a second signal: the grace ends now (thread 0 only)
    std::optional<net::signal_set> signals;  // thread 0
    std::atomic<bool> draining{false};
    std::atomic<bool> root_cancelled{false};
    std::atomic<std::size_t> sessions_live{0};
    std::uint16_t bound_port = 0;
    std::size_t next_worker = 0;
    std::size_t leaked = 0;

    // The first SIGTERM/SIGINT starts the shutdown; a second one ends the grace at once (as an
    // operator pressing Ctrl-C again expects), the rest of the shutdown still runs in order.
    void wait_for_signal() {
        signals->async_wait([this](boost::system::error_code ec, int signo) {
            if (ec) return;
            if (!shutdown_requested) {
                logger.info("signal received", {{"signal", signo}});
                shutdown_requested = true;
                trigger->cancel();
            } else {
                logger.warn("signal received again: the grace ends now", {{"signal", signo}});
                hurry = true;
            }
            wait_for_signal();
        });
    }
    net::awaitable<void> accept_loop(Context root);
    net::awaitable<void> session(Worker* w, std::shared_ptr<Session> s, Context root);
    net::awaitable<void> supervise(CancelHandle cancel_root, BackgroundStop stop_background,
                                   Context background_ctx);
    // A session is busy from a request's first byte to its answer: the drain waits for busy
    // sessions, while idle keep-alive connections stay open and answer with Connection: close.
    static void set_phase(Session& s, Phase phase) noexcept {
        const bool was_idle = s.phase == Phase::idle;
        const bool is_idle = phase == Phase::idle;
        if (was_idle != is_idle) {
            auto& busy = s.worker->busy;
            const std::size_t n = busy.load(std::memory_order_relaxed);
            busy.store(was_idle ? n + 1 : n - 1, std::memory_order_release);
        }
        s.phase = phase;
    }
    std::size_t sessions_busy() const noexcept {
        std::size_t n = 0;
        for (const auto& w : workers) n += w->busy.load(std::memory_order_acquire);
        return n;
    }
    WriteStart start_write(Session& s, const Response& res, const ResponseFrame& frame);
    net::awaitable<bool> finish_write(Session& s, WriteStart started);
    net::awaitable<void> linger_close(Session& s);
    Response body_too_large(const Context& ctx, const Request& req) const {
        return error_response(ctx, req, http::status::payload_too_large, "body_too_large",
                              "The request body is larger than " +
                                  std::to_string(options.max_body_bytes) + " bytes.");
    }
    // For requests that end without a response.
    void finish(const Exchange& e) {
        access_log.write(e);
        metrics.record(e);
    }
    // Metrics count a request when its response is handed to the socket, before the first byte
    // leaves: a client holding its answer finds it counted (and no longer in flight) in
    // /metrics, whichever thread serves the scrape. The access log line is written after the
    // last byte and records how the write ended (499 when it failed).
    // Returns the clock reading it took, for a caller whose write then completes at once.
    Clock::time_point count_response(Exchange& e, const Response& res, Clock::time_point start) {
        const Clock::time_point handed = Clock::now();
        e.status = res.result_int();
        e.bytes = res.body().size();
        e.duration_s = std::chrono::duration<double>(handed - start).count();
        metrics.record(e);
        return handed;
    }
    void log_written(Exchange& e, bool ok, Clock::time_point start, Clock::time_point end) {
        if (!ok) {
            e.status = kStatusClientClosedRequest;
            e.bytes = 0;
            if (e.cancel_reason.empty()) e.cancel_reason = "client_disconnect";
        }
        e.duration_s = std::chrono::duration<double>(end - start).count();
        access_log.write(e);
    }
    // Runs fn(session) on every worker's thread for each of its sessions.
    template <class Fn>
    void for_each_session(Fn fn) {
        for (auto& w : workers) {
            net::post(w->ioc, [worker = w.get(), fn] {
                for (auto it = worker->sessions.begin(); it != worker->sessions.end();) {
                    Session* s = *it++;
                    fn(*s);
                }
            });
        }
    }
    net::awaitable<void> wait_until(std::function<bool()> pred, Clock::time_point until) {
        net::steady_timer timer(workers[0]->ioc);
        while (!pred() && Clock::now() < until) {
            timer.expires_after(kShutdownPoll);
            auto [ec] = co_await timer.async_wait(use_nothrow);
            (void)ec;
        }
    }
};

// The IMF-fixdate for the Date header (RFC 9110 6.6.1: an origin server with a clock sends it),
// formatted once per second per I/O thread.
static std::string_view http_date() {
    thread_local std::time_t cached_second = -1;
    thread_local std::array<char, 40> text{};
    thread_local std::size_t length = 0;
    const std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        std::tm utc{};
        gmtime_r(&now, &utc);
        length = std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S GMT", &utc);
        cached_second = now;
    }
    return {text.data(), length};
}

// The status line and header block of res. The server owns the framing (Connection,
// Content-Length) and the ID headers, so they are written here rather than set as fields:
// Beast stores each field in its own allocation, and its generic serializer costs more than the
// whole middleware chain for small responses; this is one pass into the session's buffer.
template <class Text>
static void serialize_head(const Response& res, const ResponseFrame& frame, Text& out) {
    using namespace std::string_view_literals;
    out.put(frame.version == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv);
    char number[24];
    auto [status_end, sec] = std::to_chars(number, number + sizeof number, res.result_int());
    (void)sec;
    out.put(std::string_view(number, static_cast<std::size_t>(status_end - number)));
    out.put(" "sv);
    const auto reason = res.reason();
    out.put(std::string_view(reason.data(), reason.size()));
    out.put("\r\nDate: "sv);
    out.put(http_date());
    out.put("\r\n"sv);
    bool content_type = false;
    for (const auto& field : res) {
        if (field.name() == http::field::content_length ||
            field.name() == http::field::connection) {
            continue;
        }
        if (field.name() == http::field::content_type) content_type = true;
        const auto name = field.name_string();
        const auto value = field.value();
        out.put(std::string_view(name.data(), name.size()));
        out.put(": "sv);
        out.put(std::string_view(value.data(), value.size()));
        out.put("\r\n"sv);
    }
    if (frame.version == 10 && frame.keep_alive) out.put("Connection: keep-alive\r\n"sv);
    if (frame.version != 10 && !frame.keep_alive) out.put("Connection: close\r\n"sv);
    if (!has_no_body(res.result_int())) {
        // Bodies are JSON unless the handler said otherwise (handlers/handler.hpp).
        if (!content_type && !res.body().empty()) out.put("Content-Type: application/json\r\n"sv);
        out.put("Content-Length: "sv);
        auto [length_end, lec] = std::to_chars(number, number + sizeof number, res.body().size());
        (void)lec;
        out.put(std::string_view(number, static_cast<std::size_t>(length_end - number)));
        out.put("\r\n"sv);
    }
    out.put("X-Request-ID: "sv);
    out.put(frame.request_id);
    out.put("\r\n"sv);
    if (!frame.trace_id_hex.empty()) {
        out.put("X-Trace-ID: "sv);
        out.put(frame.trace_id_hex);
        out.put("\r\n"sv);
    }
    out.put("\r\n"sv);
}

// At least the length of serialize_head's output: 256 covers its fixed parts (status line
// without the reason, Date, Connection, the default Content-Type, Content-Length with 20 digits,
// the two ID field names, line ends: 178 bytes); the rest is what varies.
static std::size_t head_bound(const Response& res, const ResponseFrame& frame) {
    constexpr std::size_t kFixedParts = 256;
    std::size_t bound =
        kFixedParts + res.reason().size() + frame.request_id.size() + frame.trace_id_hex.size();
    for (const auto& field : res) bound += field.name_string().size() + field.value().size() + 4;
    return bound;
}

// Serializes res and writes as much as the socket takes now. A response that fits the socket's
// send buffer (nearly all of them) goes out in this one non-blocking write, with no coroutine
// frame and no round trip through the event loop; finish_write sends the rest, if any. The
// socket is in non-blocking mode, so this never waits. res must outlive finish_write.
WriteStart Server::Impl::start_write(Session& s, const Response& res, const ResponseFrame& frame) {
    net::const_buffer head;
    if (head_bound(res, frame) <= s.head_buffer.size()) {
        TextCursor text(s.head_buffer.data());
        serialize_head(res, frame, text);
        head = net::buffer(s.head_buffer.data(),
                           static_cast<std::size_t>(text.at() - s.head_buffer.data()));
    } else {
        s.head.clear();
        StringText text{s.head};
        serialize_head(res, frame, text);
        head = net::buffer(s.head);
    }
    const bool body = !frame.head_only && !has_no_body(res.result_int()) && !res.body().empty();
    WriteStart started{false, {head, body ? net::buffer(res.body()) : net::const_buffer()}};
    boost::system::error_code wec;
    std::size_t written = s.socket.write_some(started.rest, wec);
    if (wec && wec != net::error::would_block) {
        started.failed = true;
        return started;
    }
    for (auto& b : started.rest) {
        const std::size_t skip = std::min(written, b.size());
        b += skip;
        written -= skip;
    }
    return started;
}

// The rest of a response start_write could not send at once; false when the connection failed.
net::awaitable<bool> Server::Impl::finish_write(Session& s, WriteStart started) {
    if (started.done()) co_return !started.failed;
    set_phase(s, Phase::writing);
    s.set_deadline(Clock::now() + options.idle_timeout);
    auto [ec, n] = co_await net::async_write(s.socket, started.rest, use_nothrow);
    (void)n;
    co_return !ec;
}

// After an error answer that left input unread: stop sending, discard what the client still
// sends for a bounded time, so that our answer is not destroyed by a reset.
net::awaitable<void> Server::Impl::linger_close(Session& s) {
    boost::system::error_code ignored;
    s.socket.shutdown(tcp::socket::shutdown_send, ignored);
    set_phase(s, Phase::reading);
    s.set_deadline(Clock::now() + kLingerBound);
    std::array<char, 4096> sink{};
    for (int i = 0; i < 4096 && !s.closed; ++i) {
        auto [ec, n] = co_await s.socket.async_read_some(net::buffer(sink), use_nothrow);
        (void)n;
        if (ec) break;
    }
}

net::awaitable<void> Server::Impl::session(Worker* w, std::shared_ptr<Session> s, Context root) {
    // However the session ends (an exception included), it is no longer busy.
    struct LeavesIdle {
        Session* s;
        ~LeavesIdle() { set_phase(*s, Phase::idle); }
    } leaves_idle{s.get()};
    auto [conn_ctx, conn_cancel] = with_cancel(root);
    s->self = w->sessions.insert(w->sessions.end(), s.get());
    s->set_deadline(Clock::now() + options.header_timeout);
    bool first = true;
    // Clock reads are shared where a few microseconds do not matter (deadlines of seconds):
    // the end of one request starts the idle wait; the arrival of the next (its first bytes)
    // starts its header timeout, its deadline and its duration.
    Clock::time_point last_end{};
    Clock::time_point arrived{};

    for (;;) {
        // Wait for the next request: idle timeout until its first byte, then header timeout.
        if (!first) {
            if (s->buffer.size() == 0) {
                set_phase(*s, Phase::idle);
                s->set_deadline(last_end + options.idle_timeout);
                auto [ec, n] = co_await read_after_turn(*s);
                if (ec) break;
                s->buffer.commit(n);
            }
            set_phase(*s, Phase::reading);
            arrived = Clock::now();
            s->set_deadline(arrived + options.header_timeout);
        }
        first = false;

        RequestParser parser;
        parser.header_limit(kHeaderLimit);
        // No body limit while the header is read: a declared length over it is answered below,
        // with the request's own IDs; the limit applies again to reading the body (chunked).
        parser.body_limit(boost::none);
        // Beast's async_read_header, written out: a request already buffered (pipelined, or
        // read together with the previous one) is parsed without an I/O operation, and no
        // composed-operation layers stand between the socket and this coroutine.
        auto hec = parse_buffered(s->buffer, parser);
        while (hec == http::error::need_more) {
            auto [rec, n] =
                co_await s->socket.async_read_some(s->buffer.prepare(kReadChunk), use_nothrow);
            s->buffer.commit(n);
            if (n > 0 && s->phase == Phase::idle) {  // the first bytes on a new connection
                set_phase(*s, Phase::reading);
                arrived = Clock::now();
            }
            if (rec == net::error::eof) {
                hec = http::error::end_of_stream;
                if (parser.got_some()) parser.put_eof(hec);  // an incomplete header: partial
                break;
            }
            if (rec) {
                hec = rec;
                break;
            }
            hec = parse_buffered(s->buffer, parser);
        }
        const auto start = arrived;
        Request& req = parser.get();

        if (hec) {
            // Timed out, closed, or the peer left mid-header: nothing to answer. A header that
            // began but did not arrive in time (slow-loris) is still recorded, as a 408.
            if (s->timed_out || s->closed || !is_parse_error(hec) ||
                hec == http::error::end_of_stream || hec == http::error::partial_message) {
                if (s->timed_out && s->phase != Phase::idle) {
                    const RequestId rid{generate_request_id()};
                    Exchange e;
                    e.method = "-";
                    e.route = "unmatched";
                    e.route_index = router.unmatched_index();
                    e.request_id = rid.value;
                    e.status = static_cast<unsigned>(http::status::request_timeout);
                    e.duration_s = std::chrono::duration<double>(Clock::now() - arrived).count();
                    finish(e);
                }
                break;
            }
            // Unreadable: a fresh request ID and a fresh trace, as for any request without them.
            RequestId rid{generate_request_id()};
            const TraceContext trace = resolve_trace(FieldLines{}, FieldLines{});
            Response res{http::status::bad_request, 11};
            res.set(http::field::content_type, "application/json");
            res.body() = error_body("invalid_request",
                                    "Malformed HTTP request: " + hec.message() + ".", rid.value);
            Exchange e;
            e.method = "-";
            e.route = "unmatched";
            e.route_index = router.unmatched_index();
            e.request_id = rid.value;
            e.trace = exchange_trace(trace);
            count_response(e, res, start);
            char trace_hex[32];
            write_hex(trace.trace_id, trace_hex);
            const WriteStart started =
                start_write(*s, res,
                            ResponseFrame{req.version() == 10 ? 10U : 11U, false, rid.value,
                                          std::string_view(trace_hex, sizeof trace_hex)});
            const bool ok = started.done() ? !started.failed : co_await finish_write(*s, started);
            log_written(e, ok, start, Clock::now());
            if (ok) co_await linger_close(*s);
            break;
        }

        // Middleware, in order: request ID -> trace -> deadline -> user -> (access log and
        // metrics at the end) -> load shedding -> router. Recovery wraps the handler call.
        // One cancellable node carries the deadline; its handle also serves the disconnect
        // monitor. An invalid timeout header is answered (400) after the IDs are set.
        const KnownFields known = scan_known_fields(req);
        const auto timeout = resolve_request_timeout(known.request_timeout, options.request_timeout,
                                                     options.max_request_timeout);
        auto [req_ctx, req_cancel] =
            with_deadline_cause(conn_ctx, start + timeout.value_or(options.request_timeout),
                                make_error_code(CancelReason::deadline));
        // Moved along the chain: each derivation adopts its parent's reference (no count
        // traffic); the pair keeps the deadline node alive through its handle.
        Context ctx =
            with_value(std::move(req_ctx), kRequestIdKey, resolve_request_id(known.request_id));
        ctx = with_value(std::move(ctx), kTraceKey,
                         resolve_trace(known.traceparent, known.tracestate));
        const RequestId* rid = ctx.value(kRequestIdKey);
        const TraceContext* trace = ctx.value(kTraceKey);

        // Matched first so that every answer, early errors included, carries its route label.
        auto m = router.match(req.method(), origin_form(req.target()));
        Exchange e;
        e.method = std::string_view(req.method_string().data(), req.method_string().size());
        e.route = m.pattern;
        e.route_index = m.route_index;
        e.request_id = rid->value;
        e.trace = exchange_trace(*trace);

        std::optional<Response> early;
        bool must_close = false;  // the request cannot be framed: nothing after it can be read
        if (known.transfer_encoding && !parser.chunked()) {
            // RFC 9112 6.3: otherwise its body would be read as the next request (smuggling).
            early = error_response(ctx, req, http::status::bad_request, "invalid_request",
                                   "Transfer-Encoding is supported only with chunked as the "
                                   "final coding.");
            must_close = true;
        } else if (req.version() >= 11 && known.host != 1) {
            early = error_response(ctx, req, http::status::bad_request, "invalid_request",
                                   "An HTTP/1.1 request must carry exactly one Host header.");
        } else if (!timeout) {
            early = error_response(ctx, req, http::status::bad_request, "invalid_timeout",
                                   "X-Request-Timeout-Ms must be an integer in 1.." +
                                       std::to_string(options.max_request_timeout.count()) + ".");
        } else {
            auto user = resolve_user(known.user_id);
            if (!user.valid) {
                early = error_response(ctx, req, http::status::bad_request, "invalid_user",
                                       "X-User-ID must be 1..64 characters of [A-Za-z0-9_-].");
            } else if (user.user) {
                ctx = with_value(std::move(ctx), kUserKey, std::move(*user.user));
            }
        }
        if (!early) {
            const auto declared = parser.content_length();
            if (declared && *declared > options.max_body_bytes) early = body_too_large(ctx, req);
        }

        InflightSlot slot;
        if (!early) {
            if (limiter.try_acquire()) {
                slot.limiter = &limiter;
            } else {
                early = error_response(ctx, req, http::status::service_unavailable, "overloaded",
                                       "Too many requests in flight; retry later.");
                early->set(http::field::retry_after, "1");
            }
        }

        bool keep_alive = req.keep_alive();
        // A client waiting for 100 Continue on a path that has no route is answered at once,
        // without its body (RFC 9110 10.1.1); the connection then closes.
        const bool wanted_body = m.outcome == Router::Outcome::found || !expects_continue(req);
        if (!early && !parser.is_done() && wanted_body) {
            if (expects_continue(req)) {
                static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
                auto [cec, cn] = co_await net::async_write(
                    s->socket, net::buffer(kContinue.data(), kContinue.size()), use_nothrow);
                (void)cn;
                if (cec) break;
            }
            s->set_deadline(Clock::now() + options.idle_timeout);
            parser.body_limit(options.max_body_bytes);
            // Within the request's deadline too: a body still arriving when it passes is 504.
            auto within_deadline = bind_context(ctx, use_nothrow);
            auto [bec, bn] = co_await http::async_read(s->socket, s->buffer, parser.body_parser(),
                                                       within_deadline);
            (void)bn;
            if (bec == http::error::body_limit) {
                early = body_too_large(ctx, req);
            } else if (bec && is_parse_error(bec) && bec != http::error::partial_message &&
                       bec != http::error::end_of_stream) {
                early = error_response(ctx, req, http::status::bad_request, "invalid_request",
                                       "Malformed HTTP request body: " + bec.message() + ".");
            } else if (bec && ctx.done() && !s->closed) {
                early = error_response(ctx, req, ctx.err());  // deadline (or shutdown)
            } else if (bec) {
                // The client left before sending its body, or the body stalled past the idle
                // timeout (the watchdog closed the connection: a timeout, not the client leaving).
                e.status = s->timed_out ? static_cast<unsigned>(http::status::request_timeout)
                                        : kStatusClientClosedRequest;
                e.cancel_reason = s->timed_out ? "" : "client_disconnect";
                e.duration_s = std::chrono::duration<double>(Clock::now() - start).count();
                finish(e);
                break;
            }
        }
        // The deadline runs from the header: a body that arrived after it is not handled.
        if (!early && ctx.done()) early = error_response(ctx, req, ctx.err());
        const bool unread_input = !parser.is_done() || must_close;
        if (unread_input) keep_alive = false;  // the body was not read: nothing after it can be

        Response res;
        if (early) {
            res = std::move(*early);
        } else {
            switch (m.outcome) {
                case Router::Outcome::not_found:
                    res = error_response(ctx, req, http::status::not_found, "not_found",
                                         "No route matches the request path.");
                    break;
                case Router::Outcome::method_not_allowed:
                    res = error_response(ctx, req, http::status::method_not_allowed,
                                         "method_not_allowed",
                                         "The route does not allow this method; see Allow.");
                    res.set(http::field::allow, m.allow);
                    break;
                case Router::Outcome::bad_path:
                    res = error_response(ctx, req, http::status::bad_request, "invalid_request",
                                         "The request path has a malformed percent-encoding.");
                    break;
                case Router::Outcome::found:
                    set_phase(*s, Phase::handling);
                    s->set_deadline(kNever);
                    s->monitor_soon(&req_cancel);
                    {
                        std::exception_ptr failure;
                        try {
                            res = co_await (*m.handler)(ctx, req, m.params);
                        } catch (...) {
                            failure = std::current_exception();
                        }
                        if (failure) res = recover(ctx, req, failure, logger);
                    }
                    s->stop_monitor();
                    break;
            }
        }

        e.cancel_reason = cancel_reason_name(ctx);
        if (s->peer_gone || s->closed) {
            // The client left while its request ran: nothing to write.
            e.status = kStatusClientClosedRequest;
            if (e.cancel_reason.empty()) e.cancel_reason = "client_disconnect";
            e.duration_s = std::chrono::duration<double>(Clock::now() - start).count();
            finish(e);
            break;
        }

        if (draining.load(std::memory_order_acquire)) keep_alive = false;
        // The request ends before its first response byte leaves: it is counted, it leaves the
        // in-flight count and its contexts are released, so a client holding its answer finds
        // all three settled in /metrics. The frame and the access line keep copies of the IDs.
        // (The drain waits for sessions, not for in-flight slots.)
        char rid_copy[kMaxRequestIdLength];
        e.request_id = std::string_view(rid_copy, rid->value.copy(rid_copy, sizeof rid_copy));
        release_now(ctx);
        release_now(req_cancel);
        slot.release();
        const Clock::time_point handed = count_response(e, res, start);
        char trace_hex[32];
        write_hex(e.trace->trace_id, trace_hex);
        const bool head_only = req.method() == http::verb::head;
        if (head_only) e.bytes = 0;  // the access line counts body bytes sent
        const ResponseFrame frame{req.version() == 10 ? 10U : 11U, keep_alive, e.request_id,
                                  std::string_view(trace_hex, sizeof trace_hex), head_only};
        const WriteStart started = start_write(*s, res, frame);
        const bool written_at_once = started.done();
        const bool ok = written_at_once ? !started.failed : co_await finish_write(*s, started);
        // Not a coroutine call unless needed: most requests never started the monitor.
        if (s->monitor_pending) co_await s->await_monitor();
        if (s->peer_gone) keep_alive = false;  // EOF seen just as the handler finished
        // Written at once (nearly always): the hand-over's reading is one syscall old, close
        // enough for the duration and the idle timeout; no second clock read per request.
        last_end = written_at_once ? handed : Clock::now();
        log_written(e, ok, start, last_end);
        if (!ok) break;
        if (!keep_alive) {
            if (unread_input) co_await linger_close(*s);
            break;
        }
    }

    s->close();
    if (s->monitor_pending) co_await s->await_monitor();
    w->sessions.erase(s->self);
}

net::awaitable<void> Server::Impl::accept_loop(Context root) {
    net::steady_timer backoff(workers[0]->ioc);
    while (acceptor->is_open()) {
        Worker* w = workers[next_worker++ % workers.size()].get();
        auto [ec, socket] = co_await acceptor->async_accept(w->ioc, use_nothrow);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor->is_open()) break;
            // Out of descriptors and the like: back off briefly instead of spinning.
            logger.warn("accept failed", {{"error", ec.message()}});
            backoff.expires_after(std::chrono::milliseconds(50));
            auto [bec] = co_await backoff.async_wait(use_nothrow);
            (void)bec;
            continue;
        }
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        socket.non_blocking(true, ignored);  // start_write's write must never wait
        auto s = std::make_shared<Session>(w, std::move(socket));
        sessions_live.fetch_add(1, std::memory_order_acq_rel);
        net::co_spawn(w->ioc, session(w, std::move(s), root), [this](std::exception_ptr ex) {
            if (ex) {
                try {
                    std::rethrow_exception(ex);
                } catch (const std::exception& e) {
                    logger.error("session failed", {{"exception", e.what()}});
                } catch (...) {
                    logger.error("session failed", {{"exception", "unknown"}});
                }
            }
            sessions_live.fetch_sub(1, std::memory_order_acq_rel);
        });
    }
}

net::awaitable<void> Server::Impl::supervise(CancelHandle cancel_root,
                                             BackgroundStop stop_background,
                                             Context background_ctx) {
    if (options.handle_signals) {
        signals.emplace(workers[0]->ioc, SIGINT, SIGTERM);
        wait_for_signal();
    }
    while (!shutdown_requested) {
        auto [ec] = co_await trigger->async_wait(use_nothrow);
        (void)ec;
    }

    // 1. Stop accepting; /readyz answers 503, every answer carries Connection: close.
    draining.store(true, std::memory_order_release);
    logger.info("shutdown started", {{"in_flight", limiter.in_flight()},
                                     {"connections", sessions_live.load()},
                                     {"grace_ms", options.shutdown_grace.count()}});
    {
        boost::system::error_code ignored;
        acceptor->close(ignored);
    }

    // 2. Grace: in-flight requests may finish. A request counts from its first header byte (a
    // session still reading one is in flight too). Idle keep-alive connections stay open while
    // any request is in flight, so that a client can still ask them (/readyz: 503); what they
    // are asked is answered with Connection: close. Then they are closed, and every session
    // ends after its current exchange.
    const auto grace_end = Clock::now() + options.shutdown_grace;
    co_await wait_until([this] { return sessions_busy() == 0 || hurry; }, grace_end);
    for_each_session([](Session& s) {
        if (s.phase == Phase::idle) s.close();
    });
    co_await wait_until([this] { return sessions_live.load() == 0 || hurry; }, grace_end);

    // 3. Cancel the root: still-running requests end with 503 shutting_down.
    const std::size_t still = limiter.in_flight();
    root_cancelled.store(true, std::memory_order_release);
    cancel_root.cancel(CancelReason::shutdown);
    logger.info("root cancelled", {{"in_flight", still}});
    for_each_session([](Session& s) {
        if (s.phase == Phase::idle || s.phase == Phase::reading) s.close();
    });
    co_await wait_until([this] { return sessions_live.load() == 0; },
                        Clock::now() + kSessionsBound);
    if (sessions_live.load() != 0) {
        for_each_session([](Session& s) { s.close(); });
        co_await wait_until([this] { return sessions_live.load() == 0; },
                            Clock::now() + kSessionsBound);
    }

    // 4. Cancel and await every background task.
    if (stop_background) {
        auto [bctx, bcancel] = with_timeout(background_ctx, kBackgroundBound);
        leaked = co_await stop_background(bctx);
    }
    if (signals) {
        boost::system::error_code ignored;
        signals->cancel(ignored);
    }
}

Server::Server(ServerOptions options, const Router& router, Logger& logger, AccessLog& access_log,
               HttpMetrics& metrics, InflightLimiter& limiter)
    : impl_(std::make_unique<Impl>(std::move(options), router, logger, access_log, metrics,
                                   limiter)) {}

Server::~Server() = default;

void Server::listen() {
    auto& ioc = impl_->workers[0]->ioc;
    tcp::resolver resolver(ioc);
    boost::system::error_code resolve_error;
    auto endpoints = resolver.resolve(impl_->options.host, std::to_string(impl_->options.port),
                                      tcp::resolver::numeric_service, resolve_error);
    if (resolve_error) {
        // Said plainly: Boost's own message would carry its source location.
        throw std::runtime_error("cannot resolve the listen host \"" + impl_->options.host +
                                 "\": " + resolve_error.message());
    }
    std::error_code last = std::make_error_code(std::errc::address_not_available);
    for (const auto& entry : endpoints) {
        boost::system::error_code ec;
        auto& acc = *impl_->acceptor;
        acc.open(entry.endpoint().protocol(), ec);
        if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
        if (!ec) acc.bind(entry.endpoint(), ec);
        if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
        if (!ec) {
            impl_->bound_port = acc.local_endpoint().port();
            return;
        }
        last = ec;
        boost::system::error_code ignored;
        acc.close(ignored);
    }
    throw std::system_error(last, "cannot listen on " + impl_->options.host + ":" +
                                      std::to_string(impl_->options.port));
}

std::uint16_t Server::port() const noexcept {
    return impl_->bound_port;
}

net::any_io_executor Server::executor() const {
    return impl_->workers[0]->ioc.get_executor();
}

const std::atomic<bool>& Server::draining() const noexcept {
    return impl_->draining;
}

std::size_t Server::connections() const noexcept {
    return impl_->sessions_live.load();
}

void Server::request_shutdown() {
    Impl* impl = impl_.get();
    net::post(impl->workers[0]->ioc, [impl] {
        impl->shutdown_requested = true;
        impl->trigger->cancel();
    });
}

std::size_t Server::run(Context root, CancelHandle cancel_root, BackgroundStop stop_background) {
    Impl& impl = *impl_;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
    for (auto& w : impl.workers) guards.push_back(net::make_work_guard(w->ioc));

    bool accept_done = false;
    bool supervise_done = false;
    auto& ioc0 = impl.workers[0]->ioc;
    net::co_spawn(ioc0, impl.accept_loop(root),
                  [&accept_done](std::exception_ptr) { accept_done = true; });
    // Shutdown waits must still be bounded after the root is cancelled: a detached parent on
    // purpose (values only), bounded by with_timeout inside supervise.
    net::co_spawn(
        ioc0,
        impl.supervise(std::move(cancel_root), std::move(stop_background), without_cancel(root)),
        [&](std::exception_ptr ex) {
            if (ex) impl.logger.error("shutdown sequence failed");
            supervise_done = true;
            for (auto& g : guards) g.reset();
            // Anything still queued (a client's idle timers) must not keep us alive.
            for (auto& w : impl.workers) w->ioc.stop();
        });

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < impl.workers.size(); ++i) {
        threads.emplace_back([w = impl.workers[i].get()] { w->ioc.run(); });
    }
    ioc0.run();
    for (auto& t : threads) t.join();
    (void)accept_done;
    (void)supervise_done;
    return impl.leaked;
}

}  // namespace reqctx
