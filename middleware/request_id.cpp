#include "middleware/request_id.hpp"

#include "middleware/field_lookup.hpp"

namespace reqctx {

RequestId resolve_request_id(const Request& req) {
    return resolve_request_id(find_field_values(req, "X-Request-ID"));
}

RequestId resolve_request_id(const FieldValues& found) {
    if (found.count == 1 && is_valid_request_id(found.first)) {
        return RequestId{std::string(found.first)};
    }
    return RequestId{generate_request_id()};
}

}  // namespace reqctx
