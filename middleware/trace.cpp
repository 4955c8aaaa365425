#include "middleware/trace.hpp"

#include <string_view>
#include <vector>

namespace reqctx {
namespace {

std::vector<std::string_view> lines_of(const boost::beast::http::fields& headers,
                                       std::string_view name) {
    std::vector<std::string_view> lines;
    auto [first, last] = headers.equal_range(name);
    for (auto it = first; it != last; ++it) {
        const auto v = it->value();
        lines.emplace_back(v.data(), v.size());
    }
    return lines;
}

}  // namespace

TraceContext resolve_trace(const boost::beast::http::fields& headers) {
    const auto parent_lines = lines_of(headers, "traceparent");
    if (parent_lines.empty()) return make_trace_context(std::nullopt, std::nullopt);
    auto parent = parse_traceparent(parent_lines);
    std::optional<std::string> state;
    if (parent) {
        const auto state_lines = lines_of(headers, "tracestate");
        if (!state_lines.empty()) state = parse_tracestate(state_lines);
    }
    return make_trace_context(parent, std::move(state));
}

}  // namespace reqctx
