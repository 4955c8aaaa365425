#include "handlers/metrics.hpp"

#include <utility>

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

std::string Metrics::scrape() {
    {
        std::lock_guard lock(mutex_);
        for (const auto& refresh : refreshers_) refresh();
    }
    const prometheus::TextSerializer serializer;
    return serializer.Serialize(registry_->Collect());
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
