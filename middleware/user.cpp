#include "middleware/user.hpp"

#include <array>
#include <string>

#include "middleware/field_lookup.hpp"

namespace reqctx {

bool is_valid_user_id(std::string_view id) noexcept {
    static constexpr std::array<bool, 256> kAllowed = [] {
        std::array<bool, 256> t{};
        for (int c = 0; c < 256; ++c) {
            t[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-';
        }
        return t;
    }();
    if (id.empty() || id.size() > 64) return false;
    bool ok = true;  // no early exit: one table load and one AND per character
    for (const char c : id) ok &= kAllowed[static_cast<unsigned char>(c)];
    return ok;
}

UserResolution resolve_user(const Request& req) {
    return resolve_user(find_field_values(req, "X-User-ID"));
}

UserResolution resolve_user(const FieldValues& found) {
    if (found.count == 0) return {};
    if (found.count > 1 || !is_valid_user_id(found.first)) return {false, std::nullopt};
    return {true, User{std::string(found.first)}};
}

}  // namespace reqctx
