#pragma once

// Deadline middleware step: the request's timeout is X-Request-Timeout-Ms (one line, a decimal
// integer in 1..cap, surrounding spaces allowed) or the server default when absent. Anything
// else is invalid (nullopt) and the server answers 400 invalid_timeout.

#include <chrono>
#include <optional>
#include <string_view>

#include "middleware/field_lookup.hpp"

namespace reqctx {

std::optional<std::chrono::milliseconds> parse_timeout_value(std::string_view text,
                                                             std::chrono::milliseconds cap);

std::optional<std::chrono::milliseconds> resolve_request_timeout(
    const Request& req, std::chrono::milliseconds default_timeout, std::chrono::milliseconds cap);
// The same from the X-Request-Timeout-Ms lines found by scan_known_fields.
std::optional<std::chrono::milliseconds> resolve_request_timeout(
    const FieldValues& request_timeout, std::chrono::milliseconds default_timeout,
    std::chrono::milliseconds cap);

}  // namespace reqctx
