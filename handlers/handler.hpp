#pragma once

// The HTTP vocabulary shared by handlers, middleware and the server: a request (request.hpp), a
// response, and a handler, which receives the request's context first and owns no context of its
// own.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "context/context.hpp"
#include "handlers/request.hpp"

namespace reqctx {

namespace net = boost::asio;
namespace http = boost::beast::http;

// A handler sets the status, Content-Type and other fields, and the body. The server owns the
// framing (Content-Length, Connection, HTTP version) and adds Date, X-Request-ID and X-Trace-ID
// as it writes the response; handlers set none of these (Content-Length and Connection set here
// are ignored). Bodies are JSON unless said otherwise: a response with a body and no
// Content-Type field is sent with Content-Type: application/json (one field allocation fewer
// on the hottest routes).
using Response = http::response<http::string_body>;

// Path parameters bound by the router, e.g. {"key", "user:42"} for /v1/cache/{key}; values are
// already percent-decoded.
class RouteParams {
public:
    void add(std::string name, std::string value) {
        items_.emplace_back(std::move(name), std::move(value));
    }
    // The value bound to name, or an empty view when there is none.
    std::string_view get(std::string_view name) const noexcept {
        for (const auto& [n, v] : items_) {
            if (n == name) return v;
        }
        return {};
    }

private:
    std::vector<std::pair<std::string, std::string>> items_;
};

// The caller's identity from X-User-ID (1..64 of [A-Za-z0-9_-]); absent means anonymous.
struct User {
    std::string id;
};
inline const Key<User> kUserKey{"user"};

// A route's handler. The caller co_awaits it directly and owns req and params for the call.
using Handler = std::function<net::awaitable<Response>(Context ctx, const Request& req,
                                                       const RouteParams& params)>;

}  // namespace reqctx
