// Wire-frame builders, checked against bytes written out by hand here (from
// RFC 826 / RFC 792 / IEEE 802.1Q), and round-tripped through the parser.

#include "rewrite/frames.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sniffer/checksum.hpp"
#include "sniffer/parser.hpp"

namespace migware::rewrite {
namespace {

using Bytes = std::vector<std::uint8_t>;
using sniffer::Ipv4Addr;
using sniffer::MacAddr;

const MacAddr kMacA{{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}};
const MacAddr kMacB{{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}};
const MacAddr kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
const Ipv4Addr kIpA{0xc6120002};  // 198.18.0.2
const Ipv4Addr kIpB{0xc6120110};  // 198.18.1.16

std::span<std::byte> writable(Bytes& b) { return std::as_writable_bytes(std::span(b)); }
std::span<const std::byte> view(const Bytes& b) { return std::as_bytes(std::span(b)); }

sniffer::Packet parse_ethernet(const Bytes& f) {
    sniffer::Packet p;
    EXPECT_FALSE(sniffer::parse(view(f), static_cast<std::uint32_t>(f.size()),
                                sniffer::LinkType::Ethernet, p));
    return p;
}

// ---- Ethernet -----------------------------------------------------------

TEST(Ethernet, UntaggedHeaderByHand) {
    Bytes buf(20, 0xee);
    EXPECT_EQ(write_ethernet(writable(buf), {kMacA, kMacB, std::nullopt, kEtherTypeIpv4}), 14u);
    const Bytes want{0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x0b, 0x08, 0x00,
                     0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
    EXPECT_EQ(buf, want);
}

TEST(Ethernet, TaggedHeaderByHand) {
    Bytes buf(18);
    EXPECT_EQ(write_ethernet(writable(buf), {kMacA, kMacB, std::uint16_t{0x2064}, kEtherTypeArp}),
              18u);
    const Bytes want{0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x0b,
                     0x81, 0x00, 0x20, 0x64, 0x08, 0x06};
    EXPECT_EQ(buf, want);
}

TEST(Ethernet, TooShortWritesNothing) {
    for (const std::optional<std::uint16_t> vlan : {std::optional<std::uint16_t>{},
                                                    std::optional<std::uint16_t>{5}}) {
        const EthernetHeader h{kMacA, kMacB, vlan, kEtherTypeIpv4};
        for (std::size_t n = 0; n < ethernet_header_length(h); ++n) {
            Bytes buf(n, 0xee);
            EXPECT_EQ(write_ethernet(writable(buf), h), 0u) << n;
            EXPECT_EQ(buf, Bytes(n, 0xee)) << n;
        }
    }
}

// ---- ARP ----------------------------------------------------------------

TEST(Arp, BroadcastRequestByHand) {
    // RFC 5227 §3 announcement shape: sender = target IP, target MAC zero.
    const ArpFrame a{{kBroadcast, kMacA, std::nullopt, 0}, ArpOp::Request, kMacA, kIpA,
                     MacAddr{}, kIpA};
    Bytes buf(64, 0xee);
    ASSERT_EQ(build_arp(writable(buf), a), 42u);
    buf.resize(42);
    const Bytes want{
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x06,  // Ethernet
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,                                // hw, proto, op
        0x02, 0, 0, 0, 0, 0x0a, 198, 18, 0, 2,                                    // sender
        0, 0, 0, 0, 0, 0, 198, 18, 0, 2};                                         // target
    EXPECT_EQ(buf, want);
}

TEST(Arp, TaggedReplyByHandAndThroughTheParser) {
    const ArpFrame a{{kMacB, kMacA, std::uint16_t{0x0064}, 0}, ArpOp::Reply, kMacA, kIpA, kMacB,
                     kIpB};
    Bytes buf(kMaxArpFrame);
    ASSERT_EQ(build_arp(writable(buf), a), 46u);
    const Bytes want{
        0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02,
        0x02, 0, 0, 0, 0, 0x0a, 198, 18, 0, 2,
        0x02, 0, 0, 0, 0, 0x0b, 198, 18, 1, 16};
    EXPECT_EQ(buf, want);

    const sniffer::Packet p = parse_ethernet(buf);
    EXPECT_EQ(p.kind, sniffer::PacketKind::Arp);
    EXPECT_EQ(p.eth.vlan, std::optional<std::uint16_t>{0x0064});
    EXPECT_EQ(p.eth.dst, kMacB);
    EXPECT_EQ(p.eth.src, kMacA);
    EXPECT_EQ(p.arp.op, 2);
    EXPECT_EQ(p.arp.sender_mac, kMacA);
    EXPECT_EQ(p.arp.sender_ip, kIpA);
    EXPECT_EQ(p.arp.target_mac, kMacB);
    EXPECT_EQ(p.arp.target_ip, kIpB);
}

TEST(Arp, TooShortWritesNothing) {
    const ArpFrame a{{kBroadcast, kMacA, std::nullopt, 0}, ArpOp::Request, kMacA, kIpA,
                     MacAddr{}, kIpB};
    for (std::size_t n = 0; n < 42; ++n) {
        Bytes buf(n, 0xee);
        EXPECT_EQ(build_arp(writable(buf), a), 0u) << n;
        EXPECT_EQ(buf, Bytes(n, 0xee)) << n;
    }
}

// ---- ICMP echo ----------------------------------------------------------

TEST(IcmpEcho, RequestByHand) {
    const Bytes payload{'a', 'b', 'c', 'd'};
    Bytes buf(16, 0xee);
    ASSERT_EQ(build_icmp_echo(writable(buf), {IcmpEchoType::Request, 0x1234, 0x0001, view(payload)}),
              12u);
    // Sum of words: 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364 = 0xdefb,
    // complemented: 0x2104.
    const Bytes want{0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, 'a', 'b', 'c', 'd',
                     0xee, 0xee, 0xee, 0xee};
    EXPECT_EQ(buf, want);
}

TEST(IcmpEcho, OddPayloadWithCarryByHand) {
    const Bytes payload{0xff, 0xff, 0xff};
    Bytes buf(11);
    ASSERT_EQ(build_icmp_echo(writable(buf), {IcmpEchoType::Reply, 0xffff, 0x8000, view(payload)}),
              11u);
    // 0x0000 + 0xffff + 0x8000 + 0xffff + 0xff00 = 0x37efe -> 0x7f01 after
    // the carries, complemented: 0x80fe.
    const Bytes want{0x00, 0x00, 0x80, 0xfe, 0xff, 0xff, 0x80, 0x00, 0xff, 0xff, 0xff};
    EXPECT_EQ(buf, want);
}

// The monitor's probe as migware/io.cpp assembles it today, kept here as a
// second reference: the builder must produce the very same bytes.
std::array<std::uint8_t, 24> io_cpp_probe(std::uint16_t id, std::uint16_t seq,
                                          const std::array<std::uint8_t, 16>& nonce) {
    std::array<std::uint8_t, 24> pkt{};
    pkt[0] = 8;
    pkt[4] = static_cast<std::uint8_t>(id >> 8);
    pkt[5] = static_cast<std::uint8_t>(id);
    pkt[6] = static_cast<std::uint8_t>(seq >> 8);
    pkt[7] = static_cast<std::uint8_t>(seq);
    for (std::size_t i = 0; i < 16; ++i) pkt[8 + i] = nonce[i];
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < pkt.size(); i += 2) sum += (pkt[i] << 8) | pkt[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    const auto csum = static_cast<std::uint16_t>(~sum);
    pkt[2] = static_cast<std::uint8_t>(csum >> 8);
    pkt[3] = static_cast<std::uint8_t>(csum);
    return pkt;
}

TEST(IcmpEcho, SameBytesAsTheMonitorProbe) {
    std::uint32_t x = 0x9e3779b9u;
    for (int round = 0; round < 200; ++round) {
        std::array<std::uint8_t, 16> nonce{};
        for (auto& b : nonce) {
            x = x * 1664525u + 1013904223u;
            b = static_cast<std::uint8_t>(x >> 24);
        }
        const auto id = static_cast<std::uint16_t>(x >> 3);
        const auto seq = static_cast<std::uint16_t>(round * 977);
        std::array<std::byte, 24> pkt{};
        ASSERT_EQ(build_icmp_echo(pkt, {IcmpEchoType::Request, id, seq,
                                        std::as_bytes(std::span(nonce))}),
                  24u);
        const auto want = io_cpp_probe(id, seq, nonce);
        for (std::size_t i = 0; i < 24; ++i)
            ASSERT_EQ(std::to_integer<int>(pkt[i]), int{want[i]}) << "round " << round << " byte " << i;
        EXPECT_EQ(sniffer::internet_checksum(pkt), 0);  // the message verifies
    }
}

TEST(IcmpEcho, TooShortWritesNothing) {
    const Bytes payload(5, 1);
    for (std::size_t n = 0; n < 13; ++n) {
        Bytes buf(n, 0xee);
        EXPECT_EQ(build_icmp_echo(writable(buf), {IcmpEchoType::Request, 1, 2, view(payload)}), 0u);
        EXPECT_EQ(buf, Bytes(n, 0xee)) << n;
    }
}

// ---- echo reply to a captured request -----------------------------------

// An echo request from B (198.18.1.16, kMacB) to A (198.18.0.2), sent to
// kMacA, written out field by field with its checksums worked by hand.
Bytes echo_request(bool vlan, std::size_t pad_to) {
    Bytes f{0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x0b};
    if (vlan) f.insert(f.end(), {0x81, 0x00, 0x00, 0x07});
    f.insert(f.end(), {0x08, 0x00});
    // IPv4: 45 00 | 00 24 | ab cd | 40 00 | 40 01 | csum | src | dst.
    // Words: 4500 + 0024 + abcd + 4000 + 4001 + c612 + 0110 + c612 + 0002
    // = 0x2fe28 -> 0xfe2a after the carries, complemented 0x01d5.
    f.insert(f.end(), {0x45, 0x00, 0x00, 0x24, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x01, 0xd5,
                       198, 18, 1, 16, 198, 18, 0, 2});
    // ICMP: 08 00 | csum | 77 77 | 00 05 | "pingping".
    // Words: 0800 + 7777 + 0005 + 7069 + 6e67 + 7069 + 6e67 = 0x23d1c
    // -> 0x3d1e, complemented 0xc2e1.
    f.insert(f.end(), {0x08, 0x00, 0xc2, 0xe1, 0x77, 0x77, 0x00, 0x05, 'p', 'i', 'n', 'g', 'p',
                       'i', 'n', 'g'});
    while (f.size() < pad_to) f.push_back(0);
    return f;
}

// The reply as the engine must send it: MACs and addresses swapped, TTL 64,
// type 0, no padding. IPv4 checksum: the request's TTL was 64 already and a
// sum is order-free, so swapping the addresses leaves it at 0x01d5. ICMP:
// type 8 -> 0 takes 0x0800 off the sum, 0x3d1e - 0x0800 = 0x351e,
// complemented 0xcae1.
Bytes echo_reply(bool vlan) {
    Bytes f{0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0xfe};
    if (vlan) f.insert(f.end(), {0x81, 0x00, 0x00, 0x07});
    f.insert(f.end(), {0x08, 0x00});
    f.insert(f.end(), {0x45, 0x00, 0x00, 0x24, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x01, 0xd5,
                       198, 18, 0, 2, 198, 18, 1, 16});
    f.insert(f.end(), {0x00, 0x00, 0xca, 0xe1, 0x77, 0x77, 0x00, 0x05, 'p', 'i', 'n', 'g', 'p',
                       'i', 'n', 'g'});
    return f;
}

const MacAddr kOurMac{{0x02, 0, 0, 0, 0, 0xfe}};

TEST(EchoReply, ByHandWithAndWithoutTagAndPadding) {
    for (const bool vlan : {false, true}) {
        const Bytes req = echo_request(vlan, 64);  // Ethernet padding after the IP packet
        const sniffer::Packet p = parse_ethernet(req);
        ASSERT_EQ(p.kind, sniffer::PacketKind::IcmpEcho);
        Bytes buf(200, 0xee);
        const std::size_t n = build_echo_reply(writable(buf), view(req), p, kOurMac);
        const Bytes want = echo_reply(vlan);
        ASSERT_EQ(n, want.size()) << vlan;
        buf.resize(n);
        EXPECT_EQ(buf, want) << vlan;

        // And the parser reads it back as the answer.
        const sniffer::Packet r = parse_ethernet(buf);
        EXPECT_EQ(r.kind, sniffer::PacketKind::IcmpEcho);
        EXPECT_EQ(r.icmp.type, 0);
        EXPECT_EQ(r.icmp.id, 0x7777);
        EXPECT_EQ(r.icmp.sequence, 5);
        EXPECT_EQ(r.ip.src, p.ip.dst);
        EXPECT_EQ(r.ip.dst, p.ip.src);
        EXPECT_EQ(r.ip.ttl, 64);
        EXPECT_EQ(r.eth.src, kOurMac);
        EXPECT_EQ(r.eth.dst, p.eth.src);
        EXPECT_EQ(r.eth.vlan, p.eth.vlan);
        EXPECT_EQ(sniffer::internet_checksum(view(buf).subspan(r.layout.l4)), 0);
    }
}

TEST(EchoReply, TtlIsSetAndChecksumFollows) {
    Bytes req = echo_request(false, 0);
    // TTL 3, and the IPv4 checksum fixed by hand: the word 0x4001 becomes
    // 0x0301, the sum 0xfe2a - 0x3d00 = 0xc12a, complemented 0x3ed5.
    req[14 + 8] = 3;
    req[14 + 10] = 0x3e;
    req[14 + 11] = 0xd5;
    const sniffer::Packet p = parse_ethernet(req);
    ASSERT_EQ(p.kind, sniffer::PacketKind::IcmpEcho);
    Bytes buf(100);
    const std::size_t n = build_echo_reply(writable(buf), view(req), p, kOurMac);
    buf.resize(n);
    EXPECT_EQ(buf, echo_reply(false));
}

TEST(EchoReply, RefusesWhatItDoesNotAnswer) {
    const Bytes req = echo_request(false, 0);
    const sniffer::Packet good = parse_ethernet(req);
    Bytes buf(100, 0xee);
    auto refused = [&](const sniffer::Packet& p, std::span<const std::byte> frame, std::size_t room) {
        Bytes b(room, 0xee);
        const bool none = build_echo_reply(writable(b), frame, p, kOurMac) == 0;
        return none && b == Bytes(room, 0xee);
    };
    EXPECT_FALSE(refused(good, view(req), 100));  // the control: this one is answered

    sniffer::Packet reply = good;
    reply.icmp.type = 0;
    EXPECT_TRUE(refused(reply, view(req), 100));
    sniffer::Packet tcp = good;
    tcp.kind = sniffer::PacketKind::Tcp;
    EXPECT_TRUE(refused(tcp, view(req), 100));
    sniffer::Packet fragment = good;
    fragment.ip.more_fragments = true;
    EXPECT_TRUE(refused(fragment, view(req), 100));
    sniffer::Packet cut = good;
    cut.payload_captured = cut.payload_length - 1;
    EXPECT_TRUE(refused(cut, view(req), 100));
    sniffer::Packet bare = good;
    bare.has_ethernet = false;
    EXPECT_TRUE(refused(bare, view(req), 100));
    // Frame shorter than the IP total length says; output one byte short.
    EXPECT_TRUE(refused(good, view(req).first(req.size() - 1), 100));
    EXPECT_TRUE(refused(good, view(req), req.size() - 1));
    // Offsets that disagree with the frame.
    sniffer::Packet far = good;
    far.layout.l4 = static_cast<std::uint16_t>(far.layout.l3 + good.ip.total_length);
    EXPECT_TRUE(refused(far, view(req), 100));
}

}  // namespace
}  // namespace migware::rewrite
