#include "service/business.hpp"

#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "clients/memcache/client.hpp"
#include "context/semaphore.hpp"
#include "context/task_registry.hpp"
#include "handlers/bulk_sync.hpp"
#include "handlers/cache.hpp"
#include "handlers/events.hpp"
#include "handlers/metrics.hpp"
#include "handlers/subscriptions.hpp"
#include "service/event_bus.hpp"
#include "service/router.hpp"
#include "service/subscription_registry.hpp"

namespace reqctx {

namespace {

EventMetrics make_event_metrics(Metrics& m) {
    EventMetrics em;
    em.published = &m.counter_family("events_published_total",
                                     "Events published to the in-process bus, by topic.");
    em.processed =
        &m.counter_family("events_processed_total", "Events processed by subscribers, by topic.");
    em.dropped = &m.counter_family("events_dropped_total",
                                   "Events dropped because a subscriber queue was full, by topic.");
    return em;
}

BulkSyncLimits bulk_limits(const Config& c) {
    BulkSyncLimits l;
    l.max_entries = c.bulk_max_entries;
    l.max_inflight = c.bulk_max_inflight;
    l.default_concurrency = c.bulk_concurrency;
    l.max_value_bytes = 1024 * 1024;  // memcache's default item size
    return l;
}

// bulk_sync_entries_total{result}: counted once per request, when it ends.
BulkSyncObserver bulk_observer(Metrics& m) {
    auto& family = m.counter_family("bulk_sync_entries_total", "Bulk-sync entries by outcome.");
    auto* ok = &family.Add({{"result", "ok"}});
    auto* error = &family.Add({{"result", "error"}});
    auto* cancelled = &family.Add({{"result", "cancelled"}});
    return [ok, error, cancelled](const SyncCounts& c) {
        ok->Increment(static_cast<double>(c.synced));
        error->Increment(static_cast<double>(c.failed));
        cancelled->Increment(static_cast<double>(c.cancelled));
    };
}

prometheus::Gauge& gauge(Metrics& m, const char* name, const char* help) {
    return m.gauge_family(name, help).Add({});
}

}  // namespace

struct BusinessRoutes::Parts {
    EventBus bus;
    SubscriptionRegistry subscriptions;
    CacheHandler cache;
    BulkSyncHandler bulk_sync;
    SubscriptionsHandler subscriptions_handler;
    EventsHandler events;

    Parts(const Config& c, net::any_io_executor ex, memcache::Client& client, Semaphore& sem,
          TaskRegistry& tasks, Logger& logger, Metrics& metrics)
        : bus(make_event_metrics(metrics)),
          subscriptions(std::move(ex), tasks, bus, client, logger,
                        SubscriptionOptions{c.subscriber_queue, c.event_timeout}),
          cache(client, 1024 * 1024),
          bulk_sync(client, sem, bulk_limits(c), bulk_observer(metrics)),
          subscriptions_handler(subscriptions),
          events(bus) {}
};

BusinessRoutes::BusinessRoutes(const Config& config, net::any_io_executor ex,
                               memcache::Client& client, Semaphore& bulk_semaphore,
                               TaskRegistry& tasks, Logger& logger, Metrics& metrics)
    : parts_(std::make_unique<Parts>(config, std::move(ex), client, bulk_semaphore, tasks, logger,
                                     metrics)) {
    auto& capacity = gauge(metrics, "bulk_sync_semaphore_capacity",
                           "Capacity of the service-wide bulk-sync semaphore.");
    auto& in_use = gauge(metrics, "bulk_sync_semaphore_in_use",
                         "Weight of the bulk-sync semaphore held right now.");
    auto& waiters = gauge(metrics, "bulk_sync_semaphore_waiters",
                          "Acquires waiting for the bulk-sync semaphore.");
    auto& active = gauge(metrics, "subscriptions_active", "Subscriptions whose task is running.");
    auto& tasks_live = gauge(metrics, "reqctx_background_tasks_live",
                             "Background tasks (subscribers) registered and not yet finished.");
    capacity.Set(static_cast<double>(bulk_semaphore.capacity()));
    metrics.on_scrape([&in_use, &waiters, &active, &tasks_live, sem = &bulk_semaphore, t = &tasks,
                       subs = &parts_->subscriptions] {
        in_use.Set(static_cast<double>(sem->in_use()));
        waiters.Set(static_cast<double>(sem->waiters()));
        active.Set(static_cast<double>(subs->active()));
        tasks_live.Set(static_cast<double>(t->live()));
    });
}

BusinessRoutes::~BusinessRoutes() = default;

void BusinessRoutes::add_routes(Router& r) {
    Parts* p = parts_.get();
    r.add(http::verb::get, "/v1/cache/{key}",
          [h = &p->cache](Context ctx, const Request& req, const RouteParams& params) {
              return h->get(std::move(ctx), req, params);
          });
    r.add(http::verb::put, "/v1/cache/{key}",
          [h = &p->cache](Context ctx, const Request& req, const RouteParams& params) {
              return h->put(std::move(ctx), req, params);
          });
    r.add(http::verb::delete_, "/v1/cache/{key}",
          [h = &p->cache](Context ctx, const Request& req, const RouteParams& params) {
              return h->remove(std::move(ctx), req, params);
          });
    r.add(http::verb::post, "/v1/bulk-sync",
          [h = &p->bulk_sync](Context ctx, const Request& req, const RouteParams& params) {
              return h->post(std::move(ctx), req, params);
          });
    r.add(http::verb::post, "/v1/subscriptions",
          [h = &p->subscriptions_handler](Context ctx, const Request& req,
                                          const RouteParams& params) {
              return h->create(std::move(ctx), req, params);
          });
    r.add(http::verb::get, "/v1/subscriptions",
          [h = &p->subscriptions_handler](Context ctx, const Request& req,
                                          const RouteParams& params) {
              return h->list(std::move(ctx), req, params);
          });
    r.add(http::verb::get, "/v1/subscriptions/{id}",
          [h = &p->subscriptions_handler](Context ctx, const Request& req,
                                          const RouteParams& params) {
              return h->get(std::move(ctx), req, params);
          });
    r.add(http::verb::delete_, "/v1/subscriptions/{id}",
          [h = &p->subscriptions_handler](Context ctx, const Request& req,
                                          const RouteParams& params) {
              return h->remove(std::move(ctx), req, params);
          });
    r.add(http::verb::post, "/v1/events",
          [h = &p->events](Context ctx, const Request& req, const RouteParams& params) {
              return h->post(std::move(ctx), req, params);
          });
}

}  // namespace reqctx
