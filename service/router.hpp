#pragma once

// Routes (method, pattern) to handlers. Patterns are literal segments and {name} parameters,
// e.g. "/v1/cache/{key}"; a parameter matches one non-empty segment, percent-decoded. Routes are
// added at startup; match() is then const and thread-safe.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/handler.hpp"

namespace reqctx {

class Router {
public:
    using not_request_scoped = void;

    // Adds a route. Throws std::invalid_argument for a malformed pattern or a duplicate
    // (method, pattern): a startup bug.
    void add(http::verb method, std::string_view pattern, Handler handler);

    enum class Outcome { found, not_found, method_not_allowed, bad_path };
    struct Match {
        Outcome outcome = Outcome::not_found;
        const Handler* handler = nullptr;
        std::size_t route_index = 0;  // pattern index (patterns()); unmatched_index() if none
        std::string_view pattern;     // "unmatched" when not found
        RouteParams params;
        std::string allow;  // for method_not_allowed: "GET, PUT"
    };

    // `target` is the request target; the query string is ignored.
    Match match(http::verb method, std::string_view target) const;

    // Every distinct pattern in order of first registration, then "unmatched".
    std::vector<std::string> patterns() const;
    std::size_t unmatched_index() const noexcept { return patterns_.size(); }

private:
    struct Route {
        http::verb method;
        std::size_t pattern_index;
        std::vector<std::string> segments;  // "{name}" marks a parameter
        bool literal;
        std::string pattern;
        Handler handler;
    };
    std::vector<Route> routes_;
    std::vector<std::string> patterns_;
};

// Percent-decodes text; false on a malformed escape.
bool percent_decode(std::string_view text, std::string& out);

}  // namespace reqctx
