// build_twin_data: the unacknowledged client bytes handed to the backup
// right after the twin handshake.

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "sniffer/checksum.hpp"
#include "rewrite/handshake.hpp"
#include "sniffer/parser.hpp"

namespace migware::rewrite {
namespace {

using sniffer::Endpoint;
using sniffer::ipv4_header_checksum_ok;
using sniffer::tcp_checksum_ok;

TwinDataSpec spec(bool timestamps) {
    TwinDataSpec s;
    s.src = *Endpoint::parse("198.18.0.1:40000");
    s.dst = *Endpoint::parse("198.18.0.2:7000");
    s.seq = SeqNum{0xfffffff0u};
    s.ack = SeqNum{0x12345678u};
    if (timestamps) s.timestamps = TimestampPair{TsVal{0xdeadbeefu}, TsVal{7}};
    s.window = 501;
    s.ip_id = 99;
    return s;
}

TEST(TwinData, CarriesExactlyThePayloadWithValidChecksums) {
    for (bool ts : {false, true}) {
        std::vector<std::byte> payload(777);
        for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(i * 7);
        std::array<std::byte, 2048> out{};
        const std::size_t n = build_twin_data(out, spec(ts), payload);
        ASSERT_EQ(n, 20u + 20u + (ts ? 12u : 0u) + payload.size()) << ts;
        sniffer::Packet p;
        ASSERT_FALSE(sniffer::parse(std::span(out.data(), n), static_cast<std::uint32_t>(n),
                                    sniffer::LinkType::RawIp, p));
        ASSERT_EQ(p.kind, sniffer::PacketKind::Tcp);
        EXPECT_EQ(p.ip.src.to_string(), "198.18.0.1");
        EXPECT_EQ(p.tcp.dst_port.value, 7000);
        EXPECT_EQ(p.tcp.seq.raw(), 0xfffffff0u);
        EXPECT_EQ(p.tcp.ack.raw(), 0x12345678u);
        EXPECT_EQ(p.tcp.flags, sniffer::tcp_flag::kAck | sniffer::tcp_flag::kPsh);
        EXPECT_EQ(p.tcp.window, 501);
        EXPECT_EQ(p.ip.id, 99);
        EXPECT_EQ(p.tcp.options.has_timestamps, ts);
        if (ts) {
            EXPECT_EQ(p.tcp.options.tsval, 0xdeadbeefu);
            EXPECT_EQ(p.tcp.options.tsecr, 7u);
        }
        ASSERT_EQ(p.payload_length, payload.size());
        EXPECT_EQ(std::memcmp(out.data() + p.layout.payload, payload.data(), payload.size()), 0);
        const auto bytes = std::span<const std::byte>(out.data(), n);
        EXPECT_TRUE(ipv4_header_checksum_ok(bytes.first(20)));
        EXPECT_TRUE(tcp_checksum_ok(p.ip.src, p.ip.dst, bytes.subspan(20)));
    }
}

TEST(TwinData, RefusesABufferTooSmallAndWritesNothing) {
    std::vector<std::byte> payload(100, std::byte{1});
    std::array<std::byte, 120> out{};
    EXPECT_EQ(build_twin_data(out, spec(true), payload), 0u);
    for (auto b : out) ASSERT_EQ(b, std::byte{0});
}

}  // namespace
}  // namespace migware::rewrite
