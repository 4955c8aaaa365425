#pragma once

// The service's configuration: every flag of docs/api.md ("Configuration"), each also read from
// REQCTX_<FLAG_IN_UPPER_SNAKE> (the flag wins). parse_config never throws and never exits: it
// returns either a validated Config or the exit code main() should return (0 for --help, 2 for
// invalid configuration, after writing a clear message to `err`).

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "handlers/log.hpp"

namespace reqctx {

// One memcache server from --memcache ("host:port[:weight]", weight defaults to 1).
struct MemcacheServerConfig {
    std::string host;
    std::uint16_t port = 11211;
    std::uint32_t weight = 1;
};

// One allowed outbound target from --outbound-allow ("host:port").
struct OutboundTarget {
    std::string host;
    std::uint16_t port = 0;
};

struct Config {
    // Listener.
    std::string listen = "127.0.0.1:8080";  // as given (for logs)
    std::string listen_host = "127.0.0.1";  // parsed ("::1" for "[::1]:8080")
    std::uint16_t listen_port = 8080;       // 0: an ephemeral port (tests)
    unsigned threads = 1;                   // I/O threads (default: hardware threads)

    // Memcache.
    std::vector<MemcacheServerConfig> memcache{{"127.0.0.1", 11211, 1}};
    std::size_t memcache_pool_size = 8;
    std::chrono::milliseconds memcache_connect_timeout{1000};

    // Requests.
    std::chrono::milliseconds request_timeout{5000};
    std::chrono::milliseconds max_request_timeout{30000};
    std::size_t max_inflight = 1024;
    std::size_t max_body_bytes = 1024 * 1024;
    std::chrono::milliseconds idle_timeout{60000};
    std::chrono::milliseconds header_timeout{10000};

    // Bulk sync.
    std::size_t bulk_concurrency = 8;
    std::size_t bulk_max_inflight = 64;
    std::size_t bulk_max_entries = 10000;

    // Subscriptions and events.
    std::size_t subscriber_queue = 1024;
    std::chrono::milliseconds event_timeout{2000};

    // Fanout: empty means the route is disabled (404).
    std::vector<OutboundTarget> outbound_allow;

    // Operations.
    bool enable_debug = false;
    std::chrono::milliseconds shutdown_grace{10000};
    LogFormat log_format = LogFormat::json;
    std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
};

struct ConfigResult {
    std::optional<Config> config;  // set when the service should start
    int exit_code = 0;             // meaningful when config is empty: 0 (--help) or 2 (invalid)
};

// Parses argv (and the REQCTX_* environment). `--help` writes the flag list with defaults to
// `out`; errors write one clear message to `err`.
ConfigResult parse_config(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// "host:port" (host may be a bracketed IPv6 literal). Port 0 is accepted only when allow_zero.
bool parse_host_port(const std::string& text, std::string& host, std::uint16_t& port,
                     bool allow_zero);

}  // namespace reqctx
