#include "tests/support/http_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace reqctx::test {

namespace net = boost::asio;
namespace http = boost::beast::http;

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (boost::algorithm::iequals(n, name)) return v;
    }
    return std::nullopt;
}

struct HttpClient::Impl {
    net::io_context io;
    net::ip::tcp::socket socket{io};
    boost::beast::flat_buffer buffer;
    unsigned short port;

    void set_timeout(std::chrono::milliseconds timeout) {
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
        tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
};

HttpClient::HttpClient(unsigned short port, std::chrono::milliseconds read_timeout)
    : impl_(std::make_unique<Impl>()) {
    impl_->port = port;
    impl_->socket.connect({net::ip::make_address("127.0.0.1"), port});
    impl_->socket.set_option(net::ip::tcp::no_delay(true));
    impl_->set_timeout(read_timeout);
}

HttpClient::~HttpClient() = default;

std::optional<HttpResponse> HttpClient::request(std::string_view method, std::string_view target,
                                                const Headers& headers, std::string_view body) {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "127.0.0.1:" + std::to_string(impl_->port));
    for (const auto& [n, v] : headers) req.insert(n, v);
    req.body() = std::string(body);
    if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
    boost::system::error_code ec;
    http::write(impl_->socket, req, ec);
    if (ec) return std::nullopt;
    return read_response();
}

bool HttpClient::send_raw(std::string_view bytes) {
    boost::system::error_code ec;
    net::write(impl_->socket, net::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
}

std::optional<HttpResponse> HttpClient::read_response(bool to_head) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(to_head);
    boost::system::error_code ec;
    http::read(impl_->socket, impl_->buffer, parser, ec);
    if (ec) return std::nullopt;
    auto& msg = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
        out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(msg.body());
    return out;
}

bool HttpClient::wait_closed(std::chrono::milliseconds timeout) {
    impl_->set_timeout(timeout);
    char byte = 0;
    boost::system::error_code ec;
    // Any bytes still buffered by the server (a final response) are skipped until EOF.
    for (int i = 0; i < (1 << 20); ++i) {
        impl_->socket.read_some(net::buffer(&byte, 1), ec);
        if (ec) {
            return ec == net::error::eof || ec == net::error::connection_reset;
        }
    }
    return false;
}

void HttpClient::close() {
    boost::system::error_code ec;
    impl_->socket.shutdown(net::ip::tcp::socket::shutdown_both, ec);
    impl_->socket.close(ec);
}

std::optional<HttpResponse> http_request(unsigned short port, std::string_view method,
                                         std::string_view target, const Headers& headers,
                                         std::string_view body) {
    HttpClient client(port);
    return client.request(method, target, headers, body);
}

}  // namespace reqctx::test
