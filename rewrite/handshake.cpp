#include "rewrite/handshake.hpp"

#include <algorithm>
#include <array>

#include "sniffer/checksum.hpp"
#include "sniffer/packet.hpp"
#include "sniffer/wire.hpp"

namespace migware::rewrite {
namespace {

using sniffer::wire::store_be16;
using sniffer::wire::store_be32;
using sniffer::wire::store_u8;
using sniffer::ipv4_header_checksum;
using sniffer::kIpProtoTcp;
using sniffer::tcp_checksum;

constexpr std::size_t kIpHeaderLen = 20;
constexpr std::size_t kTcpHeaderLen = 20;
constexpr std::size_t kMaxOptions = 40;  // RFC 9293 §3.1: data offset <= 15 words
constexpr std::uint16_t kDontFragment = 0x4000;

constexpr std::uint8_t kOptNop = 1;
constexpr std::uint8_t kOptMss = 2;
constexpr std::uint8_t kOptWscale = 3;
constexpr std::uint8_t kOptSackPermitted = 4;
constexpr std::uint8_t kOptTimestamps = 8;

/// Options are built in a fixed buffer, a 32-bit word at a time, the way
/// Linux's tcp_options_write() lays them out.
struct OptionWriter {
    std::array<std::byte, kMaxOptions> bytes{};
    std::size_t size = 0;

