// Frame rewriting, checked byte for byte against frames built independently
// in this file (no parser involved): for every case the expected output frame
// is built from scratch with the translated field values and checksums
// computed naively, then compared with the rewritten frame as a whole. That
// checks the translated fields, that nothing else moved, and that every
// incremental checksum equals a full recomputation.
//
// Checksums follow the frame's source (ChecksumSource): a client frame off
// the wire keeps a corrupt checksum exactly as corrupt as it came (never
// repaired), a packet of the backup's own stack gets both recomputed.

#include "rewrite/frame_rewrite.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sniffer/checksum.hpp"
#include "sniffer/packet.hpp"
#include "sniffer/parser.hpp"
#include "sniffer/wire.hpp"

namespace migware::rewrite {
namespace {

using Bytes = std::vector<std::uint8_t>;
using sniffer::MacAddr;
namespace flag = sniffer::tcp_flag;

// ---- naive reference checksum ------------------------------------------

std::uint16_t naive_checksum(const Bytes& data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < data.size(); i += 2) {
        std::uint32_t word = std::uint32_t{data[i]} << 8;
        if (i + 1 < data.size()) word |= data[i + 1];
        sum += word;
        if (sum > 0xffff) sum = (sum & 0xffff) + 1;
    }
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

void put8(Bytes& b, std::uint8_t v) { b.push_back(v); }
void put16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
void put32(Bytes& b, std::uint32_t v) {
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}
void poke16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 8);
    b[at + 1] = static_cast<std::uint8_t>(v);
}
std::uint16_t peek16(const Bytes& b, std::size_t at) {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

// Sum of (pseudo-header + segment) with the checksum field zeroed, folded,
// not complemented: what a NIC expects to find with CHECKSUM_PARTIAL.
Bytes tcp_checksum_input(const Bytes& ip_and_tcp, std::size_t ihl_bytes) {
    Bytes all(ip_and_tcp.begin() + 12, ip_and_tcp.begin() + 20);  // src, dst
    const std::size_t tcp_len = ip_and_tcp.size() - ihl_bytes;
    put8(all, 0);
    put8(all, 6);
    put16(all, static_cast<std::uint16_t>(tcp_len));
    all.insert(all.end(), ip_and_tcp.begin() + static_cast<std::ptrdiff_t>(ihl_bytes),
               ip_and_tcp.end());
    all[12 + 16] = 0;
    all[12 + 17] = 0;
    return all;
}

// ---- independent frame builder ------------------------------------------

enum class Opt { Nop, Eol, Mss, Ts, Sack };

struct Spec {
    bool ethernet = true;
    bool vlan = false;
    MacAddr src_mac{{0x02, 0, 0, 0, 0, 0x0c}};
    MacAddr dst_mac{{0x02, 0, 0, 0, 0, 0x0b}};
    std::size_t ip_option_words = 0;
    std::uint16_t ip_frag = 0x4000;  // DF
    std::uint32_t src_ip = 0xc6120110;  // 198.18.1.16
    std::uint32_t dst_ip = 0xc6120002;  // 198.18.0.2
    std::uint16_t src_port = 40000;
    std::uint16_t dst_port = 80;
    std::uint32_t seq = 1000;
    std::uint32_t ack = 2000;
    std::uint8_t flags = flag::kAck | flag::kPsh;
    std::uint16_t window = 501;
    std::vector<Opt> options;
    std::uint32_t tsval = 0;
    std::uint32_t tsecr = 0;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> sack;
    std::size_t payload_len = 0;
    std::size_t pad_frame_to = 0;  // Ethernet minimum-size padding
    enum class Csum { Good, Corrupt, Partial } ip_csum = Csum::Good, tcp_csum = Csum::Good;
};

struct Built {
    Bytes frame;
    sniffer::Packet packet;
};

Built build(const Spec& s) {
    Built out;
    Bytes& f = out.frame;
    sniffer::Packet& p = out.packet;
    p.kind = sniffer::PacketKind::Tcp;
    if (s.ethernet) {
        f.insert(f.end(), s.dst_mac.bytes.begin(), s.dst_mac.bytes.end());
        f.insert(f.end(), s.src_mac.bytes.begin(), s.src_mac.bytes.end());
        if (s.vlan) {
            put16(f, 0x8100);
            put16(f, 0x2064);  // PCP 1, VID 100
            p.eth.vlan = 0x2064;
        }
        put16(f, 0x0800);
        p.has_ethernet = true;
        p.eth.src = s.src_mac;
        p.eth.dst = s.dst_mac;
        p.eth.ethertype = 0x0800;
    }
    const std::size_t l3 = f.size();

    // TCP options first, to know the header lengths.
    Bytes opts;
    std::size_t ts_rel = 0;
    std::size_t sack_rel = 0;
    for (Opt o : s.options) {
        switch (o) {
            case Opt::Nop: put8(opts, 1); break;
            case Opt::Eol: put8(opts, 0); break;
            case Opt::Mss:
                put8(opts, 2);
                put8(opts, 4);
                put16(opts, 1460);
                break;
            case Opt::Ts:
                put8(opts, 8);
                put8(opts, 10);
                ts_rel = opts.size();
                put32(opts, s.tsval);
                put32(opts, s.tsecr);
                break;
            case Opt::Sack:
                put8(opts, 5);
                put8(opts, static_cast<std::uint8_t>(2 + 8 * s.sack.size()));
                sack_rel = opts.size();
                for (auto [l, r] : s.sack) {
                    put32(opts, l);
                    put32(opts, r);
                }
                break;
        }
    }
    while (opts.size() % 4 != 0) put8(opts, 0);
    const std::size_t ihl = 20 + 4 * s.ip_option_words;
    const std::size_t thl = 20 + opts.size();
    const std::size_t total = ihl + thl + s.payload_len;

    put8(f, static_cast<std::uint8_t>(0x40 | (ihl / 4)));
    put8(f, 0x10);  // TOS
    put16(f, static_cast<std::uint16_t>(total));
    put16(f, 0x1c46);
    put16(f, s.ip_frag);
    put8(f, 63);  // TTL
    put8(f, 6);
    put16(f, 0);  // checksum, below
    put32(f, s.src_ip);
    put32(f, s.dst_ip);
    for (std::size_t i = 0; i < s.ip_option_words; ++i) put32(f, 0x01010101);  // NOPs
    const std::size_t l4 = f.size();
    put16(f, s.src_port);
    put16(f, s.dst_port);
    put32(f, s.seq);
    put32(f, s.ack);
    put8(f, static_cast<std::uint8_t>((thl / 4) << 4));
    put8(f, s.flags);
    put16(f, s.window);
    put16(f, 0);  // checksum, below
    put16(f, 0);  // urgent
    f.insert(f.end(), opts.begin(), opts.end());
    for (std::size_t i = 0; i < s.payload_len; ++i) put8(f, static_cast<std::uint8_t>(i * 7 + 3));

    const Bytes ip_hdr(f.begin() + static_cast<std::ptrdiff_t>(l3),
                       f.begin() + static_cast<std::ptrdiff_t>(l4));
    std::uint16_t ip_sum = naive_checksum(ip_hdr);
    if (s.ip_csum == Spec::Csum::Corrupt) ip_sum ^= 0x0101;
    poke16(f, l3 + 10, ip_sum);

    const Bytes ip_packet(f.begin() + static_cast<std::ptrdiff_t>(l3), f.end());
    const Bytes tcp_in = tcp_checksum_input(ip_packet, ihl);
    std::uint16_t tcp_sum = naive_checksum(tcp_in);
    if (s.tcp_csum == Spec::Csum::Corrupt) tcp_sum ^= 0x8001;
    if (s.tcp_csum == Spec::Csum::Partial) {
        // Offloaded: the stack leaves only the pseudo-header sum in place.
        const Bytes pseudo(tcp_in.begin(), tcp_in.begin() + 12);
        tcp_sum = static_cast<std::uint16_t>(~naive_checksum(pseudo));
    }
    poke16(f, l4 + 16, tcp_sum);

    while (f.size() < s.pad_frame_to) put8(f, 0xee);

    p.layout.l3 = static_cast<std::uint16_t>(l3);
    p.layout.l4 = static_cast<std::uint16_t>(l4);
    p.layout.payload = static_cast<std::uint16_t>(l4 + thl);
    p.payload_length = static_cast<std::uint32_t>(s.payload_len);
    p.payload_captured = p.payload_length;
    p.ip.src = sniffer::Ipv4Addr{s.src_ip};
    p.ip.dst = sniffer::Ipv4Addr{s.dst_ip};
    p.ip.protocol = 6;
    p.ip.ttl = 63;
    p.ip.tos = 0x10;
    p.ip.id = 0x1c46;
    p.ip.total_length = static_cast<std::uint16_t>(total);
    p.ip.header_length = static_cast<std::uint8_t>(ihl);
    p.ip.has_options = s.ip_option_words != 0;
    p.ip.dont_fragment = (s.ip_frag & 0x4000) != 0;
    p.ip.more_fragments = (s.ip_frag & 0x2000) != 0;
    p.tcp.src_port = sniffer::Port{s.src_port};
    p.tcp.dst_port = sniffer::Port{s.dst_port};
    p.tcp.seq = SeqNum{s.seq};
    p.tcp.ack = SeqNum{s.ack};
    p.tcp.flags = s.flags;
    p.tcp.window = s.window;
    p.tcp.checksum = tcp_sum;
    p.tcp.header_length = static_cast<std::uint8_t>(thl);
    sniffer::TcpOptions& o = p.tcp.options;
    for (Opt opt : s.options) {
        if (opt == Opt::Mss) {
            o.mss = 1460;
        } else if (opt == Opt::Ts) {
            o.has_timestamps = true;
            o.tsval = s.tsval;
            o.tsecr = s.tsecr;
            o.ts_offset = static_cast<std::uint16_t>(l4 + 20 + ts_rel);
        } else if (opt == Opt::Sack) {
            o.sack_count = static_cast<std::uint8_t>(s.sack.size());
            for (std::size_t i = 0; i < s.sack.size(); ++i)
                o.sack[i] = SackBlock{SeqNum{s.sack[i].first}, SeqNum{s.sack[i].second}};
            o.sack_offset = static_cast<std::uint16_t>(l4 + 20 + sack_rel);
        }
    }
    return out;
}

std::span<std::byte> writable(Bytes& b) { return std::as_writable_bytes(std::span(b)); }

// What is left over when a stored checksum is checked: the complemented sum
// of everything it covers, itself included. 0 means it verifies; an
// incremental update (RFC 1624) leaves any other value exactly as it was.
struct Residuals {
    std::uint16_t ip = 0;
    std::uint16_t tcp = 0;
    bool operator==(const Residuals&) const = default;
};

Residuals residuals(const Bytes& frame, std::size_t l3, std::size_t l4) {
    const std::size_t total = peek16(frame, l3 + 2);
    const Bytes ip_hdr(frame.begin() + static_cast<std::ptrdiff_t>(l3),
                       frame.begin() + static_cast<std::ptrdiff_t>(l4));
    const Bytes ip_packet(frame.begin() + static_cast<std::ptrdiff_t>(l3),
                          frame.begin() + static_cast<std::ptrdiff_t>(l3 + total));
    Bytes tcp_in = tcp_checksum_input(ip_packet, l4 - l3);
    tcp_in[12 + 16] = frame[l4 + 16];  // put the stored checksum back
    tcp_in[12 + 17] = frame[l4 + 17];
    return Residuals{naive_checksum(ip_hdr), naive_checksum(tcp_in)};
}

Residuals residuals(const Built& b) { return residuals(b.frame, b.packet.layout.l3, b.packet.layout.l4); }

bool checksums_verify(const Built& b) { return residuals(b) == Residuals{}; }

// The frame with both checksum fields zeroed: for comparing everything else.
Bytes without_checksums(Bytes frame, std::size_t l3, std::size_t l4) {
    poke16(frame, l3 + 10, 0);
    poke16(frame, l4 + 16, 0);
    return frame;
}

// ---- expected translation, written out longhand --------------------------

std::uint16_t ref_rescale(std::uint16_t w, unsigned from, unsigned to) {
    const std::uint64_t bytes = std::uint64_t{w} * (std::uint64_t{1} << from);
    std::uint64_t r = bytes / (std::uint64_t{1} << to);
    if (r == 0 && w != 0) r = 1;  // an open window never reads as closed
    return static_cast<std::uint16_t>(r > 65535 ? 65535 : r);
}

bool has_opt(const Spec& s, Opt o) {
    for (Opt x : s.options)
        if (x == o) return true;
    return false;
}

void apply_path(Spec& s, const PathRewrite& path) {
    if (s.ethernet && path.macs) {
        s.src_mac = path.macs->src;
        s.dst_mac = path.macs->dst;
    }
    s.src_ip = path.src.ip.value;
    s.dst_ip = path.dst.ip.value;
    s.src_port = path.src.port.value;
    s.dst_port = path.dst.port.value;
}

Spec expect_client_to_backup(Spec s, const Offsets& off, const AddressMap& map) {
    apply_path(s, map.to_backup);
    const bool ack = (s.flags & flag::kAck) != 0;
    s.seq += off.d1.value;
    if (ack) s.ack += off.d2.value;
    if ((s.flags & flag::kSyn) == 0)
        s.window = ref_rescale(s.window, off.client_shift, off.twin_client_shift);
    if (off.timestamps && ack && has_opt(s, Opt::Ts)) s.tsecr -= off.dts.value;
    for (auto& [l, r] : s.sack) {
        l += off.d2.value;
        r += off.d2.value;
    }
    s.ip_csum = s.tcp_csum = Spec::Csum::Good;
    return s;
}

Spec expect_backup_to_client(Spec s, const Offsets& off, const AddressMap& map) {
    apply_path(s, map.to_client);
    s.seq -= off.d2.value;
    if ((s.flags & flag::kAck) != 0) s.ack -= off.d1.value;
    if ((s.flags & flag::kSyn) == 0)
        s.window = ref_rescale(s.window, off.backup_shift, off.primary_shift);
    if (off.timestamps && has_opt(s, Opt::Ts)) s.tsval += off.dts.value;
    for (auto& [l, r] : s.sack) {
        l -= off.d1.value;
        r -= off.d1.value;
    }
    s.ip_csum = s.tcp_csum = Spec::Csum::Good;
    return s;
}

AddressMap lab_map() {
    AddressMap m;
    m.to_backup.src = sniffer::Endpoint{sniffer::Ipv4Addr{0xc6120002}, sniffer::Port{40000}};
    m.to_backup.dst = sniffer::Endpoint{sniffer::Ipv4Addr{0xc6120003}, sniffer::Port{8080}};
    m.to_backup.macs = MacRewrite{MacAddr{{0x02, 0, 0, 0, 0, 0x0a}},
                                  MacAddr{{0x02, 0, 0, 0, 0, 0x0b}}};
    m.to_client.src = sniffer::Endpoint{sniffer::Ipv4Addr{0xc6120002}, sniffer::Port{80}};
    m.to_client.dst = sniffer::Endpoint{sniffer::Ipv4Addr{0xc6120110}, sniffer::Port{40000}};
    m.to_client.macs = MacRewrite{MacAddr{{0x02, 0, 0, 0, 0, 0x02}},
                                  MacAddr{{0x02, 0, 0, 0, 0, 0xfe}}};
    return m;
}

// D's of both signs, across the wrap, with Linux lab shifts.
Offsets offsets_a() {
    Offsets o;
    o.d1 = SeqDelta{0};
    o.d2 = SeqDelta{0x31};
    o.dts = SeqDelta{0xfffffef9u};  // negative
    o.client_shift = 7;
    o.primary_shift = 10;
    o.backup_shift = 9;
    o.twin_client_shift = 7;
    o.timestamps = true;
    o.sack = true;
    return o;
}

Offsets offsets_b() {
    Offsets o;
    o.d1 = SeqDelta{0xffffff00u};  // -256
    o.d2 = SeqDelta{0x80000001u};
    o.dts = SeqDelta{0x7fffffffu};
    o.client_shift = 14;
    o.primary_shift = 0;
    o.backup_shift = 14;
    o.twin_client_shift = 0;  // B declined scaling
    o.timestamps = true;
    o.sack = true;
    return o;
}

enum class Dir { ToBackup, ToClient };

struct Case {
    std::string name;
    Spec spec;
    Offsets off;
    Dir dir;
};

Spec with(Spec s, const std::function<void(Spec&)>& f) {
    f(s);
    return s;
}

const std::vector<Opt> kAlignedTs{Opt::Nop, Opt::Nop, Opt::Ts};
const std::vector<Opt> kTsSack{Opt::Nop, Opt::Nop, Opt::Ts, Opt::Nop, Opt::Nop, Opt::Sack};
// Packed without alignment NOPs: TSval and the SACK edges start at odd offsets.
const std::vector<Opt> kPackedOdd{Opt::Nop, Opt::Ts, Opt::Sack, Opt::Nop};

std::vector<Case> cases() {
    std::vector<Case> v;
    const Spec base = with(Spec{}, [](Spec& s) {
        s.options = kAlignedTs;
        s.seq = 0xffffff80u;  // seq + payload wraps
        s.ack = 0xffffffe0u;  // ack + D2 wraps
        s.tsval = 0xfffffff0u;
        s.tsecr = 0x00000010u;  // TSecr - Dts wraps either way
        s.payload_len = 200;
    });
    v.push_back({"eth_aligned_ts_to_backup", base, offsets_a(), Dir::ToBackup});
    v.push_back({"eth_aligned_ts_to_client", base, offsets_a(), Dir::ToClient});
    v.push_back({"eth_aligned_ts_to_client_b", base, offsets_b(), Dir::ToClient});
    v.push_back({"vlan_ts_sack3_odd_payload_to_backup", with(base, [](Spec& s) {
                     s.vlan = true;
                     s.options = kTsSack;
                     s.sack = {{0xfffffff0u, 0x10u}, {0x7ffffff0u, 0x80000010u}, {0, 1}};
                     s.payload_len = 1;
                 }),
                 offsets_b(), Dir::ToBackup});
    v.push_back({"vlan_ts_sack3_to_client", with(base, [](Spec& s) {
                     s.vlan = true;
                     s.options = kTsSack;
                     s.sack = {{0xffffff00u, 0xffffffffu}, {0, 0x100}, {5, 6}};
                 }),
                 offsets_b(), Dir::ToClient});
    v.push_back({"tun_no_options_empty_payload_to_client", with(base, [](Spec& s) {
                     s.ethernet = false;
                     s.options = {};
                     s.payload_len = 0;
                 }),
                 offsets_a(), Dir::ToClient});
    v.push_back({"tun_packed_odd_to_backup", with(base, [](Spec& s) {
                     s.ethernet = false;
                     s.options = kPackedOdd;
                     s.sack = {{0xfffffffeu, 0x00000002u}};
                     s.payload_len = 3;
                 }),
                 offsets_b(), Dir::ToBackup});
    v.push_back({"ip_options_packed_odd_to_client", with(base, [](Spec& s) {
                     s.ip_option_words = 3;
                     s.options = kPackedOdd;
                     s.sack = {{0x100u, 0x200u}};
                     s.payload_len = 1461;
                 }),
                 offsets_b(), Dir::ToClient});
    v.push_back({"sack4_no_ts_to_backup", with(base, [](Spec& s) {
                     s.options = {Opt::Nop, Opt::Nop, Opt::Sack};
                     s.sack = {{1, 2}, {0xffffffffu, 0}, {0x80000000u, 0x80000001u}, {9, 99}};
                     s.payload_len = 0;
                 }),
                 offsets_a(), Dir::ToBackup});
    v.push_back({"short_frame_with_ethernet_padding", with(base, [](Spec& s) {
                     s.options = {};
                     s.payload_len = 1;
                     s.pad_frame_to = 60;
                 }),
                 offsets_a(), Dir::ToClient});
    // Client frames off the wire: a bad checksum is never repaired.
    v.push_back({"corrupt_tcp_checksum_stays_corrupt_to_backup", with(base, [](Spec& s) {
                     s.tcp_csum = Spec::Csum::Corrupt;
                     s.payload_len = 33;
                 }),
                 offsets_a(), Dir::ToBackup});
    v.push_back({"both_checksums_corrupt_stay_corrupt_to_backup", with(base, [](Spec& s) {
                     s.ip_csum = Spec::Csum::Corrupt;
                     s.tcp_csum = Spec::Csum::Corrupt;
                     s.payload_len = 7;
                 }),
                 offsets_a(), Dir::ToBackup});
    v.push_back({"partial_checksum_on_the_wire_stays_wrong_to_backup", with(base, [](Spec& s) {
                     s.tcp_csum = Spec::Csum::Partial;
                     s.options = kTsSack;
                     s.sack = {{10, 20}};
                 }),
                 offsets_b(), Dir::ToBackup});
    // The backup's own packets: recomputed in full, whatever they carried.
    v.push_back({"partial_offload_checksum_recomputed_to_client", with(base, [](Spec& s) {
                     s.ethernet = false;
                     s.tcp_csum = Spec::Csum::Partial;
                     s.options = kTsSack;
                     s.sack = {{10, 20}};
                 }),
                 offsets_b(), Dir::ToClient});
    v.push_back({"wrong_local_ip_checksum_recomputed_to_client", with(base, [](Spec& s) {
                     s.ip_csum = Spec::Csum::Corrupt;
                 }),
                 offsets_b(), Dir::ToClient});
    v.push_back({"syn_keeps_ack_and_window", with(base, [](Spec& s) {
                     s.flags = flag::kSyn;
                     s.options = {Opt::Mss, Opt::Nop, Opt::Nop, Opt::Ts};
                     s.payload_len = 0;
                 }),
                 offsets_b(), Dir::ToBackup});
    v.push_back({"rst_without_ack_to_client", with(base, [](Spec& s) {
                     s.flags = flag::kRst;
                     s.payload_len = 0;
                 }),
                 offsets_b(), Dir::ToClient});
    Offsets no_ts = offsets_a();
    no_ts.timestamps = false;
    v.push_back({"timestamps_not_in_use_left_alone_to_client", base, no_ts, Dir::ToClient});
    v.push_back({"timestamps_not_in_use_left_alone_to_backup", base, no_ts, Dir::ToBackup});
    return v;
}

class Translate : public ::testing::TestWithParam<Case> {};

// Checks a rewritten frame against the independently built expectation.
// Where the input's checksums verified, or the rewrite recomputes them (the
// backup's own packets), the frames must be equal byte for byte and verify.
// A client frame with a bad checksum must equal the expectation everywhere
// but in the checksum fields, and be exactly as wrong as it came.
void expect_rewritten(const Built& in, const Residuals& before, const Built& want, Dir dir) {
    ASSERT_EQ(in.frame.size(), want.frame.size());
    const std::size_t l3 = in.packet.layout.l3;
    const std::size_t l4 = in.packet.layout.l4;
    if (dir == Dir::ToClient || before == Residuals{}) {
        for (std::size_t i = 0; i < want.frame.size(); ++i)
            EXPECT_EQ(int{in.frame[i]}, int{want.frame[i]}) << "byte " << i;
        EXPECT_TRUE(checksums_verify(in));
        return;
    }
    EXPECT_EQ(without_checksums(in.frame, l3, l4), without_checksums(want.frame, l3, l4));
    EXPECT_EQ(residuals(in), before);
    EXPECT_FALSE(checksums_verify(in));
}

TEST_P(Translate, MatchesIndependentlyBuiltFrame) {
    const Case& c = GetParam();
    Built in = build(c.spec);
    const Residuals before = residuals(in);
    const AddressMap map = lab_map();
    const RewriteResult r =
        c.dir == Dir::ToBackup
            ? translate_client_to_backup(writable(in.frame), in.packet, c.off, map)
            : translate_backup_to_client(writable(in.frame), in.packet, c.off, map);
    ASSERT_TRUE(r.ok()) << static_cast<int>(r.status);
    EXPECT_EQ(r.checksums_recomputed, c.dir == Dir::ToClient);

    const Spec want_spec = c.dir == Dir::ToBackup ? expect_client_to_backup(c.spec, c.off, map)
                                                  : expect_backup_to_client(c.spec, c.off, map);
    expect_rewritten(in, before, build(want_spec), c.dir);
}

INSTANTIATE_TEST_SUITE_P(Table, Translate, ::testing::ValuesIn(cases()),
                         [](const auto& test_info) { return test_info.param.name; });

TEST(Translate, NoMacRewriteKeepsMacs) {
    const Spec s = with(Spec{}, [](Spec& x) { x.options = kAlignedTs; });
    Built in = build(s);
    AddressMap map = lab_map();
    map.to_backup.macs.reset();
    ASSERT_TRUE(translate_client_to_backup(writable(in.frame), in.packet, offsets_a(), map).ok());
    const Built want = build(expect_client_to_backup(s, offsets_a(), map));
    EXPECT_EQ(in.frame, want.frame);
    EXPECT_EQ(in.frame[5], 0x0b);  // dst MAC untouched
    EXPECT_EQ(in.frame[11], 0x0c);  // src MAC untouched
}

// Forward with offsets, then forward again with the inverse offsets and the
// original addresses: the exact original bytes must come back, including
// checksums, which exercises two rounds of incremental updates.
TEST(Translate, InverseOffsetsRestoreOriginalBytes) {
    const Spec s = with(Spec{}, [](Spec& x) {
        x.options = kPackedOdd;
        x.sack = {{0xfffffff0u, 0x20u}};
        x.tsval = 1;
        x.tsecr = 0xffffffffu;
        x.payload_len = 77;
    });
    Built in = build(s);
    const Bytes original = in.frame;
    Offsets off = offsets_b();
    off.twin_client_shift = off.client_shift;  // keep windows invertible
    AddressMap map = lab_map();
    ASSERT_TRUE(translate_client_to_backup(writable(in.frame), in.packet, off, map).ok());
    EXPECT_NE(in.frame, original);

    Offsets inverse = off;
    inverse.d1 = -off.d1;
    inverse.d2 = -off.d2;
    inverse.dts = -off.dts;
    map.to_backup.src = sniffer::Endpoint{sniffer::Ipv4Addr{s.src_ip}, sniffer::Port{s.src_port}};
    map.to_backup.dst = sniffer::Endpoint{sniffer::Ipv4Addr{s.dst_ip}, sniffer::Port{s.dst_port}};
    map.to_backup.macs = MacRewrite{s.src_mac, s.dst_mac};
    const RewriteResult r = translate_client_to_backup(writable(in.frame), in.packet, inverse, map);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r.checksums_recomputed);
    EXPECT_EQ(in.frame, original);
}

