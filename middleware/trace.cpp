#include "middleware/trace.hpp"

#include <string_view>

#include <boost/container/small_vector.hpp>

#include "middleware/field_lookup.hpp"

namespace reqctx {
namespace {

// Requests carry one or two lines of each; more spill to the heap.
using Lines = boost::container::small_vector<std::string_view, 4>;

Lines lines_of(const boost::beast::http::fields& headers, std::string_view name) {
    Lines lines;
    for_each_field_value(headers, name, [&lines](std::string_view v) { lines.push_back(v); });
    return lines;
}

}  // namespace

TraceContext resolve_trace(const boost::beast::http::fields& headers) {
    const Lines parent_lines = lines_of(headers, "traceparent");
    if (parent_lines.empty()) return make_trace_context(std::nullopt, std::nullopt);
    auto parent = parse_traceparent(parent_lines);
    std::optional<std::string> state;
    if (parent) {
        const Lines state_lines = lines_of(headers, "tracestate");
        if (!state_lines.empty()) state = parse_tracestate(state_lines);
    }
    return make_trace_context(parent, std::move(state));
}

}  // namespace reqctx
