#include "handlers/cache.hpp"

#include <charconv>
#include <string>

#include <boost/beast/http/field.hpp>

#include "clients/memcache/client.hpp"
#include "handlers/errors.hpp"

namespace reqctx {

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Query-string decoding: "+" is a space, "%XY" a byte; a malformed escape is kept as is.
std::string decode_query_component(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out.push_back(' ');
        } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
                   hex_value(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

Response empty_response(const Request& req, http::status status) {
    Response res{status, req.version()};
    return res;
}

// A failed memcache op: the context's own error when it is done (deadline 504, client gone 499,
// shutdown 503), else the op's error mapped in errors.cpp.
Response op_error_response(const Context& ctx, const Request& req, std::error_code ec) {
    if (ctx.done() && (ec == ContextErrc::canceled || ec == ContextErrc::deadline_exceeded)) {
        return context_error_response(ctx, req);
    }
    return error_response(ctx, req, ec);
}

Response invalid_key_response(const Context& ctx, const Request& req) {
    return error_response(ctx, req, http::status::bad_request, "invalid_key",
                          "The key must be 1..250 bytes without whitespace or control "
                          "characters.");
}

}  // namespace

bool is_valid_cache_key(std::string_view key) noexcept {
    if (key.empty() || key.size() > memcache::kMaxKeyLength) return false;
    for (const char ch : key) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f) return false;
    }
    return true;
}

std::optional<std::uint32_t> parse_ttl(std::optional<std::string_view> text) noexcept {
    if (!text) return std::uint32_t{0};
    // `?ttl=` or `?ttl` is a value that is not a non-negative integer, not an absent one.
    if (text->empty() || text->size() > 10) return std::nullopt;
    std::uint32_t value = 0;
    const auto* end = text->data() + text->size();
    const auto [ptr, ec] = std::from_chars(text->data(), end, value);
    if (ec != std::errc{} || ptr != end || (*text)[0] == '-' || (*text)[0] == '+') {
        return std::nullopt;
    }
    return value;
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    std::string_view query = target.substr(q + 1);
    if (const auto hash = query.find('#'); hash != std::string_view::npos) {
        query = query.substr(0, hash);
    }
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        const std::string_view k = pair.substr(0, eq);
        if (decode_query_component(k) != name) continue;
        return eq == std::string_view::npos ? std::string{}
                                            : decode_query_component(pair.substr(eq + 1));
    }
    return std::nullopt;
}

std::string_view cache_error_code(std::error_code ec) noexcept {
    return http_error_for(ec).code;
}

net::awaitable<Response> CacheHandler::get(Context ctx, const Request& req,
                                           const RouteParams& params) {
    const std::string_view key = params.get("key");
    if (!is_valid_cache_key(key)) {
        co_return invalid_key_response(ctx, req);
    }
    auto result = co_await client_.get(ctx, std::string(key));
    if (!result) co_return op_error_response(ctx, req, result.error());
    if (!result->has_value()) {
        co_return error_response(ctx, req, http::status::not_found, "not_found",
                                 "No value is stored under this key.");
    }
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/octet-stream");
    res.body() = std::move((*result)->value);
    co_return res;
}

net::awaitable<Response> CacheHandler::put(Context ctx, const Request& req,
                                           const RouteParams& params) {
    const std::string_view key = params.get("key");
    if (!is_valid_cache_key(key)) {
        co_return invalid_key_response(ctx, req);
    }
    const auto ttl_text = query_param(req.target(), "ttl");
    const auto ttl =
        parse_ttl(ttl_text ? std::optional<std::string_view>(*ttl_text) : std::nullopt);
    if (!ttl) {
        co_return error_response(ctx, req, http::status::bad_request, "invalid_ttl",
                                 "ttl must be a non-negative integer number of seconds.");
    }
    if (req.body().size() > max_item_bytes_) {
        co_return error_response(ctx, req, http::status::payload_too_large, "value_too_large",
                                 "The value is larger than the cache item size limit.");
    }
    const std::error_code ec =
        co_await client_.set(ctx, std::string(key), req.body(), memcache::Ttl{*ttl});
    if (ec) co_return op_error_response(ctx, req, ec);
    co_return empty_response(req, http::status::no_content);
}

net::awaitable<Response> CacheHandler::remove(Context ctx, const Request& req,
                                              const RouteParams& params) {
    const std::string_view key = params.get("key");
    if (!is_valid_cache_key(key)) {
        co_return invalid_key_response(ctx, req);
    }
    auto result = co_await client_.remove(ctx, std::string(key));
    if (!result) co_return op_error_response(ctx, req, result.error());
    if (!*result) {
        co_return error_response(ctx, req, http::status::not_found, "not_found",
                                 "No value is stored under this key.");
    }
    co_return empty_response(req, http::status::no_content);
}

}  // namespace reqctx
