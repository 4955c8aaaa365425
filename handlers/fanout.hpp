#pragma once

// POST /v1/fanout: the request context crossing a service boundary. Each element of the body
// ({"url","arguments"}) is POSTed in order through the outgoing HTTP client, which carries the
// trace context, request ID and remaining deadline. Only URLs to allowed HOST:PORTs are called.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "clients/http/client.hpp"
#include "clients/http/url.hpp"
#include "handlers/handler.hpp"
#include "handlers/request_body.hpp"

namespace reqctx {

// One allowed target of --outbound-allow.
struct AllowedTarget {
    std::string host;  // name or IP literal (IPv6 without brackets)
    std::uint16_t port = 0;
};

// One validated call of a fanout request.
struct FanoutCall {
    std::string url;  // as given, for the response
    HttpUrl target;
    std::string body;  // `arguments` serialised ("[]" when absent)
};

inline constexpr std::size_t kMaxFanoutCalls = 16;

// Parses and checks a fanout body (pure): invalid_json, invalid_request (not an array/object of
// objects with a string "url", or more than 16), url_not_allowed (not plain http:// to an
// allowed HOST:PORT). No call is made when any element is refused.
std::variant<std::vector<FanoutCall>, InputError> parse_fanout_request(
    std::string_view body, const std::vector<AllowedTarget>& allow);

// The route's handler; `client` outlives it. The route exists only when `allow` is non-empty
// (service/app.cpp registers it then).
Handler make_fanout_handler(HttpClient& client, std::vector<AllowedTarget> allow);

}  // namespace reqctx
