#pragma once

// What the access log and the metrics learn about one finished request.

#include <cstddef>
#include <optional>
#include <string_view>

#include "clients/propagation.hpp"

namespace reqctx {

// The trace identifiers of the access line: copied out of the request's context, which ends
// before the line is written.
struct ExchangeTrace {
    TraceId trace_id{};
    SpanId span_id{};
};

inline ExchangeTrace exchange_trace(const TraceContext& trace) noexcept {
    return {trace.trace_id, trace.span_id};
}

struct Exchange {
    std::string_view method;         // "GET"
    std::string_view route;          // route pattern ("/v1/cache/{key}"), "unmatched" otherwise
    std::size_t route_index = 0;     // Router's index for the pattern (metrics cache key)
    unsigned status = 0;             // 499 when the client left
    std::size_t bytes = 0;           // response body bytes written
    double duration_s = 0;           // from the first header byte parsed to the response handed
                                     // to the socket (metrics) or its last byte sent (access log)
    std::string_view cancel_reason;  // "" or client_disconnect|deadline|shutdown
    std::string_view request_id;     // "" when the request never got one
    std::optional<ExchangeTrace> trace;
};

}  // namespace reqctx
