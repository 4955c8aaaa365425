// Error bodies, the error-to-status mapping, and log line rendering.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>

#include "clients/propagation.hpp"
#include "handlers/errors.hpp"
#include "handlers/log.hpp"
#include "handlers/whoami.hpp"
#include "middleware/access_log.hpp"

namespace reqctx {
namespace {

TEST(ErrorBody, IsTheApiShapeAndEscapes) {
    const auto body = error_body("invalid_json", "bad \"quote\"\n", "id-1");
    auto j = nlohmann::json::parse(body);
    EXPECT_EQ(j["error"]["code"], "invalid_json");
    EXPECT_EQ(j["error"]["message"], "bad \"quote\"\n");
    EXPECT_EQ(j["request_id"], "id-1");
}

TEST(ErrorMapping, CancelCausesAndContextErrors) {
    EXPECT_EQ(http_error_for(CancelReason::deadline).status, http::status::gateway_timeout);
    EXPECT_EQ(http_error_for(ContextErrc::deadline_exceeded).code, "deadline_exceeded");
    EXPECT_EQ(http_error_for(CancelReason::shutdown).status, http::status::service_unavailable);
    EXPECT_EQ(http_error_for(CancelReason::shutdown).code, "shutting_down");
    EXPECT_EQ(static_cast<unsigned>(http_error_for(CancelReason::client_disconnect).status), 499U);
    EXPECT_EQ(http_error_for(std::make_error_code(std::errc::io_error)).code, "internal");
}

TEST(ErrorMapping, CancelReasonNamesComeFromTheCause) {
    auto [ctx, cancel] = with_cancel(background());
    EXPECT_EQ(cancel_reason_name(ctx), "");
    cancel.cancel(CancelReason::client_disconnect);
    EXPECT_EQ(cancel_reason_name(ctx), "client_disconnect");

    auto [late, late_cancel] =
        with_deadline_cause(background(), Clock::now() - std::chrono::seconds(1),
                            make_error_code(CancelReason::deadline));
    EXPECT_EQ(cancel_reason_name(late), "deadline");
}

TEST(ErrorResponse, CarriesTheRequestIdFromTheContext) {
    Context ctx = with_value(background(), kRequestIdKey, RequestId{"rid-7"});
    Request req{http::verb::get, "/x", 11};
    const auto res = error_response(ctx, req, http::status::not_found, "not_found", "nope");
    EXPECT_EQ(res.result(), http::status::not_found);
    EXPECT_EQ(res[http::field::content_type], "application/json");
    EXPECT_NE(res.body().find(R"("request_id":"rid-7")"), std::string::npos);
}

TEST(LogLine, RendersJsonMembersAndText) {
    LogLine json(LogFormat::json);
    json.reset("hello \"x\"");
    json.str("k", "v\n").num("n", -3).real("d", 1.5).field("b", true).field("z", nullptr);
    auto j = nlohmann::json::parse("{" + json.text() + "}");
    EXPECT_EQ(j["msg"], "hello \"x\"");
    EXPECT_EQ(j["k"], "v\n");
    EXPECT_EQ(j["n"], -3);
    EXPECT_DOUBLE_EQ(j["d"].get<double>(), 1.5);
    EXPECT_EQ(j["b"], true);
    EXPECT_TRUE(j["z"].is_null());

    LogLine text(LogFormat::text);
    text.reset("hello");
    text.str("k", "plain").str("s", "has space");
    EXPECT_EQ(text.text(), R"(hello k=plain s="has space")");
}

TEST(Whoami, BodyComesFromTypedValues) {
    TraceContext trace;
    trace.trace_id = random_trace_id();
    trace.span_id = random_span_id();
    Context ctx = with_value(background(), kRequestIdKey, RequestId{"r-1"});
    ctx = with_value(ctx, kTraceKey, trace);
    ctx = with_value(ctx, kUserKey, User{"bob"});
    const auto now = Clock::now();
    auto [dctx, cancel] = with_deadline(ctx, now + std::chrono::milliseconds(1500));
    auto j = nlohmann::json::parse(whoami_body(dctx, now));
    EXPECT_EQ(j["request_id"], "r-1");
    EXPECT_EQ(j["trace_id"], to_hex(trace.trace_id));
    EXPECT_EQ(j["span_id"], to_hex(trace.span_id));
    EXPECT_TRUE(j["parent_span_id"].is_null());
    EXPECT_EQ(j["user"]["id"], "bob");
    EXPECT_EQ(j["deadline_remaining_ms"], 1500);
}

TEST(Whoami, IdsThatNeedEscapingStillGiveValidJson) {
    // The middleware never stores such IDs; the body stays valid JSON if a caller does.
    Context ctx = with_value(background(), kRequestIdKey, RequestId{"r\"1\\"});
    ctx = with_value(ctx, kUserKey, User{std::string(600, 'u')});
    auto j = nlohmann::json::parse(whoami_body(ctx, Clock::now()), nullptr, false);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["request_id"], "r\"1\\");
    EXPECT_EQ(j["user"]["id"], std::string(600, 'u'));
    EXPECT_TRUE(j["trace_id"].is_null());
    EXPECT_TRUE(j["deadline_remaining_ms"].is_null());
}

std::vector<nlohmann::json> access_lines(const std::vector<Exchange>& exchanges) {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    {
        Logger logger(LogFormat::json, spdlog::level::info, sink);
        AccessLog log(logger);
        for (const auto& e : exchanges) log.write(e);
    }  // the logger writes every queued line before it is destroyed
    std::vector<nlohmann::json> lines;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) {
        lines.push_back(nlohmann::json::parse(line, nullptr, false));
    }
    return lines;
}

TEST(AccessLog, OneJsonLinePerRequestWhateverTheValues) {
    const RequestId rid{"req-1"};
    TraceContext trace;
    trace.trace_id = random_trace_id();
    trace.span_id = random_span_id();
    Exchange plain;
    plain.method = "GET";
    plain.route = "/v1/cache/{key}";
    plain.status = 200;
    plain.bytes = 12;
    plain.duration_s = 0.0012345;
    plain.request_id = rid.value;
    plain.trace = exchange_trace(trace);
    Exchange odd = plain;  // a value that needs escaping takes the general path
    odd.route = "odd\"route";
    odd.status = 499;
    odd.cancel_reason = "client_disconnect";

    const auto lines = access_lines({plain, odd});
    ASSERT_EQ(lines.size(), 2U);
    for (const auto& j : lines) {
        ASSERT_TRUE(j.is_object());
        EXPECT_EQ(j["msg"], "request");
        EXPECT_EQ(j["level"], "info");
        EXPECT_EQ(j["request_id"], "req-1");
        EXPECT_EQ(j["trace_id"], to_hex(trace.trace_id));
        EXPECT_EQ(j["span_id"], to_hex(trace.span_id));
        EXPECT_EQ(j["method"], "GET");
        EXPECT_EQ(j["bytes"], 12);
        EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1.235);
    }
    EXPECT_EQ(lines[0]["route"], "/v1/cache/{key}");
    EXPECT_EQ(lines[0]["status"], 200);
    EXPECT_TRUE(lines[0]["cancel_reason"].is_null());
    EXPECT_EQ(lines[1]["route"], "odd\"route");
    EXPECT_EQ(lines[1]["status"], 499);
    EXPECT_EQ(lines[1]["cancel_reason"], "client_disconnect");
}

}  // namespace
}  // namespace reqctx
