#pragma once

// Absolute http:// URLs as the outgoing client needs them: host, port and request target.
// Pure functions, no I/O, no name resolution.

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/system/result.hpp>

namespace reqctx {

struct HttpUrl {
    std::string host;  // lower-case name or IP literal (IPv6 without brackets)
    std::uint16_t port = 80;
    std::string target;  // origin-form: path (at least "/") and query, no fragment

    // "host:port" with IPv6 literals bracketed: the Host header and the pool key.
    std::string authority() const;
};

// Accepts only plain http:// URLs with a host, no user info, and a port (when given) in
// 1..65535; anything else is HttpClientErrc::invalid_url.
boost::system::result<HttpUrl, std::error_code> parse_http_url(std::string_view text);

}  // namespace reqctx
