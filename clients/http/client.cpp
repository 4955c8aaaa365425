#include "clients/http/client.hpp"

#include <cmath>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "context/asio.hpp"

namespace reqctx {
namespace {

using tcp = net::ip::tcp;
using boost::system::error_code;

constexpr auto kAwait = net::as_tuple(net::use_awaitable);

// The error of a failed I/O step: the context's own error when it ended (the operation was cut
// by it), else `fallback`.
std::error_code step_error(const Context& ctx, std::error_code fallback) {
    if (auto ec = ctx.err()) return ec;
    return fallback;
}

std::error_code read_error(const Context& ctx, const error_code& ec) {
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
        return step_error(ctx, HttpClientErrc::response_too_large);
    }
    const bool malformed = ec.category() == make_error_code(http::error::bad_version).category() &&
                           ec != http::error::end_of_stream && ec != http::error::partial_message;
    return step_error(
        ctx, malformed ? HttpClientErrc::protocol_error : HttpClientErrc::connection_closed);
}

// A pooled socket the peer has closed (or that has unexpected bytes) must not be used.
bool looks_alive(tcp::socket& socket) {
    error_code ec;
    socket.non_blocking(true, ec);
    if (ec) return false;
    char byte = 0;
    socket.receive(net::buffer(&byte, 1), tcp::socket::message_peek, ec);
    const bool alive = ec == net::error::would_block;
    socket.non_blocking(false, ec);
    return alive;
}

void close_socket(tcp::socket& socket) {
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
}

}  // namespace

std::error_code set_propagation_headers(Context ctx, Clock::time_point now, const SpanId& span_id,
                                        http::fields& fields) {
    if (auto ec = ctx.err()) return ec;
    fields.erase("traceparent");
    fields.erase("tracestate");
    fields.erase("X-Request-ID");
    fields.erase("X-Request-Timeout-Ms");
    if (const auto deadline = ctx.deadline()) {
        const auto left = std::chrono::floor<std::chrono::milliseconds>(*deadline - now);
        if (left.count() < 1) return ContextErrc::deadline_exceeded;
        fields.set("X-Request-Timeout-Ms", std::to_string(left.count()));
    }
    if (const TraceContext* trace = ctx.value(kTraceKey)) {
        fields.set("traceparent", format_traceparent(trace->trace_id, span_id, trace->flags));
        if (!trace->tracestate.empty()) fields.set("tracestate", trace->tracestate);
    } else {
        fields.set("traceparent", format_traceparent(random_trace_id(), span_id, 0x03));
    }
    if (const RequestId* id = ctx.value(kRequestIdKey)) fields.set("X-Request-ID", id->value);
    return {};
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {}

HttpClient::~HttpClient() {
    close_idle();
}

net::awaitable<HttpResult> HttpClient::post_json(Context ctx, std::string url,
                                                 std::string json_body) {
    auto parsed = parse_http_url(url);
    if (!parsed) co_return parsed.error();
    HttpRequest request{http::verb::post, "/", 11};
    request.set(http::field::content_type, "application/json");
    request.set(http::field::accept, "application/json");
    request.body() = std::move(json_body);
    co_return co_await send(std::move(ctx), std::move(*parsed), std::move(request));
}

net::awaitable<HttpResult> HttpClient::send(Context ctx, HttpUrl url, HttpRequest request) {
    // No time left (or ctx done): the call is not made at all.
    const SpanId span_id = random_span_id();
    if (auto ec = set_propagation_headers(ctx, Clock::now(), span_id, request)) co_return ec;
    const auto executor = co_await net::this_coro::executor;
    request.target(url.target);
    request.version(11);
    request.set(http::field::host, url.authority());
    request.set(http::field::user_agent, options_.user_agent);
    request.keep_alive(true);
    request.prepare_payload();

    // Sockets are registered with one io_context: pool them per io_context too.
    const std::string key = url.authority() + '|' +
                            std::to_string(reinterpret_cast<std::uintptr_t>(
                                &net::query(executor, net::execution::context)));
    // An lvalue token: Boost 1.81's async_initiate takes the inner token by lvalue reference.
    auto cut = bind_context(ctx, kAwait);
    // A reused connection may have been closed by the peer while the request was being written;
    // then (and only then) the request is retried once on a new connection.
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::unique_ptr<tcp::socket> socket = take_idle(key);
        const bool reused = socket != nullptr;
        if (!socket) {
            socket = std::make_unique<tcp::socket>(executor);
            if (auto ec = co_await connect(ctx, url, *socket)) co_return ec;
        }
        // The time left is measured again after connecting: the header must not overstate it.
        if (auto ec = set_propagation_headers(ctx, Clock::now(), span_id, request)) {
            put_idle(key, std::move(socket));  // still clean: nothing was written
            co_return ec;
        }
        request.prepare_payload();

        auto [write_ec, written] = co_await http::async_write(*socket, request, cut);
        (void)written;
        if (write_ec) {
            close_socket(*socket);
            if (reused && !ctx.done()) continue;
            co_return step_error(ctx, HttpClientErrc::connection_closed);
        }

        boost::beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(options_.max_response_body);
        auto [read_ec, read] = co_await http::async_read(*socket, buffer, parser, cut);
        (void)read;
        if (read_ec) {
            close_socket(*socket);
            co_return read_error(ctx, read_ec);
        }
        HttpResponse response = parser.release();
        // Only a connection left exactly at a message boundary is clean enough to reuse.
        if (response.keep_alive() && buffer.size() == 0 && !ctx.done()) {
            put_idle(key, std::move(socket));
        } else {
            close_socket(*socket);
        }
        co_return response;
    }
    co_return step_error(ctx, HttpClientErrc::connection_closed);
}

