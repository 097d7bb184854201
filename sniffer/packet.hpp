#pragma once
// One decoded frame: plain host-order header values plus a layout record
// (offsets into the original bytes) so that rewrite/ can edit in place.

#include <array>
#include <cstdint>
#include <optional>

#include "sniffer/net_types.hpp"

namespace migware::sniffer {

/// Link-layer framing of the bytes handed to the parser.
enum class LinkType : std::uint8_t {
    Ethernet,   // DLT_EN10MB
    LinuxSll,   // DLT_LINUX_SLL (cooked v1)
    LinuxSll2,  // DLT_LINUX_SLL2 (cooked v2)
    RawIp,      // DLT_RAW / DLT_IPV4: the frame starts at the IP header
    Null,       // DLT_NULL / DLT_LOOP: 4-byte address family, then IP
};

enum class PacketKind : std::uint8_t {
    Tcp,
    IcmpEcho,  // echo request or reply
    Icmp,      // any other ICMP type
    Arp,
    OtherIpv4,  // UDP and the rest; also non-first IPv4 fragments
    NotIpv4,    // IPv6, LLDP, ...: not ours, not malformed
};

namespace tcp_flag {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kPsh = 0x08;
inline constexpr std::uint8_t kAck = 0x10;
inline constexpr std::uint8_t kUrg = 0x20;
inline constexpr std::uint8_t kEce = 0x40;
inline constexpr std::uint8_t kCwr = 0x80;
}  // namespace tcp_flag

struct SackBlock {
    SeqNum left;
    SeqNum right;
};

/// Decoded TCP options (RFC 9293 §3.1, RFC 7323, RFC 2018). Offsets are from
/// the start of the frame and are 0 when the option is absent.
struct TcpOptions {
    std::optional<std::uint16_t> mss;
    std::optional<std::uint8_t> wscale;  // shift as sent (may exceed 14; RFC 7323 §2.3 clamps)
    bool sack_permitted = false;
    bool has_timestamps = false;
    std::uint32_t tsval = 0;
    std::uint32_t tsecr = 0;
    std::uint8_t sack_count = 0;
    std::array<SackBlock, 4> sack{};
    std::uint16_t mss_offset = 0;     // of the 2-byte MSS value
    std::uint16_t wscale_offset = 0;  // of the 1-byte shift
    std::uint16_t ts_offset = 0;      // of TSval; TSecr follows at +4
    std::uint16_t sack_offset = 0;    // of the first block's left edge
    std::uint8_t unknown_count = 0;   // options skipped by their length
};

struct EthernetInfo {
    MacAddr src;
    MacAddr dst;
    std::optional<std::uint16_t> vlan;  // 802.1Q tag control (PCP/DEI/VID), outermost
    std::uint16_t ethertype = 0;        // after any VLAN tags
};

struct Ipv4Info {
    Ipv4Addr src;
    Ipv4Addr dst;
    std::uint8_t protocol = 0;
    std::uint8_t ttl = 0;
    std::uint8_t tos = 0;
    std::uint16_t id = 0;
    std::uint16_t total_length = 0;
    std::uint8_t header_length = 0;  // bytes
    bool has_options = false;
    bool dont_fragment = false;
    bool more_fragments = false;
    std::uint16_t fragment_offset = 0;  // in bytes
    bool is_fragment() const { return more_fragments || fragment_offset != 0; }
};

struct TcpInfo {
    Port src_port;
    Port dst_port;
    SeqNum seq;
    SeqNum ack;
    std::uint8_t flags = 0;
    std::uint16_t window = 0;
    std::uint16_t checksum = 0;
    std::uint16_t urgent = 0;
    std::uint8_t header_length = 0;  // bytes
    TcpOptions options;
    bool has(std::uint8_t flag) const { return (flags & flag) != 0; }
};

struct IcmpInfo {
    std::uint8_t type = 0;
    std::uint8_t code = 0;
    std::uint16_t id = 0;        // echo only
    std::uint16_t sequence = 0;  // echo only
};

struct ArpInfo {
    std::uint16_t op = 0;  // 1 request, 2 reply
    MacAddr sender_mac;
    Ipv4Addr sender_ip;
    MacAddr target_mac;
    Ipv4Addr target_ip;
};

/// Where each layer starts in the frame, so the rewriter can patch in place.
struct Layout {
    std::uint16_t l3 = 0;       // IPv4 / ARP header
    std::uint16_t l4 = 0;       // TCP / ICMP header
    std::uint16_t payload = 0;  // first payload byte
};

struct Packet {
    PacketKind kind = PacketKind::NotIpv4;
    bool has_ethernet = false;
    EthernetInfo eth;
    Ipv4Info ip;
    TcpInfo tcp;
    IcmpInfo icmp;
    ArpInfo arp;
    Layout layout;
    /// Payload length from the IP header (what was on the wire).
    std::uint32_t payload_length = 0;
    /// How much of that payload the capture holds (snaplen may cut it).
    std::uint32_t payload_captured = 0;
    /// The frame's length on the wire (>= the captured bytes).
    std::uint32_t wire_length = 0;
    /// The capture cut the frame short (caplen < wire length).
    bool truncated_by_capture = false;
};

}  // namespace migware::sniffer
