#pragma once

// Recovery middleware step: an exception escaping a handler (a bug) becomes 500 internal,
// logged once with the request and trace IDs, and the server keeps serving. The server catches
// around its own co_await of the handler (no coroutine frame of ours per request) and hands the
// exception here.

#include <exception>

#include "handlers/handler.hpp"
#include "handlers/log.hpp"

namespace reqctx {

Response recover(const Context& ctx, const Request& req, std::exception_ptr failure,
                 Logger& logger);

}  // namespace reqctx
