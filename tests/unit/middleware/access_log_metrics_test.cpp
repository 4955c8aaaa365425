// Output identity of the access log and the HTTP metrics: the exact line for a known exchange
// (the stack path against the general LogLine path) and the exact /metrics exposition for a known
// sequence of requests (recorded from the implementation that fed prometheus on every request).

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>
#include <spdlog/sinks/ostream_sink.h>

#include "clients/propagation.hpp"
#include "handlers/log.hpp"
#include "handlers/metrics.hpp"
#include "middleware/access_log.hpp"
#include "middleware/http_metrics.hpp"

namespace reqctx {
namespace {

// Every line the logger hands its sink.
std::vector<std::string> logged(LogFormat format, const std::function<void(Logger&)>& body) {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    {
        Logger logger(format, spdlog::level::info, sink);
        body(logger);
    }  // the logger writes every queued line before it is destroyed
    std::vector<std::string> lines;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// The line without its timestamp, which must have the documented shape.
std::string without_ts(const std::string& line, LogFormat format) {
    static const std::regex json_ts(R"(^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z",)");
    static const std::regex text_ts(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z )");
    std::smatch m;
    const bool ok = std::regex_search(line, m, format == LogFormat::json ? json_ts : text_ts);
    EXPECT_TRUE(ok) << line;
    return ok ? line.substr(static_cast<std::size_t>(m.length(0))) : line;
}

struct Ids {
    RequestId rid{"req-1"};
    TraceContext trace;
    Ids() {
        for (std::size_t i = 0; i < trace.trace_id.size(); ++i) {
            trace.trace_id[i] = static_cast<std::uint8_t>(0x0f + 17 * i);
        }
        for (std::size_t i = 0; i < trace.span_id.size(); ++i) {
            trace.span_id[i] = static_cast<std::uint8_t>(0xf0 - 13 * i);
        }
    }
};

Exchange known(const Ids& ids) {
    Exchange e;
    e.method = "GET";
    e.route = "/v1/cache/{key}";
    e.status = 200;
    e.bytes = 12;
    e.duration_s = 0.0012345;
    e.request_id = ids.rid.value;
    e.trace = exchange_trace(ids.trace);
    return e;
}

// The access line as the general path renders it (LogLine fields, Logger::write).
void write_general(Logger& logger, const Exchange& e) {
    LogLine line(logger.format());
    line.reset("request");
    if (!e.request_id.empty()) line.str_plain("request_id", e.request_id);
    if (e.trace) {
        line.str_plain("trace_id", to_hex(e.trace->trace_id));
        line.str_plain("span_id", to_hex(e.trace->span_id));
    }
    line.str("method", e.method);
    line.str("route", e.route);
    line.num("status", e.status);
    line.real("duration_ms", e.duration_s * 1000.0);
    line.num("bytes", static_cast<std::int64_t>(e.bytes));
    if (e.cancel_reason.empty()) {
        line.field("cancel_reason", nullptr);
    } else {
        line.str("cancel_reason", e.cancel_reason);
    }
    logger.write(spdlog::level::info, line);
}

TEST(AccessLogOutput, KnownExchangeGivesTheExactJsonLine) {
    const Ids ids;
    const auto lines =
        logged(LogFormat::json, [&](Logger& logger) { AccessLog(logger).write(known(ids)); });
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_EQ(without_ts(lines[0], LogFormat::json),
              R"("level":"info","msg":"request","request_id":"req-1",)"
              R"("trace_id":"0f2031425364758697a8b9cadbecfd0e","span_id":"f0e3d6c9bcafa295",)"
              R"("method":"GET","route":"/v1/cache/{key}","status":200,"duration_ms":1.235,)"
              R"("bytes":12,"cancel_reason":null})");
}

TEST(AccessLogOutput, KnownExchangeGivesTheExactTextLine) {
    const Ids ids;
    const auto lines =
        logged(LogFormat::text, [&](Logger& logger) { AccessLog(logger).write(known(ids)); });
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_EQ(without_ts(lines[0], LogFormat::text),
              "info request request_id=req-1 trace_id=0f2031425364758697a8b9cadbecfd0e "
              "span_id=f0e3d6c9bcafa295 method=GET route=/v1/cache/{key} status=200 "
              "duration_ms=1.235 bytes=12 cancel_reason=null");
}

TEST(AccessLogOutput, StackPathMatchesTheGeneralPathForEveryShape) {
    const Ids ids;
    std::vector<Exchange> cases;
    Exchange e = known(ids);
    cases.push_back(e);
    e.request_id = {};
    cases.push_back(e);
    e.trace.reset();
    cases.push_back(e);
    e = known(ids);
    e.status = 499;
    e.cancel_reason = "client_disconnect";
    e.bytes = 0;
    cases.push_back(e);
    e.status = 5;
    e.bytes = 1234567890123ULL;
    e.duration_s = 0;
    cases.push_back(e);
    e.status = 1000;
    e.bytes = 99;
    e.duration_s = 2e13;  // printf's branch of format_fixed3
    cases.push_back(e);
    e.duration_s = -0.0000001;
    e.bytes = 100;
    cases.push_back(e);
    e.duration_s = 123.4565;
    e.method = "BREW";
    e.route = "unmatched";
    e.bytes = 999;
    cases.push_back(e);
    e.route = std::string_view("/v1/with\"quote");  // escaping: the general path
    cases.push_back(e);
    const std::string long_id(900, 'r');  // too long for the stack line
    const RequestId long_rid{long_id};
    e = known(ids);
    e.request_id = long_rid.value;
    cases.push_back(e);

    for (const LogFormat format : {LogFormat::json, LogFormat::text}) {
        const auto fast = logged(format, [&](Logger& logger) {
            AccessLog log(logger);
            for (const auto& c : cases) log.write(c);
        });
        const auto general = logged(format, [&](Logger& logger) {
            for (const auto& c : cases) write_general(logger, c);
        });
        ASSERT_EQ(fast.size(), cases.size());
        ASSERT_EQ(general.size(), cases.size());
        for (std::size_t i = 0; i < cases.size(); ++i) {
            EXPECT_EQ(without_ts(fast[i], format), without_ts(general[i], format)) << i;
        }
    }
}

TEST(LoggerOutput, LinesKeepTheirShapeAtEveryLengthAndLevel) {
    const std::string long_value(3000, 'v');  // longer than the stack buffer
    const auto lines = logged(LogFormat::json, [&](Logger& logger) {
        logger.info("listening", {{"address", "127.0.0.1:8080"}, {"threads", 2}});
        logger.warn("slow", {{"value", long_value}});
        logger.error("failed", {{"ok", false}, {"ratio", 0.5}, {"none", nullptr}});
    });
    ASSERT_EQ(lines.size(), 3U);
    EXPECT_EQ(without_ts(lines[0], LogFormat::json),
              R"("level":"info","msg":"listening","address":"127.0.0.1:8080","threads":2})");
    EXPECT_EQ(without_ts(lines[1], LogFormat::json),
              R"("level":"warn","msg":"slow","value":")" + long_value + R"("})");
    EXPECT_EQ(without_ts(lines[2], LogFormat::json),
              R"("level":"error","msg":"failed","ok":false,"ratio":0.500,"none":null})");

    const auto text = logged(LogFormat::text, [&](Logger& logger) {
        logger.info("listening", {{"address", "127.0.0.1:8080"}});
    });
    ASSERT_EQ(text.size(), 1U);
    EXPECT_EQ(without_ts(text[0], LogFormat::text), "info listening address=127.0.0.1:8080");
}

// reqctx_contexts_live counts every context in the process: not part of the comparison.
std::string stable(std::string exposition) {
    static const std::regex live(R"(reqctx_contexts_live [^\n]*)");
    return std::regex_replace(exposition, live, "reqctx_contexts_live N");
}

TEST(HttpMetricsOutput, ExpositionForAKnownSequenceIsExact) {
    Metrics metrics;
    HttpMetrics http(metrics, [] { return std::size_t{2}; });
    http.set_routes({"/healthz", "/v1/whoami"});
    const auto record = [&](std::string_view method, std::size_t index, std::string_view route,
                            unsigned status, double duration, std::string_view reason) {
        Exchange e;
        e.method = method;
        e.route_index = index;
        e.route = route;
        e.status = status;
        e.duration_s = duration;
        e.cancel_reason = reason;
        http.record(e);
    };
    // Before any request: every family is listed; http_requests_total, without samples, last.
    EXPECT_EQ(
        stable(metrics.scrape()),
        stable(
            R"exp(# HELP http_requests_cancelled_total Requests whose context was cancelled, by reason
# TYPE http_requests_cancelled_total counter
http_requests_cancelled_total{reason="shutdown"} 0
http_requests_cancelled_total{reason="deadline"} 0
http_requests_cancelled_total{reason="client_disconnect"} 0
# HELP http_requests_in_flight HTTP requests being handled
# TYPE http_requests_in_flight gauge
http_requests_in_flight 2
# HELP reqctx_contexts_live Derived contexts alive in the process
# TYPE reqctx_contexts_live gauge
reqctx_contexts_live 0
# HELP http_request_duration_seconds HTTP request duration by route pattern
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_count{route="unmatched"} 0
http_request_duration_seconds_sum{route="unmatched"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.0001"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.00025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.0005"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.001"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.0025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.005"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.01"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.05"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.1"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.25"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.5"} 0
http_request_duration_seconds_bucket{route="unmatched",le="1"} 0
http_request_duration_seconds_bucket{route="unmatched",le="2.5"} 0
http_request_duration_seconds_bucket{route="unmatched",le="5"} 0
http_request_duration_seconds_bucket{route="unmatched",le="10"} 0
http_request_duration_seconds_bucket{route="unmatched",le="+Inf"} 0
http_request_duration_seconds_count{route="/v1/whoami"} 0
http_request_duration_seconds_sum{route="/v1/whoami"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0001"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.00025"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0005"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.001"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0025"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.005"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.01"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.025"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.05"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.1"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.25"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.5"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="1"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="2.5"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="5"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="10"} 0
http_request_duration_seconds_bucket{route="/v1/whoami",le="+Inf"} 0
http_request_duration_seconds_count{route="/healthz"} 0
http_request_duration_seconds_sum{route="/healthz"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.0001"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.00025"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.0005"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.001"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.0025"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.005"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.01"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.025"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.05"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.1"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.25"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.5"} 0
http_request_duration_seconds_bucket{route="/healthz",le="1"} 0
http_request_duration_seconds_bucket{route="/healthz",le="2.5"} 0
http_request_duration_seconds_bucket{route="/healthz",le="5"} 0
http_request_duration_seconds_bucket{route="/healthz",le="10"} 0
http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 0
# HELP http_requests_total HTTP requests by method, route pattern and status
# TYPE http_requests_total counter
)exp"));
    record("GET", 0, "/healthz", 200, 0.0003, "");
    record("GET", 0, "/healthz", 200, 0.002, "");
    record("POST", 1, "/v1/whoami", 401, 0.00005, "");
    EXPECT_EQ(
        stable(metrics.scrape()),
        stable(R"exp(# HELP http_requests_total HTTP requests by method, route pattern and status
# TYPE http_requests_total counter
http_requests_total{method="POST",route="/v1/whoami",status="401"} 1
http_requests_total{method="GET",route="/healthz",status="200"} 2
# HELP http_requests_cancelled_total Requests whose context was cancelled, by reason
# TYPE http_requests_cancelled_total counter
http_requests_cancelled_total{reason="shutdown"} 0
http_requests_cancelled_total{reason="deadline"} 0
http_requests_cancelled_total{reason="client_disconnect"} 0
# HELP http_requests_in_flight HTTP requests being handled
# TYPE http_requests_in_flight gauge
http_requests_in_flight 2
# HELP reqctx_contexts_live Derived contexts alive in the process
# TYPE reqctx_contexts_live gauge
reqctx_contexts_live 0
# HELP http_request_duration_seconds HTTP request duration by route pattern
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_count{route="unmatched"} 0
http_request_duration_seconds_sum{route="unmatched"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.0001"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.00025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.0005"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.001"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.0025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.005"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.01"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.05"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.1"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.25"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.5"} 0
http_request_duration_seconds_bucket{route="unmatched",le="1"} 0
http_request_duration_seconds_bucket{route="unmatched",le="2.5"} 0
http_request_duration_seconds_bucket{route="unmatched",le="5"} 0
http_request_duration_seconds_bucket{route="unmatched",le="10"} 0
http_request_duration_seconds_bucket{route="unmatched",le="+Inf"} 0
http_request_duration_seconds_count{route="/v1/whoami"} 1
http_request_duration_seconds_sum{route="/v1/whoami"} 5e-05
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0001"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.00025"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0005"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.001"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0025"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.005"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.01"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.025"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.05"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.1"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.25"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.5"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="1"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="2.5"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="5"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="10"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="+Inf"} 1
http_request_duration_seconds_count{route="/healthz"} 2
http_request_duration_seconds_sum{route="/healthz"} 0.0023
http_request_duration_seconds_bucket{route="/healthz",le="0.0001"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.00025"} 0
http_request_duration_seconds_bucket{route="/healthz",le="0.0005"} 1
http_request_duration_seconds_bucket{route="/healthz",le="0.001"} 1
http_request_duration_seconds_bucket{route="/healthz",le="0.0025"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.005"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.01"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.025"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.05"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.1"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.25"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.5"} 2
http_request_duration_seconds_bucket{route="/healthz",le="1"} 2
http_request_duration_seconds_bucket{route="/healthz",le="2.5"} 2
http_request_duration_seconds_bucket{route="/healthz",le="5"} 2
http_request_duration_seconds_bucket{route="/healthz",le="10"} 2
http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 2
)exp"));
    record("BREW", 2, "unmatched", 404, 0.5, "");  // a method outside the standard set
    record("GET", 1, "/v1/whoami", 499, 0.02, "client_disconnect");
    record("DELETE", 7, "unmatched", 405, 20.0, "deadline");  // an index past the routes
    record("GET", 0, "/healthz", 200, 0.0001, "");
    record("GET", 0, "/healthz", 503, 0.25, "shutdown");
    EXPECT_EQ(
        stable(metrics.scrape()),
        stable(R"exp(# HELP http_requests_total HTTP requests by method, route pattern and status
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/healthz",status="503"} 1
http_requests_total{method="DELETE",route="unmatched",status="405"} 1
http_requests_total{method="other",route="unmatched",status="404"} 1
http_requests_total{method="GET",route="/v1/whoami",status="499"} 1
http_requests_total{method="POST",route="/v1/whoami",status="401"} 1
http_requests_total{method="GET",route="/healthz",status="200"} 3
# HELP http_requests_cancelled_total Requests whose context was cancelled, by reason
# TYPE http_requests_cancelled_total counter
http_requests_cancelled_total{reason="shutdown"} 1
http_requests_cancelled_total{reason="deadline"} 1
http_requests_cancelled_total{reason="client_disconnect"} 1
# HELP http_requests_in_flight HTTP requests being handled
# TYPE http_requests_in_flight gauge
http_requests_in_flight 2
# HELP reqctx_contexts_live Derived contexts alive in the process
# TYPE reqctx_contexts_live gauge
reqctx_contexts_live 0
# HELP http_request_duration_seconds HTTP request duration by route pattern
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_count{route="unmatched"} 2
http_request_duration_seconds_sum{route="unmatched"} 20.5
http_request_duration_seconds_bucket{route="unmatched",le="0.0001"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.00025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.0005"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.001"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.0025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.005"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.01"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.025"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.05"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.1"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.25"} 0
http_request_duration_seconds_bucket{route="unmatched",le="0.5"} 1
http_request_duration_seconds_bucket{route="unmatched",le="1"} 1
http_request_duration_seconds_bucket{route="unmatched",le="2.5"} 1
http_request_duration_seconds_bucket{route="unmatched",le="5"} 1
http_request_duration_seconds_bucket{route="unmatched",le="10"} 1
http_request_duration_seconds_bucket{route="unmatched",le="+Inf"} 2
http_request_duration_seconds_count{route="/v1/whoami"} 2
http_request_duration_seconds_sum{route="/v1/whoami"} 0.02005
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0001"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.00025"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0005"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.001"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.0025"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.005"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.01"} 1
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.025"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.05"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.1"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.25"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="0.5"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="1"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="2.5"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="5"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="10"} 2
http_request_duration_seconds_bucket{route="/v1/whoami",le="+Inf"} 2
http_request_duration_seconds_count{route="/healthz"} 4
http_request_duration_seconds_sum{route="/healthz"} 0.2524
http_request_duration_seconds_bucket{route="/healthz",le="0.0001"} 1
http_request_duration_seconds_bucket{route="/healthz",le="0.00025"} 1
http_request_duration_seconds_bucket{route="/healthz",le="0.0005"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.001"} 2
http_request_duration_seconds_bucket{route="/healthz",le="0.0025"} 3
http_request_duration_seconds_bucket{route="/healthz",le="0.005"} 3
http_request_duration_seconds_bucket{route="/healthz",le="0.01"} 3
http_request_duration_seconds_bucket{route="/healthz",le="0.025"} 3
http_request_duration_seconds_bucket{route="/healthz",le="0.05"} 3
http_request_duration_seconds_bucket{route="/healthz",le="0.1"} 3
http_request_duration_seconds_bucket{route="/healthz",le="0.25"} 4
http_request_duration_seconds_bucket{route="/healthz",le="0.5"} 4
http_request_duration_seconds_bucket{route="/healthz",le="1"} 4
http_request_duration_seconds_bucket{route="/healthz",le="2.5"} 4
http_request_duration_seconds_bucket{route="/healthz",le="5"} 4
http_request_duration_seconds_bucket{route="/healthz",le="10"} 4
http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 4
)exp"));
}

// prometheus-cpp alone writes nothing for a family without series: a quiet instance would miss
// families a scraper looks for. Families without series follow the others, in registration order.
TEST(MetricsExposition, EveryFamilyIsListedWithOrWithoutSeries) {
    Metrics metrics;
    auto& counter = metrics.counter_family("c_total", "A counter");
    auto& gauge = metrics.gauge_family("g", "A gauge");
    auto& histogram = metrics.histogram_family("h_seconds", "A histogram");
    EXPECT_EQ(metrics.scrape(), R"exp(# HELP c_total A counter
# TYPE c_total counter
# HELP g A gauge
# TYPE g gauge
# HELP h_seconds A histogram
# TYPE h_seconds histogram
)exp");

    // Series appear where prometheus-cpp puts them; no sample is made up for the others.
    gauge.Add({{"k", "v"}}).Set(2);
    EXPECT_EQ(metrics.scrape(), R"exp(# HELP g A gauge
# TYPE g gauge
g{k="v"} 2
# HELP c_total A counter
# TYPE c_total counter
# HELP h_seconds A histogram
# TYPE h_seconds histogram
)exp");

    // Once every family has series, each is listed once, with its samples.
    counter.Add({}).Increment(3);
    histogram.Add({}, prometheus::Histogram::BucketBoundaries{0.5, 1}).Observe(0.75);
    EXPECT_EQ(metrics.scrape(), R"exp(# HELP c_total A counter
# TYPE c_total counter
c_total 3
# HELP g A gauge
# TYPE g gauge
g{k="v"} 2
# HELP h_seconds A histogram
# TYPE h_seconds histogram
h_seconds_count 1
h_seconds_sum 0.75
h_seconds_bucket{le="0.5"} 0
h_seconds_bucket{le="1"} 1
h_seconds_bucket{le="+Inf"} 1
)exp");
}

// A client must not mint series with made-up methods (nor a 4000-byte label value).
TEST(HttpMetricsOutput, MethodsOutsideTheStandardSetShareTheOtherLabel) {
    Metrics metrics;
    HttpMetrics http(metrics, nullptr);
    http.set_routes({"/v1/whoami"});
    const std::string long_method(4000, 'Z');
    const std::vector<std::string_view> standard{"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                 "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    std::vector<std::string_view> methods = standard;
    for (std::string_view odd : {std::string_view("ZZZA"), std::string_view(long_method),
                                 std::string_view("get"), std::string_view("BREW")}) {
        methods.push_back(odd);
    }
    for (std::string_view m : methods) {
        Exchange e;
        e.method = m;
        e.route_index = 0;
        e.route = "/v1/whoami";
        e.status = 405;
        e.duration_s = 0.001;
        http.record(e);
    }
    const std::string text = metrics.scrape();
    for (std::string_view m : standard) {
        const std::string line = R"(http_requests_total{method=")" + std::string(m) +
                                 R"(",route="/v1/whoami",status="405"} 1)";
        EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
    }
    EXPECT_NE(text.find(R"(http_requests_total{method="other",route="/v1/whoami",status="405"} 4)"
                        "\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("ZZZA"), std::string::npos);
    EXPECT_EQ(text.find(R"(method="get")"), std::string::npos);
    EXPECT_EQ(text.find("BREW"), std::string::npos);
    std::size_t longest = 0;
    for (std::size_t at = 0, next = 0; at < text.size(); at = next + 1) {
        next = text.find('\n', at);
        if (next == std::string::npos) next = text.size();
        longest = std::max(longest, next - at);
    }
    EXPECT_LT(longest, 200U);
}

}  // namespace
}  // namespace reqctx
