#include "clients/http/url.hpp"

#include <algorithm>
#include <cctype>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "clients/http/error.hpp"

namespace reqctx {
namespace urls = boost::urls;

std::string HttpUrl::authority() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    std::string out = ipv6 ? "[" + host + "]" : host;
    out += ':';
    out += std::to_string(port);
    return out;
}

boost::system::result<HttpUrl, std::error_code> parse_http_url(std::string_view text) {
    const std::error_code invalid = HttpClientErrc::invalid_url;
    auto parsed = urls::parse_uri(text);
    if (!parsed) return invalid;
    const urls::url_view& u = *parsed;
    if (u.scheme_id() != urls::scheme::http || !u.has_authority() || u.has_userinfo()) {
        return invalid;
    }
    HttpUrl out;
    switch (u.host_type()) {
        case urls::host_type::ipv4:
            out.host = u.host_ipv4_address().to_string();
            break;
        case urls::host_type::ipv6:
            out.host = u.host_ipv6_address().to_string();
            break;
        case urls::host_type::name: {
            // A percent-encoded host would be decoded to something the allow-list never saw.
            const auto name = u.encoded_host_name();
            if (name.empty() || name.find('%') != urls::pct_string_view::npos) return invalid;
            out.host.assign(name.data(), name.size());
            std::transform(out.host.begin(), out.host.end(), out.host.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            break;
        }
        default:
            return invalid;
    }
    if (u.has_port()) {
        const auto port = u.port();
        if (port.empty() || port.size() > 5) return invalid;
        unsigned value = 0;
        for (const char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
        if (value == 0 || value > 65535) return invalid;
        out.port = static_cast<std::uint16_t>(value);
    }
    const auto path = u.encoded_path();
    out.target = path.empty() ? "/" : std::string(path.data(), path.size());
    if (out.target.front() != '/') return invalid;
    if (u.has_query()) {
        const auto query = u.encoded_query();
        out.target += '?';
        out.target.append(query.data(), query.size());
    }
    return out;
}

}  // namespace reqctx
