// The house rules that make tips 1, 4, 5 and 7 structural, checked over the sources
// (REQCTX_SOURCE_DIR): no context kept in a member or global, background() only at the root,
// no detached coroutine, and long-lived dependencies refused as context values.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "clients/memcache/client.hpp"
#include "context/semaphore.hpp"
#include "context/task_registry.hpp"
#include "handlers/bulk_sync.hpp"
#include "handlers/cache.hpp"
#include "handlers/events.hpp"
#include "handlers/log.hpp"
#include "handlers/metrics.hpp"
#include "handlers/subscriptions.hpp"

namespace reqctx {
namespace {

namespace fs = std::filesystem;

// Tip 5: what lives longer than a request cannot be a context value.
static_assert(!is_request_scoped_v<memcache::Client>);
static_assert(!is_request_scoped_v<Semaphore>);
static_assert(!is_request_scoped_v<TaskRegistry>);
static_assert(!is_request_scoped_v<Logger>);
static_assert(!is_request_scoped_v<Metrics>);
static_assert(!is_request_scoped_v<CacheHandler>);
static_assert(!is_request_scoped_v<BulkSyncHandler>);
static_assert(!is_request_scoped_v<SubscriptionService>);
static_assert(!is_request_scoped_v<EventPublisher>);

struct Source {
    std::string path;  // relative to the repository
    std::string code;  // with // comments removed
};

std::string strip_line_comments(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    std::string out;
    while (std::getline(in, line)) {
        const auto c = line.find("//");
        out += c == std::string::npos ? line : line.substr(0, c);
        out += '\n';
    }
    return out;
}

std::vector<Source> production_sources() {
    const char* dir = std::getenv("REQCTX_SOURCE_DIR");
    // ctest may not pass REQCTX_SOURCE_DIR (see tests/unit/handlers/CMakeLists.txt).
    const fs::path root = dir != nullptr ? fs::path(dir) : fs::path(REQCTX_SOURCE_DIR_FALLBACK);
    std::vector<Source> out;
    for (const char* folder : {"context", "clients", "handlers", "middleware", "service"}) {
        if (!fs::exists(root / folder)) continue;
        for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
            const auto ext = entry.path().extension();
            if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".hpp")) continue;
            std::ifstream in(entry.path());
            std::stringstream ss;
            ss << in.rdbuf();
            out.push_back(
                {fs::relative(entry.path(), root).string(), strip_line_comments(ss.str())});
        }
    }
    return out;
}

TEST(HouseRules, SourcesAreFound) {
    EXPECT_GT(production_sources().size(), 20u);
}

TEST(HouseRules, NoContextIsStoredInAMemberOrGlobal) {
    const std::regex member(R"(\bContext\s+\w+_\s*[;{=])");
    const std::regex global(R"(\b(static|thread_local)\s+(const\s+)?Context\s+\w+)");
    for (const auto& s : production_sources()) {
        // The library itself holds nodes while it registers listeners: exempt.
        if (s.path.starts_with("context/")) continue;
        EXPECT_FALSE(std::regex_search(s.code, member)) << s.path << " keeps a Context member";
        EXPECT_FALSE(std::regex_search(s.code, global)) << s.path << " keeps a global Context";
    }
}

TEST(HouseRules, BackgroundOnlyInMainAndTests) {
    const std::regex call(R"(\bbackground\(\))");
    for (const auto& s : production_sources()) {
        if (s.path == "service/main.cpp" || s.path.starts_with("context/context.")) continue;
        EXPECT_FALSE(std::regex_search(s.code, call)) << s.path << " calls background()";
    }
}

TEST(HouseRules, NoDetachedCoroutines) {
    const std::regex detached(R"(\b(net|asio)::detached\b)");
    for (const auto& s : production_sources()) {
        EXPECT_FALSE(std::regex_search(s.code, detached)) << s.path << " detaches a coroutine";
    }
}

}  // namespace
}  // namespace reqctx
