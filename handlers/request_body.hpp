#pragma once

// Helpers shared by the JSON routes: a non-throwing JSON parse that says where it failed, and the
// error value a handler turns into a 400 body (code + human message naming the field).

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace reqctx {

// An input error a handler answers with 4xx: `code` is the api.md code ("invalid_json",
// "invalid_request", ...), `message` a human sentence naming the field or position.
struct InputError {
    std::string code;
    std::string message;
};

struct JsonParse {
    nlohmann::json value;
    std::optional<InputError> error;  // set: invalid_json, message gives the byte position
};

// Parses body as one JSON document; never throws.
JsonParse parse_json_body(std::string_view body);

// As parse_json_body, and the document must be an object: otherwise invalid_request with
// "The body must be a JSON object <shape>." (shape e.g. `with an "entries" array`).
JsonParse parse_json_object(std::string_view body, std::string_view shape);

// The invalid_request error with a message naming the field.
InputError invalid_request(std::string message);

}  // namespace reqctx
