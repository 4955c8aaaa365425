#include "handlers/request.hpp"

#include <limits>
#include <stdexcept>

namespace reqctx {

Request::Request(http::verb method, std::string_view target, unsigned version) {
    const auto name = http::to_string(method);
    set_start_line(method, std::string_view(name.data(), name.size()), target, version);
}

std::optional<std::string_view> Request::find(http::field name) const noexcept {
    for (const FieldSlot& slot : fields_) {
        if (slot.name == name) return view(slot.value);
    }
    return std::nullopt;
}

void Request::set_start_line(http::verb method, std::string_view method_string,
                             std::string_view target, unsigned version) {
    const Part m = append_text(method_string);
    set_start_line(method, m, append_text(target), version);
}

void Request::set_start_line(http::verb method, Part method_string, Part target, unsigned version) {
    method_ = method;
    method_string_ = method_string;
    target_ = target;
    version_ = version;
    keep_alive_ = version >= 11;
}

void Request::add_field(http::field name, std::string_view name_string, std::string_view value) {
    const Part n = append_text(name_string);
    add_field(name, n, append_text(value));
}

void Request::add_field(http::field name, Part name_string, Part value) {
    fields_.push_back(FieldSlot{name, name_string, value});
}

void Request::add_field(http::field name, std::string_view value) {
    const auto n = http::to_string(name);
    add_field(name, std::string_view(n.data(), n.size()), value);
}

void Request::add_field(std::string_view name, std::string_view value) {
    add_field(http::string_to_field(name), name, value);
}

Request::Part Request::append_text(std::string_view s) {
    // The server's header limit keeps a parsed request far below this; a request built in code
    // that is larger is a bug.
    if (s.size() > std::numeric_limits<std::uint32_t>::max() - text_.size()) {
        throw std::length_error("reqctx::Request text over 4 GiB");
    }
    const Part at{static_cast<std::uint32_t>(text_.size()), static_cast<std::uint32_t>(s.size())};
    text_.insert(text_.end(), s.begin(), s.end());
    return at;
}

}  // namespace reqctx
