// The server's request parser (service/request_parser.hpp) against Beast's own request parser on
// the same bytes: the load generator's /v1/whoami request (its one-pass path), the same request
// with a Connection field (left to Beast's parser inside ours), and a curl-shaped GET.

#include <string_view>

#include <benchmark/benchmark.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "service/request_parser.hpp"

namespace {

namespace http = boost::beast::http;

constexpr std::string_view kWhoami =
    "GET /v1/whoami HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
    "X-Request-ID: bench-request-1\r\n"
    "X-User-ID: bench_user\r\n"
    "\r\n";

constexpr std::string_view kWhoamiKeepAlive =
    "GET /v1/whoami HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "Connection: keep-alive\r\n"
    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
    "X-Request-ID: bench-request-1\r\n"
    "X-User-ID: bench_user\r\n"
    "\r\n";

constexpr std::string_view kCurl =
    "GET /healthz HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "\r\n";

const std::string_view* request_of(const benchmark::State& state) {
    static constexpr std::string_view kRequests[] = {kWhoami, kWhoamiKeepAlive, kCurl};
    return &kRequests[state.range(0)];
}

void BM_ReqctxParser(benchmark::State& state) {
    const std::string_view bytes = *request_of(state);
    for (auto _ : state) {
        reqctx::RequestParser parser;
        parser.header_limit(16 * 1024);
        boost::beast::error_code ec;
        const auto used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
        if (ec || used != bytes.size() || !parser.is_done()) state.SkipWithError("not parsed");
        benchmark::DoNotOptimize(parser.get().target().data());
    }
}

void BM_BeastParser(benchmark::State& state) {
    const std::string_view bytes = *request_of(state);
    for (auto _ : state) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        boost::beast::error_code ec;
        const auto used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
        if (ec || used != bytes.size() || !parser.is_done()) state.SkipWithError("not parsed");
        benchmark::DoNotOptimize(parser.get().target().data());
    }
}

// 0: whoami (one pass), 1: whoami with Connection (Beast's path), 2: curl's GET (one pass).
BENCHMARK(BM_ReqctxParser)->Arg(0)->Arg(1)->Arg(2);
BENCHMARK(BM_BeastParser)->Arg(0)->Arg(1)->Arg(2);

}  // namespace

BENCHMARK_MAIN();
