// logfmt values: one event is one line, whatever a value holds, and the
// control socket's parser reads back exactly what was written.

#include "migware/event_log.hpp"

#include <gtest/gtest.h>

#include <string>

namespace migware {
namespace {

TEST(LogfmtTest, PlainValuesStayBare) {
    EXPECT_EQ(logfmt_value("normal"), "normal");
    EXPECT_EQ(logfmt_value("198.18.0.1:7000"), "198.18.0.1:7000");
    EXPECT_EQ(logfmt_value(""), "\"\"");
}

TEST(LogfmtTest, SpacesQuotesAndEqualsAreQuoted) {
    EXPECT_EQ(logfmt_value("a b"), "\"a b\"");
    EXPECT_EQ(logfmt_value("say \"hi\""), "\"say \\\"hi\\\"\"");
    EXPECT_EQ(logfmt_value("k=v"), "\"k=v\"");
    EXPECT_EQ(logfmt_value("c:\\x"), "\"c:\\\\x\"");
}

TEST(LogfmtTest, NoControlCharacterEverReachesTheLine) {
    // Reported: "a\nb" came out raw and split a one-line-per-event log.
    EXPECT_EQ(logfmt_value("a\nb"), "\"a\\nb\"");
    EXPECT_EQ(logfmt_value("a\rb\tc"), "\"a\\rb\\tc\"");
    EXPECT_EQ(logfmt_value(std::string("nul\0x", 5)), "\"nul\\x00x\"");
    EXPECT_EQ(logfmt_value("\x1b[2J\x7f"), "\"\\x1b[2J\\x7f\"");
    for (int c = 0; c < 256; ++c) {
        const std::string v = "x" + std::string(1, static_cast<char>(c)) + "y";
        const std::string out = logfmt_value(v);
        for (char o : out) {
            const auto u = static_cast<unsigned char>(o);
            EXPECT_FALSE(u < 0x20 || u == 0x7f) << "byte " << c << " leaked into " << out;
        }
    }
}

TEST(LogfmtTest, ParserReadsBackEveryValueExactly) {
    std::string every;
    for (int c = 1; c < 256; ++c) every += static_cast<char>(c);
    every += std::string(1, '\0');
    const std::string values[] = {"plain", "", "a b", "a\nb", "q\"uo\\te", every, "\\x4g", "end\\"};
    std::string fields;
    for (std::size_t i = 0; i < std::size(values); ++i)
        fields += (i ? " " : "") + std::string("k") + std::to_string(i) + "=" + logfmt_value(values[i]);
    const auto parsed = parse_logfmt(fields);
    ASSERT_EQ(parsed.size(), std::size(values));
    for (std::size_t i = 0; i < std::size(values); ++i) {
        EXPECT_EQ(parsed[i].first, "k" + std::to_string(i));
        EXPECT_EQ(parsed[i].second, values[i]) << "value " << i;
    }
}

}  // namespace
}  // namespace migware
