#include "middleware/field_lookup.hpp"

namespace reqctx {

bool field_name_equals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        // ASCII letters differ from their other case in bit 0x20 only; every other byte must match.
        const char x = a[i];
        const char y = b[i];
        if (x == y) continue;
        if ((x | 0x20) != (y | 0x20)) return false;
        const char lower = static_cast<char>(x | 0x20);
        if (lower < 'a' || lower > 'z') return false;
    }
    return true;
}

FieldValues find_field_values(const boost::beast::http::fields& headers, std::string_view name) {
    FieldValues found;
    for_each_field_value(headers, name, [&found](std::string_view value) {
        if (found.count++ == 0) found.first = value;
    });
    return found;
}

}  // namespace reqctx
