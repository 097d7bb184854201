// In-process replay over the whole shared corpus: the accounting invariants
// hold for every capture (this runs under ASan/UBSan in CI), and the JSON
// rendering says null for what is unknown.

#include "migware/pipeline.hpp"
#include "migware/report.hpp"
#include "sniffer/pcap_source.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>

namespace migware {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(MIGWARE_SOURCE_DIR) / ".." / "shared" / "corpus";

TEST(ReplayPipeline, EveryCorpusCaptureKeepsItsCountersConsistent) {
    ASSERT_TRUE(fs::is_directory(kCorpus)) << kCorpus << " missing: shared/ must sit beside the repo";
    int decoded = 0, refused = 0;
    std::uint64_t frames = 0, tcp = 0, malformed = 0;
    for (const auto& entry : fs::recursive_directory_iterator(kCorpus)) {
        if (!entry.is_regular_file()) continue;
        const auto ext = entry.path().extension();
        if (ext != ".pcap" && ext != ".pcapng" && ext != ".cap") continue;
        SCOPED_TRACE(entry.path().string());
        std::unique_ptr<sniffer::PcapFileSource> source;
        try {
            source = std::make_unique<sniffer::PcapFileSource>(entry.path().string());
        } catch (const sniffer::CaptureError& e) {
            EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
            ++refused;
            continue;
        }
        Pipeline pipeline({});
        run_to_end(*source, pipeline);
        const auto& pc = pipeline.parse_counters();
        const std::uint64_t kinds = std::accumulate(pc.by_kind.begin(), pc.by_kind.end(), 0ull);
        EXPECT_EQ(pc.frames, kinds + pc.malformed());
        EXPECT_LE(pipeline.table().size(), pc.kind(sniffer::PacketKind::Tcp));
        EXPECT_EQ(pipeline.table().counters().segments + pipeline.table().counters().unknown_rst,
                  pc.kind(sniffer::PacketKind::Tcp));
        std::size_t rows = 0;
        pipeline.table().for_each([&](const tracker::Connection& c) {
            ++rows;
            const std::string json = connection_json(c).dump();
            EXPECT_EQ(json.front(), '{');
            EXPECT_EQ(json.back(), '}');
        });
        EXPECT_EQ(rows, pipeline.table().size());
        ++decoded;
        frames += pc.frames;
        tcp += pc.kind(sniffer::PacketKind::Tcp);
        malformed += pc.malformed();
    }
    std::printf("corpus: %d decoded, %d refused; %llu frames, %llu tcp, %llu malformed\n", decoded,
                refused, static_cast<unsigned long long>(frames),
                static_cast<unsigned long long>(tcp), static_cast<unsigned long long>(malformed));
    EXPECT_GE(decoded + refused, 800);
    EXPECT_GT(decoded, 500);
    EXPECT_GT(malformed, 0u);  // the corpus holds crafted malformed frames
}

TEST(ReplayReport, UnknownFieldsAreNull) {
    tracker::Connection c;
    c.key = {*sniffer::Endpoint::parse("198.18.0.10:40000"), *sniffer::Endpoint::parse("198.18.0.1:7000")};
    c.partial = true;
    c.state = tracker::TcpState::Established;
    EXPECT_EQ(connection_json(c).dump(),
              "{\"client\":\"198.18.0.10:40000\",\"server\":\"198.18.0.1:7000\","
              "\"state\":\"established\",\"client_isn\":null,\"server_isn\":null,\"mss\":null,"
              "\"client_wscale\":null,\"server_wscale\":null,\"sack\":null,\"timestamps\":null,"
              "\"partial\":true,\"client_bytes_acked\":null,\"server_bytes_acked\":null}");
}

}  // namespace
}  // namespace migware
