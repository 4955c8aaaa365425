#include "middleware/trace.hpp"

#include <string_view>

#include "middleware/field_lookup.hpp"

namespace reqctx {

TraceContext resolve_trace(const Request& req) {
    FieldLines parent_lines;
    FieldLines state_lines;
    for_each_field_value(req, "traceparent",
                         [&](std::string_view v) { parent_lines.push_back(v); });
    for_each_field_value(req, "tracestate", [&](std::string_view v) { state_lines.push_back(v); });
    return resolve_trace(parent_lines, state_lines);
}

TraceContext resolve_trace(const FieldLines& parent_lines, const FieldLines& state_lines) {
    if (parent_lines.empty()) return make_trace_context(std::nullopt, std::nullopt);
    auto parent = parse_traceparent(parent_lines);
    std::optional<std::string> state;
    if (parent && !state_lines.empty()) state = parse_tracestate(state_lines);
    return make_trace_context(parent, std::move(state));
}

}  // namespace reqctx
