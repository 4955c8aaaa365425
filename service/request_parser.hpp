#pragma once

// Reads one HTTP/1.1 request into a reqctx::Request. A common request (its whole header in the
// first bytes given, HTTP/1.0 or 1.1, no body, no Connection, Upgrade or framing fields, no
// folded lines) is parsed in one pass over its header; every other request goes to Beast's
// parser (its validation, framing, chunked bodies and limits, and its error codes), which the
// one-pass path never contradicts: it accepts only requests that Beast accepts the same way, and
// declines the rest to it. Either way the header's text is copied once into the request. One
// parser per request, used like Beast's: put() the header, then read the body (if !is_done())
// through body_parser().

#include <cstddef>
#include <cstdint>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/optional/optional.hpp>

#include "handlers/request.hpp"

namespace reqctx {

class RequestParser {
public:
    RequestParser() = default;
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    // As basic_parser's: a header over the limit is error::header_limit; the body limit applies
    // from when it is set.
    void header_limit(std::uint32_t bytes) {
        header_limit_ = bytes;
        beast_.header_limit(bytes);
    }
    void body_limit(boost::optional<std::uint64_t> bytes) { beast_.body_limit(bytes); }
    void eager(bool v) { beast_.eager(v); }

    // As basic_parser::put: the bytes used, and error::need_more until the header (not eager)
    // or the message (eager) is complete.
    std::size_t put(boost::asio::const_buffer buffer, boost::beast::error_code& ec);
    void put_eof(boost::beast::error_code& ec);

    bool got_some() const noexcept { return common_ || beast_.got_some(); }
    bool is_header_done() const noexcept { return common_ || beast_.is_header_done(); }
    bool is_done() const noexcept { return common_ || beast_.is_done(); }
    bool chunked() const noexcept { return !common_ && beast_.chunked(); }
    // The declared Content-Length, once the header is done.
    boost::optional<std::uint64_t> content_length() const {
        return common_ ? boost::none : beast_.content_length();
    }
    bool keep_alive() const noexcept { return req_.keep_alive(); }

    Request& get() noexcept { return req_; }
    const Request& get() const noexcept { return req_; }
    // Beast's parser, to read the body with http::read/async_read once the header is done and
    // the message is not (a common request has no body).
    boost::beast::http::basic_parser<true>& body_parser() noexcept { return beast_; }

private:
    class BeastParser final : public boost::beast::http::basic_parser<true> {
    public:
        explicit BeastParser(Request& req) noexcept : req_(req) {}

    private:
        void on_request_impl(http::verb method, boost::beast::string_view method_string,
                             boost::beast::string_view target, int version,
                             boost::beast::error_code& ec) override;
        void on_response_impl(int code, boost::beast::string_view reason, int version,
                              boost::beast::error_code& ec) override;
        void on_field_impl(http::field name, boost::beast::string_view name_string,
                           boost::beast::string_view value, boost::beast::error_code& ec) override;
        void on_header_impl(boost::beast::error_code& ec) override;
        void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                               boost::beast::error_code& ec) override;
        std::size_t on_body_impl(boost::beast::string_view body,
                                 boost::beast::error_code& ec) override;
        void on_chunk_header_impl(std::uint64_t size, boost::beast::string_view extensions,
                                  boost::beast::error_code& ec) override;
        std::size_t on_chunk_body_impl(std::uint64_t remain, boost::beast::string_view body,
                                       boost::beast::error_code& ec) override;
        void on_finish_impl(boost::beast::error_code& ec) override;

        std::size_t append_body(boost::beast::string_view data, boost::beast::error_code& ec);

        Request& req_;
    };

    Request req_;
    BeastParser beast_{req_};
    std::uint32_t header_limit_ = 8 * 1024;  // Beast's default
    bool common_ = false;                    // the header was read by the one-pass path
};

}  // namespace reqctx
