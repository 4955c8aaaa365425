#include "service/config.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

namespace reqctx {
namespace {

// "REQCTX_" + upper snake of the flag name ("max-inflight" -> "REQCTX_MAX_INFLIGHT").
std::string env_name(const std::string& flag) {
    std::string out = "REQCTX_";
    for (char c : flag) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
    return out;
}

bool parse_uint(std::string_view text, std::uint64_t& out) {
    if (text.empty()) return false;
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc{} && ptr == end;
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t comma = text.find(',', start);
        if (comma == std::string::npos) comma = text.size();
        std::string item = text.substr(start, comma - start);
        const auto first = item.find_first_not_of(" \t");
        const auto last = item.find_last_not_of(" \t");
        out.push_back(first == std::string::npos ? std::string{}
                                                 : item.substr(first, last - first + 1));
        start = comma + 1;
    }
    return out;
}

// Parses "host:port[:weight]"; returns an error sentence or empty.
std::string parse_memcache_item(const std::string& item, MemcacheServerConfig& out) {
    std::string host_port = item;
    std::uint32_t weight = 1;
    // host:port:weight has two colons outside brackets.
    const auto close = item.rfind(']');
    const auto last = item.rfind(':');
    const auto prev =
        last == std::string::npos || last == 0 ? std::string::npos : item.rfind(':', last - 1);
    if (last != std::string::npos && prev != std::string::npos &&
        (close == std::string::npos || prev > close)) {
        std::uint64_t w = 0;
        if (!parse_uint(std::string_view(item).substr(last + 1), w) || w == 0 || w > 1000000) {
            return "weight must be an integer in 1..1000000";
        }
        weight = static_cast<std::uint32_t>(w);
        host_port = item.substr(0, last);
    }
    if (!parse_host_port(host_port, out.host, out.port, false)) {
        return "expected host:port[:weight] with a port in 1..65535";
    }
    out.weight = weight;
    return {};
}

}  // namespace

bool parse_host_port(const std::string& text, std::string& host, std::uint16_t& port,
                     bool allow_zero) {
    std::string_view t = text;
    std::string_view h;
    std::string_view p;
    if (!t.empty() && t.front() == '[') {
        const auto close = t.find(']');
        if (close == std::string_view::npos || close + 1 >= t.size() || t[close + 1] != ':') {
            return false;
        }
        h = t.substr(1, close - 1);
        p = t.substr(close + 2);
    } else {
        const auto colon = t.rfind(':');
        if (colon == std::string_view::npos) return false;
        h = t.substr(0, colon);
        p = t.substr(colon + 1);
        if (h.find(':') != std::string_view::npos) return false;  // IPv6 needs brackets
    }
    std::uint64_t value = 0;
    if (h.empty() || !parse_uint(p, value) || value > 65535 || (value == 0 && !allow_zero)) {
        return false;
    }
    for (char c : h) {
        if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == '@') return false;
    }
    host.assign(h);
    port = static_cast<std::uint16_t>(value);
    return true;
}

