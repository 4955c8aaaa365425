#pragma once

// Shared by the business-route e2e suites: real memcached behind the FaultProxy, the real binary
// in front, and small readers for /metrics and JSON bodies.

#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/fault_proxy.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace reqctx::test {

// The value of the first sample whose line starts with `series` followed by a space, e.g.
// `bulk_sync_semaphore_in_use` or `bulk_sync_entries_total{result="cancelled"}`.
inline std::optional<double> metric_value(const std::string& text, std::string_view series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ') {
            return std::strtod(line.c_str() + series.size() + 1, nullptr);
        }
    }
    return std::nullopt;
}

// Sum of every sample of `name` whose labels contain `label_fragment` (e.g. `topic="t"`).
inline double metric_sum(const std::string& text, std::string_view name,
                         std::string_view label_fragment = {}) {
    std::istringstream in(text);
    std::string line;
    double sum = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        if (line.compare(0, name.size(), name) != 0) continue;
        const char next = line.size() > name.size() ? line[name.size()] : '\0';
        if (next != ' ' && next != '{') continue;
        if (!label_fragment.empty() && line.find(label_fragment) == std::string::npos) continue;
        const auto sp = line.rfind(' ');
        sum += std::strtod(line.c_str() + sp + 1, nullptr);
    }
    return sum;
}

inline nlohmann::json json_of(const HttpResponse& r) {
    return nlohmann::json::parse(r.body, nullptr, false);
}

// memcached <- FaultProxy <- reqctx, started in that order and stopped in reverse.
class BusinessStack {
public:
    explicit BusinessStack(std::vector<std::string> extra_args = {}) {
        memcached_ = std::make_unique<MemcachedServer>();
        proxy_ = std::make_unique<FaultProxy>(memcached_->port());
        std::vector<std::string> args{"--memcache", proxy_->address(), "--enable-debug",
                                      "--log-format", "json"};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        service_ = std::make_unique<ServiceProcess>(args);
    }
    ~BusinessStack() {
        if (proxy_) proxy_->resume();
        service_.reset();
        proxy_.reset();
        memcached_.reset();
    }

    MemcachedServer& memcached() { return *memcached_; }
    FaultProxy& proxy() { return *proxy_; }
    ServiceProcess& service() { return *service_; }
    unsigned short port() const { return service_->port(); }

    std::optional<HttpResponse> request(std::string_view method, std::string_view target,
                                        const Headers& headers = {}, std::string_view body = {}) {
        return http_request(port(), method, target, headers, body);
    }
    std::string metrics() {
        const auto r = request("GET", "/metrics");
        return r ? r->body : std::string{};
    }

private:
    std::unique_ptr<MemcachedServer> memcached_;
    std::unique_ptr<FaultProxy> proxy_;
    std::unique_ptr<ServiceProcess> service_;
};

// {"entries":[{"key":"<prefix><i>","value":"v<i>"}...],"concurrency":c}
inline std::string bulk_body(std::string_view prefix, int n, int concurrency) {
    nlohmann::json entries = nlohmann::json::array();
    for (int i = 0; i < n; ++i) {
        entries.push_back(
            {{"key", std::string(prefix) + std::to_string(i)}, {"value", "v" + std::to_string(i)}});
    }
    return nlohmann::json{{"entries", entries}, {"concurrency", concurrency}}.dump();
}

}  // namespace reqctx::test
