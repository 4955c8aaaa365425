#include "clients/memcache/errors.hpp"

#include <string>

namespace reqctx::memcache {

namespace {

class MemcacheCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "memcache"; }
    std::string message(int ev) const override {
        switch (static_cast<MemcacheErrc>(ev)) {
            case MemcacheErrc::invalid_key:
                return "invalid key (1..250 bytes, no whitespace or control characters)";
            case MemcacheErrc::value_too_large:
                return "value larger than the item size limit";
            case MemcacheErrc::not_stored:
                return "not stored";
            case MemcacheErrc::exists:
                return "item modified since it was read (cas mismatch)";
            case MemcacheErrc::not_found:
                return "not found";
            case MemcacheErrc::non_numeric_value:
                return "incr/decr on a non-numeric value";
            case MemcacheErrc::server_unreachable:
                return "memcache server unreachable";
            case MemcacheErrc::server_error:
                return "memcache server error";
            case MemcacheErrc::protocol_error:
                return "memcache protocol error";
            case MemcacheErrc::no_servers:
                return "no memcache servers configured";
            case MemcacheErrc::invalid_server:
                return "invalid memcache server";
            case MemcacheErrc::closed:
                return "memcache client not started or closed";
        }
        return "unknown memcache error";
    }
};

}  // namespace

const std::error_category& memcache_category() noexcept {
    static const MemcacheCategory category;
    return category;
}

std::error_code make_error_code(MemcacheErrc e) noexcept {
    return {static_cast<int>(e), memcache_category()};
}

}  // namespace reqctx::memcache
