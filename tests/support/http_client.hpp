#pragma once

// A small blocking HTTP/1.1 client for tests: one TCP connection to 127.0.0.1:port, requests
// written as given (also raw bytes, for malformed or pipelined input), responses parsed by Beast.
// Every read has a timeout, so a test cannot hang on a silent server.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace reqctx::test {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
    int status = 0;
    Headers headers;
    std::string body;

    // The first header named `name` (case-insensitive), or nullopt.
    std::optional<std::string> header(std::string_view name) const;
};

class HttpClient {
public:
    explicit HttpClient(unsigned short port,
                        std::chrono::milliseconds read_timeout = std::chrono::seconds(10));
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;
    ~HttpClient();

    // Sends one request (Host and Content-Length are added) and reads its response. nullopt
    // when the connection closed or the read timed out first.
    std::optional<HttpResponse> request(std::string_view method, std::string_view target,
                                        const Headers& headers = {}, std::string_view body = {});
    // Writes bytes as they are; returns false if the write failed.
    bool send_raw(std::string_view bytes);
    // Reads the next response on the connection; nullopt on close or timeout. A response to a
    // HEAD request has no body whatever its Content-Length says: pass to_head = true.
    std::optional<HttpResponse> read_response(bool to_head = false);
    // True if the peer closes the connection (EOF or reset) within `timeout`.
    bool wait_closed(std::chrono::milliseconds timeout);
    // Closes the connection now (the client "hangs up").
    void close();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
std::optional<HttpResponse> http_request(unsigned short port, std::string_view method,
                                         std::string_view target, const Headers& headers = {},
                                         std::string_view body = {});

}  // namespace reqctx::test
