#include "middleware/deadline.hpp"

#include <cstdint>

#include "middleware/field_lookup.hpp"

namespace reqctx {

std::optional<std::chrono::milliseconds> parse_timeout_value(std::string_view text,
                                                             std::chrono::milliseconds cap) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    if (text.empty() || text.size() > 18) return std::nullopt;
    std::int64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    if (value < 1 || value > cap.count()) return std::nullopt;
    return std::chrono::milliseconds(value);
}

std::optional<std::chrono::milliseconds> resolve_request_timeout(
    const Request& req, std::chrono::milliseconds default_timeout, std::chrono::milliseconds cap) {
    return resolve_request_timeout(find_field_values(req, "X-Request-Timeout-Ms"), default_timeout,
                                   cap);
}

std::optional<std::chrono::milliseconds> resolve_request_timeout(
    const FieldValues& found, std::chrono::milliseconds default_timeout,
    std::chrono::milliseconds cap) {
    if (found.count == 0) return default_timeout;
    if (found.count > 1) return std::nullopt;
    return parse_timeout_value(found.first, cap);
}

}  // namespace reqctx
