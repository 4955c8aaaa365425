#include "tests/support/fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <list>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace reqctx::test {

namespace {

using SteadyClock = std::chrono::steady_clock;

void set_nonblocking(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}

// Closes with a TCP RST instead of a FIN.
void close_with_reset(int fd) {
    if (fd < 0) return;
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd);
}

std::vector<std::string_view> split_tokens(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        std::size_t j = i;
        while (j < line.size() && line[j] != ' ') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

std::size_t to_size(std::string_view s) {
    std::size_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// One line ending in "\n" (the "\r" is stripped from the returned view); npos when incomplete.
std::size_t find_line(std::string_view buf, std::size_t from, std::string_view& line) {
    const auto nl = buf.find('\n', from);
    if (nl == std::string_view::npos) return std::string_view::npos;
    line = buf.substr(from, nl - from);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return nl + 1;
}

struct ParsedCommand {
    std::size_t length = 0;  // 0: incomplete
    bool is_write = false;
    bool expects_reply = true;
};

// Delimits one client command at the start of buf.
ParsedCommand parse_command(std::string_view buf) {
    std::string_view line;
    const auto after_line = find_line(buf, 0, line);
    if (after_line == std::string_view::npos) return {};
    const auto tokens = split_tokens(line);
    ParsedCommand cmd;
    cmd.length = after_line;
    if (tokens.empty()) return cmd;
    const auto name = tokens[0];
    const bool noreply = tokens.back() == "noreply";
    std::size_t data = std::string_view::npos;
    if ((name == "set" || name == "add" || name == "replace" || name == "append" ||
         name == "prepend") &&
        tokens.size() >= 5) {
        data = to_size(tokens[4]);
    } else if (name == "cas" && tokens.size() >= 6) {
        data = to_size(tokens[4]);
    } else if (name == "ms" && tokens.size() >= 3) {
        data = to_size(tokens[2]);
    }
    if (data != std::string_view::npos) {
        cmd.is_write = true;
        if (buf.size() < after_line + data + 2) return {};
        cmd.length = after_line + data + 2;
    }
    bool quiet = false;
    if (name.size() == 2 && name[0] == 'm') {
        // Meta commands: the q flag suppresses the common reply; treat it as no reply.
        for (std::size_t i = 1; i < tokens.size(); ++i) quiet = quiet || tokens[i] == "q";
    }
    cmd.expects_reply = !(noreply || quiet || name == "quit");
    return cmd;
}

// Delimits one complete server reply at the start of buf; 0 when incomplete.
std::size_t parse_reply(std::string_view buf) {
    std::size_t pos = 0;
    for (;;) {
        std::string_view line;
        const auto next = find_line(buf, pos, line);
        if (next == std::string_view::npos) return 0;
        if (line.starts_with("VALUE ")) {
            const auto tokens = split_tokens(line);
            const std::size_t n = tokens.size() >= 4 ? to_size(tokens[3]) : 0;
            if (buf.size() < next + n + 2) return 0;
            pos = next + n + 2;
            continue;
        }
        if (line.starts_with("STAT ")) {
            pos = next;
            continue;
        }
        if (line.starts_with("VA ")) {
            const auto tokens = split_tokens(line);
            const std::size_t n = tokens.size() >= 2 ? to_size(tokens[1]) : 0;
            if (buf.size() < next + n + 2) return 0;
            return next + n + 2;
        }
        return next;
    }
}

struct Held {
    SteadyClock::time_point release;
    std::string bytes;
};

struct Conn {
    int client_fd = -1;
    int upstream_fd = -1;
    std::string from_client;    // not yet delimited
    std::deque<Held> held;      // delimited commands waiting for their release time
    std::string to_upstream;    // released, not yet written
    std::string from_upstream;  // not yet delimited into replies
    std::string to_client;      // not yet written
    std::int64_t pending = 0;   // commands expecting a reply
    bool used = false;          // has carried a command
    bool dead = false;
};

// Writes as much of out as the socket takes; false on a hard error.
bool flush(int fd, std::string& out) {
    while (!out.empty()) {
        const auto n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        if (n > 0) {
            out.erase(0, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
    return true;
}

// Reads what is available into in; false on end-of-stream or a hard error.
bool drain(int fd, std::string& in) {
    char buf[16384];
    for (int i = 0; i < 64; ++i) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            in.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
    return true;
}

int connect_upstream(unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblocking(fd);
    return fd;
}

}  // namespace

FaultProxy::FaultProxy(unsigned short upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd_ < 0) throw std::runtime_error("fault proxy: socket failed");
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 512) != 0) {
        ::close(listen_fd_);
        throw std::runtime_error("fault proxy: bind/listen failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    set_nonblocking(listen_fd_);
    if (::pipe(wake_fds_) != 0) throw std::runtime_error("fault proxy: pipe failed");
    set_nonblocking(wake_fds_[0]);
    set_nonblocking(wake_fds_[1]);
    thread_ = std::thread([this] { run(); });
}

FaultProxy::~FaultProxy() {
    stop_ = true;
    const char c = 's';
    (void)!::write(wake_fds_[1], &c, 1);
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
    ::close(wake_fds_[0]);
    ::close(wake_fds_[1]);
}

std::string FaultProxy::address() const {
    return "127.0.0.1:" + std::to_string(port_);
}

namespace {
void wake(int fd) {
    const char c = 'w';
    (void)!::write(fd, &c, 1);
}
}  // namespace

void FaultProxy::set_latency(std::chrono::milliseconds per_command) {
    latency_ms_ = per_command.count();
    wake(wake_fds_[1]);
}
void FaultProxy::stall() {
    stalled_ = true;
    wake(wake_fds_[1]);
}
void FaultProxy::resume() {
    stalled_ = false;
    wake(wake_fds_[1]);
}
void FaultProxy::reset_all() {
    ++reset_requests_;
    wake(wake_fds_[1]);
}
void FaultProxy::set_refuse(bool refuse) {
    refuse_ = refuse;
    wake(wake_fds_[1]);
}

void FaultProxy::reset_counters() {
    max_in_flight_ = in_flight_.load();
    total_commands_ = 0;
    total_writes_ = 0;
}

void FaultProxy::note_command(bool is_write, bool expects_reply) {
    ++total_commands_;
    if (is_write) ++total_writes_;
    if (!expects_reply) return;
    const auto now = ++in_flight_;
    auto seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
}

void FaultProxy::note_reply() {
    --in_flight_;
}

void FaultProxy::run() {
    std::list<Conn> conns;
    std::vector<pollfd> fds;
    std::vector<Conn*> owners;  // owners[i] for fds[i]; nullptr for the wake pipe and listener
    int resets_done = 0;

    auto kill = [this](Conn& c, bool reset) {
        if (c.dead) return;
        c.dead = true;
        if (reset) {
            close_with_reset(c.client_fd);
            close_with_reset(c.upstream_fd);
        } else {
            ::close(c.client_fd);
            ::close(c.upstream_fd);
        }
        in_flight_ -= c.pending;
        c.pending = 0;
        --open_;
    };

    while (!stop_) {
        const auto now = SteadyClock::now();
        const bool stalled = stalled_;

        if (const int r = reset_requests_; r != resets_done) {
            resets_done = r;
            for (auto& c : conns) kill(c, true);
        }

        // Release held commands whose time has come; delimit replies.
        for (auto& c : conns) {
            if (c.dead) continue;
            while (!stalled && !c.held.empty() && c.held.front().release <= now) {
                c.to_upstream += c.held.front().bytes;
                c.held.pop_front();
            }
            if (!stalled) {
                if (!flush(c.upstream_fd, c.to_upstream) || !flush(c.client_fd, c.to_client)) {
                    kill(c, false);
                }
            }
        }
        conns.remove_if([](const Conn& c) { return c.dead; });

        int timeout_ms = 100;
        if (!stalled) {
            for (const auto& c : conns) {
                if (c.held.empty()) continue;
                const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      c.held.front().release - now)
                                      .count() +
                                  1;
                timeout_ms = std::clamp<int>(static_cast<int>(wait), 0, timeout_ms);
            }
        }

        fds.clear();
        owners.clear();
        fds.push_back({wake_fds_[0], POLLIN, 0});
        owners.push_back(nullptr);
        fds.push_back({listen_fd_, POLLIN, 0});
        owners.push_back(nullptr);
        for (auto& c : conns) {
            short cev = POLLIN;
            short uev = POLLIN;
            if (!stalled && !c.to_client.empty()) cev |= POLLOUT;
            if (!stalled && !c.to_upstream.empty()) uev |= POLLOUT;
            fds.push_back({c.client_fd, cev, 0});
            owners.push_back(&c);
            fds.push_back({c.upstream_fd, uev, 0});
            owners.push_back(&c);
        }
        const int n = ::poll(fds.data(), fds.size(), timeout_ms);
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) continue;

        if (fds[0].revents & POLLIN) {
            char buf[256];
            while (::read(wake_fds_[0], buf, sizeof buf) > 0) {
            }
        }
        if (fds[1].revents & POLLIN) {
            for (int i = 0; i < 64; ++i) {
                const int cfd = ::accept(listen_fd_, nullptr, nullptr);
                if (cfd < 0) break;
                ++accepted_;
                if (refuse_) {
                    close_with_reset(cfd);
                    continue;
                }
                const int ufd = connect_upstream(upstream_port_);
                if (ufd < 0) {
                    close_with_reset(cfd);
                    continue;
                }
                const int one = 1;
                ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                set_nonblocking(cfd);
                Conn c;
                c.client_fd = cfd;
                c.upstream_fd = ufd;
                conns.push_back(std::move(c));
                ++open_;
            }
        }

        const auto latency = std::chrono::milliseconds(latency_ms_.load());
        for (std::size_t i = 2; i < fds.size(); ++i) {
            Conn& c = *owners[i];
            if (c.dead || fds[i].revents == 0) continue;
            const bool is_client = fds[i].fd == c.client_fd;
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                std::string& in = is_client ? c.from_client : c.from_upstream;
                const bool open = drain(fds[i].fd, in);
                if (is_client) {
                    for (;;) {
                        const auto cmd = parse_command(c.from_client);
                        if (cmd.length == 0) break;
                        note_command(cmd.is_write, cmd.expects_reply);
                        if (!c.used) {
                            c.used = true;
                            ++used_;
                        }
                        if (cmd.expects_reply) ++c.pending;
                        c.held.push_back(
                            {SteadyClock::now() + latency, c.from_client.substr(0, cmd.length)});
                        c.from_client.erase(0, cmd.length);
                    }
                } else {
                    for (;;) {
                        const auto len = parse_reply(c.from_upstream);
                        if (len == 0) break;
                        if (c.pending > 0) {
                            --c.pending;
                            note_reply();
                        }
                        c.to_client.append(c.from_upstream, 0, len);
                        c.from_upstream.erase(0, len);
                    }
                }
                if (!open) {
                    kill(c, false);
                    continue;
                }
            }
            if ((fds[i].revents & POLLOUT) && !stalled) {
                std::string& out = is_client ? c.to_client : c.to_upstream;
                if (!flush(fds[i].fd, out)) kill(c, false);
            }
        }
        conns.remove_if([](const Conn& c) { return c.dead; });
    }
    for (auto& c : conns) kill(c, false);
}

}  // namespace reqctx::test
