#pragma once

// The business routes (cache, bulk-sync, subscriptions, events), wired from the app's long-lived
// parts: handlers get their dependencies through constructors (tip 5), and their metrics are
// registered here. Built once by App::Parts after the memcache client and the task registry.

#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "service/config.hpp"

namespace reqctx {

namespace net = boost::asio;

class Logger;
class Metrics;
class Router;
class Semaphore;
class TaskRegistry;
namespace memcache {
class Client;
}

class BusinessRoutes {
public:
    using not_request_scoped = void;
    BusinessRoutes(const Config& config, net::any_io_executor ex, memcache::Client& client,
                   Semaphore& bulk_semaphore, TaskRegistry& tasks, Logger& logger,
                   Metrics& metrics);
    ~BusinessRoutes();
    BusinessRoutes(const BusinessRoutes&) = delete;
    BusinessRoutes& operator=(const BusinessRoutes&) = delete;

    // GET/PUT/DELETE /v1/cache/{key}, POST /v1/bulk-sync, /v1/subscriptions[/{id}], /v1/events.
    void add_routes(Router& router);

    struct Parts;

private:
    std::unique_ptr<Parts> parts_;
};

}  // namespace reqctx
