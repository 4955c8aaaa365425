#pragma once

// What crosses a service boundary with a request: its ID and its W3C Trace Context
// (https://www.w3.org/TR/trace-context/). The inbound middleware parses these from headers and
// stores them as typed context values; the outgoing HTTP client reads them back to propagate.
// Pure functions, no I/O.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "context/context.hpp"

namespace reqctx {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

// This request's place in a trace: trace_id kept from a valid traceparent (else new), span_id
// new for this request, parent_span_id from the incoming traceparent (absent for a new trace).
struct TraceContext {
    TraceId trace_id{};
    SpanId span_id{};
    std::optional<SpanId> parent_span_id;
    std::uint8_t flags = 0;
    std::string tracestate;  // empty: none (dropped or absent)
};

inline constexpr std::size_t kMaxRequestIdLength = 128;

// A validated request ID: 1..kMaxRequestIdLength of [A-Za-z0-9._:-], or a generated UUIDv4 text.
struct RequestId {
    std::string value;
};

inline const Key<RequestId> kRequestIdKey{"request_id"};
inline const Key<TraceContext> kTraceKey{"trace"};

// A parsed traceparent header (before this request's own span is made).
struct TraceParent {
    std::uint8_t version = 0;
    TraceId trace_id{};
    SpanId parent_id{};
    std::uint8_t flags = 0;
};

// Parses the traceparent header lines of one request (all of them, in order: a duplicated line is
// invalid). Version 00 strictly; higher versions by the spec's forward-compatibility rules;
// version ff, all-zero ids and upper-case hex are invalid. Surrounding spaces/tabs are trimmed.
std::optional<TraceParent> parse_traceparent(std::span<const std::string_view> lines);
inline std::optional<TraceParent> parse_traceparent(std::initializer_list<std::string_view> lines) {
    return parse_traceparent(std::span<const std::string_view>(lines.begin(), lines.size()));
}

// Joins every tracestate line in order, trims members, validates keys and values; returns the
// normalised header, or nullopt when any member is invalid or there are more than 32.
std::optional<std::string> parse_tracestate(std::span<const std::string_view> lines);
inline std::optional<std::string> parse_tracestate(std::initializer_list<std::string_view> lines) {
    return parse_tracestate(std::span<const std::string_view>(lines.begin(), lines.size()));
}

// The context for this request: continues `parent` when present (flags kept), else a new trace
// with random trace-id and flags 03; always a fresh random span-id. tracestate is kept only with
// a valid parent.
TraceContext make_trace_context(const std::optional<TraceParent>& parent,
                                std::optional<std::string> tracestate);

// "00-<trace-id>-<span-id>-<flags & 0x03>" for an outgoing call that makes its own new span.
std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, std::uint8_t flags);

// Random ids from a per-thread generator; never all zero.
TraceId random_trace_id();
SpanId random_span_id();

// Lowercase hex text of ids.
// Lower-case hex of `bytes` into out[0, 2 * bytes.size()): no allocation, for hot paths.
void write_hex(std::span<const std::uint8_t> bytes, char* out) noexcept;
std::string to_hex(const TraceId& id);
std::string to_hex(const SpanId& id);

// Accepts 1..128 characters of [A-Za-z0-9._:-].
bool is_valid_request_id(std::string_view candidate) noexcept;
// A fresh UUIDv4 in canonical text form.
std::string generate_request_id();

}  // namespace reqctx
