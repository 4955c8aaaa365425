// HttpMetrics counts per thread and sums at scrape: threads that record and exit while another
// thread scrapes lose nothing, series only grow, and a record made while a thread exits counts.
// The Logger's queue under many writers: every line arrives once and whole, sync() included.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>

#include "handlers/log.hpp"
#include "handlers/metrics.hpp"
#include "middleware/access_log.hpp"
#include "middleware/http_metrics.hpp"

namespace reqctx {
namespace {

// The value of the series whose line starts with `series` (then a space); -1 when absent.
double value_of(const std::string& exposition, std::string_view series) {
    std::size_t at = 0;
    while ((at = exposition.find(series, at)) != std::string::npos) {
        const bool line_start = at == 0 || exposition[at - 1] == '\n';
        const std::size_t after = at + series.size();
        if (line_start && after < exposition.size() && exposition[after] == ' ') {
            return std::strtod(exposition.c_str() + after + 1, nullptr);
        }
        at = after;
    }
    return -1;
}

Exchange exchange(int i) {
    static constexpr std::string_view kMethods[] = {"GET", "POST", "BREW"};
    Exchange e;
    e.method = kMethods[i % 3];
    e.route_index = static_cast<std::size_t>(i / 3 % 2);
    e.route = e.route_index == 0 ? "/a" : "/b";
    e.status = i % 5 == 0 ? 404 : 200;
    e.duration_s = 0.001 * (i % 7);
    e.cancel_reason = i % 10 == 0 ? "deadline" : "";
    return e;
}

// Records from a thread_local destructor: after the thread gave its shard back.
struct RecordAtExit {
    HttpMetrics* http = nullptr;
    ~RecordAtExit() {
        if (http != nullptr) http->record(exchange(1));  // POST /a 200
    }
};

TEST(HttpMetricsConcurrency, ThreadsThatRecordAndExitLoseNothingWhileScraped) {
    Metrics metrics;
    HttpMetrics http(metrics, nullptr);
    http.set_routes({"/a", "/b"});
    constexpr int kWaves = 4;
    constexpr int kThreads = 4;
    constexpr int kPerThread = 3000;

    std::atomic<bool> done{false};
    std::atomic<int> decreases{0};
    std::thread scraper([&] {
        double last = 0;
        for (int n = 0; n < 1000000 && !done.load(); ++n) {
            const double now = value_of(
                metrics.scrape(), R"(http_requests_total{method="GET",route="/a",status="200"})");
            if (now < 0 && last == 0) continue;  // not seen yet
            if (now < last) decreases.fetch_add(1);
            if (now > last) last = now;
        }
    });
    for (int wave = 0; wave < kWaves; ++wave) {
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&http] {
                thread_local RecordAtExit at_exit;  // constructed before the first record
                at_exit.http = &http;
                for (int i = 0; i < kPerThread; ++i) http.record(exchange(i));
            });
        }
        for (auto& t : threads) t.join();
    }
    done.store(true);
    scraper.join();
    EXPECT_EQ(decreases.load(), 0);

    // What every thread recorded, counted the same way.
    std::map<std::string, double> expected;
    double deadline = 0;
    std::map<std::string, double> per_route;
    for (int i = 0; i < kPerThread; ++i) {
        const Exchange e = exchange(i);
        const std::string method = e.method == "BREW" ? "other" : std::string(e.method);
        expected[R"(http_requests_total{method=")" + method + R"(",route=")" +
                 std::string(e.route) + R"(",status=")" + std::to_string(e.status) + R"("})"] += 1;
        per_route[std::string(e.route)] += 1;
        if (!e.cancel_reason.empty()) deadline += 1;
    }
    const double runs = kWaves * kThreads;
    const std::string text = metrics.scrape();
    for (const auto& [series, count] : expected) {
        double want = count * runs;
        if (series == R"(http_requests_total{method="POST",route="/a",status="200"})") {
            want += runs;  // one per thread, recorded at exit
        }
        EXPECT_EQ(value_of(text, series), want) << series;
    }
    EXPECT_EQ(value_of(text, R"(http_request_duration_seconds_count{route="/a"})"),
              per_route["/a"] * runs + runs);
    EXPECT_EQ(value_of(text, R"(http_request_duration_seconds_count{route="/b"})"),
              per_route["/b"] * runs);
    EXPECT_EQ(value_of(text, R"(http_requests_cancelled_total{reason="deadline"})"),
              deadline * runs);
}

TEST(LoggerConcurrency, LinesFromManyThreadsArriveOnceAndWhole) {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    constexpr int kThreads = 4;
    constexpr int kLines = 5000;
    {
        Logger logger(LogFormat::json, spdlog::level::info, sink);
        AccessLog access(logger);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&logger, &access, t] {
                const std::string id = "t" + std::to_string(t);
                for (int i = 0; i < kLines; ++i) {
                    const RequestId rid{id + "-" + std::to_string(i)};
                    Exchange e = exchange(i);
                    e.request_id = rid.value;
                    if (i % 500 == 0) {
                        logger.warn("tick", {{"request_id", rid.value}});  // wakes the writer
                    } else {
                        access.write(e);
                    }
                    if (i % 1000 == 0) logger.sync();
                }
            });
        }
        for (auto& th : threads) th.join();
        logger.sync();
        // Everything written before sync() has reached the sink.
        const std::string text = out.str();
        EXPECT_EQ(static_cast<int>(std::count(text.begin(), text.end(), '\n')), kThreads * kLines);
    }
    std::set<std::string> ids;
    std::istringstream in(out.str());
    int lines = 0;
    for (std::string line; std::getline(in, line) && lines <= kThreads * kLines; ++lines) {
        ASSERT_EQ(line.rfind(R"({"ts":")", 0), 0U) << line;
        ASSERT_EQ(line.back(), '}') << line;
        const std::size_t at = line.find(R"("request_id":")");
        ASSERT_NE(at, std::string::npos) << line;
        const std::size_t start = at + 14;
        ids.insert(line.substr(start, line.find('"', start) - start));
    }
    EXPECT_EQ(lines, kThreads * kLines);
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kLines));
}

}  // namespace
}  // namespace reqctx
