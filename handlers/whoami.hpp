#pragma once

// GET /v1/whoami: the request's identity as the middleware stored it on the context (request
// ID, trace and span IDs, the parent span, the typed user, the time left until the deadline).

#include <string>

#include "handlers/handler.hpp"

namespace reqctx {

// The JSON body for ctx, now = Clock::now() (pure; unit-testable).
std::string whoami_body(const Context& ctx, Clock::time_point now);

Handler make_whoami_handler();

}  // namespace reqctx
