#pragma once

// Text written into a buffer the caller has already sized for everything it will append: the
// hot paths (response head, access line, whoami body) bound their output once, then write with
// plain copies, no check per append. The caller falls back to std::string when the bound says
// the text may not fit.

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "clients/propagation.hpp"

namespace reqctx {

class TextCursor {
public:
    explicit TextCursor(char* at) noexcept : at_(at) {}

    void put(std::string_view s) noexcept {
        std::memcpy(at_, s.data(), s.size());
        at_ += s.size();
    }
    void put(char c) noexcept { *at_++ = c; }
    // Lower-case hex of `bytes`.
    void put_hex(std::span<const std::uint8_t> bytes) noexcept {
        write_hex(bytes, at_);
        at_ += 2 * bytes.size();
    }
    // At most 20 characters.
    void put_number(std::uint64_t value) noexcept {
        if (value >= 100 && value <= 999) {  // a status, many byte counts: no division loop
            at_[0] = static_cast<char>('0' + value / 100);
            at_[1] = static_cast<char>('0' + value / 10 % 10);
            at_[2] = static_cast<char>('0' + value % 10);
            at_ += 3;
            return;
        }
        at_ = std::to_chars(at_, at_ + 20, value).ptr;
    }
    // After the caller wrote n characters at at() itself.
    void advance(std::size_t n) noexcept { at_ += n; }
    char* at() const noexcept { return at_; }

private:
    char* at_;
};

// True when `text` can sit between JSON quotes as it is. A table and no branch per character:
// the access log checks a few short strings per request.
inline bool json_safe(std::string_view text) noexcept {
    static constexpr auto kUnsafe = [] {
        std::array<bool, 256> t{};
        for (std::size_t c = 0; c < 0x20; ++c) t[c] = true;
        t['"'] = t['\\'] = t[0x7f] = true;
        return t;
    }();
    bool unsafe = false;
    for (const char ch : text) unsafe |= kUnsafe[static_cast<unsigned char>(ch)];
    return !unsafe;
}

}  // namespace reqctx
