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

TEST(LogfmtTest, TypedFieldsAreWrittenAsLogfmt) {
    const Fields f{{"s", std::string("a b")}, {"plain", std::string("x")}, {"i", std::int64_t{-5}},
                   {"u", std::uint64_t{18446744073709551615u}}, {"d", 0.25}, {"b", false},
                   {"nl", std::string("a\nb")}, {"empty", std::string()}};
    EXPECT_EQ(to_logfmt(f), "s=\"a b\" plain=x i=-5 u=18446744073709551615 d=0.25 b=false nl=\"a\\nb\" empty=\"\"");
    EXPECT_EQ(to_logfmt({}), "");
    MemorySink sink;
    sink.emit(7, "e", f);
    ASSERT_EQ(sink.entries.size(), 1u);
    EXPECT_EQ(sink.entries[0].fields, to_logfmt(f));
    EXPECT_EQ(sink.entries[0].values, f);
}

TEST(EventRingTest, KeepsTheLastEventsWithTheirFields) {
    EventRing ring(3, false);
    for (int i = 0; i < 5; ++i) ring.emit(i, i % 2 ? "odd" : "even", Fields{{"i", std::int64_t{i}}});
    const auto last = ring.last(10);
    ASSERT_EQ(last.size(), 3u);
    EXPECT_EQ(last[0].seq, 3u);
    EXPECT_EQ(last[2].fields, (Fields{{"i", std::int64_t{4}}}));
    ASSERT_NE(ring.newest("odd"), nullptr);
    EXPECT_EQ(ring.newest("odd")->seq, 4u);
    EXPECT_EQ(ring.newest("none"), nullptr);
    EXPECT_EQ(ring.next_seq(), 6u);
}

}  // namespace
}  // namespace migware
