#include "middleware/recovery.hpp"

#include <string>

#include "handlers/errors.hpp"

namespace reqctx {

Response recover(const Context& ctx, const Request& req, std::exception_ptr failure,
                 Logger& logger) {
    std::string what;
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        what = e.what();
        if (what.empty()) what = "std::exception";
    } catch (...) {
        what = "non-standard exception";
    }
    logger.error(ctx, "handler threw", {{"exception", what}});
    return error_response(ctx, req, http::status::internal_server_error, "internal",
                          "Internal server error.");
}

}  // namespace reqctx
