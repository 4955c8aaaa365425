#pragma once

// Access log: one line per request (JSON by default) through the async Logger, with
// request_id, trace_id, span_id, method, route, status, duration_ms, bytes and cancel_reason.
// Thread-safe.

#include "handlers/log.hpp"
#include "middleware/exchange.hpp"

namespace reqctx {

class AccessLog {
public:
    using not_request_scoped = void;
    explicit AccessLog(Logger& logger) : logger_(&logger) {}
    void write(const Exchange& exchange);

private:
    Logger* logger_;
};

}  // namespace reqctx
