#pragma once

// Errors of the outgoing HTTP client, as values. A call cut by its context reports the
// context's own error instead (ContextErrc::canceled or ContextErrc::deadline_exceeded).

#include <string_view>
#include <system_error>
#include <type_traits>

namespace reqctx {

enum class HttpClientErrc {
    invalid_url = 1,     // not an absolute http:// URL with a host
    connect_failed,      // name resolution or TCP connect failed
    connection_closed,   // the peer closed or reset the connection before a full response
    protocol_error,      // the response was not valid HTTP/1.1
    response_too_large,  // the response exceeded the client's body limit
};

const std::error_category& http_client_category() noexcept;
std::error_code make_error_code(HttpClientErrc e) noexcept;

// The snake_case name a JSON body shows for an error of a call ("connect_failed",
// "deadline_exceeded", "cancelled", ...).
std::string_view error_name(std::error_code ec) noexcept;

}  // namespace reqctx

template <>
struct std::is_error_code_enum<reqctx::HttpClientErrc> : std::true_type {};