net::awaitable<std::error_code> HttpClient::connect(Context ctx, const HttpUrl& url,
                                                    tcp::socket& socket) {
    auto cut = bind_context(ctx, kAwait);
    error_code ec;
    const auto address = net::ip::make_address(url.host, ec);
    if (!ec) {
        auto [connect_ec] = co_await socket.async_connect(tcp::endpoint(address, url.port), cut);
        if (connect_ec) {
            close_socket(socket);
            co_return step_error(ctx, HttpClientErrc::connect_failed);
        }
    } else {
        tcp::resolver resolver(socket.get_executor());
        auto [resolve_ec, endpoints] =
            co_await resolver.async_resolve(url.host, std::to_string(url.port), cut);
        if (resolve_ec || ctx.done()) co_return step_error(ctx, HttpClientErrc::connect_failed);
        auto [connect_ec, endpoint] = co_await net::async_connect(socket, endpoints, cut);
        (void)endpoint;
        if (connect_ec) {
            close_socket(socket);
            co_return step_error(ctx, HttpClientErrc::connect_failed);
        }
    }
    if (ctx.done()) {
        close_socket(socket);
        co_return ctx.err();
    }
    opened_.fetch_add(1, std::memory_order_relaxed);
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    co_return std::error_code{};
}

std::unique_ptr<tcp::socket> HttpClient::take_idle(const std::string& key) {
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    const auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    auto& list = it->second;
    // Most recently used first: the likeliest to still be open.
    while (!list.empty()) {
        Idle idle = std::move(list.back());
        list.pop_back();
        if (now - idle.since < options_.idle_timeout && looks_alive(*idle.socket)) {
            return std::move(idle.socket);
        }
        close_socket(*idle.socket);
    }
    return nullptr;
}

void HttpClient::put_idle(const std::string& key, std::unique_ptr<tcp::socket> socket) {
    std::lock_guard lock(mutex_);
    auto& list = idle_[key];
    if (list.size() >= options_.max_idle_per_host) {
        close_socket(*list.front().socket);
        list.pop_front();
    }
    list.push_back(Idle{std::move(socket), Clock::now()});
}

void HttpClient::close_idle() {
    std::lock_guard lock(mutex_);
    for (auto& [key, list] : idle_) {
        for (auto& idle : list) close_socket(*idle.socket);
    }
    idle_.clear();
}

std::size_t HttpClient::idle_connections() const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [key, list] : idle_) n += list.size();
    return n;
}

std::uint64_t HttpClient::connections_opened() const noexcept {
    return opened_.load(std::memory_order_relaxed);
}

}  // namespace reqctx
