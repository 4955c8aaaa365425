#include "middleware/user.hpp"

#include <string>

#include "middleware/field_lookup.hpp"

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
    const FieldValues found = find_field_values(headers, "X-User-ID");
    if (found.count == 0) return {};
    if (found.count > 1 || !is_valid_user_id(found.first)) return {false, std::nullopt};
    return {true, User{std::string(found.first)}};
}

}  // namespace reqctx
