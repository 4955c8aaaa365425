// Fuzz target for the parsers that read untrusted header and body text: traceparent, tracestate,
// request IDs and outgoing URLs. Built as a libFuzzer binary with clang (-fsanitize=fuzzer), and
// run over a deterministic corpus plus seeded random inputs by propagation_fuzz_test under gtest.
// Checks properties, not just absence of crashes: accepted input round-trips.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "clients/http/url.hpp"
#include "clients/propagation.hpp"

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (true) {
        const auto nl = text.find('\n');
        lines.push_back(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return lines;
}

void fuzz_traceparent(const std::vector<std::string_view>& lines) {
    const auto tp = reqctx::parse_traceparent(lines);
    if (!tp) return;
    check(lines.size() == 1);
    check(tp->version != 0xff);
    check(reqctx::to_hex(tp->trace_id) != std::string(32, '0'));
    check(reqctx::to_hex(tp->parent_id) != std::string(16, '0'));
    const std::string text = reqctx::format_traceparent(tp->trace_id, tp->parent_id, tp->flags);
    const auto again = reqctx::parse_traceparent(std::vector<std::string_view>{text});
    check(again && again->trace_id == tp->trace_id && again->parent_id == tp->parent_id &&
          again->flags == (tp->flags & 0x03) && again->version == 0);
    const auto tc = reqctx::make_trace_context(tp, std::nullopt);
    check(tc.trace_id == tp->trace_id && tc.flags == tp->flags);
}

void fuzz_tracestate(const std::vector<std::string_view>& lines) {
    const auto state = reqctx::parse_tracestate(lines);
    if (!state) return;
    // The normalised form is a fixed point and has at most 32 members, no OWS, no empties.
    const auto again = reqctx::parse_tracestate(std::vector<std::string_view>{*state});
    check(again && *again == *state);
    if (state->empty()) return;
    std::size_t members = 1;
    for (char c : *state) {
        check(c >= 0x20 && c <= 0x7e);
        if (c == ',') ++members;
    }
    check(members <= 32);
    check(state->front() != ' ' && state->back() != ' ' && state->find(",,") == std::string::npos);
}

void fuzz_request_id(std::string_view text) {
    if (!reqctx::is_valid_request_id(text)) return;
    check(!text.empty() && text.size() <= 128);
}

void fuzz_url(std::string_view text) {
    const auto url = reqctx::parse_http_url(text);
    if (!url) return;
    check(!url->host.empty() && url->port != 0 && !url->target.empty() &&
          url->target.front() == '/');
    check(url->target.find('#') == std::string::npos);
    // What we would call is what we would check against the allow-list: parsing the
    // reconstructed URL gives the same host and port.
    const auto again = reqctx::parse_http_url("http://" + url->authority() + url->target);
    check(again && again->host == url->host && again->port == url->port &&
          again->target == url->target);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 4) {
        case 0:
            fuzz_traceparent(split_lines(text));
            break;
        case 1:
            fuzz_tracestate(split_lines(text));
            break;
        case 2:
            fuzz_request_id(text);
            break;
        default:
            fuzz_url(text);
            break;
    }
    return 0;
}
