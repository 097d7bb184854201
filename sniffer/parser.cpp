#include "sniffer/parser.hpp"

#include "sniffer/checksum.hpp"
#include "sniffer/wire.hpp"

#include <algorithm>

namespace migware::sniffer {
namespace {

using wire::be16_at;
using wire::be32_at;
using wire::fits;
using wire::u8_at;

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherArp = 0x0806;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherQinQ = 0x88a8;
constexpr std::uint16_t kEtherQinQOld = 0x9100;
constexpr int kMaxVlanTags = 4;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint16_t kArphrdEther = 1;

using Bytes = std::span<const std::byte>;
using Result = std::optional<DropReason>;

MacAddr mac_at(Bytes b, std::size_t off) {
    MacAddr m;
    for (std::size_t i = 0; i < 6; ++i) m.bytes[i] = u8_at(b, off + i);
    return m;
}

bool is_vlan_tpid(std::uint16_t type) {
    return type == kEtherVlan || type == kEtherQinQ || type == kEtherQinQOld;
}

// RFC 9293 §3.1 option list. Known kinds must have their exact lengths
// (RFC 7323 §2.2/§3.2, RFC 2018 §3); unknown kinds are skipped by length.
Result parse_tcp_options(Bytes b, std::size_t start, std::size_t end, TcpOptions& o) {
    std::size_t i = start;
    while (i < end) {
        const std::uint8_t kind = u8_at(b, i);
        if (kind == 0) break;  // End of Option List
        if (kind == 1) {       // NOP
            ++i;
            continue;
        }
        if (i + 1 >= end) return DropReason::TcpBadOption;
        const std::uint8_t len = u8_at(b, i + 1);
        if (len < 2 || len > end - i) return DropReason::TcpBadOption;
        const auto at = static_cast<std::uint16_t>(i + 2);
        switch (kind) {
            case 2:  // MSS
                if (len != 4) return DropReason::TcpBadOption;
                o.mss = be16_at(b, at);
                o.mss_offset = at;
                break;
            case 3:  // Window scale
                if (len != 3) return DropReason::TcpBadOption;
                o.wscale = u8_at(b, at);
                o.wscale_offset = at;
                break;
            case 4:  // SACK permitted
                if (len != 2) return DropReason::TcpBadOption;
                o.sack_permitted = true;
                break;
            case 5: {  // SACK blocks
                const std::size_t n = (len - 2u) / 8u;
                if ((len - 2u) % 8u != 0 || n == 0 || n > o.sack.size())
                    return DropReason::TcpBadOption;
                o.sack_count = static_cast<std::uint8_t>(n);
                o.sack_offset = at;
                for (std::size_t k = 0; k < n; ++k) {
                    o.sack[k].left = SeqNum{be32_at(b, at + 8 * k)};
                    o.sack[k].right = SeqNum{be32_at(b, at + 8 * k + 4)};
                }
                break;
            }
            case 8:  // Timestamps
                if (len != 10) return DropReason::TcpBadOption;
                o.has_timestamps = true;
                o.tsval = be32_at(b, at);
                o.tsecr = be32_at(b, at + 4);
                o.ts_offset = at;
                break;
            default:
                if (o.unknown_count < 255) ++o.unknown_count;
                break;
        }
        i += len;
    }
    return std::nullopt;
}

Result parse_tcp(Bytes b, std::size_t off, std::size_t ip_end, Packet& p) {
    // The datagram itself too short for a TCP header is invalid whatever the
    // frame holds (Ethernet padding must not change the verdict).
    if (off + 20 > ip_end) return DropReason::TcpBadDataOffset;
    if (!fits(b, off, 20)) return DropReason::TcpTruncated;
    TcpInfo& t = p.tcp;
    t.src_port = Port{be16_at(b, off)};
    t.dst_port = Port{be16_at(b, off + 2)};
    t.seq = SeqNum{be32_at(b, off + 4)};
    t.ack = SeqNum{be32_at(b, off + 8)};
    const std::uint8_t doff = u8_at(b, off + 12) >> 4;
    t.flags = u8_at(b, off + 13);
    t.window = be16_at(b, off + 14);
    t.checksum = be16_at(b, off + 16);
    t.urgent = be16_at(b, off + 18);
    const std::size_t hlen = std::size_t{doff} * 4;
    if (doff < 5 || off + hlen > ip_end) return DropReason::TcpBadDataOffset;
    if (!fits(b, off, hlen)) return DropReason::TcpTruncated;
    t.header_length = static_cast<std::uint8_t>(hlen);
    if (auto r = parse_tcp_options(b, off + 20, off + hlen, t.options)) return r;
    p.layout.l4 = static_cast<std::uint16_t>(off);
    p.layout.payload = static_cast<std::uint16_t>(off + hlen);
    p.payload_length = static_cast<std::uint32_t>(ip_end - (off + hlen));
    const std::size_t avail = b.size() > off + hlen ? b.size() - (off + hlen) : 0;
    p.payload_captured = static_cast<std::uint32_t>(std::min<std::size_t>(avail, p.payload_length));
    p.kind = PacketKind::Tcp;
    return std::nullopt;
}

Result parse_icmp(Bytes b, std::size_t off, std::size_t ip_end, Packet& p) {
    if (off + 8 > ip_end) return DropReason::IcmpBadLength;  // the datagram is too short
    if (!fits(b, off, 8)) return DropReason::IcmpTruncated;
    p.icmp.type = u8_at(b, off);
    p.icmp.code = u8_at(b, off + 1);
    p.layout.l4 = static_cast<std::uint16_t>(off);
    p.layout.payload = static_cast<std::uint16_t>(off + 8);
    p.payload_length = static_cast<std::uint32_t>(ip_end - (off + 8));
    const std::size_t avail = b.size() - (off + 8);
    p.payload_captured = static_cast<std::uint32_t>(std::min<std::size_t>(avail, p.payload_length));
    if (p.icmp.type == 0 || p.icmp.type == 8) {  // RFC 792 echo reply / request
        p.icmp.id = be16_at(b, off + 4);
        p.icmp.sequence = be16_at(b, off + 6);
        p.kind = PacketKind::IcmpEcho;
    } else {
        p.kind = PacketKind::Icmp;
    }
    return std::nullopt;
}

Result parse_ipv4(Bytes b, std::size_t off, Packet& p) {
    if (!fits(b, off, 1)) return DropReason::Ipv4Truncated;
    const std::uint8_t vihl = u8_at(b, off);
    if ((vihl >> 4) != 4) return DropReason::Ipv4BadVersion;
    if (!fits(b, off, 20)) return DropReason::Ipv4Truncated;
    const std::size_t hlen = std::size_t{vihl & 0x0fu} * 4;
    if (hlen < 20) return DropReason::Ipv4BadHeaderLength;
    if (!fits(b, off, hlen)) return DropReason::Ipv4Truncated;
    Ipv4Info& ip = p.ip;
    ip.header_length = static_cast<std::uint8_t>(hlen);
    ip.tos = u8_at(b, off + 1);
    ip.total_length = be16_at(b, off + 2);
    ip.id = be16_at(b, off + 4);
    const std::uint16_t frag = be16_at(b, off + 6);
    ip.dont_fragment = (frag & 0x4000u) != 0;
    ip.more_fragments = (frag & 0x2000u) != 0;
    ip.fragment_offset = static_cast<std::uint16_t>((frag & 0x1fffu) * 8u);
    ip.ttl = u8_at(b, off + 8);
    ip.protocol = u8_at(b, off + 9);
    ip.src = Ipv4Addr{be32_at(b, off + 12)};
    ip.dst = Ipv4Addr{be32_at(b, off + 16)};
    ip.has_options = hlen > 20;
    if (ip.total_length < hlen) {
        // Zero is what GSO/BIG TCP super-segments carry: not a wire packet.
        return ip.total_length == 0 || ip.total_length >= 20 ? DropReason::Ipv4BadTotalLength
                                                             : DropReason::Ipv4BadHeaderLength;
    }
    // RFC 791: the header is checked whole before any field is trusted.
    if (!ipv4_header_checksum_ok(b.subspan(off, hlen))) return DropReason::Ipv4BadChecksum;
    const std::size_t ip_end = off + ip.total_length;
    // A frame fully captured but shorter than IPv4 claims is invalid; one the
    // capture cut short keeps its headers and loses payload only.
    // Either way, IPv4 may not claim more than the wire carried.
    if (ip_end > b.size() && !p.truncated_by_capture) return DropReason::Ipv4BadTotalLength;
    if (ip_end > p.wire_length) return DropReason::Ipv4BadTotalLength;
    p.layout.l3 = static_cast<std::uint16_t>(off);
    if (ip.is_fragment()) {
        // Flagged, not reassembled: a fragment cannot be tracked on its own.
        p.kind = PacketKind::OtherIpv4;
        return std::nullopt;
    }
    const std::size_t l4 = off + hlen;
    switch (ip.protocol) {
        case kProtoTcp:
            return parse_tcp(b, l4, ip_end, p);
        case kProtoIcmp:
            return parse_icmp(b, l4, ip_end, p);
        default:
            p.kind = PacketKind::OtherIpv4;
            return std::nullopt;
    }
}

Result parse_arp(Bytes b, std::size_t off, Packet& p) {
    if (!fits(b, off, 8)) return DropReason::ArpTruncated;
    const std::uint16_t htype = be16_at(b, off);
    const std::uint16_t ptype = be16_at(b, off + 2);
    const std::uint8_t hlen = u8_at(b, off + 4);
    const std::uint8_t plen = u8_at(b, off + 5);
    if (htype != kArphrdEther || ptype != kEtherIpv4 || hlen != 6 || plen != 4) {
        p.kind = PacketKind::NotIpv4;  // ARP for something else: not ours
        return std::nullopt;
    }
    if (!fits(b, off, 28)) return DropReason::ArpTruncated;
    p.arp.op = be16_at(b, off + 6);
    p.arp.sender_mac = mac_at(b, off + 8);
    p.arp.sender_ip = Ipv4Addr{be32_at(b, off + 14)};
    p.arp.target_mac = mac_at(b, off + 18);
    p.arp.target_ip = Ipv4Addr{be32_at(b, off + 24)};
    p.layout.l3 = static_cast<std::uint16_t>(off);
    p.kind = PacketKind::Arp;
    return std::nullopt;
}

Result parse_network(Bytes b, std::size_t off, std::uint16_t ethertype, Packet& p) {
    p.eth.ethertype = ethertype;
    switch (ethertype) {
        case kEtherIpv4:
            return parse_ipv4(b, off, p);
        case kEtherArp:
            return parse_arp(b, off, p);
        default:
            p.kind = PacketKind::NotIpv4;
            return std::nullopt;
    }
}

Result parse_ethernet(Bytes b, Packet& p) {
    if (!fits(b, 0, 14)) return DropReason::LinkTruncated;
    p.has_ethernet = true;
    p.eth.dst = mac_at(b, 0);
    p.eth.src = mac_at(b, 6);
    std::size_t off = 12;
    std::uint16_t type = be16_at(b, off);
    int tags = 0;
    while (is_vlan_tpid(type)) {
        if (++tags > kMaxVlanTags) return DropReason::VlanTooDeep;
        if (!fits(b, off + 2, 4)) return DropReason::VlanTruncated;
        if (!p.eth.vlan) p.eth.vlan = be16_at(b, off + 2);
        off += 4;
        type = be16_at(b, off);
    }
    return parse_network(b, off + 2, type, p);
}

// Linux cooked v1: 16-byte header, protocol last.
Result parse_sll(Bytes b, Packet& p) {
    if (!fits(b, 0, 16)) return DropReason::LinkTruncated;
    const std::uint16_t arphrd = be16_at(b, 2);
    const std::uint16_t alen = be16_at(b, 4);
    if (arphrd == kArphrdEther && alen == 6) p.eth.src = mac_at(b, 6);
    return parse_network(b, 16, be16_at(b, 14), p);
}

// Linux cooked v2: 20-byte header, protocol first.
Result parse_sll2(Bytes b, Packet& p) {
    if (!fits(b, 0, 20)) return DropReason::LinkTruncated;
    const std::uint16_t arphrd = be16_at(b, 8);
    const std::uint8_t alen = u8_at(b, 11);
    if (arphrd == kArphrdEther && alen == 6) p.eth.src = mac_at(b, 12);
    return parse_network(b, 20, be16_at(b, 0), p);
}

Result parse_raw(Bytes b, Packet& p) {
    if (!fits(b, 0, 1)) return DropReason::Ipv4Truncated;
    if ((u8_at(b, 0) >> 4) == 6) {
        p.kind = PacketKind::NotIpv4;
        return std::nullopt;
    }
    return parse_network(b, 0, kEtherIpv4, p);
}

// BSD loopback: a 4-byte address family, host order (DLT_NULL) or network
// order (DLT_LOOP). AF_INET is 2 everywhere, so accept it in either order.
Result parse_null(Bytes b, Packet& p) {
    if (!fits(b, 0, 4)) return DropReason::LinkTruncated;
    const std::uint32_t be = be32_at(b, 0);
    const std::uint32_t le = wire::le32_at(b, 0);
    if (be != 2 && le != 2) {
        p.kind = PacketKind::NotIpv4;
        return std::nullopt;
    }
    return parse_network(b, 4, kEtherIpv4, p);
}

}  // namespace

std::optional<DropReason> parse(std::span<const std::byte> frame, std::uint32_t wire_length,
                                LinkType link, Packet& out) {
    out = Packet{};
    out.truncated_by_capture = wire_length > frame.size();
    out.wire_length = std::max<std::uint32_t>(wire_length, static_cast<std::uint32_t>(frame.size()));
    switch (link) {
        case LinkType::Ethernet:
            return parse_ethernet(frame, out);
        case LinkType::LinuxSll:
            return parse_sll(frame, out);
        case LinkType::LinuxSll2:
            return parse_sll2(frame, out);
        case LinkType::RawIp:
            return parse_raw(frame, out);
        case LinkType::Null:
            return parse_null(frame, out);
    }
    return DropReason::LinkTruncated;  // unreachable: every LinkType handled above
}

DropCategory category_of(DropReason reason) {
    switch (reason) {
        case DropReason::LinkTruncated:
        case DropReason::VlanTruncated:
        case DropReason::Ipv4Truncated:
        case DropReason::TcpTruncated:
        case DropReason::IcmpTruncated:
        case DropReason::ArpTruncated:
            return DropCategory::Truncated;
        default:
            return DropCategory::Invalid;
    }
}

std::string_view name_of(DropReason reason) {
    switch (reason) {
        case DropReason::LinkTruncated: return "link_truncated";
        case DropReason::VlanTruncated: return "vlan_truncated";
        case DropReason::VlanTooDeep: return "vlan_too_deep";
        case DropReason::Ipv4Truncated: return "ipv4_truncated";
        case DropReason::Ipv4BadVersion: return "ipv4_bad_version";
        case DropReason::Ipv4BadHeaderLength: return "ipv4_bad_header_length";
        case DropReason::Ipv4BadTotalLength: return "ipv4_bad_total_length";
        case DropReason::Ipv4BadChecksum: return "ipv4_bad_checksum";
        case DropReason::TcpTruncated: return "tcp_truncated";
        case DropReason::TcpBadDataOffset: return "tcp_bad_data_offset";
        case DropReason::TcpBadOption: return "tcp_bad_option";
        case DropReason::IcmpTruncated: return "icmp_truncated";
        case DropReason::IcmpBadLength: return "icmp_bad_length";
        case DropReason::ArpTruncated: return "arp_truncated";
        case DropReason::kCount: break;
    }
    return "unknown";
}

std::string_view name_of(PacketKind kind) {
    switch (kind) {
        case PacketKind::Tcp: return "tcp";
        case PacketKind::IcmpEcho: return "icmp_echo";
        case PacketKind::Icmp: return "icmp_other";
        case PacketKind::Arp: return "arp";
        case PacketKind::OtherIpv4: return "other_ipv4";
        case PacketKind::NotIpv4: return "not_ipv4";
    }
    return "unknown";
}

void ParseCounters::record(const Packet& p) {
    ++frames;
    bytes += p.wire_length;
    ++by_kind[static_cast<std::size_t>(p.kind)];
    if (p.ip.is_fragment()) ++fragments;
    if (p.ip.has_options) ++ipv4_with_options;
    if (p.truncated_by_capture) ++truncated_by_capture;
}

std::uint64_t ParseCounters::malformed() const {
    std::uint64_t n = 0;
    for (auto d : dropped) n += d;
    return n;
}

}  // namespace migware::sniffer
