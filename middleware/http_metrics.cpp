#include "middleware/http_metrics.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "context/context.hpp"

namespace reqctx {

HttpMetrics::HttpMetrics(Metrics& metrics, std::function<std::size_t()> in_flight) {
    auto& registry = metrics.registry();
    requests_ = &prometheus::BuildCounter()
                     .Name("http_requests_total")
                     .Help("HTTP requests by method, route pattern and status")
                     .Register(registry);
    duration_family_ = &prometheus::BuildHistogram()
                            .Name("http_request_duration_seconds")
                            .Help("HTTP request duration by route pattern")
                            .Register(registry);
    auto& cancelled = prometheus::BuildCounter()
                          .Name("http_requests_cancelled_total")
                          .Help("Requests whose context was cancelled, by reason")
                          .Register(registry);
    cancelled_client_ = &cancelled.Add({{"reason", "client_disconnect"}});
    cancelled_deadline_ = &cancelled.Add({{"reason", "deadline"}});
    cancelled_shutdown_ = &cancelled.Add({{"reason", "shutdown"}});

    auto* in_flight_gauge = &prometheus::BuildGauge()
                                 .Name("http_requests_in_flight")
                                 .Help("HTTP requests being handled")
                                 .Register(registry)
                                 .Add({});
    auto* contexts_gauge = &prometheus::BuildGauge()
                                .Name("reqctx_contexts_live")
                                .Help("Derived contexts alive in the process")
                                .Register(registry)
                                .Add({});
    metrics.on_scrape([in_flight_gauge, contexts_gauge, in_flight = std::move(in_flight)] {
        in_flight_gauge->Set(in_flight ? static_cast<double>(in_flight()) : 0.0);
        contexts_gauge->Set(static_cast<double>(live_contexts()));
    });
}

void HttpMetrics::set_routes(std::vector<std::string> routes) {
    const prometheus::Histogram::BucketBoundaries buckets{
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
    routes_ = std::move(routes);
    if (routes_.empty() || routes_.back() != "unmatched") routes_.emplace_back("unmatched");
    durations_.clear();
    for (const auto& route : routes_) {
        durations_.push_back(&duration_family_->Add({{"route", route}}, buckets));
    }
}

void HttpMetrics::record(const Exchange& e) {
    const std::size_t route =
        e.route_index < durations_.size() ? e.route_index : durations_.size() - 1;
    // Key: route (16 bits) | status (16 bits) | 32 bits of the method's hash.
    const std::uint64_t method_bits = std::hash<std::string_view>{}(e.method) & 0xffffffffU;
    const std::uint64_t key = (static_cast<std::uint64_t>(route) << 48) |
                              (static_cast<std::uint64_t>(e.status & 0xffff) << 32) | method_bits;
    prometheus::Counter* counter = nullptr;
    {
        std::lock_guard lock(mutex_);
        auto it = counters_.find(key);
        if (it == counters_.end()) {
            counter = &requests_->Add({{"method", std::string(e.method)},
                                       {"route", routes_[route]},
                                       {"status", std::to_string(e.status)}});
            counters_.emplace(key, counter);
        } else {
            counter = it->second;
        }
    }
    counter->Increment();
    durations_[route]->Observe(e.duration_s);
    if (e.cancel_reason == "client_disconnect") {
        cancelled_client_->Increment();
    } else if (e.cancel_reason == "deadline") {
        cancelled_deadline_->Increment();
    } else if (e.cancel_reason == "shutdown") {
        cancelled_shutdown_->Increment();
    }
}

}  // namespace reqctx