// Random frames: every layout, odd and even payloads, values near the wrap.
TEST(Translate, RandomFramesMatchReference) {
    std::mt19937 rng(0x6d6967);
    const std::vector<std::vector<Opt>> layouts{
        {}, kAlignedTs, kTsSack, kPackedOdd, {Opt::Nop, Opt::Nop, Opt::Sack},
        {Opt::Ts, Opt::Nop, Opt::Nop}, {Opt::Sack, Opt::Ts}};
    auto near_wrap = [&rng]() -> std::uint32_t {
        const auto r = static_cast<std::uint32_t>(rng());
        return (rng() % 2) != 0 ? r : 0u - (r % 64);
    };
    for (int i = 0; i < 500; ++i) {
        Spec s;
        s.ethernet = rng() % 3 != 0;
        s.vlan = s.ethernet && rng() % 2 == 0;
        s.ip_option_words = rng() % 3;
        s.options = layouts[rng() % layouts.size()];
        s.seq = near_wrap();
        s.ack = near_wrap();
        s.flags = static_cast<std::uint8_t>(rng() % 2 == 0 ? flag::kAck : flag::kAck | flag::kFin);
        s.window = static_cast<std::uint16_t>(rng());
        s.tsval = near_wrap();
        s.tsecr = near_wrap();
        const std::size_t blocks = has_opt(s, Opt::Ts) ? 1 + rng() % 3 : 1 + rng() % 4;
        for (std::size_t b = 0; b < blocks; ++b) s.sack.emplace_back(near_wrap(), near_wrap());
        s.payload_len = rng() % 64;
        s.pad_frame_to = s.ethernet ? 60 : 0;
        if (rng() % 5 == 0) s.tcp_csum = Spec::Csum::Partial;
        if (rng() % 7 == 0) s.ip_csum = Spec::Csum::Corrupt;
        Offsets off;
        off.d1 = SeqDelta{near_wrap()};
        off.d2 = SeqDelta{near_wrap()};
        off.dts = SeqDelta{near_wrap()};
        off.client_shift = static_cast<std::uint8_t>(rng() % 15);
        off.primary_shift = static_cast<std::uint8_t>(rng() % 15);
        off.backup_shift = static_cast<std::uint8_t>(rng() % 15);
        off.twin_client_shift = static_cast<std::uint8_t>(rng() % 15);
        off.timestamps = rng() % 4 != 0;
        const bool to_backup = rng() % 2 == 0;

        Built in = build(s);
        const Residuals before = residuals(in);
        const AddressMap map = lab_map();
        const RewriteResult r =
            to_backup ? translate_client_to_backup(writable(in.frame), in.packet, off, map)
                      : translate_backup_to_client(writable(in.frame), in.packet, off, map);
        ASSERT_TRUE(r.ok()) << "iteration " << i;
        EXPECT_EQ(r.checksums_recomputed, !to_backup);
        const Built want = build(to_backup ? expect_client_to_backup(s, off, map)
                                           : expect_backup_to_client(s, off, map));
        SCOPED_TRACE("iteration " + std::to_string(i));
        expect_rewritten(in, before, want, to_backup ? Dir::ToBackup : Dir::ToClient);
        if (::testing::Test::HasFailure()) return;
    }
}

