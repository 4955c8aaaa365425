#pragma once

// Trace middleware step (W3C Trace Context through clients/propagation.hpp): every traceparent
// line (a duplicated one is invalid) and every tracestate line, in order, make this request's
// TraceContext: a continued trace with a new span, or a new trace (flags 03, tracestate dropped).

#include <boost/beast/http/fields.hpp>

#include "clients/propagation.hpp"

namespace reqctx {

TraceContext resolve_trace(const boost::beast::http::fields& headers);

}  // namespace reqctx
