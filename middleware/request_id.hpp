#pragma once

// Request ID middleware step: X-Request-ID is kept when exactly one line holds 1..128 of
// [A-Za-z0-9._:-]; otherwise (absent, empty, too long, other characters, repeated) a fresh
// UUIDv4 is generated. The rejected value is never returned, echoed or logged.

#include "clients/propagation.hpp"
#include "middleware/field_lookup.hpp"

namespace reqctx {

RequestId resolve_request_id(const Request& req);
// The same from the X-Request-ID lines found by scan_known_fields.
RequestId resolve_request_id(const FieldValues& request_id);

}  // namespace reqctx