// ---- FrameEditor setters, one field at a time ----------------------------

struct SetterCase {
    std::string name;
    std::function<void(FrameEditor&)> apply;
    std::function<void(Spec&)> expect;
};

class Setter : public ::testing::TestWithParam<SetterCase> {};

TEST_P(Setter, ChangesExactlyOneFieldAndKeepsChecksumsExact) {
    const SetterCase& c = GetParam();
    const Spec s = with(Spec{}, [](Spec& x) {
        x.vlan = true;
        x.options = kPackedOdd;
        x.sack = {{100, 200}, {300, 400}};
        x.tsval = 0xaaaaaaaa;
        x.tsecr = 0x55555555;
        x.payload_len = 5;
    });
    Built in = build(s);
    FrameEditor ed(writable(in.frame), in.packet, ChecksumSource::Wire);
    ASSERT_TRUE(ed.ok());
    c.apply(ed);
    const RewriteResult r = ed.finish();
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r.checksums_recomputed);
    const Spec want = with(s, c.expect);
    EXPECT_EQ(in.frame, build(want).frame);
}

// The same field on a packet of this host's stack whose TCP checksum was
// left partial (offload): the result carries a complete, valid checksum.
TEST_P(Setter, LocalStackPartialChecksumBecomesComplete) {
    const SetterCase& c = GetParam();
    const Spec s = with(Spec{}, [](Spec& x) {
        x.ethernet = false;
        x.options = kPackedOdd;
        x.sack = {{100, 200}, {300, 400}};
        x.tsval = 0xaaaaaaaa;
        x.tsecr = 0x55555555;
        x.payload_len = 5;
        x.tcp_csum = Spec::Csum::Partial;
    });
    Built in = build(s);
    ASSERT_FALSE(checksums_verify(in));
    FrameEditor ed(writable(in.frame), in.packet, ChecksumSource::LocalStack);
    ASSERT_TRUE(ed.ok());
    c.apply(ed);
    const RewriteResult r = ed.finish();
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.checksums_recomputed);
    Spec want = with(s, c.expect);
    want.tcp_csum = Spec::Csum::Good;
    EXPECT_EQ(in.frame, build(want).frame);
    EXPECT_TRUE(checksums_verify(in));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, Setter,
    ::testing::Values(
        SetterCase{"macs",
                   [](FrameEditor& e) {
                       e.set_macs(MacRewrite{MacAddr{{1, 2, 3, 4, 5, 6}},
                                             MacAddr{{7, 8, 9, 10, 11, 12}}});
                   },
                   [](Spec& x) {
                       x.src_mac = MacAddr{{1, 2, 3, 4, 5, 6}};
                       x.dst_mac = MacAddr{{7, 8, 9, 10, 11, 12}};
                   }},
        SetterCase{"src_ip", [](FrameEditor& e) { e.set_src_ip(sniffer::Ipv4Addr{0xffffffffu}); },
                   [](Spec& x) { x.src_ip = 0xffffffffu; }},
        SetterCase{"dst_ip", [](FrameEditor& e) { e.set_dst_ip(sniffer::Ipv4Addr{0}); },
                   [](Spec& x) { x.dst_ip = 0; }},
        SetterCase{"src_port", [](FrameEditor& e) { e.set_src_port(sniffer::Port{65535}); },
                   [](Spec& x) { x.src_port = 65535; }},
        SetterCase{"dst_port", [](FrameEditor& e) { e.set_dst_port(sniffer::Port{1}); },
                   [](Spec& x) { x.dst_port = 1; }},
        SetterCase{"seq", [](FrameEditor& e) { e.set_seq(SeqNum{0xffffffffu}); },
                   [](Spec& x) { x.seq = 0xffffffffu; }},
        SetterCase{"ack", [](FrameEditor& e) { e.set_ack(SeqNum{0}); },
                   [](Spec& x) { x.ack = 0; }},
        SetterCase{"window", [](FrameEditor& e) { e.set_window(0xffff); },
                   [](Spec& x) { x.window = 0xffff; }},
        SetterCase{"tsval_odd_offset", [](FrameEditor& e) { EXPECT_TRUE(e.set_tsval(TsVal{1})); },
                   [](Spec& x) { x.tsval = 1; }},
        SetterCase{"tsecr_odd_offset",
                   [](FrameEditor& e) { EXPECT_TRUE(e.set_tsecr(TsVal{0xfffffffeu})); },
                   [](Spec& x) { x.tsecr = 0xfffffffeu; }},
        SetterCase{"sack_block_1",
                   [](FrameEditor& e) {
                       EXPECT_TRUE(e.set_sack_block(1, SackBlock{SeqNum{0xfffffff0u}, SeqNum{5}}));
                   },
                   [](Spec& x) { x.sack[1] = {0xfffffff0u, 5}; }},
        SetterCase{"sack_block_out_of_range",
                   [](FrameEditor& e) {
                       EXPECT_FALSE(e.set_sack_block(2, SackBlock{SeqNum{1}, SeqNum{2}}));
                   },
                   [](Spec&) {}}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(FrameEditor, ReadersReturnTheFrameValues) {
    const Spec s = with(Spec{}, [](Spec& x) {
        x.options = kPackedOdd;
        x.sack = {{0x11111111u, 0x22222222u}};
        x.tsval = 0x01020304u;
        x.tsecr = 0xfffefdfcu;
        x.seq = 0xdeadbeefu;
        x.ack = 0x0badf00du;
        x.window = 4242;
    });
    Built in = build(s);
    const FrameEditor ed(writable(in.frame), in.packet, ChecksumSource::Wire);
    ASSERT_TRUE(ed.ok());
    EXPECT_TRUE(ed.has_ethernet());
    EXPECT_EQ(ed.src_ip().value, s.src_ip);
    EXPECT_EQ(ed.dst_ip().value, s.dst_ip);
    EXPECT_EQ(ed.src_port().value, s.src_port);
    EXPECT_EQ(ed.dst_port().value, s.dst_port);
    EXPECT_EQ(ed.seq().raw(), s.seq);
    EXPECT_EQ(ed.ack().raw(), s.ack);
    EXPECT_EQ(ed.window(), s.window);
    EXPECT_EQ(ed.flags(), s.flags);
    EXPECT_TRUE(ed.has_timestamps());
    EXPECT_EQ(ed.tsval().raw(), s.tsval);
    EXPECT_EQ(ed.tsecr().raw(), s.tsecr);
    ASSERT_EQ(ed.sack_count(), 1u);
    EXPECT_EQ(ed.sack_block(0).left.raw(), 0x11111111u);
    EXPECT_EQ(ed.sack_block(0).right.raw(), 0x22222222u);
}

TEST(FrameEditor, MissingOptionsAreReportedNotWritten) {
    Built in = build(Spec{});
    const Bytes before = in.frame;
    FrameEditor ed(writable(in.frame), in.packet, ChecksumSource::Wire);
    ASSERT_TRUE(ed.ok());
    EXPECT_FALSE(ed.set_tsval(TsVal{1}));
    EXPECT_FALSE(ed.set_tsecr(TsVal{1}));
    EXPECT_FALSE(ed.set_sack_block(0, SackBlock{}));
    ASSERT_TRUE(ed.finish().ok());
    EXPECT_EQ(in.frame, before);
}

// ---- rejected frames are left untouched ----------------------------------

struct RejectCase {
    std::string name;
    std::function<void(Built&)> damage;
    RewriteStatus status;
};

class Reject : public ::testing::TestWithParam<RejectCase> {};

TEST_P(Reject, StatusAndFrameUnchanged) {
    const RejectCase& c = GetParam();
    Built in = build(with(Spec{}, [](Spec& x) {
        x.options = kTsSack;
        x.sack = {{1, 2}};
        x.payload_len = 10;
    }));
    c.damage(in);
    const Bytes before = in.frame;
    const RewriteResult r =
        translate_client_to_backup(writable(in.frame), in.packet, offsets_b(), lab_map());
    EXPECT_EQ(r.status, c.status);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(in.frame, before);
    const RewriteResult r2 =
        translate_backup_to_client(writable(in.frame), in.packet, offsets_b(), lab_map());
    EXPECT_EQ(r2.status, c.status);
    EXPECT_EQ(in.frame, before);

    // The editor refuses every write too, and reads as zero, whatever the
    // checksum source.
    for (const ChecksumSource source : {ChecksumSource::Wire, ChecksumSource::LocalStack}) {
        FrameEditor ed(writable(in.frame), in.packet, source);
        EXPECT_EQ(ed.status(), c.status);
        ed.set_seq(SeqNum{1});
        ed.set_src_ip(sniffer::Ipv4Addr{1});
        ed.set_macs(MacRewrite{});
        EXPECT_FALSE(ed.set_tsval(TsVal{1}));
        EXPECT_FALSE(ed.set_sack_block(0, SackBlock{}));
        EXPECT_EQ(ed.seq().raw(), 0u);
        const RewriteResult r3 = ed.finish();
        EXPECT_EQ(r3.status, c.status);
        EXPECT_FALSE(r3.checksums_recomputed);
        EXPECT_EQ(in.frame, before);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Table, Reject,
    ::testing::Values(
        RejectCase{"not_tcp_kind", [](Built& b) { b.packet.kind = sniffer::PacketKind::Icmp; },
                   RewriteStatus::NotTcp},
        RejectCase{"not_tcp_protocol_byte", [](Built& b) { b.frame[14 + 9] = 17; },
                   RewriteStatus::NotTcp},
        RejectCase{"cut_one_byte_short", [](Built& b) { b.frame.pop_back(); },
                   RewriteStatus::Truncated},
        RejectCase{"cut_inside_ip_header", [](Built& b) { b.frame.resize(14 + 19); },
                   RewriteStatus::Truncated},
        RejectCase{"capture_flag", [](Built& b) { b.packet.truncated_by_capture = true; },
                   RewriteStatus::Truncated},
        RejectCase{"more_fragments", [](Built& b) { b.frame[14 + 6] |= 0x20; },
                   RewriteStatus::Fragmented},
        RejectCase{"fragment_offset", [](Built& b) { b.frame[14 + 7] = 1; },
                   RewriteStatus::Fragmented},
        RejectCase{"l4_off_by_four", [](Built& b) { b.packet.layout.l4 += 4; },
                   RewriteStatus::BadLayout},
        RejectCase{"l3_wrong", [](Built& b) { b.packet.layout.l3 = 0; },
                   RewriteStatus::BadLayout},
        RejectCase{"ts_offset_off_by_one", [](Built& b) { b.packet.tcp.options.ts_offset += 1; },
                   RewriteStatus::BadLayout},
        RejectCase{"ts_offset_past_header",
                   [](Built& b) { b.packet.tcp.options.ts_offset = 60000; },
                   RewriteStatus::BadLayout},
        RejectCase{"sack_count_disagrees", [](Built& b) { b.packet.tcp.options.sack_count = 2; },
                   RewriteStatus::BadLayout},
        RejectCase{"sack_count_above_four",
                   [](Built& b) { b.packet.tcp.options.sack_count = 5; },
                   RewriteStatus::BadLayout},
        RejectCase{"tcp_data_offset_too_small", [](Built& b) { b.frame[34 + 12] = 0x40; },
                   RewriteStatus::BadLayout},
        RejectCase{"ip_version_6", [](Built& b) { b.frame[14] = 0x65; },
                   RewriteStatus::BadLayout},
        RejectCase{"ethernet_claimed_without_room",
                   [](Built& b) {
                       b.frame.erase(b.frame.begin(), b.frame.begin() + 14);
                       b.packet.layout.l3 = 0;
                       b.packet.layout.l4 = static_cast<std::uint16_t>(b.packet.layout.l4 - 14);
                       b.packet.tcp.options.ts_offset =
                           static_cast<std::uint16_t>(b.packet.tcp.options.ts_offset - 14);
                       b.packet.tcp.options.sack_offset =
                           static_cast<std::uint16_t>(b.packet.tcp.options.sack_offset - 14);
                   },
                   RewriteStatus::BadLayout},
        RejectCase{"empty_frame", [](Built& b) { b.frame.clear(); }, RewriteStatus::Truncated}),
    [](const auto& test_info) { return test_info.param.name; });

// ---- checksums by source, through the project's own checksum code -------

bool tcp_verifies(const Built& b) {
    const std::span<const std::byte> f = std::as_bytes(std::span(b.frame));
    const std::size_t l3 = b.packet.layout.l3;
    const std::size_t l4 = b.packet.layout.l4;
    const std::size_t total = peek16(b.frame, l3 + 2);
    return sniffer::tcp_checksum_ok(sniffer::Ipv4Addr{sniffer::wire::load_be32(f, l3 + 12)},
                                    sniffer::Ipv4Addr{sniffer::wire::load_be32(f, l3 + 16)},
                                    f.subspan(l4, l3 + total - l4));
}

TEST(WireChecksum, CorruptClientSegmentIsRewrittenButStaysCorrupt) {
    const Spec good = with(Spec{}, [](Spec& x) {
        x.options = kTsSack;
        x.sack = {{0xfffffff0u, 0x10u}};
        x.tsval = 7;
        x.tsecr = 0xfffffff9u;
        x.payload_len = 100;
    });
    const Spec bad = with(good, [](Spec& x) { x.tcp_csum = Spec::Csum::Corrupt; });
    const AddressMap map = lab_map();
    Built valid = build(good);
    Built corrupt = build(bad);
    ASSERT_TRUE(tcp_verifies(valid));
    ASSERT_FALSE(tcp_verifies(corrupt));

    ASSERT_TRUE(translate_client_to_backup(writable(valid.frame), valid.packet, offsets_b(), map).ok());
    ASSERT_TRUE(
        translate_client_to_backup(writable(corrupt.frame), corrupt.packet, offsets_b(), map).ok());
    EXPECT_TRUE(tcp_verifies(valid));
    EXPECT_FALSE(tcp_verifies(corrupt));
    // Every field but the checksum is rewritten exactly as in the valid
    // segment, and that one is what the backup must see.
    EXPECT_EQ(valid.frame, build(expect_client_to_backup(good, offsets_b(), map)).frame);
    const std::size_t l4 = corrupt.packet.layout.l4;
    Bytes corrupt_but_checksum = corrupt.frame;
    corrupt_but_checksum[l4 + 16] = valid.frame[l4 + 16];
    corrupt_but_checksum[l4 + 17] = valid.frame[l4 + 17];
    EXPECT_EQ(corrupt_but_checksum, valid.frame);
    EXPECT_NE(corrupt.frame, valid.frame);
}

TEST(WireChecksum, NothingChangedMeansNothingWritten) {
    // No verification, no recomputation: an editor that changes no field
    // leaves even a corrupt frame's bytes exactly as they came.
    Built in = build(with(Spec{}, [](Spec& x) {
        x.options = kAlignedTs;
        x.payload_len = 9;
        x.ip_csum = Spec::Csum::Corrupt;
        x.tcp_csum = Spec::Csum::Corrupt;
    }));
    const Bytes before = in.frame;
    FrameEditor ed(writable(in.frame), in.packet, ChecksumSource::Wire);
    ASSERT_TRUE(ed.ok());
    const RewriteResult r = ed.finish();
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r.checksums_recomputed);
    EXPECT_EQ(in.frame, before);
}

TEST(LocalStackChecksum, PartialChecksumOfTheBackupBecomesValid) {
    const Spec s = with(Spec{}, [](Spec& x) {
        x.ethernet = false;
        x.options = kAlignedTs;
        x.payload_len = 1448;
        x.tcp_csum = Spec::Csum::Partial;
    });
    Built in = build(s);
    ASSERT_FALSE(tcp_verifies(in));
    const RewriteResult r =
        translate_backup_to_client(writable(in.frame), in.packet, offsets_a(), lab_map());
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.checksums_recomputed);
    EXPECT_TRUE(tcp_verifies(in));
    EXPECT_EQ(in.frame, build(expect_backup_to_client(s, offsets_a(), lab_map())).frame);
}

