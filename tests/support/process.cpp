#include "tests/support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace reqctx::test {
namespace {

// A loopback socket address for port.
sockaddr_in loopback(unsigned short port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

std::filesystem::path new_log_path(const std::string& program) {
    static std::atomic<int> counter{0};
    auto dir = std::filesystem::temp_directory_path() / "reqctx-tests";
    std::filesystem::create_directories(dir);
    auto name = std::filesystem::path(program).filename().string() + "-" +
                std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".log";
    // A test process of an earlier run may have had this pid: the child appends, so start empty.
    std::error_code ec;
    std::filesystem::remove(dir / name, ec);
    return dir / name;
}

}  // namespace

unsigned short free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    auto addr = loopback(0);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind: " + std::string(std::strerror(errno)));
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

bool wait_for_port(unsigned short port, std::chrono::milliseconds timeout) {
    return wait_until(
        [port] {
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            auto addr = loopback(port);
            bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
            ::close(fd);
            return ok;
        },
        timeout, 10ms);
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(interval);
    }
}

Process::Process(std::string program, std::vector<std::string> args,
                 std::map<std::string, std::string> extra_env)
    : log_(new_log_path(program)) {
    // setpriv --pdeathsig: the child is killed when the test process dies without running
    // destructors (a sanitizer abort, std::terminate), so no server outlives its test.
    std::vector<std::string> argv_store{"setpriv", "--pdeathsig", "KILL", "--", program};
    argv_store.insert(argv_store.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string entry(*e);
        auto name = entry.substr(0, entry.find('='));
        if (!extra_env.contains(name)) env_store.push_back(entry);
    }
    for (const auto& [k, v] : extra_env) env_store.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    int rc = ::posix_spawnp(&pid_, argv_store.front().c_str(), &actions, nullptr, argv.data(),
                            envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        throw std::runtime_error("cannot start " + program + ": " + std::strerror(rc));
    }
}

Process::~Process() {
    if (running()) {
        ::kill(pid_, SIGKILL);
        wait_exit(5s);
    }
}

bool Process::running() {
    if (exit_code_) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return false;
    }
    return r == 0;
}

void Process::signal(int sig) {
    if (running()) ::kill(pid_, sig);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
    wait_until([this] { return !running(); }, timeout, 5ms);
    return exit_code_;
}

std::string Process::output() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

MemcachedServer::MemcachedServer(std::vector<std::string> extra_args)
    : port_(free_port()), extra_args_(std::move(extra_args)) {
    start();
}

std::string MemcachedServer::address() const {
    return "127.0.0.1:" + std::to_string(port_);
}

void MemcachedServer::start() {
    std::vector<std::string> args{"-l", "127.0.0.1", "-p", std::to_string(port_), "-U", "0", "-t",
                                  "2",  "-m",        "64"};
    // memcached refuses to run as root unless told which user to be.
    if (::geteuid() == 0) args.insert(args.end(), {"-u", "root"});
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    process_ = std::make_unique<Process>("memcached", args);
    if (!wait_for_port(port_)) {
        throw std::runtime_error("memcached did not listen on " + address() + ": " +
                                 process_->output());
    }
}

void MemcachedServer::stop() {
    if (!process_) return;
    process_->signal(SIGCONT);
    process_->signal(SIGKILL);
    process_->wait_exit(5s);
    process_.reset();
}

// True once every thread of `pid` is in the stopped state ('T' in /proc/<pid>/task/*/stat).
static bool all_threads_stopped(pid_t pid) {
    std::error_code ec;
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& entry : std::filesystem::directory_iterator(tasks, ec)) {
        std::ifstream in(entry.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto paren = stat.rfind(')');
        if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
        if (stat[paren + 2] != 'T' && stat[paren + 2] != 't') return false;
    }
    return !ec;
}

void MemcachedServer::pause() {
    if (!process_) return;
    process_->signal(SIGSTOP);
    // SIGSTOP is delivered asynchronously: return only once the server can no longer answer.
    const pid_t pid = process_->pid();
    wait_until([pid] { return all_threads_stopped(pid); }, 5s, 1ms);
}

void MemcachedServer::resume() {
    if (process_) process_->signal(SIGCONT);
}

std::string service_binary() {
    const char* path = std::getenv("REQCTX_BINARY");
    if (path == nullptr || *path == '\0') {
        throw std::runtime_error("REQCTX_BINARY is not set (run the tests through ctest)");
    }
    return path;
}

ServiceProcess::ServiceProcess(std::vector<std::string> args,
                               std::map<std::string, std::string> extra_env)
    : port_(free_port()) {
    args.insert(args.begin(), {"--listen", "127.0.0.1:" + std::to_string(port_)});
    process_ = std::make_unique<Process>(service_binary(), args, std::move(extra_env));
    if (!wait_for_port(port_, 20s)) {
        throw std::runtime_error("reqctx did not listen on port " + std::to_string(port_) + ": " +
                                 process_->output());
    }
}

std::optional<int> ServiceProcess::terminate(std::chrono::milliseconds timeout) {
    process_->signal(SIGTERM);
    return process_->wait_exit(timeout);
}

}  // namespace reqctx::test