    void put(std::uint8_t b) {
        if (size < bytes.size()) bytes[size++] = std::byte{b};
    }
    void put16(std::uint16_t v) {
        put(static_cast<std::uint8_t>(v >> 8));
        put(static_cast<std::uint8_t>(v));
    }
    void put32(std::uint32_t v) {
        put16(static_cast<std::uint16_t>(v >> 16));
        put16(static_cast<std::uint16_t>(v));
    }
    void timestamps(TimestampPair ts) {  // RFC 7323 §3.2
        put(kOptTimestamps);
        put(10);
        put32(ts.tsval.raw());
        put32(ts.tsecr.raw());
    }
};

struct TcpFields {
    sniffer::Endpoint src;
    sniffer::Endpoint dst;
    SeqNum seq;
    SeqNum ack;
    std::uint8_t flags = 0;
    std::uint16_t window = 0;
    std::uint16_t ip_id = 0;
};

std::size_t write_packet(std::span<std::byte> out, const TcpFields& f, const OptionWriter& opts,
                         std::span<const std::byte> payload = {}) noexcept {
    // The writer only emits whole words; keep the header a word multiple
    // regardless, since the data offset field counts words.
    const std::size_t options_len = (opts.size + 3) & ~std::size_t{3};
    const std::size_t tcp_len = kTcpHeaderLen + options_len;
    const std::size_t total = kIpHeaderLen + tcp_len + payload.size();
    if (out.size() < total || total > 0xffff) return 0;
    const std::span<std::byte> pkt = out.first(total);
    std::fill(pkt.begin(), pkt.end(), std::byte{0});

    // IPv4 header, RFC 791. DF: the twin's segments are sized by the MSS.
    store_u8(pkt, 0, 0x45);
    store_be16(pkt, 2, static_cast<std::uint16_t>(total));
    store_be16(pkt, 4, f.ip_id);
    store_be16(pkt, 6, kDontFragment);
    store_u8(pkt, 8, kHandshakeTtl);
    store_u8(pkt, 9, kIpProtoTcp);
    store_be32(pkt, 12, f.src.ip.value);
    store_be32(pkt, 16, f.dst.ip.value);
    store_be16(pkt, 10, ipv4_header_checksum(pkt.first(kIpHeaderLen)));

    // TCP header, RFC 9293 §3.1.
    const std::span<std::byte> tcp = pkt.subspan(kIpHeaderLen);
    store_be16(tcp, 0, f.src.port.value);
    store_be16(tcp, 2, f.dst.port.value);
    store_be32(tcp, 4, f.seq.raw());
    store_be32(tcp, 8, f.ack.raw());
    store_u8(tcp, 12, static_cast<std::uint8_t>((tcp_len / 4) << 4));
    store_u8(tcp, 13, f.flags);
    store_be16(tcp, 14, f.window);
    std::copy_n(opts.bytes.begin(), opts.size, tcp.begin() + kTcpHeaderLen);
    std::copy(payload.begin(), payload.end(), tcp.begin() + static_cast<std::ptrdiff_t>(tcp_len));
    store_be16(tcp, 16, tcp_checksum(f.src.ip, f.dst.ip, tcp));
    return total;
}

}  // namespace

TwinSynSpec twin_syn_spec(const ObservedConnection& conn, sniffer::Endpoint src,
                          sniffer::Endpoint dst, std::uint16_t window,
                          std::uint16_t ip_id) noexcept {
    TwinSynSpec spec;
    spec.src = src;
    spec.dst = dst;
    spec.seq = twin_syn_seq(conn);
    spec.mss = conn.client_mss;
    // Offer B exactly what C<->P agreed on, so every option the client keeps
    // using (SACK blocks, TS, scaled windows) means the same on the twin.
    spec.sack_permitted = conn.client_sack_permitted && conn.primary_sack_permitted;
    if (conn.client_timestamps && conn.primary_timestamps) spec.tsval = conn.client_tsval_latest;
    if (conn.client_wscale && conn.primary_wscale) spec.wscale = conn.client_wscale;
    spec.window = window;
    spec.ip_id = ip_id;
    return spec;
}

TwinAckSpec twin_ack_spec(const ObservedConnection& conn, const TwinHandshake& twin,
                          sniffer::Endpoint src, sniffer::Endpoint dst, std::uint16_t window,
                          std::uint16_t ip_id) noexcept {
    TwinAckSpec spec;
    spec.src = src;
    spec.dst = dst;
    spec.seq = twin.syn_seq + 1u;
    spec.ack = twin.isn_b + 1u;
    if (conn.client_timestamps && conn.primary_timestamps && twin.backup_timestamps)
        spec.timestamps = TimestampPair{conn.client_tsval_latest, twin.tsb0};
    spec.window = window;
    spec.ip_id = ip_id;
    return spec;
}

std::size_t build_twin_syn(std::span<std::byte> out, const TwinSynSpec& spec) noexcept {
    OptionWriter opts;
    if (spec.mss) {  // RFC 9293 §3.7.1
        opts.put(kOptMss);
        opts.put(4);
        opts.put16(*spec.mss);
    }
    if (spec.tsval) {
        // SACK-permitted (RFC 2018 §2) takes the place of the two NOPs in
        // front of TS, as Linux does.
        if (spec.sack_permitted) {
            opts.put(kOptSackPermitted);
            opts.put(2);
        } else {
            opts.put(kOptNop);
            opts.put(kOptNop);
        }
        // RFC 7323 §3.2: TSecr is 0 in a SYN, which has no ACK.
        opts.timestamps(TimestampPair{*spec.tsval, TsVal{0}});
    } else if (spec.sack_permitted) {
        opts.put(kOptNop);
        opts.put(kOptNop);
        opts.put(kOptSackPermitted);
        opts.put(2);
    }
    if (spec.wscale) {  // RFC 7323 §2.2
        opts.put(kOptNop);
        opts.put(kOptWscale);
        opts.put(3);
        opts.put(std::min(*spec.wscale, kMaxWindowShift));
    }
    const TcpFields fields{.src = spec.src,
                           .dst = spec.dst,
                           .seq = spec.seq,
                           .ack = SeqNum{0},
                           .flags = sniffer::tcp_flag::kSyn,
                           .window = spec.window,
                           .ip_id = spec.ip_id};
    return write_packet(out, fields, opts);
}

namespace {

// The twin's ACK and its data segments differ only in flags and payload.
std::size_t build_twin_segment(std::span<std::byte> out, const sniffer::Endpoint& src,
                               const sniffer::Endpoint& dst, SeqNum seq, SeqNum ack,
                               const std::optional<TimestampPair>& timestamps,
                               std::uint16_t window, std::uint16_t ip_id, std::uint8_t flags,
                               std::span<const std::byte> payload) noexcept {
    OptionWriter opts;
    if (timestamps) {
        opts.put(kOptNop);
        opts.put(kOptNop);
        opts.timestamps(*timestamps);
    }
    const TcpFields fields{.src = src,
                           .dst = dst,
                           .seq = seq,
                           .ack = ack,
                           .flags = flags,
                           .window = window,
                           .ip_id = ip_id};
    return write_packet(out, fields, opts, payload);
}

}  // namespace

std::size_t build_twin_ack(std::span<std::byte> out, const TwinAckSpec& spec) noexcept {
    return build_twin_segment(out, spec.src, spec.dst, spec.seq, spec.ack, spec.timestamps,
                              spec.window, spec.ip_id, sniffer::tcp_flag::kAck, {});
}

std::size_t build_twin_data(std::span<std::byte> out, const TwinDataSpec& spec,
                            std::span<const std::byte> payload) noexcept {
    const auto flags = static_cast<std::uint8_t>(
        sniffer::tcp_flag::kAck | (spec.fin ? sniffer::tcp_flag::kFin : sniffer::tcp_flag::kPsh));
    return build_twin_segment(out, spec.src, spec.dst, spec.seq, spec.ack, spec.timestamps,
                              spec.window, spec.ip_id, flags, payload);
}

std::size_t build_reset(std::span<std::byte> out, const ResetSpec& spec) noexcept {
    const TcpFields fields{.src = spec.src,
                           .dst = spec.dst,
                           .seq = spec.seq,
                           .ack = SeqNum{0},
                           .flags = sniffer::tcp_flag::kRst,
                           .window = 0,
                           .ip_id = spec.ip_id};
    return write_packet(out, fields, OptionWriter{});
}

}  // namespace migware::rewrite
