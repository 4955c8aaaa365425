#include "middleware/request_id.hpp"

namespace reqctx {

RequestId resolve_request_id(const boost::beast::http::fields& headers) {
    auto [first, last] = headers.equal_range("X-Request-ID");
    if (first != last && std::next(first) == last) {
        const auto value = first->value();
        const std::string_view v(value.data(), value.size());
        if (is_valid_request_id(v)) return RequestId{std::string(v)};
    }
    return RequestId{generate_request_id()};
}

}  // namespace reqctx
