#pragma once

// User middleware step: X-User-ID (one line of 1..64 [A-Za-z0-9_-]) becomes the typed User
// stored under kUserKey (handlers/handler.hpp); absent means anonymous; anything else is invalid
// and the server answers 400 invalid_user.

#include <optional>
#include <string_view>

#include "handlers/handler.hpp"
#include "middleware/field_lookup.hpp"

namespace reqctx {

bool is_valid_user_id(std::string_view id) noexcept;

struct UserResolution {
    bool valid = true;         // false: 400 invalid_user
    std::optional<User> user;  // empty: anonymous
};

UserResolution resolve_user(const Request& req);
// The same from the X-User-ID lines found by scan_known_fields.
UserResolution resolve_user(const FieldValues& user_id);

}  // namespace reqctx
