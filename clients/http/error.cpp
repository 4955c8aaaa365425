#include "clients/http/error.hpp"

#include <string>

#include "context/context.hpp"

namespace reqctx {
namespace {

class HttpClientCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "reqctx.http_client"; }
    std::string message(int ev) const override {
        return std::string(error_name(std::error_code(ev, *this)));
    }
};

}  // namespace

const std::error_category& http_client_category() noexcept {
    static const HttpClientCategory category;
    return category;
}

std::error_code make_error_code(HttpClientErrc e) noexcept {
    return {static_cast<int>(e), http_client_category()};
}

std::string_view error_name(std::error_code ec) noexcept {
    if (ec.category() == http_client_category()) {
        switch (static_cast<HttpClientErrc>(ec.value())) {
            case HttpClientErrc::invalid_url:
                return "invalid_url";
            case HttpClientErrc::connect_failed:
                return "connect_failed";
            case HttpClientErrc::connection_closed:
                return "connection_closed";
            case HttpClientErrc::protocol_error:
                return "protocol_error";
            case HttpClientErrc::response_too_large:
                return "response_too_large";
        }
    }
    if (ec == ContextErrc::deadline_exceeded) return "deadline_exceeded";
    if (ec == ContextErrc::canceled) return "cancelled";  // the HTTP contract's spelling
    return "internal";
}

}  // namespace reqctx
