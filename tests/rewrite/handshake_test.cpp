// The twin handshake packets, decoded byte by byte here (no parser): every
// header field, the exact option bytes, and checksums against a naive sum.

#include "rewrite/handshake.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rewrite/frame_rewrite.hpp"
#include "rewrite/translation.hpp"
#include "sniffer/packet.hpp"

namespace migware::rewrite {
namespace {

using Bytes = std::vector<std::uint8_t>;
using sniffer::Endpoint;
using sniffer::Ipv4Addr;
using sniffer::Port;

std::uint16_t naive_checksum(const Bytes& data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < data.size(); i += 2) {
        std::uint32_t word = std::uint32_t{data[i]} << 8;
        if (i + 1 < data.size()) word |= data[i + 1];
        sum += word;
        if (sum > 0xffff) sum = (sum & 0xffff) + 1;
    }
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::uint16_t be16(const Bytes& b, std::size_t at) {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}
std::uint32_t be32(const Bytes& b, std::size_t at) {
    return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
           (std::uint32_t{b[at + 2]} << 8) | b[at + 3];
}

/// Everything in the packet, decoded longhand.
struct Decoded {
    std::uint8_t version = 0, ihl = 0, tos = 0, ttl = 0, protocol = 0;
    std::uint16_t total_length = 0, id = 0, frag = 0;
    std::uint32_t src_ip = 0, dst_ip = 0;
    bool ip_checksum_ok = false;
    std::uint16_t src_port = 0, dst_port = 0, window = 0, urgent = 0;
    std::uint32_t seq = 0, ack = 0;
    std::uint8_t data_offset_bytes = 0, flags = 0, reserved = 0;
    Bytes options;
    std::size_t payload = 0;
    bool tcp_checksum_ok = false;
};

Decoded decode(const Bytes& p) {
    Decoded d;
    d.version = static_cast<std::uint8_t>(p[0] >> 4);
    d.ihl = static_cast<std::uint8_t>((p[0] & 0x0f) * 4);
    d.tos = p[1];
    d.total_length = be16(p, 2);
    d.id = be16(p, 4);
    d.frag = be16(p, 6);
    d.ttl = p[8];
    d.protocol = p[9];
    d.src_ip = be32(p, 12);
    d.dst_ip = be32(p, 16);
    d.ip_checksum_ok = naive_checksum(Bytes(p.begin(), p.begin() + d.ihl)) == 0;
    const Bytes tcp(p.begin() + d.ihl, p.end());
    d.src_port = be16(tcp, 0);
    d.dst_port = be16(tcp, 2);
    d.seq = be32(tcp, 4);
    d.ack = be32(tcp, 8);
    d.data_offset_bytes = static_cast<std::uint8_t>((tcp[12] >> 4) * 4);
    d.reserved = static_cast<std::uint8_t>(tcp[12] & 0x0f);
    d.flags = tcp[13];
    d.window = be16(tcp, 14);
    d.urgent = be16(tcp, 18);
    d.options.assign(tcp.begin() + 20, tcp.begin() + d.data_offset_bytes);
    d.payload = tcp.size() - d.data_offset_bytes;
    Bytes pseudo(p.begin() + 12, p.begin() + 20);
    pseudo.push_back(0);
    pseudo.push_back(6);
    pseudo.push_back(static_cast<std::uint8_t>(tcp.size() >> 8));
    pseudo.push_back(static_cast<std::uint8_t>(tcp.size()));
    pseudo.insert(pseudo.end(), tcp.begin(), tcp.end());
    d.tcp_checksum_ok = naive_checksum(pseudo) == 0;
    return d;
}

void expect_common_ip(const Decoded& d, std::size_t len, std::uint16_t id) {
    EXPECT_EQ(d.version, 4);
    EXPECT_EQ(d.ihl, 20);
    EXPECT_EQ(d.tos, 0);
    EXPECT_EQ(d.total_length, len);
    EXPECT_EQ(d.id, id);
    EXPECT_EQ(d.frag, 0x4000);  // DF, no fragment offset
    EXPECT_EQ(d.ttl, 64);
    EXPECT_EQ(d.protocol, 6);
    EXPECT_TRUE(d.ip_checksum_ok);
    EXPECT_TRUE(d.tcp_checksum_ok);
    EXPECT_EQ(d.reserved, 0);
    EXPECT_EQ(d.urgent, 0);
    EXPECT_EQ(d.payload, 0u);
}

const Endpoint kPrimaryQ{Ipv4Addr{0xc6120002}, Port{40001}};  // 198.18.0.2:40001
const Endpoint kBackup{Ipv4Addr{0xc6120003}, Port{8080}};      // 198.18.0.3:8080

Bytes run_syn(const TwinSynSpec& spec) {
    std::array<std::byte, kMaxHandshakePacket> buf{};
    const std::size_t n = build_twin_syn(buf, spec);
    Bytes out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = std::to_integer<std::uint8_t>(buf[i]);
    return out;
}

Bytes run_ack(const TwinAckSpec& spec) {
    std::array<std::byte, kMaxHandshakePacket> buf{};
    const std::size_t n = build_twin_ack(buf, spec);
    Bytes out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = std::to_integer<std::uint8_t>(buf[i]);
    return out;
}

struct SynCase {
    std::string name;
    std::optional<std::uint16_t> mss;
    bool sack;
    std::optional<std::uint32_t> tsval;
    std::optional<std::uint8_t> wscale;
    Bytes options;  // exactly what must be on the wire
};

class TwinSyn : public ::testing::TestWithParam<SynCase> {};

TEST_P(TwinSyn, FieldsAndExactOptions) {
    const SynCase& c = GetParam();
    TwinSynSpec spec;
    spec.src = kPrimaryQ;
    spec.dst = kBackup;
    spec.seq = SeqNum{0xffffffffu};
    spec.mss = c.mss;
    spec.sack_permitted = c.sack;
    if (c.tsval) spec.tsval = TsVal{*c.tsval};
    spec.wscale = c.wscale;
    spec.window = 64240;
    spec.ip_id = 0xbeef;
    const Bytes p = run_syn(spec);
    ASSERT_EQ(p.size(), 40 + c.options.size());
    const Decoded d = decode(p);
    expect_common_ip(d, p.size(), 0xbeef);
    EXPECT_EQ(d.src_ip, 0xc6120002u);
    EXPECT_EQ(d.dst_ip, 0xc6120003u);
    EXPECT_EQ(d.src_port, 40001);
    EXPECT_EQ(d.dst_port, 8080);
    EXPECT_EQ(d.seq, 0xffffffffu);
    EXPECT_EQ(d.ack, 0u);
    EXPECT_EQ(d.flags, sniffer::tcp_flag::kSyn);
    EXPECT_EQ(d.window, 64240);
    EXPECT_EQ(d.options, c.options);
}

INSTANTIATE_TEST_SUITE_P(
    Table, TwinSyn,
    ::testing::Values(
        // Linux's order with everything on: MSS, SACK-perm, TS, NOP, WS.
        SynCase{"linux_all", 1460, true, 0xfffffff0u, 10,
                {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0, 1, 3, 3,
                 10}},
        SynCase{"no_options", std::nullopt, false, std::nullopt, std::nullopt, {}},
        SynCase{"mss_only", 536, false, std::nullopt, std::nullopt, {2, 4, 0x02, 0x18}},
        SynCase{"ts_without_sack", 1460, false, 7, 7,
                {2, 4, 0x05, 0xb4, 1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7}},
        SynCase{"sack_without_ts", 1460, true, std::nullopt, 7,
                {2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7}},
        SynCase{"sack_only", std::nullopt, true, std::nullopt, std::nullopt, {1, 1, 4, 2}},
        SynCase{"ws_zero", 1460, false, std::nullopt, 0, {2, 4, 0x05, 0xb4, 1, 3, 3, 0}},
        SynCase{"ws_above_14_capped", 1460, false, std::nullopt, 15,
                {2, 4, 0x05, 0xb4, 1, 3, 3, 14}},
        SynCase{"ts_only", std::nullopt, false, 0x01020304u, std::nullopt,
                {1, 1, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0}}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(TwinAck, WithTimestamps) {
    TwinAckSpec spec;
    spec.src = kPrimaryQ;
    spec.dst = kBackup;
    spec.seq = SeqNum{0};
    spec.ack = SeqNum{0x80000000u};
    spec.timestamps = TimestampPair{TsVal{0xfffffffeu}, TsVal{0x00abcdefu}};
    spec.window = 502;
    spec.ip_id = 7;
    const Bytes p = run_ack(spec);
    ASSERT_EQ(p.size(), 52u);
    const Decoded d = decode(p);
    expect_common_ip(d, 52, 7);
    EXPECT_EQ(d.src_ip, 0xc6120002u);
    EXPECT_EQ(d.dst_ip, 0xc6120003u);
    EXPECT_EQ(d.src_port, 40001);
    EXPECT_EQ(d.dst_port, 8080);
    EXPECT_EQ(d.seq, 0u);
    EXPECT_EQ(d.ack, 0x80000000u);
    EXPECT_EQ(d.flags, sniffer::tcp_flag::kAck);
    EXPECT_EQ(d.window, 502);
    EXPECT_EQ(d.options, (Bytes{1, 1, 8, 10, 0xff, 0xff, 0xff, 0xfe, 0x00, 0xab, 0xcd, 0xef}));
}

TEST(TwinAck, WithoutTimestamps) {
    TwinAckSpec spec;
    spec.src = kPrimaryQ;
    spec.dst = kBackup;
    spec.seq = SeqNum{1};
    spec.ack = SeqNum{2};
    spec.window = 0;
    spec.ip_id = 0xffff;
    const Bytes p = run_ack(spec);
    ASSERT_EQ(p.size(), 40u);
    const Decoded d = decode(p);
    expect_common_ip(d, 40, 0xffff);
    EXPECT_EQ(d.seq, 1u);
    EXPECT_EQ(d.ack, 2u);
    EXPECT_EQ(d.flags, sniffer::tcp_flag::kAck);
    EXPECT_TRUE(d.options.empty());
}

TEST(Handshake, TooSmallBufferWritesNothing) {
    TwinSynSpec syn;
    syn.mss = 1460;
    syn.sack_permitted = true;
    syn.tsval = TsVal{1};
    syn.wscale = 7;
    std::array<std::byte, 59> small{};
    std::fill(small.begin(), small.end(), std::byte{0xaa});
    EXPECT_EQ(build_twin_syn(small, syn), 0u);
    EXPECT_TRUE(std::all_of(small.begin(), small.end(),
                            [](std::byte b) { return b == std::byte{0xaa}; }));
    std::array<std::byte, 60> exact{};
    EXPECT_EQ(build_twin_syn(exact, syn), 60u);

    TwinAckSpec ack;
    ack.timestamps = TimestampPair{};
    std::array<std::byte, 51> small_ack{};
    EXPECT_EQ(build_twin_ack(small_ack, ack), 0u);
    EXPECT_EQ(build_twin_ack(std::span<std::byte>{}, ack), 0u);
}

TEST(Handshake, ChecksumsAreExactForManyInputs) {
    // Sweep values so that checksum corner cases (0x0000, 0xffff sums) are hit.
    for (std::uint32_t i = 0; i < 3000; ++i) {
        TwinSynSpec syn;
        syn.src = Endpoint{Ipv4Addr{0xc6120000u + i}, Port{static_cast<std::uint16_t>(i * 37)}};
        syn.dst = kBackup;
        syn.seq = SeqNum{i * 0x9e3779b9u};
        syn.mss = static_cast<std::uint16_t>(i);
        syn.tsval = TsVal{~i};
        syn.sack_permitted = (i % 2) == 0;
        syn.wscale = static_cast<std::uint8_t>(i % 15);
        syn.ip_id = static_cast<std::uint16_t>(i * 101);
        const Decoded d = decode(run_syn(syn));
        ASSERT_TRUE(d.ip_checksum_ok) << i;
        ASSERT_TRUE(d.tcp_checksum_ok) << i;
    }
}

ObservedConnection lab_connection() {
    ObservedConnection c;
    c.a = SeqNum{0};  // A - 1 wraps
    c.k = SeqNum{0x12345678u};
    c.client_mss = 1460;
    c.client_wscale = 7;
    c.primary_wscale = 10;
    c.client_sack_permitted = c.primary_sack_permitted = true;
    c.client_timestamps = c.primary_timestamps = true;
    c.client_tsval_latest = TsVal{0xdeadbeefu};
    c.primary_tsval_last = TsVal{5000};
    return c;
}

TEST(TwinSynSpecFor, CarriesClientOptionsAndSeqAMinusOne) {
    const ObservedConnection c = lab_connection();
    const TwinSynSpec spec = twin_syn_spec(c, kPrimaryQ, kBackup, 64240, 99);
    EXPECT_EQ(spec.seq.raw(), 0xffffffffu);
    ASSERT_TRUE(spec.mss.has_value());
    EXPECT_EQ(*spec.mss, 1460);
    EXPECT_TRUE(spec.sack_permitted);
    ASSERT_TRUE(spec.tsval.has_value());
    EXPECT_EQ(spec.tsval->raw(), 0xdeadbeefu);
    ASSERT_TRUE(spec.wscale.has_value());
    EXPECT_EQ(*spec.wscale, 7);
    const Decoded d = decode(run_syn(spec));
    EXPECT_EQ(d.seq, 0xffffffffu);
    EXPECT_EQ(d.options, (Bytes{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0,
                                0, 1, 3, 3, 7}));
}

TEST(TwinSynSpecFor, OffersOnlyWhatBothEndsNegotiated) {
    ObservedConnection c = lab_connection();
    c.primary_wscale.reset();
    c.primary_sack_permitted = false;
    c.primary_timestamps = false;
    const TwinSynSpec spec = twin_syn_spec(c, kPrimaryQ, kBackup, 1000, 1);
    EXPECT_FALSE(spec.wscale.has_value());
    EXPECT_FALSE(spec.sack_permitted);
    EXPECT_FALSE(spec.tsval.has_value());
    EXPECT_EQ(decode(run_syn(spec)).options, (Bytes{2, 4, 0x05, 0xb4}));
}

// The whole twin set-up: SYN from the observation, B's SYN-ACK, the ACK,
// the offsets, and a client segment at A landing on the twin's first byte.
TEST(TwinHandshakeFlow, AckAndOffsetsAgree) {
    const ObservedConnection c = lab_connection();
    const TwinSynSpec syn = twin_syn_spec(c, kPrimaryQ, kBackup, 64240, 1);
    TwinHandshake twin;
    twin.syn_seq = syn.seq;
    twin.isn_b = SeqNum{0xffffffffu};  // ISNb + 1 wraps to 0
    twin.backup_wscale = 9;
    twin.backup_sack_permitted = true;
    twin.backup_timestamps = true;
    twin.tsb0 = TsVal{77};
    const TwinAckSpec ack = twin_ack_spec(c, twin, kPrimaryQ, kBackup, 502, 2);
    const Decoded d = decode(run_ack(ack));
    EXPECT_EQ(d.seq, 0u);  // A
    EXPECT_EQ(d.ack, 0u);  // ISNb + 1
    EXPECT_EQ(d.options, (Bytes{1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 77}));

    const Offsets off = compute_offsets(c, twin);
    EXPECT_EQ(off.d1.value, 0u);
    EXPECT_EQ(client_to_backup_seq(c.a, off).raw(), d.seq);
    EXPECT_EQ(client_to_backup_ack(c.k, off).raw(), d.ack);
    EXPECT_EQ(off.dts.value, 5001u - 77u);

    // Without timestamps on B, the ACK carries no options.
    twin.backup_timestamps = false;
    const TwinAckSpec bare = twin_ack_spec(c, twin, kPrimaryQ, kBackup, 502, 2);
    EXPECT_TRUE(decode(run_ack(bare)).options.empty());
}

}  // namespace
}  // namespace migware::rewrite
