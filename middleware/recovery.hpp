#pragma once

// Recovery middleware step: runs the handler; an exception escaping it (a bug) becomes
// 500 internal, logged once with the request and trace IDs. Suspends while the handler does;
// the caller co_awaits directly and owns handler, req and params for the call.

#include <boost/asio/awaitable.hpp>

#include "handlers/handler.hpp"
#include "handlers/log.hpp"

namespace reqctx {

net::awaitable<Response> call_with_recovery(const Handler& handler, Context ctx, const Request& req,
                                            const RouteParams& params, Logger& logger);

}  // namespace reqctx
