#pragma once
// In-place rewriting of one captured Ethernet(+802.1Q)/IPv4/TCP frame, or of
// a bare IPv4 packet (TUN, raw socket: layout.l3 == 0), using the parser's
// Layout and option offsets. No copies, no heap, no exceptions.
//
// Checksums: a checksum that verified on input is updated incrementally
// (RFC 1624) field by field. One that did not verify, e.g. the partial
// checksum of a packet whose checksum was offloaded (DESIGN.md §4.2), is
// recomputed in full once all fields are written. RewriteResult says which
// path each checksum took so that the caller can count it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "rewrite/translation.hpp"
#include "sniffer/net_types.hpp"
#include "sniffer/packet.hpp"

namespace migware::rewrite {

enum class RewriteStatus : std::uint8_t {
    Ok,
    NotTcp,      ///< the Packet is not TCP over IPv4
    Truncated,   ///< the frame holds less than the IP total length (snaplen)
    Fragmented,  ///< an IP fragment: the TCP checksum cannot be handled
    BadLayout,   ///< the Packet's offsets do not match the bytes
};

struct RewriteResult {
    RewriteStatus status = RewriteStatus::Ok;
    bool ip_checksum_recomputed = false;   ///< input IP checksum was wrong
    bool tcp_checksum_recomputed = false;  ///< input TCP checksum was wrong
    bool ok() const { return status == RewriteStatus::Ok; }
};

struct MacRewrite {
    sniffer::MacAddr src;
    sniffer::MacAddr dst;
};

/// Addresses for one direction of travel.
struct PathRewrite {
    sniffer::Endpoint src;
    sniffer::Endpoint dst;
    /// Applied only to frames that carry Ethernet; nullopt keeps the MACs.
    std::optional<MacRewrite> macs;
};

/// DESIGN.md §3 "Addresses".
struct AddressMap {
    PathRewrite to_backup;  ///< src = IPp:q, dst = IPb:s_b
    PathRewrite to_client;  ///< src = IPp:s (MAC of P), dst = C (MAC C's frames came from)
};

/// Field-level editor over one frame. Construction validates the layout
/// against the bytes and verifies both checksums once; every setter then
/// writes the field and, where the checksum verified, folds the change into
/// it. finish() stores the checksums. On a frame that failed validation
/// (status() != Ok) setters do nothing and readers return zero, so misuse
/// cannot write out of bounds.
class FrameEditor {
public:
    FrameEditor(std::span<std::byte> frame, const sniffer::Packet& packet) noexcept;

    RewriteStatus status() const noexcept { return status_; }
    bool ok() const noexcept { return status_ == RewriteStatus::Ok; }

    bool has_ethernet() const noexcept { return ethernet_; }
    bool has_timestamps() const noexcept { return ts_offset_ != 0; }
    std::size_t sack_count() const noexcept { return sack_count_; }
    std::uint8_t flags() const noexcept;
    std::size_t l3() const noexcept { return l3_; }
    std::size_t l4() const noexcept { return l4_; }

    // Readers, straight from the bytes.
    sniffer::Ipv4Addr src_ip() const noexcept;
    sniffer::Ipv4Addr dst_ip() const noexcept;
    sniffer::Port src_port() const noexcept;
    sniffer::Port dst_port() const noexcept;
    SeqNum seq() const noexcept;
    SeqNum ack() const noexcept;
    std::uint16_t window() const noexcept;
    TsVal tsval() const noexcept;
    TsVal tsecr() const noexcept;
    SackBlock sack_block(std::size_t index) const noexcept;

    // Setters. MACs are outside every checksum; IP addresses are in both
    // (RFC 9293 §3.1 pseudo-header).
    void set_macs(const MacRewrite& macs) noexcept;  ///< no-op without Ethernet
    void set_src_ip(sniffer::Ipv4Addr ip) noexcept;
    void set_dst_ip(sniffer::Ipv4Addr ip) noexcept;
    void set_src_port(sniffer::Port port) noexcept;
    void set_dst_port(sniffer::Port port) noexcept;
    void set_seq(SeqNum seq) noexcept;
    void set_ack(SeqNum ack) noexcept;
    void set_window(std::uint16_t window) noexcept;
    /// False (and nothing written) if the segment has no TS option.
    bool set_tsval(TsVal tsval) noexcept;
    bool set_tsecr(TsVal tsecr) noexcept;
    /// False if `index` >= sack_count().
    bool set_sack_block(std::size_t index, SackBlock block) noexcept;

    /// Stores the IP and TCP checksums (incremental or full) and reports.
    RewriteResult finish() noexcept;

private:
    RewriteStatus validate(const sniffer::Packet& packet) noexcept;
    void set_ip_addr(std::size_t offset, sniffer::Ipv4Addr ip) noexcept;
    void set_tcp16(std::size_t offset, std::uint16_t value) noexcept;
    void set_tcp32(std::size_t offset, std::uint32_t value) noexcept;
    std::span<std::byte> ip_header() const noexcept;
    std::span<std::byte> tcp_segment() const noexcept;

    std::span<std::byte> frame_;
    RewriteStatus status_ = RewriteStatus::Ok;
    bool ethernet_ = false;
    std::size_t l3_ = 0;
    std::size_t ip_header_len_ = 0;
    std::size_t l4_ = 0;
    std::size_t l4_len_ = 0;  // TCP header + payload, from the IP total length
    std::size_t ts_offset_ = 0;
    std::size_t sack_offset_ = 0;
    std::size_t sack_count_ = 0;
    bool ip_incremental_ = false;
    bool tcp_incremental_ = false;
    std::uint16_t ip_hc_ = 0;
    std::uint16_t tcp_hc_ = 0;
};

/// Writes `path`'s addresses (and MACs, when the frame has Ethernet).
void apply_addresses(FrameEditor& editor, const PathRewrite& path) noexcept;

/// A client segment meant for P, turned into a twin segment for B:
/// seq + D1, ack + D2, TSecr - Dts, SACK + D2, addresses of map.to_backup.
RewriteResult translate_client_to_backup(std::span<std::byte> frame, const sniffer::Packet& packet,
                                         const Offsets& off, const AddressMap& map) noexcept;

/// A segment from B on the twin, turned into one from P to the client:
/// seq - D2, ack - D1, TSval + Dts, SACK - D1, window rescaled WSb -> WSp,
/// addresses of map.to_client.
RewriteResult translate_backup_to_client(std::span<std::byte> frame, const sniffer::Packet& packet,
                                         const Offsets& off, const AddressMap& map) noexcept;

}  // namespace migware::rewrite
