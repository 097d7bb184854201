#include "rewrite/frames.hpp"

#include "sniffer/checksum.hpp"
#include "sniffer/wire.hpp"

namespace migware::rewrite {
namespace {

using sniffer::wire::fits;
using sniffer::wire::store_be16;
using sniffer::wire::store_be32;
using sniffer::wire::store_bytes;
using sniffer::wire::store_u8;

constexpr std::uint16_t kArpHardwareEthernet = 1;
constexpr std::uint8_t kEchoReplyTtl = 64;
// Offsets inside the IPv4 header (RFC 791) and the ICMP header (RFC 792).
constexpr std::size_t kIpTtl = 8;
constexpr std::size_t kIpChecksum = 10;
constexpr std::size_t kIpSrc = 12;
constexpr std::size_t kIpDst = 16;
constexpr std::size_t kIcmpChecksum = 2;

void store_mac(std::span<std::byte> buf, std::size_t off, const sniffer::MacAddr& mac) noexcept {
    store_bytes(buf, off, std::as_bytes(std::span(mac.bytes)));
}

}  // namespace

std::size_t write_ethernet(std::span<std::byte> buf, const EthernetHeader& h) noexcept {
    const std::size_t len = ethernet_header_length(h);
    if (!fits(buf.size(), 0, len)) return 0;
    store_mac(buf, 0, h.dst);
    store_mac(buf, 6, h.src);
    std::size_t off = 12;
    if (h.vlan) {
        store_be16(buf, off, kEtherTypeVlan);
        store_be16(buf, off + 2, *h.vlan);
        off += 4;
    }
    store_be16(buf, off, h.ethertype);
    return len;
}

std::size_t build_arp(std::span<std::byte> buf, const ArpFrame& a) noexcept {
    EthernetHeader eth = a.eth;
    eth.ethertype = kEtherTypeArp;
    const std::size_t at = ethernet_header_length(eth);
    if (!fits(buf.size(), 0, at + kArpBody)) return 0;
    write_ethernet(buf, eth);
    store_be16(buf, at, kArpHardwareEthernet);
    store_be16(buf, at + 2, kEtherTypeIpv4);
    store_u8(buf, at + 4, 6);  // hardware address length
    store_u8(buf, at + 5, 4);  // protocol address length
    store_be16(buf, at + 6, static_cast<std::uint16_t>(a.op));
    store_mac(buf, at + 8, a.sender_mac);
    store_be32(buf, at + 14, a.sender_ip.value);
    store_mac(buf, at + 18, a.target_mac);
    store_be32(buf, at + 24, a.target_ip.value);
    return at + kArpBody;
}

std::size_t build_icmp_echo(std::span<std::byte> buf, const IcmpEcho& e) noexcept {
    const std::size_t len = kIcmpEchoHeader + e.payload.size();
    if (!fits(buf.size(), 0, len)) return 0;
    const std::span<std::byte> msg = buf.first(len);
    store_u8(msg, 0, static_cast<std::uint8_t>(e.type));
    store_u8(msg, 1, 0);  // code
    store_be16(msg, kIcmpChecksum, 0);
    store_be16(msg, 4, e.id);
    store_be16(msg, 6, e.sequence);
    store_bytes(msg, kIcmpEchoHeader, e.payload);
    store_be16(msg, kIcmpChecksum, sniffer::internet_checksum(msg));
    return len;
}

std::size_t build_echo_reply(std::span<std::byte> buf, std::span<const std::byte> request_frame,
                             const sniffer::Packet& request,
                             const sniffer::MacAddr& src_mac) noexcept {
    if (request.kind != sniffer::PacketKind::IcmpEcho ||
        request.icmp.type != static_cast<std::uint8_t>(IcmpEchoType::Request) ||
        !request.has_ethernet || request.ip.is_fragment() ||
        request.payload_captured < request.payload_length)
        return 0;
    const std::size_t l3 = request.layout.l3;
    const std::size_t l4 = request.layout.l4;
    const std::size_t end = l3 + request.ip.total_length;
    // The offsets come from the Packet; check them against the bytes.
    if (l3 < 14 || l4 < l3 + 20 || l4 + kIcmpEchoHeader > end || end > request_frame.size() ||
        end > buf.size())
        return 0;
    const std::span<std::byte> f = buf.first(end);
    store_bytes(f, 0, request_frame.first(end));
    store_mac(f, 0, request.eth.src);
    store_mac(f, 6, src_mac);
    store_be32(f, l3 + kIpSrc, request.ip.dst.value);
    store_be32(f, l3 + kIpDst, request.ip.src.value);
    store_u8(f, l3 + kIpTtl, kEchoReplyTtl);
    store_be16(f, l3 + kIpChecksum, sniffer::ipv4_header_checksum(f.subspan(l3, l4 - l3)));
    store_u8(f, l4, static_cast<std::uint8_t>(IcmpEchoType::Reply));
    store_be16(f, l4 + kIcmpChecksum, 0);
    store_be16(f, l4 + kIcmpChecksum, sniffer::internet_checksum(f.subspan(l4, end - l4)));
    return end;
}

}  // namespace migware::rewrite
