#include "handlers/metrics.hpp"

#include <algorithm>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <boost/beast/http/field.hpp>

namespace reqctx {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {}
Metrics::~Metrics() = default;

void Metrics::on_scrape(std::function<void()> refresh) {
    std::lock_guard lock(mutex_);
    refreshers_.push_back(std::move(refresh));
}

void Metrics::describe(const std::string& name, const std::string& help,
                       prometheus::MetricType type) {
    std::lock_guard lock(mutex_);
    described_.push_back({name, help, type});
}

prometheus::Family<prometheus::Counter>& Metrics::counter_family(const std::string& name,
                                                                 const std::string& help) {
    describe(name, help, prometheus::MetricType::Counter);
    return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
}

prometheus::Family<prometheus::Gauge>& Metrics::gauge_family(const std::string& name,
                                                             const std::string& help) {
    describe(name, help, prometheus::MetricType::Gauge);
    return prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
}

prometheus::Family<prometheus::Histogram>& Metrics::histogram_family(const std::string& name,
                                                                     const std::string& help) {
    describe(name, help, prometheus::MetricType::Histogram);
    return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
}

std::string Metrics::scrape() {
    std::vector<prometheus::MetricFamily> families;
    {
        std::lock_guard lock(mutex_);
        for (const auto& refresh : refreshers_) refresh();
        families = registry_->Collect();
        // prometheus-cpp leaves out a family without series; a scraper (or a client checking
        // the contract's list) still learns that it exists from its # HELP and # TYPE lines.
        const std::size_t collected = families.size();
        for (const auto& d : described_) {
            const auto end = families.begin() + static_cast<std::ptrdiff_t>(collected);
            const bool present = std::any_of(families.begin(), end,
                                             [&d](const auto& f) { return f.name == d.name; });
            if (!present) {
                families.push_back({d.name, d.help, d.type, {}});
            }
        }
    }
    const prometheus::TextSerializer serializer;
    return serializer.Serialize(families);
}

namespace {

net::awaitable<Response> serve_metrics(Metrics* metrics, Context /*ctx*/, const Request& req) {
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics->scrape();
    co_return res;
}

}  // namespace

Handler make_metrics_handler(Metrics& metrics) {
    return [m = &metrics](Context ctx, const Request& req, const RouteParams&) {
        return serve_metrics(m, std::move(ctx), req);
    };
}

}  // namespace reqctx
