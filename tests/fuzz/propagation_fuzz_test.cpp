// Runs the fuzz target without libFuzzer: a deterministic corpus of spec examples and edge
// cases, then seeded random mutations of it (same inputs every run). A property violation
// aborts inside the target, failing the test.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int feed(const std::string& input) {
    return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()),
                                  input.size());
}

std::vector<std::string> corpus() {
    const std::vector<std::string> traceparents = {
        "00-12345678901234567890123456789012-1234567890123456-01",
        " 00-12345678901234567890123456789012-1234567890123456-01\t",
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        "cc-12345678901234567890123456789012-1234567890123456-01.what",
        "ff-12345678901234567890123456789012-1234567890123456-01",
        "00-00000000000000000000000000000000-1234567890123456-01",
        "00-12345678901234567890123456789012-0000000000000000-01",
        "00-ABCDEF78901234567890123456789012-1234567890123456-01",
        "00-12345678901234567890123456789012-1234567890123456-01\n"
        "00-12345678901234567890123456789012-1234567890123456-01",
        "",
        "-",
        "00-",
        "00-1-2-3"};
    const std::vector<std::string> tracestates = {"foo=1,bar=2",
                                                  "foo=1 \t , \t bar=2, \t baz=3",
                                                  "",
                                                  ",,, ,",
                                                  "foo=1\n\nbar=2",
                                                  "foo=bar=baz",
                                                  "foo=,bar=3",
                                                  "FOO=1",
                                                  "foo@=1,bar=2",
                                                  "@foo=1",
                                                  "t@vvvvvvvvvvvvvvv=1",
                                                  std::string(256, 'z') + "=1",
                                                  std::string(257, 'z') + "=1",
                                                  "k=" + std::string(256, 'v'),
                                                  "a=1,a=2,b=3",
                                                  "k= leading"};
    const std::vector<std::string> ids = {
        "abc", "a b", std::string(128, 'x'), std::string(129, 'x'), "A.b_c:d-e", ""};
    const std::vector<std::string> urls = {"http://127.0.0.1:7777/a?b=c#d",
                                           "http://[::1]:9/",
                                           "HTTP://LocalHost",
                                           "https://127.0.0.1/",
                                           "http://u@h:1/",
                                           "http://h:99999/",
                                           "http://%41:1/",
                                           "http://h:1//x",
                                           "http://h:0/",
                                           "http:/x",
                                           "http://h.example:80/p%20q"};
    std::vector<std::string> out;
    for (const auto& s : traceparents) out.push_back('\0' + s);
    for (const auto& s : tracestates) out.push_back('\1' + s);
    for (const auto& s : ids) out.push_back('\2' + s);
    for (const auto& s : urls) out.push_back('\3' + s);
    return out;
}

TEST(PropagationFuzz, Corpus) {
    for (const auto& input : corpus()) EXPECT_EQ(feed(input), 0);
}

TEST(PropagationFuzz, SeededMutations) {
    const auto seeds = corpus();
    const std::string alphabet = "0123456789abcdefABCDEF-=,@*/_ \t\n.:[]%?#x\x7f\x01";
    std::mt19937_64 rng(20261126);
    for (int i = 0; i < 200000; ++i) {
        std::string s = seeds[rng() % seeds.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !s.empty(); ++e) {
            const std::size_t pos = 1 + rng() % s.size();
            switch (rng() % 4) {
                case 0:
                    if (pos < s.size()) s[pos] = alphabet[rng() % alphabet.size()];
                    break;
                case 1:
                    s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
                    break;
                case 2:
                    if (pos < s.size()) s.erase(pos, 1 + rng() % 3);
                    break;
                default:
                    s += s.substr(pos);
                    break;
            }
        }
        ASSERT_EQ(feed(s), 0);
    }
}

}  // namespace