ConfigResult parse_config(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    Config config;
    const unsigned hw = std::thread::hardware_concurrency();
    config.threads = hw == 0 ? 1 : hw;

    CLI::App app{"reqctx: an HTTP microservice built on request-scoped contexts", "reqctx"};
    app.option_defaults()->always_capture_default();
    app.get_formatter()->column_width(40);

    std::string listen = config.listen;
    std::string memcache = "127.0.0.1:11211";
    std::string outbound_allow;
    std::string log_format = "json";
    std::int64_t memcache_connect_timeout_ms = config.memcache_connect_timeout.count();
    std::int64_t request_timeout_ms = config.request_timeout.count();
    std::int64_t max_request_timeout_ms = config.max_request_timeout.count();
    std::int64_t idle_timeout_ms = config.idle_timeout.count();
    std::int64_t header_timeout_ms = config.header_timeout.count();
    std::int64_t event_timeout_ms = config.event_timeout.count();
    std::int64_t shutdown_grace_ms = config.shutdown_grace.count();

    auto add = [&](const std::string& flag, auto& variable, const std::string& help) {
        return app.add_option("--" + flag, variable, help)->envname(env_name(flag));
    };
    constexpr std::int64_t kDay = 24LL * 3600 * 1000;
    add("listen", listen, "Address to listen on, host:port (port 0: any free port)");
    add("threads", config.threads, "I/O threads (default: hardware threads)")
        ->check(CLI::Range(1U, 256U));
    add("memcache", memcache, "Memcache servers, comma list of host:port[:weight]");
    add("memcache-pool-size", config.memcache_pool_size, "Connections per memcache server")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1024}));
    add("memcache-connect-timeout-ms", memcache_connect_timeout_ms,
        "Connect timeout for memcache connections")
        ->check(CLI::Range(std::int64_t{1}, kDay));
    add("request-timeout-ms", request_timeout_ms,
        "Default request deadline when X-Request-Timeout-Ms is absent")
        ->check(CLI::Range(std::int64_t{1}, kDay));
    add("max-request-timeout-ms", max_request_timeout_ms, "Largest accepted X-Request-Timeout-Ms")
        ->check(CLI::Range(std::int64_t{1}, kDay));
    add("max-inflight", config.max_inflight,
        "Requests in flight above which new ones get 503 overloaded")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
    add("max-body-bytes", config.max_body_bytes, "Largest request body (else 413)")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30));
    add("idle-timeout-ms", idle_timeout_ms, "Idle keep-alive connections are closed after this")
        ->check(CLI::Range(std::int64_t{1}, kDay));
    add("header-timeout-ms", header_timeout_ms,
        "A request header must arrive within this (slow-loris defence)")
        ->check(CLI::Range(std::int64_t{1}, kDay));
    auto* bulk_concurrency =
        add("bulk-concurrency", config.bulk_concurrency,
            "Default per-request bulk-sync concurrency (at most --bulk-max-inflight)")
            ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
    add("bulk-max-inflight", config.bulk_max_inflight,
        "Capacity of the service-wide bulk-sync semaphore")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
    add("bulk-max-entries", config.bulk_max_entries, "Most entries in one bulk-sync request")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
    add("subscriber-queue", config.subscriber_queue, "Bounded queue length per subscriber")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
    add("event-timeout-ms", event_timeout_ms, "Deadline for processing one event")
        ->check(CLI::Range(std::int64_t{1}, kDay));
    add("outbound-allow", outbound_allow,
        "Comma list of host:port that POST /v1/fanout may call (empty: route disabled)");
    app.add_flag("--enable-debug", config.enable_debug, "Serve GET /debug/contexts (default: off)")
        ->envname(env_name("enable-debug"));
    add("shutdown-grace-ms", shutdown_grace_ms,
        "On SIGTERM/SIGINT, time in-flight requests get before they are cancelled")
        ->check(CLI::Range(std::int64_t{0}, kDay));
    add("log-format", log_format, "Log format: json (one object per line) or text")
        ->check(CLI::IsMember({"json", "text"}));
    add("log-level", config.log_level, "Log level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        out << app.help();
        return {std::nullopt, 0};
    } catch (const CLI::CallForAllHelp&) {
        out << app.help("", CLI::AppFormatMode::All);
        return {std::nullopt, 0};
    } catch (const CLI::ParseError& e) {
        err << "reqctx: invalid configuration: " << e.what() << "\nRun with --help for usage.\n";
        return {std::nullopt, 2};
    }

    auto fail = [&](const std::string& message) {
        err << "reqctx: invalid configuration: " << message << "\nRun with --help for usage.\n";
        return ConfigResult{std::nullopt, 2};
    };

    config.listen = listen;
    if (!parse_host_port(listen, config.listen_host, config.listen_port, true)) {
        return fail("--listen \"" + listen + "\": expected host:port with a port in 0..65535");
    }
    config.memcache.clear();
    for (const auto& item : split_list(memcache)) {
        MemcacheServerConfig server;
        if (item.empty()) return fail("--memcache: empty server in \"" + memcache + "\"");
        if (auto problem = parse_memcache_item(item, server); !problem.empty()) {
            return fail("--memcache \"" + item + "\": " + problem);
        }
        config.memcache.push_back(std::move(server));
    }
    if (!outbound_allow.empty()) {
        for (const auto& item : split_list(outbound_allow)) {
            OutboundTarget target;
            if (!parse_host_port(item, target.host, target.port, false)) {
                return fail("--outbound-allow \"" + item +
                            "\": expected host:port with a port in 1..65535");
            }
            config.outbound_allow.push_back(std::move(target));
        }
    }
    if (request_timeout_ms > max_request_timeout_ms) {
        return fail("--request-timeout-ms (" + std::to_string(request_timeout_ms) +
                    ") must not exceed --max-request-timeout-ms (" +
                    std::to_string(max_request_timeout_ms) + ")");
    }
    // Lowering the capacity alone lowers the default share with it; only an explicit
    // --bulk-concurrency over the capacity is a conflict.
    if (bulk_concurrency->count() == 0) {
        config.bulk_concurrency = std::min(config.bulk_concurrency, config.bulk_max_inflight);
    }
    if (config.bulk_concurrency > config.bulk_max_inflight) {
        return fail("--bulk-concurrency must not exceed --bulk-max-inflight");
    }
    config.memcache_connect_timeout = std::chrono::milliseconds(memcache_connect_timeout_ms);
    config.request_timeout = std::chrono::milliseconds(request_timeout_ms);
    config.max_request_timeout = std::chrono::milliseconds(max_request_timeout_ms);
    config.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
    config.header_timeout = std::chrono::milliseconds(header_timeout_ms);
    config.event_timeout = std::chrono::milliseconds(event_timeout_ms);
    config.shutdown_grace = std::chrono::milliseconds(shutdown_grace_ms);
    config.log_format = log_format == "text" ? LogFormat::text : LogFormat::json;
    return {std::move(config), 0};
}

}  // namespace reqctx
