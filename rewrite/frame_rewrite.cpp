#include "rewrite/frame_rewrite.hpp"

#include <array>
#include <cstring>

#include "rewrite/frames.hpp"
#include "sniffer/checksum.hpp"
#include "sniffer/wire.hpp"

namespace migware::rewrite {
namespace {

using sniffer::checksum_update16;
using sniffer::checksum_update32;
using sniffer::checksum_update_bytes;
using sniffer::kIpProtoTcp;
using sniffer::wire::fits;
using sniffer::wire::load_be16;
using sniffer::wire::load_be32;
using sniffer::wire::load_u8;
using sniffer::wire::store_be16;
using sniffer::wire::store_be32;

constexpr std::size_t kEthMacsLen = 12;  // dst MAC, src MAC
constexpr std::size_t kMinIpHeader = 20;
constexpr std::size_t kMinTcpHeader = 20;
// Offsets inside the IPv4 header (RFC 791).
constexpr std::size_t kIpTotalLength = 2;
constexpr std::size_t kIpFragment = 6;
constexpr std::size_t kIpProtocol = 9;
constexpr std::size_t kIpChecksum = 10;
constexpr std::size_t kIpSrc = 12;
constexpr std::size_t kIpDst = 16;
constexpr std::uint16_t kIpMfAndOffset = 0x3fff;
// Offsets inside the TCP header (RFC 9293 §3.1).
constexpr std::size_t kTcpSrcPort = 0;
constexpr std::size_t kTcpDstPort = 2;
constexpr std::size_t kTcpSeq = 4;
constexpr std::size_t kTcpAck = 8;
constexpr std::size_t kTcpDataOffset = 12;
constexpr std::size_t kTcpFlags = 13;
constexpr std::size_t kTcpWindow = 14;
constexpr std::size_t kTcpChecksum = 16;
// Option kinds and lengths.
constexpr std::uint8_t kOptTimestamps = 8;  // RFC 7323 §3.2
constexpr std::uint8_t kOptTimestampsLen = 10;
constexpr std::uint8_t kOptSack = 5;  // RFC 2018 §3
constexpr std::size_t kSackBlockLen = 8;
constexpr std::size_t kMaxSackBlocks = 4;

void write_mac(std::span<std::byte> frame, std::size_t offset, const sniffer::MacAddr& mac) {
    if (!fits(frame.size(), offset, mac.bytes.size())) return;
    std::memcpy(frame.data() + offset, mac.bytes.data(), mac.bytes.size());
}

}  // namespace

FrameEditor::FrameEditor(std::span<std::byte> frame, const sniffer::Packet& packet,
                         ChecksumSource source) noexcept
    : FrameEditor(frame, packet, source, 0) {}

FrameEditor::FrameEditor(std::span<std::byte> frame, const sniffer::Packet& packet,
                         ChecksumSource source, std::size_t moved_by) noexcept
    : frame_(frame), source_(source) {
    status_ = validate(packet, moved_by);
    if (!ok()) {
        // Readers and setters key off these, so a rejected frame is inert.
        ethernet_ = false;
        ts_offset_ = 0;
        sack_count_ = 0;
        return;
    }
    // Wire: no verification here, on purpose. An incremental update keeps
    // a corrupt checksum exactly as wrong as it arrived (RFC 1624 eqn 3
    // preserves the residual of the whole sum), so the backup's stack drops
    // the segment as the real primary would have; verifying first would
    // only decide to launder it. LocalStack: the stored values are never
    // read, finish() recomputes both.
    ip_hc_ = load_be16(frame_, l3_ + kIpChecksum);
    tcp_hc_ = load_be16(frame_, l4_ + kTcpChecksum);
}

RewriteStatus FrameEditor::validate(const sniffer::Packet& packet, std::size_t moved_by) noexcept {
    if (packet.kind != sniffer::PacketKind::Tcp) return RewriteStatus::NotTcp;
    if (packet.truncated_by_capture) return RewriteStatus::Truncated;
    // A bare IP packet moved behind an Ethernet header must have been parsed
    // without one, or its offsets would count that header twice.
    if (moved_by != 0 && (packet.has_ethernet || packet.layout.l3 != 0))
        return RewriteStatus::BadLayout;
    l3_ = packet.layout.l3 + moved_by;
    l4_ = packet.layout.l4 + moved_by;

    // Every offset below is checked against the bytes themselves, not just
    // taken from the Packet: the editor writes, so a stale or foreign Packet
    // must not be able to steer a write.
    if (!fits(frame_.size(), l3_, kMinIpHeader)) return RewriteStatus::Truncated;
    const std::uint8_t version_ihl = load_u8(frame_, l3_);
    ip_header_len_ = std::size_t{version_ihl & 0x0fu} * 4;
    if ((version_ihl >> 4) != 4 || ip_header_len_ < kMinIpHeader || l4_ != l3_ + ip_header_len_)
        return RewriteStatus::BadLayout;
    if (load_u8(frame_, l3_ + kIpProtocol) != kIpProtoTcp) return RewriteStatus::NotTcp;
    const std::size_t total_length = load_be16(frame_, l3_ + kIpTotalLength);
    if (total_length < ip_header_len_ + kMinTcpHeader) return RewriteStatus::BadLayout;
    // Ethernet padding may follow the IP packet; a short capture may not.
    if (!fits(frame_.size(), l3_, total_length)) return RewriteStatus::Truncated;
    if ((load_be16(frame_, l3_ + kIpFragment) & kIpMfAndOffset) != 0)
        return RewriteStatus::Fragmented;
    l4_len_ = total_length - ip_header_len_;
    const std::size_t tcp_header_len = std::size_t{load_u8(frame_, l4_ + kTcpDataOffset)} / 16 * 4;
    if (tcp_header_len < kMinTcpHeader || tcp_header_len > l4_len_) return RewriteStatus::BadLayout;

    ethernet_ = packet.has_ethernet || moved_by != 0;
    if (ethernet_ && l3_ < kEthMacsLen) return RewriteStatus::BadLayout;

    // Option offsets point at the values; the kind and length bytes sit just
    // before them and must say what the parser said.
    const std::size_t options_begin = l4_ + kMinTcpHeader;
    const std::size_t options_end = l4_ + tcp_header_len;
    const sniffer::TcpOptions& opts = packet.tcp.options;
    if (opts.has_timestamps) {
        const std::size_t at = opts.ts_offset + moved_by;
        if (at < options_begin + 2 || at + 8 > options_end ||
            load_u8(frame_, at - 2) != kOptTimestamps ||
            load_u8(frame_, at - 1) != kOptTimestampsLen)
            return RewriteStatus::BadLayout;
        ts_offset_ = at;
    }
    if (opts.sack_count > 0) {
        const std::size_t at = opts.sack_offset + moved_by;
        const std::size_t count = opts.sack_count;
        const std::size_t len = count * kSackBlockLen;
        if (count > kMaxSackBlocks || at < options_begin + 2 || at + len > options_end ||
            load_u8(frame_, at - 2) != kOptSack || load_u8(frame_, at - 1) != 2 + len)
            return RewriteStatus::BadLayout;
        sack_offset_ = at;
        sack_count_ = count;
    }
    return RewriteStatus::Ok;
}

std::span<std::byte> FrameEditor::ip_header() const noexcept {
    return frame_.subspan(l3_, ip_header_len_);
}

std::span<std::byte> FrameEditor::tcp_segment() const noexcept {
    return frame_.subspan(l4_, l4_len_);
}

std::uint8_t FrameEditor::flags() const noexcept {
    return ok() ? load_u8(frame_, l4_ + kTcpFlags) : 0;
}

sniffer::Ipv4Addr FrameEditor::src_ip() const noexcept {
    return sniffer::Ipv4Addr{ok() ? load_be32(frame_, l3_ + kIpSrc) : 0};
}
sniffer::Ipv4Addr FrameEditor::dst_ip() const noexcept {
    return sniffer::Ipv4Addr{ok() ? load_be32(frame_, l3_ + kIpDst) : 0};
}
sniffer::Port FrameEditor::src_port() const noexcept {
    return sniffer::Port{ok() ? load_be16(frame_, l4_ + kTcpSrcPort) : std::uint16_t{0}};
}
sniffer::Port FrameEditor::dst_port() const noexcept {
    return sniffer::Port{ok() ? load_be16(frame_, l4_ + kTcpDstPort) : std::uint16_t{0}};
}
SeqNum FrameEditor::seq() const noexcept {
    return SeqNum{ok() ? load_be32(frame_, l4_ + kTcpSeq) : 0};
}
SeqNum FrameEditor::ack() const noexcept {
    return SeqNum{ok() ? load_be32(frame_, l4_ + kTcpAck) : 0};
}
std::uint16_t FrameEditor::window() const noexcept {
    return ok() ? load_be16(frame_, l4_ + kTcpWindow) : std::uint16_t{0};
}
TsVal FrameEditor::tsval() const noexcept {
    return TsVal{has_timestamps() ? load_be32(frame_, ts_offset_) : 0};
}
TsVal FrameEditor::tsecr() const noexcept {
    return TsVal{has_timestamps() ? load_be32(frame_, ts_offset_ + 4) : 0};
}
SackBlock FrameEditor::sack_block(std::size_t index) const noexcept {
    if (index >= sack_count_) return SackBlock{};
    const std::size_t at = sack_offset_ + index * kSackBlockLen;
    return SackBlock{SeqNum{load_be32(frame_, at)}, SeqNum{load_be32(frame_, at + 4)}};
}

void FrameEditor::set_macs(const MacRewrite& macs) noexcept {
    if (!ethernet_) return;
    write_mac(frame_, 0, macs.dst);
    write_mac(frame_, 6, macs.src);
}

void FrameEditor::set_ip_addr(std::size_t offset, sniffer::Ipv4Addr ip) noexcept {
    if (!ok()) return;
    const std::uint32_t old = load_be32(frame_, offset);
    store_be32(frame_, offset, ip.value);
    if (source_ != ChecksumSource::Wire) return;
    // Both addresses sit at even offsets of the IP header and of the
    // pseudo-header, so one 32-bit update serves both checksums.
    ip_hc_ = checksum_update32(ip_hc_, old, ip.value);
    tcp_hc_ = checksum_update32(tcp_hc_, old, ip.value);
}

void FrameEditor::set_tcp16(std::size_t offset, std::uint16_t value) noexcept {
    if (!ok()) return;
    const std::uint16_t old = load_be16(frame_, offset);
    store_be16(frame_, offset, value);
    // Only fixed-header fields use this, and they are all word aligned.
    if (source_ == ChecksumSource::Wire) tcp_hc_ = checksum_update16(tcp_hc_, old, value);
}

void FrameEditor::set_tcp32(std::size_t offset, std::uint32_t value) noexcept {
    if (!ok()) return;
    const std::uint32_t old = load_be32(frame_, offset);
    store_be32(frame_, offset, value);
    if (source_ != ChecksumSource::Wire) return;
    // TS and SACK values may start at an odd offset when the sender packs
    // options without NOPs (RFC 9293 §3.1 does not require alignment).
    if (((offset - l4_) & 1u) == 0) {
        tcp_hc_ = checksum_update32(tcp_hc_, old, value);
    } else {
        std::array<std::byte, 4> before{};
        std::array<std::byte, 4> after{};
        store_be32(before, 0, old);
        store_be32(after, 0, value);
        tcp_hc_ = checksum_update_bytes(tcp_hc_, before, after, true);
    }
}

void FrameEditor::set_src_ip(sniffer::Ipv4Addr ip) noexcept { set_ip_addr(l3_ + kIpSrc, ip); }
void FrameEditor::set_dst_ip(sniffer::Ipv4Addr ip) noexcept { set_ip_addr(l3_ + kIpDst, ip); }
void FrameEditor::set_src_port(sniffer::Port port) noexcept {
    set_tcp16(l4_ + kTcpSrcPort, port.value);
}
void FrameEditor::set_dst_port(sniffer::Port port) noexcept {
    set_tcp16(l4_ + kTcpDstPort, port.value);
}
void FrameEditor::set_seq(SeqNum seq) noexcept { set_tcp32(l4_ + kTcpSeq, seq.raw()); }
void FrameEditor::set_ack(SeqNum ack) noexcept { set_tcp32(l4_ + kTcpAck, ack.raw()); }
void FrameEditor::set_window(std::uint16_t window) noexcept { set_tcp16(l4_ + kTcpWindow, window); }

bool FrameEditor::set_tsval(TsVal tsval) noexcept {
    if (!has_timestamps()) return false;
    set_tcp32(ts_offset_, tsval.raw());
    return true;
}

bool FrameEditor::set_tsecr(TsVal tsecr) noexcept {
    if (!has_timestamps()) return false;
    set_tcp32(ts_offset_ + 4, tsecr.raw());
    return true;
}

bool FrameEditor::set_sack_block(std::size_t index, SackBlock block) noexcept {
    if (index >= sack_count_) return false;
    const std::size_t at = sack_offset_ + index * kSackBlockLen;
    set_tcp32(at, block.left.raw());
    set_tcp32(at + 4, block.right.raw());
    return true;
}

RewriteResult FrameEditor::finish() noexcept {
    if (!ok()) return RewriteResult{status_, false};
    if (source_ == ChecksumSource::Wire) {
        store_be16(frame_, l3_ + kIpChecksum, ip_hc_);
        store_be16(frame_, l4_ + kTcpChecksum, tcp_hc_);
        return RewriteResult{RewriteStatus::Ok, false};
    }
    // The only full recomputation in the rewriter: this host's own packets,
    // whose TCP checksum may be a CHECKSUM_PARTIAL pseudo-header sum.
    store_be16(frame_, l3_ + kIpChecksum, sniffer::ipv4_header_checksum(ip_header()));
    store_be16(frame_, l4_ + kTcpChecksum,
               sniffer::tcp_checksum(src_ip(), dst_ip(), tcp_segment()));
    return RewriteResult{RewriteStatus::Ok, true};
}

void apply_addresses(FrameEditor& editor, const PathRewrite& path) noexcept {
    if (path.macs) editor.set_macs(*path.macs);
    editor.set_src_ip(path.src.ip);
    editor.set_dst_ip(path.dst.ip);
    editor.set_src_port(path.src.port);
    editor.set_dst_port(path.dst.port);
}

namespace {

void backup_to_client(FrameEditor& ed, const Offsets& off, const AddressMap& map) noexcept {
    apply_addresses(ed, map.to_client);
    const std::uint8_t flags = ed.flags();
    const bool has_ack = (flags & sniffer::tcp_flag::kAck) != 0;
    ed.set_seq(backup_to_client_seq(ed.seq(), off));
    if (has_ack) ed.set_ack(backup_to_client_ack(ed.ack(), off));
    if ((flags & sniffer::tcp_flag::kSyn) == 0)
        ed.set_window(backup_to_client_window(ed.window(), off));
    // RFC 7323 §5 PAWS: the client must see TSvals continue P's clock.
    if (off.timestamps) ed.set_tsval(backup_to_client_tsval(ed.tsval(), off));
    for (std::size_t i = 0; i < ed.sack_count(); ++i)
        ed.set_sack_block(i, backup_to_client_sack(ed.sack_block(i), off));
}

}  // namespace

RewriteResult translate_client_to_backup(std::span<std::byte> frame, const sniffer::Packet& packet,
                                         const Offsets& off, const AddressMap& map) noexcept {
    FrameEditor ed(frame, packet, ChecksumSource::Wire);
    if (!ed.ok()) return RewriteResult{ed.status(), false};
    apply_addresses(ed, map.to_backup);
    const std::uint8_t flags = ed.flags();
    const bool has_ack = (flags & sniffer::tcp_flag::kAck) != 0;
    ed.set_seq(client_to_backup_seq(ed.seq(), off));
    // RFC 9293 §3.1: the ack field means nothing without ACK; leave it be.
    if (has_ack) ed.set_ack(client_to_backup_ack(ed.ack(), off));
    // RFC 7323 §2.2: the window of a SYN is never scaled.
    if ((flags & sniffer::tcp_flag::kSyn) == 0)
        ed.set_window(client_to_backup_window(ed.window(), off));
    // RFC 7323 §3.2: TSecr is valid only with ACK. The client's TSval needs
    // no change: the twin SYN carried the client's own clock.
    if (off.timestamps && has_ack) ed.set_tsecr(client_to_backup_tsecr(ed.tsecr(), off));
    for (std::size_t i = 0; i < ed.sack_count(); ++i)
        ed.set_sack_block(i, client_to_backup_sack(ed.sack_block(i), off));
    return ed.finish();
}

RewriteResult translate_backup_to_client(std::span<std::byte> frame, const sniffer::Packet& packet,
                                         const Offsets& off, const AddressMap& map) noexcept {
    FrameEditor ed(frame, packet, ChecksumSource::LocalStack);
    if (!ed.ok()) return RewriteResult{ed.status(), false};
    backup_to_client(ed, off, map);
    return ed.finish();
}

FrameOut translate_backup_to_client_frame(std::span<const std::byte> ip_packet,
                                          const sniffer::Packet& packet,
                                          std::optional<std::uint16_t> vlan, const Offsets& off,
                                          const AddressMap& map, std::span<std::byte> out) noexcept {
    FrameOut r;
    if (!map.to_client.macs) {
        r.result.status = RewriteStatus::NoMacs;
        return r;
    }
    const EthernetHeader eth{map.to_client.macs->dst, map.to_client.macs->src, vlan,
                             kEtherTypeIpv4};
    const std::size_t eth_len = ethernet_header_length(eth);
    if (!fits(out.size(), eth_len, ip_packet.size())) {
        r.result.status = RewriteStatus::NoRoom;
        return r;
    }
    const std::span<std::byte> frame = out.first(eth_len + ip_packet.size());
    write_ethernet(frame, eth);
    sniffer::wire::store_bytes(frame, eth_len, ip_packet);
    // The editor checks the moved offsets against the copied bytes, as it
    // does for any frame, so a Packet of another packet cannot steer a write.
    FrameEditor ed(frame, packet, ChecksumSource::LocalStack, eth_len);
    if (!ed.ok()) {
        r.result.status = ed.status();
        return r;
    }
    // The MACs written above are the ones apply_addresses would write.
    backup_to_client(ed, off, map);
    r.result = ed.finish();
    r.length = frame.size();
    r.l3 = ed.l3();
    r.l4 = ed.l4();
    return r;
}

}  // namespace migware::rewrite
