#include "handlers/request_body.hpp"

#include <nlohmann/detail/input/json_sax.hpp>

namespace reqctx {

namespace {

// The library's DOM builder, remembering where and why parsing stopped instead of throwing.
class PositionedDomParser : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
public:
    explicit PositionedDomParser(nlohmann::json& result)
        : nlohmann::detail::json_sax_dom_parser<nlohmann::json>(result, false) {}

    template <class Exception>
    bool parse_error(std::size_t position, const std::string& last_token, const Exception& ex) {
        position_ = position;
        last_token_ = last_token;
        what_ = ex.what();
        failed_ = true;
        return false;
    }

    bool failed() const noexcept { return failed_; }
    std::size_t position() const noexcept { return position_; }
    const std::string& what() const noexcept { return what_; }

private:
    bool failed_ = false;
    std::size_t position_ = 0;
    std::string last_token_;
    std::string what_;
};

}  // namespace

JsonParse parse_json_body(std::string_view body) {
    JsonParse out;
    PositionedDomParser sax(out.value);
    const bool ok = nlohmann::json::sax_parse(body, &sax);
    if (!ok || sax.failed()) {
        std::string message =
            "request body is not valid JSON at byte " + std::to_string(sax.position());
        // nlohmann's text: "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
        if (const auto colon = sax.what().find(": "); colon != std::string::npos) {
            message += " (" + sax.what().substr(colon + 2) + ")";
        }
        out.value = nullptr;
        out.error = InputError{"invalid_json", std::move(message)};
    }
    return out;
}

JsonParse parse_json_object(std::string_view body, std::string_view shape) {
    JsonParse out = parse_json_body(body);
    if (!out.error && !out.value.is_object()) {
        out.error = invalid_request("The body must be a JSON object " + std::string(shape) + ".");
    }
    return out;
}

InputError invalid_request(std::string message) {
    return InputError{"invalid_request", std::move(message)};
}

}  // namespace reqctx
