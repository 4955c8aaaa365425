#pragma once

// Test harness processes: the real reqctx binary and real memcached servers, started on free
// loopback ports, their output captured to files, always stopped (and reaped) on destruction.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace reqctx::test {

using namespace std::chrono_literals;

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
unsigned short free_port();

// True once a TCP connection to 127.0.0.1:port succeeds, false if `timeout` passes first.
bool wait_for_port(unsigned short port, std::chrono::milliseconds timeout = 10s);

// Polls pred every `interval` until it holds (true) or `timeout` passes (false). Tests use this
// instead of sleeping: the bound is a failure, never an expectation about speed.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s,
                std::chrono::milliseconds interval = 5ms);

// A child process with stdout and stderr appended to one log file.
class Process {
public:
    Process(std::string program, std::vector<std::string> args,
            std::map<std::string, std::string> extra_env = {});
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();  // SIGKILL if still running, then reap

    pid_t pid() const noexcept { return pid_; }
    bool running();
    void signal(int sig);
    // The exit code (or 128 + signal) once the process has ended, nullopt if `timeout` passes.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout = 10s);
    // Everything the process wrote so far.
    std::string output() const;
    const std::filesystem::path& log_path() const noexcept { return log_; }

private:
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
    std::filesystem::path log_;
};

// A real memcached on a free loopback port. stop()/start() keep the port, so a test can kill a
// server and bring it back at the same address; pause()/resume() use SIGSTOP/SIGCONT.
class MemcachedServer {
public:
    explicit MemcachedServer(std::vector<std::string> extra_args = {});
    unsigned short port() const noexcept { return port_; }
    std::string address() const;  // "127.0.0.1:<port>"
    void start();
    void stop();
    void pause();
    void resume();
    bool running() const noexcept { return process_ != nullptr; }

private:
    unsigned short port_;
    std::vector<std::string> extra_args_;
    std::unique_ptr<Process> process_;
};

// The reqctx binary under test (REQCTX_BINARY) listening on a free loopback port; start() waits
// until the port accepts connections.
class ServiceProcess {
public:
    explicit ServiceProcess(std::vector<std::string> args = {},
                            std::map<std::string, std::string> extra_env = {});
    unsigned short port() const noexcept { return port_; }
    Process& process() { return *process_; }
    // Requests SIGTERM and waits for the exit code.
    std::optional<int> terminate(std::chrono::milliseconds timeout = 20s);
    std::string output() const { return process_->output(); }

private:
    unsigned short port_;
    std::unique_ptr<Process> process_;
};

// Path of the reqctx binary under test, from REQCTX_BINARY.
std::string service_binary();

}  // namespace reqctx::test
