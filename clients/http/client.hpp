#pragma once

// An HTTP/1.1 client for calls to other services that carries the request context across the
// hop: W3C traceparent (this request's trace-id, a new span-id per call) and tracestate,
// X-Request-ID, and X-Request-Timeout-Ms (time left until the context's deadline). Every call is
// bounded by its context's deadline and cancelled with it; errors are values.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/result.hpp>

#include "clients/http/error.hpp"
#include "clients/http/url.hpp"
#include "clients/propagation.hpp"
#include "context/context.hpp"

namespace reqctx {

namespace net = boost::asio;
namespace http = boost::beast::http;

using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
using HttpResult = boost::system::result<HttpResponse, std::error_code>;

struct HttpClientOptions {
    std::size_t max_idle_per_host = 8;              // pooled keep-alive connections per host:port
    std::chrono::milliseconds idle_timeout{30000};  // an older idle connection is not reused
    std::size_t max_response_body = 1024 * 1024;    // larger: response_too_large
    std::string user_agent = "reqctx/0.1";
};

// Sets traceparent (version 00, trace-id and flags & 0x03 from ctx's kTraceKey, `span_id` as
// parent-id), tracestate when non-empty, X-Request-ID from kRequestIdKey, and
// X-Request-Timeout-Ms = whole milliseconds left until ctx's deadline (none without a deadline).
// Replaces any such headers already present. Returns ctx.err() when ctx is done, and
// deadline_exceeded when less than one millisecond is left; the call must then not be made.
// Without a trace in ctx a new trace-id is used with flags 03.
std::error_code set_propagation_headers(Context ctx, Clock::time_point now, const SpanId& span_id,
                                        http::fields& fields);

// Thread-safe; share one per process (built in service/app.cpp, passed to handlers by
// reference). A call's socket lives on the calling coroutine's executor (which must be a strand
// or single-threaded) and is pooled per host:port and io_context; destroy the client before the
// io_contexts. A connection is reused only after a complete exchange; an interrupted one is
// closed.
class HttpClient {
public:
    using not_request_scoped = void;

    explicit HttpClient(HttpClientOptions options = {});
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;
    ~HttpClient();

    // POSTs `json_body` with Content-Type application/json to `url`. Suspends. Errors:
    // invalid_url, connect_failed, connection_closed, protocol_error, response_too_large, or
    // ctx.err() (canceled / deadline_exceeded) when the context ends first; no time left means
    // no call at all. Any HTTP status is a successful result.
    net::awaitable<HttpResult> post_json(Context ctx, std::string url, std::string json_body);

    // Sends `request` to `url` (method, target and body as given; Host, User-Agent, the
    // propagation headers and Content-Length are set here). Same errors as post_json.
    net::awaitable<HttpResult> send(Context ctx, HttpUrl url, HttpRequest request);

    // Closes every idle pooled connection (shutdown). Calls in flight are not affected.
    void close_idle();

    // For tests and metrics.
    std::size_t idle_connections() const;
    std::uint64_t connections_opened() const noexcept;

private:
    struct Idle {
        std::unique_ptr<net::ip::tcp::socket> socket;
        Clock::time_point since;
    };

    std::unique_ptr<net::ip::tcp::socket> take_idle(const std::string& key);
    void put_idle(const std::string& key, std::unique_ptr<net::ip::tcp::socket> socket);
    net::awaitable<std::error_code> connect(Context ctx, const HttpUrl& url,
                                            net::ip::tcp::socket& socket);

    HttpClientOptions options_;
    mutable std::mutex mutex_;
    std::map<std::string, std::deque<Idle>, std::less<>> idle_;  // guarded by mutex_
    std::atomic<std::uint64_t> opened_{0};
};

}  // namespace reqctx
