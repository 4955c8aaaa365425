#pragma once

// Text assembled in a caller-provided buffer: a handful of memcpy instead of as many
// std::string appends with their growth checks. Overflow is reported, never grown into: the
// caller chooses a buffer that fits the common case and falls back to std::string otherwise.

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "clients/propagation.hpp"

namespace reqctx {

class FixedText {
public:
    explicit FixedText(std::span<char> buffer) noexcept : buf_(buffer) {}

    void put(std::string_view s) noexcept {
        if (s.size() > buf_.size() - len_) {
            overflow_ = true;
            return;
        }
        std::memcpy(buf_.data() + len_, s.data(), s.size());
        len_ += s.size();
    }
    void put_number(std::int64_t value) noexcept {
        char digits[24];
        auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
        (void)ec;
        put(std::string_view(digits, static_cast<std::size_t>(end - digits)));
    }
    // Lower-case hex of `bytes`.
    void put_hex(std::span<const std::uint8_t> bytes) noexcept {
        if (2 * bytes.size() > buf_.size() - len_) {
            overflow_ = true;
            return;
        }
        write_hex(bytes, buf_.data() + len_);
        len_ += 2 * bytes.size();
    }

    bool overflow() const noexcept { return overflow_; }
    std::string_view text() const noexcept { return {buf_.data(), len_}; }

private:
    std::span<char> buf_;
    std::size_t len_ = 0;
    bool overflow_ = false;
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
