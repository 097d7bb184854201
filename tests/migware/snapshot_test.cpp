#include "migware/snapshot.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

namespace migware {
namespace {

using tracker::HandshakeFacts;

HandshakeFacts facts(std::uint16_t port, bool options) {
    HandshakeFacts f;
    f.key = {*sniffer::Endpoint::parse("198.18.0.10:" + std::to_string(port)),
             *sniffer::Endpoint::parse("198.18.0.1:7000")};
    f.client_isn = sniffer::SeqNum{0xfffffff0u + port};
    f.server_isn = sniffer::SeqNum{12345};
    if (options) {
        f.client_mss = 1460;
        f.server_mss = 1400;
        f.client_wscale = 7;
        f.server_wscale = 10;
        f.client_sack = f.server_sack = true;
        f.client_ts = f.server_ts = true;
        f.vlan = 42;
    }
    f.client_mac.bytes = {2, 0, 0, 0, 0, 0x0a};
    f.server_mac.bytes = {2, 0, 0, 0, 0, 0x01};
    return f;
}

TEST(Snapshot, RoundTripsEveryField) {
    const std::vector<HandshakeFacts> in{facts(40000, true), facts(40001, false)};
    const std::string text = serialize_snapshot(in);
    const auto out = parse_snapshot(text);
    ASSERT_EQ(out.error, "");
    EXPECT_EQ(out.facts, in);
}

TEST(Snapshot, EmptyTableRoundTrips) {
    const auto out = parse_snapshot(serialize_snapshot({}));
    EXPECT_EQ(out.error, "");
    EXPECT_TRUE(out.facts.empty());
}

TEST(Snapshot, EveryTruncationIsRefusedWithAReason) {
    const std::string text = serialize_snapshot({facts(40000, true), facts(40001, true)});
    for (std::size_t n = 0; n + 1 < text.size(); ++n) {  // all but the final newline
        const auto out = parse_snapshot(std::string_view(text).substr(0, n));
        EXPECT_NE(out.error, "") << "accepted a file cut at " << n << " of " << text.size();
        EXPECT_TRUE(out.facts.empty());
        EXPECT_EQ(out.error.find('\n'), std::string::npos);
    }
}

TEST(Snapshot, AnyChangedByteIsRefused) {
    const std::string text = serialize_snapshot({facts(40000, true)});
    for (std::size_t i = 0; i < text.size(); ++i) {
        std::string bad = text;
        bad[i] = static_cast<char>(bad[i] ^ 0x01);
        EXPECT_NE(parse_snapshot(bad).error, "") << "byte " << i;
    }
}

TEST(Snapshot, OtherVersionsAndFilesAreRefusedClearly) {
    std::string v2 = "migware-snapshot 2 0\n";
    char end[32];
    std::snprintf(end, sizeof end, "end %08x\n", crc32(v2));
    EXPECT_EQ(parse_snapshot(v2 + end).error, "unsupported version 2 (this migware reads 1)");
    EXPECT_EQ(parse_snapshot("hello\n").error, "truncated: no end line");
    EXPECT_EQ(parse_snapshot("").error, "truncated: no end line");
}

TEST(Snapshot, Crc32MatchesTheStandardCheckValue) {
    EXPECT_EQ(crc32("123456789"), 0xcbf43926u);  // the CRC-32/IEEE check value
}

TEST(Snapshot, FileWriteIsAtomicReplaceAndReadsBack) {
    const auto dir = std::filesystem::temp_directory_path() / ("mwsnap" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "snapshot").string();
    bool exists = true;
    std::string error;
    EXPECT_EQ(read_snapshot_file(path, exists, error), "");
    EXPECT_FALSE(exists);
    EXPECT_EQ(error, "");
    ASSERT_EQ(write_snapshot_file(path, serialize_snapshot({facts(1, true)})), "");
    ASSERT_EQ(write_snapshot_file(path, serialize_snapshot({facts(2, false)})), "");
    const std::string back = read_snapshot_file(path, exists, error);
    EXPECT_TRUE(exists);
    const auto parsed = parse_snapshot(back);
    ASSERT_EQ(parsed.facts.size(), 1u);
    EXPECT_EQ(parsed.facts[0], facts(2, false));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace migware
