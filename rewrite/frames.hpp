#pragma once
// Wire-frame builders: Ethernet (+ an optional 802.1Q tag), ARP for IPv4
// over Ethernet, ICMP echo. Pure functions that write into the caller's
// buffer and return the length written, or 0 (and nothing written) when the
// buffer is too short or the input is not what they build from. No heap,
// no exceptions.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "sniffer/net_types.hpp"
#include "sniffer/packet.hpp"

namespace migware::rewrite {

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint16_t kEtherTypeVlan = 0x8100;  ///< IEEE 802.1Q TPID

struct EthernetHeader {
    sniffer::MacAddr dst;
    sniffer::MacAddr src;
    /// The 802.1Q TCI (PCP, DEI, VID) exactly as it goes on the wire.
    std::optional<std::uint16_t> vlan;
    std::uint16_t ethertype = kEtherTypeIpv4;
};

/// 14, or 18 with a tag.
constexpr std::size_t ethernet_header_length(const EthernetHeader& h) noexcept {
    return h.vlan ? 18 : 14;
}

/// Destination, source, the tag if any, the EtherType, at the start of
/// `buf`. Returns the header's length (14 or 18), or 0 if it does not fit.
std::size_t write_ethernet(std::span<std::byte> buf, const EthernetHeader& h) noexcept;

/// RFC 826 operation codes.
enum class ArpOp : std::uint16_t { Request = 1, Reply = 2 };

struct ArpFrame {
    EthernetHeader eth;  ///< its ethertype is ignored: always ARP
    ArpOp op = ArpOp::Request;
    sniffer::MacAddr sender_mac;
    sniffer::Ipv4Addr sender_ip;
    sniffer::MacAddr target_mac;  ///< all zero in a request
    sniffer::Ipv4Addr target_ip;
};

inline constexpr std::size_t kArpBody = 28;  ///< RFC 826, hardware Ethernet, protocol IPv4
inline constexpr std::size_t kMaxArpFrame = 18 + kArpBody;

/// The Ethernet header and the 28-byte ARP body, unpadded (42 or 46 bytes):
/// the minimum-frame padding is the sender's link layer's business.
/// Returns the length, or 0 if `buf` is too short.
std::size_t build_arp(std::span<std::byte> buf, const ArpFrame& a) noexcept;

/// RFC 792 echo types.
enum class IcmpEchoType : std::uint8_t { Reply = 0, Request = 8 };

struct IcmpEcho {
    IcmpEchoType type = IcmpEchoType::Request;
    std::uint16_t id = 0;
    std::uint16_t sequence = 0;
    std::span<const std::byte> payload;
};

inline constexpr std::size_t kIcmpEchoHeader = 8;

/// The ICMP message alone (type, code 0, checksum, id, sequence, payload),
/// as a raw IPPROTO_ICMP socket sends it; the checksum covers the whole
/// message (RFC 792). Returns 8 + payload size, or 0 if `buf` is too short.
std::size_t build_icmp_echo(std::span<std::byte> buf, const IcmpEcho& e) noexcept;

/// The answer to an echo request captured as `request_frame` (parsed as
/// `request`, with Ethernet), sent from `src_mac`: the request's bytes up to
/// the IP total length (no Ethernet padding) with the MACs (to the
/// requester, from `src_mac`; a VLAN tag kept as it came) and the IP
/// addresses swapped, TTL 64, type 0 (RFC 792), both checksums computed in
/// full; IP ID, TOS, options, id, sequence and data are the request's.
/// Returns the length, or 0 (nothing written) for anything but a whole,
/// unfragmented echo request with Ethernet, or if `buf` is too short.
std::size_t build_echo_reply(std::span<std::byte> buf, std::span<const std::byte> request_frame,
                             const sniffer::Packet& request,
                             const sniffer::MacAddr& src_mac) noexcept;

}  // namespace migware::rewrite
