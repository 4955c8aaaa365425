#pragma once

// A reqctx::Request's field lines as owned values, in the order the request keeps them, for
// comparing in tests (gtest prints them with PrintTo).

#include <ostream>
#include <string>
#include <vector>

#include "handlers/request.hpp"

namespace reqctx::test {

struct Line {
    http::field name;
    std::string name_string;
    std::string value;
    bool operator==(const Line&) const = default;
};

inline void PrintTo(const Line& line, std::ostream* os) {
    *os << "{" << static_cast<int>(line.name) << ", \"" << line.name_string << "\", \""
        << line.value << "\"}";
}

inline std::vector<Line> lines(const Request& req) {
    std::vector<Line> out;
    for (const Request::Field f : req.fields()) {
        out.push_back({f.name, std::string(f.name_string), std::string(f.value)});
    }
    return out;
}

}  // namespace reqctx::test
