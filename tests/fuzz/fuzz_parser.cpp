// libFuzzer target: one frame through the parser, then through the tracker.
//
// Input: [selector:1][frame...]. The selector's low nibble picks the link
// type (mod 5: Ethernet, Linux SLL, SLL2, raw IPv4, BSD null/loop); its high
// nibble claims the frame was 64 * n bytes longer on the wire, so snaplen
// truncation is fuzzed too. scripts/fuzz_seeds.py writes seeds in this form.
//
// Besides the sanitizers, the target checks what rewrite/ relies on: every
// offset in a decoded packet's layout and options lies inside the frame.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "migware/pipeline.hpp"
#include "sniffer/packet_source.hpp"
#include "sniffer/parser.hpp"

namespace {

using migware::sniffer::LinkType;
using migware::sniffer::Packet;
using migware::sniffer::PacketKind;

constexpr std::array<LinkType, 5> kLinks{LinkType::Ethernet, LinkType::LinuxSll,
                                         LinkType::LinuxSll2, LinkType::RawIp, LinkType::Null};

void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "fuzz_parser: invariant broken: %s\n", what);
    std::abort();
}

void check_layout(const Packet& p, std::size_t size) {
    const auto& l = p.layout;
    require(p.wire_length >= size, "wire_length < captured bytes");
    require(p.truncated_by_capture == (p.wire_length > size), "truncated_by_capture flag");
    switch (p.kind) {
        case PacketKind::Tcp: {
            require(l.l3 < l.l4 && l.l4 < l.payload, "tcp layout order");
            require(l.payload <= size, "tcp payload offset past the frame");
            require(l.payload - l.l4 == p.tcp.header_length, "tcp header length vs layout");
            require(l.l4 - l.l3 == p.ip.header_length, "ip header length vs layout");
            require(p.payload_captured <= p.payload_length, "captured > payload length");
            require(l.payload + std::size_t{p.payload_captured} <= size, "payload past the frame");
            require(p.ip.header_length + std::size_t{p.tcp.header_length} + p.payload_length ==
                        p.ip.total_length,
                    "ip total length vs header + payload");
            const auto& o = p.tcp.options;
            if (o.mss) require(o.mss_offset >= l.l4 + 20 && o.mss_offset + 2u <= l.payload, "mss offset");
            if (o.wscale) require(o.wscale_offset >= l.l4 + 20 && o.wscale_offset + 1u <= l.payload, "wscale offset");
            if (o.has_timestamps) require(o.ts_offset >= l.l4 + 20 && o.ts_offset + 8u <= l.payload, "ts offset");
            require(o.sack_count <= o.sack.size(), "sack count");
            if (o.sack_count > 0)
                require(o.sack_offset >= l.l4 + 20 && o.sack_offset + 8u * o.sack_count <= l.payload,
                        "sack offset");
            break;
        }
        case PacketKind::IcmpEcho:
        case PacketKind::Icmp:
            require(l.l3 < l.l4 && l.l4 + 4u <= size, "icmp header past the frame");
            if (p.kind == PacketKind::IcmpEcho) require(l.l4 + 8u <= size, "echo header past the frame");
            break;
        case PacketKind::Arp:
            require(l.l3 + 28u <= size, "arp body past the frame");
            break;
        case PacketKind::OtherIpv4:
            require(l.l3 + 20u <= size, "ipv4 header past the frame");
            break;
        case PacketKind::NotIpv4:
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const LinkType link = kLinks[(data[0] & 0x0f) % kLinks.size()];
    const auto frame = std::as_bytes(std::span(data + 1, size - 1));
    const auto wire_length = static_cast<std::uint32_t>(frame.size() + 64u * (data[0] >> 4));

    Packet packet;
    if (!migware::sniffer::parse(frame, wire_length, link, packet)) check_layout(packet, frame.size());

    // The same frame through the tracker, twice (a retransmission), then past
    // every linger and idle deadline. Every TCP connection is tracked.
    migware::tracker::TableConfig table;
    table.max_connections = 4;
    table.per_connection_buffer_cap = 1u << 16;
    table.idle_timeout_ns = 1'000'000'000;
    migware::Pipeline pipeline(table);
    const migware::sniffer::RawFrame raw{frame, wire_length, 1'000'000'000};
    pipeline.on_frame(raw, link);
    const migware::sniffer::RawFrame again{frame, wire_length, 1'001'000'000};
    pipeline.on_frame(again, link);
    require(pipeline.table().size() <= 1, "one frame made more than one connection");
    pipeline.table().expire(1'000'000'000'000);
    require(pipeline.table().size() == 0, "a connection outlived its idle timeout");
    return 0;
}
