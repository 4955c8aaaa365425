#pragma once

// Trace middleware step (W3C Trace Context through clients/propagation.hpp): every traceparent
// line (a duplicated one is invalid) and every tracestate line, in order, make this request's
// TraceContext: a continued trace with a new span, or a new trace (flags 03, tracestate dropped).

#include "clients/propagation.hpp"
#include "middleware/field_lookup.hpp"

namespace reqctx {

TraceContext resolve_trace(const Request& req);
// The same from the lines found by scan_known_fields.
TraceContext resolve_trace(const FieldLines& traceparent, const FieldLines& tracestate);

}  // namespace reqctx