// ---- backup -> client in one pass, from the engine's parse ----------------

struct OnePassCase {
    std::string name;
    Spec spec;  // a bare IP packet (ethernet = false)
    std::optional<std::uint16_t> vlan;
};

class OnePass : public ::testing::TestWithParam<OnePassCase> {};

TEST_P(OnePass, MatchesTheTwoStepPathAndTheIndependentFrame) {
    const OnePassCase& c = GetParam();
    const Built ip = build(c.spec);
    const std::span<const std::byte> ip_bytes = std::as_bytes(std::span(ip.frame));
    sniffer::Packet p;  // as FailoverEngine::on_backup_packet parses it
    ASSERT_FALSE(sniffer::parse(ip_bytes, static_cast<std::uint32_t>(ip_bytes.size()),
                                sniffer::LinkType::RawIp, p));
    const AddressMap map = lab_map();
    const Offsets off = offsets_b();
    Bytes out(2000, 0xaa);
    const FrameOut r =
        translate_backup_to_client_frame(ip_bytes, p, c.vlan, off, map, writable(out));
    ASSERT_TRUE(r.ok()) << static_cast<int>(r.result.status);
    EXPECT_TRUE(r.result.checksums_recomputed);
    const std::size_t eth_len = c.vlan ? 18 : 14;
    ASSERT_EQ(r.length, eth_len + ip.frame.size());
    EXPECT_EQ(r.l3, eth_len);
    EXPECT_EQ(r.l4, eth_len + p.layout.l4);
    EXPECT_EQ(out[r.length], 0xaa);  // nothing written past the frame
    out.resize(r.length);

    // Independently built: the same segment, translated, with P's Ethernet
    // header (and the client's tag) in front.
    Spec want = expect_backup_to_client(c.spec, off, map);
    want.ethernet = true;
    want.vlan = c.vlan.has_value();
    want.src_mac = map.to_client.macs->src;
    want.dst_mac = map.to_client.macs->dst;
    EXPECT_EQ(out, build(want).frame);

    // The engine's present path: Ethernet written, packet copied, parsed
    // again as Ethernet, rewritten in place.
    Bytes two_step(eth_len);
    const auto& macs = *map.to_client.macs;
    std::copy(macs.dst.bytes.begin(), macs.dst.bytes.end(), two_step.begin());
    std::copy(macs.src.bytes.begin(), macs.src.bytes.end(), two_step.begin() + 6);
    if (c.vlan) {
        poke16(two_step, 12, 0x8100);
        poke16(two_step, 14, *c.vlan);
    }
    poke16(two_step, eth_len - 2, 0x0800);
    two_step.insert(two_step.end(), ip.frame.begin(), ip.frame.end());
    sniffer::Packet fp;
    ASSERT_FALSE(sniffer::parse(std::as_bytes(std::span(two_step)),
                                static_cast<std::uint32_t>(two_step.size()),
                                sniffer::LinkType::Ethernet, fp));
    ASSERT_TRUE(translate_backup_to_client(writable(two_step), fp, off, map).ok());
    EXPECT_EQ(out, two_step);
}

