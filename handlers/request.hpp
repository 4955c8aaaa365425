#pragma once

// An HTTP request as handlers see it: the start line, the header fields in the order received,
// and the body. The request keeps its own copy of the header's text (a typical request's fits
// inline, with no allocation) and reads fields in place: a request carries a handful of them,
// so a linear scan finds one sooner than an ordered index could be built. Copies and moves are
// safe (fields are offsets into the request's own text, not pointers).

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <ostream>  // boost/beast/http/verb.hpp streams a verb without including it
#include <string>
#include <string_view>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/container/small_vector.hpp>

namespace reqctx {

namespace http = boost::beast::http;

class Request {
public:
    // A part of the request's text: `size` bytes from `offset`.
    struct Part {
        std::uint32_t offset = 0;
        std::uint32_t size = 0;
    };

private:
    struct FieldSlot {
        http::field name;
        Part name_string;
        Part value;
    };

public:
    // One header line. `name` is http::field::unknown for names Beast does not know;
    // name_string is the name as received.
    struct Field {
        http::field name;
        std::string_view name_string;
        std::string_view value;
    };

    class FieldIterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = Field;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = Field;

        FieldIterator() = default;
        Field operator*() const noexcept {
            return {slot_->name, req_->view(slot_->name_string), req_->view(slot_->value)};
        }
        FieldIterator& operator++() noexcept {
            ++slot_;
            return *this;
        }
        FieldIterator operator++(int) noexcept {
            FieldIterator was = *this;
            ++slot_;
            return was;
        }
        bool operator==(const FieldIterator& other) const noexcept { return slot_ == other.slot_; }

    private:
        friend class Request;
        FieldIterator(const Request* req, const FieldSlot* slot) noexcept
            : req_(req), slot_(slot) {}
        const Request* req_ = nullptr;
        const FieldSlot* slot_ = nullptr;
    };

    struct FieldRange {
        FieldIterator first;
        FieldIterator last;
        FieldIterator begin() const noexcept { return first; }
        FieldIterator end() const noexcept { return last; }
    };

    Request() = default;
    // A request built in code (tests, internal calls): HTTP/1.0 or 1.1 as `version` says (10, 11).
    Request(http::verb method, std::string_view target, unsigned version);

    http::verb method() const noexcept { return method_; }
    // The method as received (also for methods Beast does not know: method() is unknown then).
    std::string_view method_string() const noexcept { return view(method_string_); }
    std::string_view target() const noexcept { return view(target_); }
    unsigned version() const noexcept { return version_; }
    // Whether the client allows the connection to stay open after the response (the version's
    // default and the Connection field, as received).
    bool keep_alive() const noexcept { return keep_alive_; }

    FieldRange fields() const noexcept {
        return {FieldIterator(this, fields_.data()),
                FieldIterator(this, fields_.data() + fields_.size())};
    }
    // The first line of a known field, or nullopt when the request has none.
    std::optional<std::string_view> find(http::field name) const noexcept;

    const std::string& body() const noexcept { return body_; }
    std::string& body() noexcept { return body_; }

    // Building: the start line replaces any earlier one; fields append in order.
    void set_start_line(http::verb method, std::string_view method_string, std::string_view target,
                        unsigned version);
    void add_field(http::field name, std::string_view name_string, std::string_view value);
    // A known field, named as Beast spells it.
    void add_field(http::field name, std::string_view value);
    // Any field; `name` is looked up among the known ones.
    void add_field(std::string_view name, std::string_view value);
    void set_keep_alive(bool keep_alive) noexcept { keep_alive_ = keep_alive; }

    // Building from a received header in one copy: append its text, then name the start line's
    // and the fields' parts by their place in the request's text.
    Part append_text(std::string_view text);
    void set_start_line(http::verb method, Part method_string, Part target, unsigned version);
    void add_field(http::field name, Part name_string, Part value);

private:
    std::string_view view(Part p) const noexcept { return {text_.data() + p.offset, p.size}; }

    // Room for the header of a typical request (curl's, a load generator's, a proxied one).
    static constexpr std::size_t kInlineText = 512;
    static constexpr std::size_t kInlineFields = 12;

    boost::container::small_vector<char, kInlineText> text_;
    boost::container::small_vector<FieldSlot, kInlineFields> fields_;
    Part method_string_;
    Part target_;
    http::verb method_ = http::verb::unknown;
    unsigned version_ = 11;
    bool keep_alive_ = true;
    std::string body_;
};

}  // namespace reqctx
