#include "middleware/user.hpp"

#include <string>

namespace reqctx {

bool is_valid_user_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

UserResolution resolve_user(const boost::beast::http::fields& headers) {
    auto [first, last] = headers.equal_range("X-User-ID");
    if (first == last) return {};
    if (std::next(first) != last) return {false, std::nullopt};
    const auto v = first->value();
    const std::string_view id(v.data(), v.size());
    if (!is_valid_user_id(id)) return {false, std::nullopt};
    return {true, User{std::string(id)}};
}

}  // namespace reqctx