INSTANTIATE_TEST_SUITE_P(
    Table, OnePass,
    ::testing::Values(
        OnePassCase{"ts_sack_untagged",
                    with(Spec{}, [](Spec& s) {
                        s.ethernet = false;
                        s.options = kTsSack;
                        s.sack = {{0xffffff00u, 0x10u}, {5, 6}};
                        s.payload_len = 300;
                    }),
                    std::nullopt},
        OnePassCase{"packed_odd_ip_options_tagged",
                    with(Spec{}, [](Spec& s) {
                        s.ethernet = false;
                        s.ip_option_words = 2;
                        s.options = kPackedOdd;
                        s.sack = {{1, 2}};
                        s.payload_len = 1;
                    }),
                    std::uint16_t{0x2064}},
        OnePassCase{"partial_checksum_is_completed",
                    with(Spec{}, [](Spec& s) {
                        s.ethernet = false;
                        s.options = kAlignedTs;
                        s.payload_len = 1448;
                        s.tcp_csum = Spec::Csum::Partial;
                    }),
                    std::uint16_t{0x2064}},
        OnePassCase{"syn_ack_no_options",
                    with(Spec{}, [](Spec& s) {
                        s.ethernet = false;
                        s.flags = flag::kSyn | flag::kAck;
                        s.options = {Opt::Mss};
                    }),
                    std::nullopt}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(OnePass, RefusesAndCountsNothingWhenItCannot) {
    const Built ip = build(with(Spec{}, [](Spec& s) {
        s.ethernet = false;
        s.options = kAlignedTs;
        s.payload_len = 40;
    }));
    const std::span<const std::byte> ip_bytes = std::as_bytes(std::span(ip.frame));
    sniffer::Packet p;
    ASSERT_FALSE(sniffer::parse(ip_bytes, static_cast<std::uint32_t>(ip_bytes.size()),
                                sniffer::LinkType::RawIp, p));
    const AddressMap map = lab_map();
    const Bytes original = ip.frame;

    // One byte short of Ethernet + packet.
    Bytes small(14 + ip.frame.size() - 1, 0xaa);
    FrameOut r = translate_backup_to_client_frame(ip_bytes, p, std::nullopt, offsets_a(), map,
                                                  writable(small));
    EXPECT_EQ(r.result.status, RewriteStatus::NoRoom);
    EXPECT_EQ(r.length, 0u);
    EXPECT_EQ(small, Bytes(small.size(), 0xaa));

    Bytes out(2000);
    AddressMap no_macs = map;
    no_macs.to_client.macs.reset();
    r = translate_backup_to_client_frame(ip_bytes, p, std::nullopt, offsets_a(), no_macs,
                                         writable(out));
    EXPECT_EQ(r.result.status, RewriteStatus::NoMacs);
    EXPECT_EQ(r.length, 0u);

    // A Packet parsed with Ethernet does not describe a bare IP packet.
    sniffer::Packet with_eth = p;
    with_eth.has_ethernet = true;
    r = translate_backup_to_client_frame(ip_bytes, with_eth, std::nullopt, offsets_a(), map,
                                         writable(out));
    EXPECT_EQ(r.result.status, RewriteStatus::BadLayout);
    EXPECT_EQ(r.length, 0u);

    // A Packet of another packet: its offsets are checked against the bytes.
    sniffer::Packet stale = p;
    stale.tcp.options.ts_offset = static_cast<std::uint16_t>(stale.tcp.options.ts_offset + 1);
    r = translate_backup_to_client_frame(ip_bytes, stale, std::nullopt, offsets_a(), map,
                                         writable(out));
    EXPECT_EQ(r.result.status, RewriteStatus::BadLayout);
    EXPECT_EQ(r.length, 0u);

    EXPECT_EQ(ip.frame, original);  // the input is never written
}

}  // namespace
}  // namespace migware::rewrite
