#include "service/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace reqctx {
namespace {

std::vector<std::string> split_pattern(std::string_view pattern) {
    std::vector<std::string> segments;
    if (pattern.empty() || pattern.front() != '/') {
        throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
    }
    std::size_t start = 1;
    while (start <= pattern.size()) {
        std::size_t slash = pattern.find('/', start);
        if (slash == std::string_view::npos) slash = pattern.size();
        segments.emplace_back(pattern.substr(start, slash - start));
        start = slash + 1;
    }
    return segments;
}

bool is_param(std::string_view segment) noexcept {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

bool percent_decode(std::string_view text, std::string& out) {
    out.clear();
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (i + 2 >= text.size()) return false;
        const int hi = hex_digit(text[i + 1]);
        const int lo = hex_digit(text[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return true;
}

void Router::add(http::verb method, std::string_view pattern, Handler handler) {
    auto segments = split_pattern(pattern);
    bool literal = true;
    for (const auto& s : segments) {
        if (s.find('{') != std::string::npos || s.find('}') != std::string::npos) {
            if (!is_param(s)) {
                throw std::invalid_argument("malformed route parameter in " + std::string(pattern));
            }
            literal = false;
        }
    }
    for (const auto& r : routes_) {
        if (r.method == method && r.pattern == pattern) {
            throw std::invalid_argument("duplicate route " + std::string(pattern));
        }
    }
    auto it = std::find(patterns_.begin(), patterns_.end(), pattern);
    const std::size_t index = static_cast<std::size_t>(it - patterns_.begin());
    if (it == patterns_.end()) patterns_.emplace_back(pattern);
    routes_.push_back(Route{method, index, std::move(segments), literal, std::string(pattern),
                            std::move(handler)});
}

std::vector<std::string> Router::patterns() const {
    auto out = patterns_;
    out.emplace_back("unmatched");
    return out;
}

Router::Match Router::match(http::verb method, std::string_view target) const {
    Match m;
    m.route_index = unmatched_index();
    m.pattern = "unmatched";
    std::string_view path = target.substr(0, target.find('?'));
    if (const auto hash = path.find('#'); hash != std::string_view::npos) {
        path = path.substr(0, hash);
    }
    if (path.empty() || path.front() != '/') return m;

    const Route* path_match = nullptr;
    for (const auto& route : routes_) {
        bool matches = false;
        if (route.literal) {
            matches = path == route.pattern;
        } else {
            // Segment-wise comparison without allocating.
            std::size_t pos = 1;
            matches = true;
            for (std::size_t i = 0; i < route.segments.size(); ++i) {
                if (pos > path.size()) {
                    matches = false;
                    break;
                }
                std::size_t slash = path.find('/', pos);
                if (slash == std::string_view::npos) slash = path.size();
                const std::string_view seg = path.substr(pos, slash - pos);
                const auto& want = route.segments[i];
                if (is_param(want) ? seg.empty() : seg != want) {
                    matches = false;
                    break;
                }
                pos = slash + 1;
            }
            if (matches && pos <= path.size()) matches = false;  // path has more segments
        }
        if (!matches) continue;
        if (route.method == method) {
            m.outcome = Outcome::found;
            m.handler = &route.handler;
            m.route_index = route.pattern_index;
            m.pattern = route.pattern;
            if (!route.literal) {
                std::size_t pos = 1;
                for (const auto& want : route.segments) {
                    std::size_t slash = path.find('/', pos);
                    if (slash == std::string_view::npos) slash = path.size();
                    if (is_param(want)) {
                        std::string decoded;
                        if (!percent_decode(path.substr(pos, slash - pos), decoded)) {
                            m.outcome = Outcome::bad_path;
                            m.handler = nullptr;
                            return m;
                        }
                        m.params.add(want.substr(1, want.size() - 2), std::move(decoded));
                    }
                    pos = slash + 1;
                }
            }
            return m;
        }
        if (path_match == nullptr) path_match = &route;
        if (!m.allow.empty()) m.allow += ", ";
        m.allow += http::to_string(route.method);
    }
    if (path_match != nullptr) {
        m.outcome = Outcome::method_not_allowed;
        m.route_index = path_match->pattern_index;
        m.pattern = path_match->pattern;
    }
    return m;
}

}  // namespace reqctx
