#include "middleware/recovery.hpp"

#include <exception>
#include <string>

#include "handlers/errors.hpp"

namespace reqctx {

net::awaitable<Response> call_with_recovery(const Handler& handler, Context ctx, const Request& req,
                                            const RouteParams& params, Logger& logger) {
    std::string what;
    try {
        co_return co_await handler(ctx, req, params);
    } catch (const std::exception& e) {
        what = e.what();
        if (what.empty()) what = "std::exception";
    } catch (...) {
        what = "non-standard exception";
    }
    logger.error(ctx, "handler threw", {{"exception", what}});
    co_return error_response(ctx, req, http::status::internal_server_error, "internal",
                             "Internal server error.");
}

}  // namespace reqctx
