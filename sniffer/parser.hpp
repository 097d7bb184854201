#pragma once
// The one packet decoder, shared by live capture and pcap replay.
//
// Zero-copy: it reads the caller's bytes through bounds-checked accessors and
// fills a flat Packet value. A frame either decodes whole or is dropped with
// a named reason; nothing half-parsed reaches the tracker.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "sniffer/packet.hpp"

namespace migware::sniffer {

/// Why a frame was dropped. Each has its own counter.
enum class DropReason : std::uint8_t {
    LinkTruncated,           // link header (Ethernet, cooked, null) cut short
    VlanTruncated,           // 802.1Q tag cut short
    VlanTooDeep,             // more tags than any sane network stacks
    Ipv4Truncated,           // IPv4 header cut short
    Ipv4BadVersion,          // version nibble is not 4 where IPv4 was promised
    Ipv4BadHeaderLength,     // IHL < 5, or beyond the total length
    Ipv4BadTotalLength,      // total length < header, or > the frame on the wire
    Ipv4BadChecksum,         // a receiver would drop it; so must the tracker
    TcpTruncated,            // TCP header or options cut short
    TcpBadDataOffset,        // data offset < 5, or the header runs past the IP payload
    TcpBadOption,            // option length inconsistent with its kind or header
    IcmpTruncated,           // ICMP header cut short
    IcmpBadLength,           // IP payload too short for an ICMP header
    ArpTruncated,            // Ethernet/IPv4 ARP body cut short
    kCount,
};

inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::kCount);

/// tcpdump's distinction: truncated = the capture ran out of bytes;
/// invalid = fully captured, but wrong.
enum class DropCategory : std::uint8_t { Truncated, Invalid };

DropCategory category_of(DropReason reason);
std::string_view name_of(DropReason reason);  // snake_case, stable: used in counters/metrics
std::string_view name_of(PacketKind kind);

/// Decodes `frame` (the captured bytes; `wire_length` is the original frame
/// length, >= frame.size()). On success fills `out` and returns nullopt.
[[nodiscard]] std::optional<DropReason> parse(std::span<const std::byte> frame,
                                              std::uint32_t wire_length, LinkType link,
                                              Packet& out);

/// Per-kind and per-drop-reason counts. Plain value; the owner decides scope.
struct ParseCounters {
    std::uint64_t frames = 0;
    std::uint64_t bytes = 0;                 // wire length of the frames that decoded
    std::array<std::uint64_t, 6> by_kind{};  // indexed by PacketKind
    std::array<std::uint64_t, kDropReasonCount> dropped{};
    std::uint64_t fragments = 0;            // IPv4 fragments (flagged, not tracked)
    std::uint64_t ipv4_with_options = 0;    // IPv4 headers carrying options
    std::uint64_t truncated_by_capture = 0; // snaplen cut the payload (headers intact)

    void record(const Packet& p);
    void record(DropReason reason) { ++frames; ++dropped[static_cast<std::size_t>(reason)]; }
    std::uint64_t kind(PacketKind k) const { return by_kind[static_cast<std::size_t>(k)]; }
    std::uint64_t malformed() const;
};

}  // namespace migware::sniffer
