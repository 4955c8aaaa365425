// The memcache client against a scripted fake server: every response-side error path
// (server/client errors, malformed lines, opaque mismatch, unexpected status, oversized value,
// unsolicited bytes) gives its distinct code, and a connection that lost sync is replaced.

#include "clients/memcache/client.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "context/context.hpp"

namespace reqctx::memcache {
namespace {

using namespace std::chrono_literals;

// Answers `mg <key> ... O<n>` lines by key: "srverr", "clierr", "error", "garbage", "opaque",
// "hd" (a status a get never gets), "huge" (a value over any limit), "unsolicited" (EN plus
// stray bytes), "hit" (a value); anything else misses. One thread per connection.
class FakeMemcached {
public:
    FakeMemcached() {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
            ::listen(listen_fd_, 16) != 0) {
            throw std::runtime_error("fake memcached: cannot listen");
        }
        socklen_t len = sizeof(a);
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~FakeMemcached() {
        stop_ = true;
        ::shutdown(listen_fd_, SHUT_RDWR);
        ::close(listen_fd_);
        acceptor_.join();
        std::lock_guard lock(mu_);
        for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
        for (auto& t : workers_) t.join();
        for (int fd : conns_) ::close(fd);
    }
    std::uint16_t port() const { return port_; }
    int accepted() const { return accepted_.load(); }

private:
    void accept_loop() {
        while (!stop_) {
            int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0) return;
            ++accepted_;
            std::lock_guard lock(mu_);
            conns_.push_back(fd);
            workers_.emplace_back([this, fd] { serve(fd); });
        }
    }

    static void send_all(int fd, const std::string& s) {
        std::size_t off = 0;
        while (off < s.size()) {
            const auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return;
            off += static_cast<std::size_t>(n);
        }
    }

    void serve(int fd) {
        std::string buf;
        char chunk[4096];
        while (!stop_) {
            const auto n = ::recv(fd, chunk, sizeof(chunk), 0);
            if (n <= 0) return;
            buf.append(chunk, static_cast<std::size_t>(n));
            for (auto eol = buf.find("\r\n"); eol != std::string::npos; eol = buf.find("\r\n")) {
                const std::string line = buf.substr(0, eol);
                buf.erase(0, eol + 2);
                send_all(fd, answer(line));
            }
        }
    }

    static std::string answer(const std::string& line) {
        if (line == "mn") return "MN\r\n";
        if (line == "version") return "VERSION fake\r\n";
        if (line.rfind("mg ", 0) != 0) return "ERROR\r\n";
        const auto key_end = line.find(' ', 3);
        const std::string key = line.substr(3, key_end - 3);
        const auto o = line.find(" O");
        const std::string opaque = o == std::string::npos ? "" : line.substr(o + 1);
        if (key == "srverr") return "SERVER_ERROR out of memory storing object\r\n";
        if (key == "clierr") return "CLIENT_ERROR bad command line format\r\n";
        if (key == "error") return "ERROR\r\n";
        if (key == "garbage") return "WHAT IS THIS\r\n";
        if (key == "opaque") return "EN O4000000000\r\n";
        if (key == "hd") return "HD " + opaque + "\r\n";
        if (key == "huge") return "VA 999999999 " + opaque + "\r\n";
        if (key == "unsolicited") return "EN " + opaque + "\r\nEN O1\r\n";
        if (key == "hit") return "VA 3 f7 c9 " + opaque + "\r\nabc\r\n";
        return "EN " + opaque + "\r\n";
    }

    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0};
    std::mutex mu_;
    std::vector<int> conns_;
    std::vector<std::thread> workers_;
    std::thread acceptor_;
};

template <class T>
T run(net::io_context& io, net::awaitable<T> a) {
    std::optional<T> out;
    std::exception_ptr ep;
    net::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
        ep = e;
        out.emplace(std::move(v));
    });
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (!out && std::chrono::steady_clock::now() < end) {
        if (io.stopped()) io.restart();
        io.run_one_for(20ms);
    }
    if (ep) std::rethrow_exception(ep);
    if (!out) throw std::runtime_error("operation did not finish within the test bound");
    return std::move(*out);
}

TEST(MemcacheClientFaults, EveryResponseErrorHasItsCode) {
    FakeMemcached fake;
    net::io_context io;
    ClientConfig cfg;
    cfg.servers = {ServerAddress{"127.0.0.1", fake.port(), 1}};
    cfg.pool_size = 1;
    cfg.failure_limit = 1000;  // keep the fake "alive" through the protocol errors
    Client c(io.get_executor(), cfg);
    c.start(background());
    auto [ctx, cancel] = with_timeout(background(), 30s);

    auto hit = run(io, c.get(ctx, "hit"));
    ASSERT_TRUE(hit && *hit);
    EXPECT_EQ((*hit)->value, "abc");
    EXPECT_EQ((*hit)->flags, 7u);
    EXPECT_EQ((*hit)->cas, 9u);
    EXPECT_EQ(run(io, c.get(ctx, "miss")).value(), std::nullopt);
    EXPECT_EQ(run(io, c.version(ctx, 0)).value(), "fake");

    // Errors that leave the connection in sync keep it.
    EXPECT_EQ(run(io, c.get(ctx, "srverr")).error(), MemcacheErrc::server_error);
    EXPECT_EQ(fake.accepted(), 1);

    // Errors that mean we are out of sync close it; the next op gets a fresh one.
    for (const char* key : {"clierr", "error", "garbage", "opaque", "hd", "huge", "unsolicited"}) {
        SCOPED_TRACE(key);
        const int before = fake.accepted();
        auto r = run(io, c.get(ctx, key));
        if (std::string(key) == "unsolicited") {
            // The answer itself is fine; the stray bytes after it break the connection.
            EXPECT_TRUE(r);
        } else {
            EXPECT_EQ(r.error(), MemcacheErrc::protocol_error);
        }
        auto next = run(io, c.get(ctx, "hit"));
        ASSERT_TRUE(next) << next.error().message();
        EXPECT_EQ((*next)->value, "abc");
        EXPECT_GT(fake.accepted(), before);
    }
    EXPECT_FALSE(run(io, c.close(ctx)));
}

}  // namespace
}  // namespace reqctx::memcache
