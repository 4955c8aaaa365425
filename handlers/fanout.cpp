#include "handlers/fanout.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <memory>
#include <utility>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include "clients/propagation.hpp"
#include "handlers/errors.hpp"

namespace reqctx {
namespace {

using json = nlohmann::json;

// Hosts compare as the URL parser prints them: lower-case names, canonical IP literals.
std::string canonical_host(std::string_view host) {
    std::string out(host);
    if (out.size() >= 2 && out.front() == '[' && out.back() == ']')
        out = out.substr(1, out.size() - 2);
    boost::system::error_code ec;
    const auto address = net::ip::make_address(out, ec);
    if (!ec) return address.to_string();
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool is_allowed(const HttpUrl& url, const std::vector<AllowedTarget>& allow) {
    return std::any_of(allow.begin(), allow.end(), [&](const AllowedTarget& t) {
        return t.port == url.port && canonical_host(t.host) == url.host;
    });
}

double milliseconds_since(Clock::time_point start) {
    const std::chrono::duration<double, std::milli> d = Clock::now() - start;
    return std::round(d.count() * 1000.0) / 1000.0;
}

Response json_response(const Request& req, http::status status, const json& body) {
    Response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
    return res;
}

// By value throughout: the coroutine outlives nothing it borrows except req, which the caller
// owns while it co_awaits this.
net::awaitable<Response> serve_fanout(Context ctx, const Request& req, HttpClient* client,
                                      std::shared_ptr<const std::vector<AllowedTarget>> allow) {
    auto parsed = parse_fanout_request(req.body(), *allow);
    if (auto* error = std::get_if<InputError>(&parsed)) {
        co_return error_response(ctx, req, http::status::bad_request, error->code, error->message);
    }
    auto calls = std::get<std::vector<FanoutCall>>(std::move(parsed));

    json results = json::array();
    for (FanoutCall& call : calls) {
        if (ctx.done()) break;  // a disconnect or the deadline: no further call starts
        HttpRequest request{http::verb::post, "/", 11};
        request.set(http::field::content_type, "application/json");
        request.set(http::field::accept, "application/json");
        request.body() = std::move(call.body);
        const auto start = Clock::now();
        HttpResult result = co_await client->send(ctx, call.target, std::move(request));
        if (result) {
            results.push_back({{"url", call.url},
                               {"status", result->result_int()},
                               {"duration_ms", milliseconds_since(start)}});
        } else {
            results.push_back({{"url", call.url}, {"error", error_name(result.error())}});
        }
    }
    if (ctx.done()) {
        Response res = context_error_response(ctx, req);
        // Partial results: the calls made (and the one cut) before the context ended.
        json body = json::parse(res.body(), nullptr, false);
        if (body.is_object()) {
            body["calls"] = std::move(results);
            res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
        }
        co_return res;
    }
    co_return json_response(req, http::status::ok, json{{"calls", std::move(results)}});
}

class FanoutRoute {
public:
    FanoutRoute(HttpClient& client, std::shared_ptr<const std::vector<AllowedTarget>> allow)
        : client_(&client), allow_(std::move(allow)) {}

    net::awaitable<Response> operator()(Context ctx, const Request& req,
                                        const RouteParams& /*params*/) const {
        return serve_fanout(std::move(ctx), req, client_, allow_);
    }

private:
    HttpClient* client_;
    std::shared_ptr<const std::vector<AllowedTarget>> allow_;
};

}  // namespace

std::variant<std::vector<FanoutCall>, InputError> parse_fanout_request(
    std::string_view body, const std::vector<AllowedTarget>& allow) {
    JsonParse doc = parse_json_body(body);
    if (doc.error) return *doc.error;
    json elements;
    if (doc.value.is_object()) {
        elements = json::array({std::move(doc.value)});
    } else if (doc.value.is_array()) {
        elements = std::move(doc.value);
    } else {
        return invalid_request("The body must be a JSON array of {\"url\",\"arguments\"} objects.");
    }
    if (elements.size() > kMaxFanoutCalls) {
        return invalid_request("The body may hold at most 16 calls.");
    }
    std::vector<FanoutCall> calls;
    calls.reserve(elements.size());
    for (std::size_t i = 0; i < elements.size(); ++i) {
        const json& element = elements[i];
        const std::string where = "[" + std::to_string(i) + "]";
        if (!element.is_object()) {
            return invalid_request("Element " + where + " must be an object.");
        }
        const auto url = element.find("url");
        if (url == element.end() || !url->is_string()) {
            return invalid_request("Field " + where + ".url must be a string.");
        }
        FanoutCall call;
        call.url = url->get<std::string>();
        auto target = parse_http_url(call.url);
        if (!target || !is_allowed(*target, allow)) {
            return InputError{"url_not_allowed", "URL " + where + " (" + call.url +
                                                     ") is not plain http:// to an allowed "
                                                     "host:port."};
        }
        call.target = std::move(*target);
        const auto arguments = element.find("arguments");
        call.body = arguments == element.end()
                        ? std::string("[]")
                        : arguments->dump(-1, ' ', false, json::error_handler_t::replace);
        calls.push_back(std::move(call));
    }
    return calls;
}

Handler make_fanout_handler(HttpClient& client, std::vector<AllowedTarget> allow) {
    return FanoutRoute(client,
                       std::make_shared<const std::vector<AllowedTarget>>(std::move(allow)));
}

}  // namespace reqctx
