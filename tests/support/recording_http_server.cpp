#include "tests/support/recording_http_server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace reqctx::test {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

std::vector<std::string> RecordedRequest::all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : headers) {
        if (iequals(n, name)) out.push_back(v);
    }
    return out;
}

std::optional<std::string> RecordedRequest::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (iequals(n, name)) return v;
    }
    return std::nullopt;
}

struct RecordingHttpServer::Impl {
    net::io_context io;
    tcp::acceptor acceptor{io};
    std::thread acceptor_thread;

    mutable std::mutex mutex;
    std::condition_variable changed;
    bool stopping = false;
    std::vector<RecordedRequest> requests;
    std::vector<std::thread> threads;
    std::set<int> open_fds;
    std::size_t connections = 0;
    std::vector<std::string> hang_prefixes;
    std::vector<std::pair<std::string, unsigned>> statuses;
    bool close_after = false;
};

RecordingHttpServer::RecordingHttpServer() : impl_(std::make_unique<Impl>()) {
    tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(endpoint);
    impl_->acceptor.listen();
    port_ = impl_->acceptor.local_endpoint().port();
    impl_->acceptor_thread = std::thread([this] { accept_loop(); });
}

RecordingHttpServer::~RecordingHttpServer() {
    stop();
}

std::string RecordingHttpServer::address() const {
    return "127.0.0.1:" + std::to_string(port_);
}

std::string RecordingHttpServer::url(std::string_view path) const {
    return "http://" + address() + std::string(path);
}

void RecordingHttpServer::hang_on(std::string prefix) {
    std::lock_guard lock(impl_->mutex);
    impl_->hang_prefixes.push_back(std::move(prefix));
}

void RecordingHttpServer::respond_with(std::string prefix, unsigned status) {
    std::lock_guard lock(impl_->mutex);
    impl_->statuses.emplace_back(std::move(prefix), status);
}

void RecordingHttpServer::close_after_response(bool close) {
    std::lock_guard lock(impl_->mutex);
    impl_->close_after = close;
}

std::vector<RecordedRequest> RecordingHttpServer::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->requests;
}

std::size_t RecordingHttpServer::request_count() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->requests.size();
}

std::size_t RecordingHttpServer::connection_count() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->connections;
}

bool RecordingHttpServer::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, timeout, [&] { return impl_->requests.size() >= n; });
}

bool RecordingHttpServer::wait_connections_closed(std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, timeout, [&] { return impl_->open_fds.empty(); });
}

void RecordingHttpServer::stop() {
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopping) return;
        impl_->stopping = true;
        // shutdown() wakes a thread blocked in accept() or recv() on Linux.
        ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
        for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
    }
    impl_->changed.notify_all();
    if (impl_->acceptor_thread.joinable()) impl_->acceptor_thread.join();
    {
        std::lock_guard lock(impl_->mutex);
        threads.swap(impl_->threads);
    }
    for (auto& t : threads) t.join();
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
}

void RecordingHttpServer::accept_loop() {
    while (true) {
        boost::system::error_code ec;
        tcp::socket socket(impl_->io);
        impl_->acceptor.accept(socket, ec);
        std::lock_guard lock(impl_->mutex);
        if (ec || impl_->stopping) return;
        const int fd = socket.release(ec);
        if (ec) continue;
        const std::size_t index = ++impl_->connections;
        impl_->open_fds.insert(fd);
        impl_->threads.emplace_back([this, index, fd] { serve(index, fd); });
    }
}

void RecordingHttpServer::serve(std::size_t index, int fd) {
    net::io_context io;
    tcp::socket socket(io, tcp::v4(), fd);
    boost::beast::flat_buffer buffer;
    while (true) {
        boost::system::error_code ec;
        http::request<http::string_body> req;
        http::read(socket, buffer, req, ec);
        if (ec) break;
        RecordedRequest rec;
        rec.method = std::string(req.method_string());
        rec.target = std::string(req.target());
        for (const auto& field : req) {
            rec.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
        rec.body = req.body();
        rec.connection = index;

        bool hang = false;
        unsigned status = 200;
        bool close = false;
        {
            std::lock_guard lock(impl_->mutex);
            for (const auto& p : impl_->hang_prefixes) hang = hang || rec.target.starts_with(p);
            for (const auto& [p, s] : impl_->statuses) {
                if (rec.target.starts_with(p)) status = s;
            }
            close = impl_->close_after;
            impl_->requests.push_back(std::move(rec));
        }
        impl_->changed.notify_all();
        if (hang) {
            // Never answer; wait until the peer leaves (a read returns) or the server stops.
            char byte;
            while (::recv(fd, &byte, 1, 0) > 0) {
            }
            break;
        }
        http::response<http::string_body> res{static_cast<http::status>(status), 11};
        res.set(http::field::content_type, "application/json");
        res.body() = "null";
        res.keep_alive(req.keep_alive() && !close);
        res.prepare_payload();
        http::write(socket, res, ec);
        if (ec || !res.keep_alive()) break;
    }
    std::lock_guard lock(impl_->mutex);
    impl_->open_fds.erase(fd);
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    impl_->changed.notify_all();
}

}  // namespace reqctx::test
