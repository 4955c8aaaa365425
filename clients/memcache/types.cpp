#include "clients/memcache/client.hpp"

#include <charconv>

namespace reqctx::memcache {

namespace {
std::error_code err(MemcacheErrc e) {
    return make_error_code(e);
}
}  // namespace

std::string ServerAddress::label() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::error_code validate_key(std::string_view key) noexcept {
    if (key.empty() || key.size() > kMaxKeyLength) return err(MemcacheErrc::invalid_key);
    for (const char ch : key) {
        const auto b = static_cast<unsigned char>(ch);
        if (b <= 0x20 || b == 0x7f) return err(MemcacheErrc::invalid_key);
    }
    return {};
}

Result<std::vector<ServerAddress>> parse_servers(std::string_view spec) {
    std::vector<ServerAddress> out;
    auto parse_num = [](std::string_view s, std::uint64_t max) -> std::optional<std::uint64_t> {
        std::uint64_t v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v > max) return {};
        return v;
    };
    while (!spec.empty()) {
        const auto comma = spec.find(',');
        std::string_view item = spec.substr(0, comma);
        spec.remove_prefix(comma == std::string_view::npos ? spec.size() : comma + 1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item.empty()) return err(MemcacheErrc::invalid_server);
        ServerAddress a;
        std::string_view rest;
        if (item.front() == '[') {
            const auto close = item.find(']');
            if (close == std::string_view::npos || close == 1)
                return err(MemcacheErrc::invalid_server);
            a.host = std::string(item.substr(1, close - 1));
            rest = item.substr(close + 1);
            if (!rest.empty() && rest.front() != ':') return err(MemcacheErrc::invalid_server);
            if (!rest.empty()) rest.remove_prefix(1);
        } else {
            const auto colon = item.find(':');
            a.host = std::string(item.substr(0, colon));
            rest = colon == std::string_view::npos ? std::string_view{} : item.substr(colon + 1);
            if (colon != std::string_view::npos && rest.empty())
                return err(MemcacheErrc::invalid_server);
        }
        if (a.host.empty()) return err(MemcacheErrc::invalid_server);
        if (!rest.empty()) {
            const auto colon = rest.find(':');
            auto port = parse_num(rest.substr(0, colon), 65535);
            if (!port || *port == 0) return err(MemcacheErrc::invalid_server);
            a.port = static_cast<std::uint16_t>(*port);
            if (colon != std::string_view::npos) {
                auto weight = parse_num(rest.substr(colon + 1), 1000000);
                if (!weight || *weight == 0) return err(MemcacheErrc::invalid_server);
                a.weight = static_cast<std::uint32_t>(*weight);
            }
        }
        out.push_back(std::move(a));
    }
    if (out.empty()) return err(MemcacheErrc::invalid_server);
    return out;
}

std::string_view to_string(Op op) noexcept {
    switch (op) {
        case Op::get:
            return "get";
        case Op::get_multi:
            return "get_multi";
        case Op::set:
            return "set";
        case Op::add:
            return "add";
        case Op::replace:
            return "replace";
        case Op::append:
            return "append";
        case Op::prepend:
            return "prepend";
        case Op::cas:
            return "cas";
        case Op::remove:
            return "delete";
        case Op::incr:
            return "incr";
        case Op::decr:
            return "decr";
        case Op::touch:
            return "touch";
        case Op::version:
            return "version";
        case Op::ping:
            return "ping";
    }
    return "unknown";
}

std::string_view to_string(ConnectionState s) noexcept {
    switch (s) {
        case ConnectionState::connecting:
            return "connecting";
        case ConnectionState::connected:
            return "connected";
        case ConnectionState::disconnected:
            return "disconnected";
    }
    return "unknown";
}

std::string_view result_label(const OpEvent& e) noexcept {
    if (!e.ec) {
        if (e.hit) return *e.hit ? "hit" : "miss";
        return "ok";
    }
    if (e.ec == ContextErrc::deadline_exceeded) return "deadline_exceeded";
    if (e.ec == ContextErrc::canceled) return "cancelled";  // the HTTP contract's spelling
    if (e.ec.category() == memcache_category()) {
        switch (static_cast<MemcacheErrc>(e.ec.value())) {
            case MemcacheErrc::invalid_key:
                return "invalid_key";
            case MemcacheErrc::value_too_large:
                return "value_too_large";
            case MemcacheErrc::not_stored:
                return "not_stored";
            case MemcacheErrc::exists:
                return "exists";
            case MemcacheErrc::not_found:
                return "not_found";
            case MemcacheErrc::non_numeric_value:
                return "non_numeric_value";
            case MemcacheErrc::server_unreachable:
                return "server_unreachable";
            case MemcacheErrc::server_error:
                return "server_error";
            case MemcacheErrc::protocol_error:
                return "protocol_error";
            case MemcacheErrc::no_servers:
                return "no_servers";
            case MemcacheErrc::invalid_server:
                return "invalid_server";
            case MemcacheErrc::closed:
                return "closed";
        }
    }
    return "error";
}

}  // namespace reqctx::memcache
