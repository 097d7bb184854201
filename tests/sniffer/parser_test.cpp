// Parser tests, katran-style: each case is a record (description, input
// builder, expected verdict and fields). Frames are built field by field in
// network order by the small builder below, never copied from the parser's
// own constants, so a wrong offset in either shows up as a mismatch.

#include "sniffer/parser.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace migware::sniffer {

// gtest printers, so a failed EXPECT_EQ names the reason instead of a byte.
void PrintTo(DropReason r, std::ostream* os) { *os << name_of(r); }
void PrintTo(PacketKind k, std::ostream* os) { *os << name_of(k); }
void PrintTo(LinkType l, std::ostream* os) { *os << "link#" << static_cast<int>(l); }

namespace {

using Bytes = std::vector<std::uint8_t>;
using Verdict = std::optional<DropReason>;

// ---------------------------------------------------------------------------
// Test-local frame builder.
// ---------------------------------------------------------------------------

class Writer {
public:
    Writer& u8(std::uint32_t v) {
        b_.push_back(static_cast<std::uint8_t>(v));
        return *this;
    }
    Writer& be16(std::uint32_t v) { return u8(v >> 8).u8(v); }
    Writer& be32(std::uint32_t v) { return be16(v >> 16).be16(v); }
    Writer& le32(std::uint32_t v) { return u8(v).u8(v >> 8).u8(v >> 16).u8(v >> 24); }
    Writer& mac(const MacAddr& m) {
        b_.insert(b_.end(), m.bytes.begin(), m.bytes.end());
        return *this;
    }
    Writer& bytes(const Bytes& v) {
        b_.insert(b_.end(), v.begin(), v.end());
        return *this;
    }
    Writer& zeros(std::size_t n) {
        b_.insert(b_.end(), n, 0);
        return *this;
    }
    Bytes take() { return std::move(b_); }

private:
    Bytes b_;
};

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// RFC 1071, computed independently of the parser.
std::uint16_t inet_checksum(const std::uint8_t* data, std::size_t len) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < len; i += 2) {
        std::uint32_t word = std::uint32_t{data[i]} << 8;
        if (i + 1 < len) word |= data[i + 1];
        sum += word;
    }
    while (sum >> 16) sum = (sum & 0xffffu) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffffu);
}

constexpr MacAddr kSrcMac{{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}};
constexpr MacAddr kDstMac{{0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0xff}};
constexpr std::uint32_t kClientIp = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t kServerIp = 0xc0a801c8;  // 192.168.1.200

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherArp = 0x0806;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint16_t kTpid8021Q = 0x8100;
constexpr std::uint16_t kTpid8021AD = 0x88a8;
constexpr std::uint16_t kTpidQinQOld = 0x9100;

struct VlanTag {
    std::uint16_t tpid = kTpid8021Q;
    std::uint16_t tci = 0;
};

struct EthSpec {
    MacAddr dst = kDstMac;
    MacAddr src = kSrcMac;
    std::vector<VlanTag> tags;
    std::uint16_t ethertype = kEtherIpv4;
    std::size_t pad_to = 0;  // Ethernet minimum-frame padding (trailer)
};

Bytes ethernet(const EthSpec& e, const Bytes& l3) {
    Writer w;
    w.mac(e.dst).mac(e.src);
    for (const auto& t : e.tags) w.be16(t.tpid).be16(t.tci);
    w.be16(e.ethertype).bytes(l3);
    Bytes out = w.take();
    if (out.size() < e.pad_to) out.resize(e.pad_to, 0);
    return out;
}

struct Ipv4Spec {
    std::uint8_t version = 4;
    std::optional<std::uint8_t> ihl;  // words; default from options
    std::uint8_t tos = 0xb8;
    std::optional<std::uint16_t> total_length;  // default: header + l4
    std::uint16_t id = 0xabcd;
    bool df = true;
    bool mf = false;
    std::uint16_t frag_offset_units = 0;  // 8-byte units
    std::uint8_t ttl = 63;
    std::uint8_t protocol = 6;
    std::optional<std::uint16_t> checksum;  // default: correct
    std::uint32_t src = kClientIp;
    std::uint32_t dst = kServerIp;
    Bytes options;  // must be a multiple of 4 for a consistent IHL
};

Bytes ipv4(const Ipv4Spec& s, const Bytes& l4) {
    const std::size_t hlen = 20 + s.options.size();
    const std::uint8_t ihl = s.ihl.value_or(static_cast<std::uint8_t>(hlen / 4));
    const std::uint16_t total =
        s.total_length.value_or(static_cast<std::uint16_t>(hlen + l4.size()));
    std::uint32_t frag = s.frag_offset_units & 0x1fffu;
    if (s.df) frag |= 0x4000u;
    if (s.mf) frag |= 0x2000u;
    Writer w;
    w.u8((std::uint32_t{s.version} << 4) | (ihl & 0x0fu))
        .u8(s.tos)
        .be16(total)
        .be16(s.id)
        .be16(frag)
        .u8(s.ttl)
        .u8(s.protocol)
        .be16(0)
        .be32(s.src)
        .be32(s.dst)
        .bytes(s.options);
    Bytes h = w.take();
    const std::uint16_t sum = s.checksum.value_or(inet_checksum(h.data(), h.size()));
    h[10] = static_cast<std::uint8_t>(sum >> 8);
    h[11] = static_cast<std::uint8_t>(sum);
    h.insert(h.end(), l4.begin(), l4.end());
    return h;
}

struct TcpSpec {
    std::uint16_t sport = 40000;
    std::uint16_t dport = 8080;
    std::uint32_t seq = 0xfffffff0;
    std::uint32_t ack = 0x01020304;
    std::uint8_t flags = tcp_flag::kSyn | tcp_flag::kAck;
    std::uint16_t window = 0xfedc;
    std::uint16_t checksum = 0xbeef;  // the parser does not verify it
    std::uint16_t urgent = 0x0102;
    Bytes options;                           // padded with EOL to 4 bytes
    std::optional<std::uint8_t> data_offset;  // words; default from options
    Bytes payload;
};

Bytes tcp(const TcpSpec& s) {
    Bytes opts = s.options;
    while (opts.size() % 4 != 0) opts.push_back(0);
    const std::uint8_t doff = s.data_offset.value_or(static_cast<std::uint8_t>(5 + opts.size() / 4));
    Writer w;
    w.be16(s.sport)
        .be16(s.dport)
        .be32(s.seq)
        .be32(s.ack)
        .u8(std::uint32_t{doff} << 4)
        .u8(s.flags)
        .be16(s.window)
        .be16(s.checksum)
        .be16(s.urgent)
        .bytes(opts)
        .bytes(s.payload);
    return w.take();
}

Bytes icmp(std::uint8_t type, std::uint8_t code, std::uint16_t id, std::uint16_t seq,
           const Bytes& payload) {
    Writer w;
    w.u8(type).u8(code).be16(0).be16(id).be16(seq).bytes(payload);
    Bytes b = w.take();
    const std::uint16_t sum = inet_checksum(b.data(), b.size());
    b[2] = static_cast<std::uint8_t>(sum >> 8);
    b[3] = static_cast<std::uint8_t>(sum);
    return b;
}

Bytes udp(std::uint16_t sport, std::uint16_t dport, const Bytes& payload) {
    Writer w;
    w.be16(sport).be16(dport).be16(static_cast<std::uint32_t>(8 + payload.size())).be16(0).bytes(
        payload);
    return w.take();
}

struct ArpSpec {
    std::uint16_t htype = 1;
    std::uint16_t ptype = kEtherIpv4;
    std::uint8_t hlen = 6;
    std::uint8_t plen = 4;
    std::uint16_t op = 2;
    MacAddr sender_mac = kSrcMac;
    std::uint32_t sender_ip = kClientIp;
    MacAddr target_mac = kDstMac;
    std::uint32_t target_ip = kServerIp;
};

Bytes arp(const ArpSpec& a) {
    Writer w;
    w.be16(a.htype).be16(a.ptype).u8(a.hlen).u8(a.plen).be16(a.op);
    w.mac(a.sender_mac).be32(a.sender_ip).mac(a.target_mac).be32(a.target_ip);
    return w.take();
}

// Linux cooked v1: pkttype, ARPHRD, addr len, 8-byte addr, protocol.
Bytes sll(std::uint16_t protocol, const Bytes& l3, std::uint16_t arphrd = 1,
          std::uint16_t alen = 6, MacAddr addr = kSrcMac) {
    Writer w;
    w.be16(0).be16(arphrd).be16(alen).mac(addr).be16(0).be16(protocol).bytes(l3);
    return w.take();
}

// Linux cooked v2: protocol, reserved, ifindex, ARPHRD, pkttype, addr len, addr.
Bytes sll2(std::uint16_t protocol, const Bytes& l3, std::uint16_t arphrd = 1,
           std::uint8_t alen = 6, MacAddr addr = kSrcMac) {
    Writer w;
    w.be16(protocol).be16(0).be32(3).be16(arphrd).u8(4).u8(alen).mac(addr).be16(0).bytes(l3);
    return w.take();
}

Bytes null_link(std::uint32_t family, bool network_order, const Bytes& l3) {
    Writer w;
    if (network_order)
        w.be32(family);
    else
        w.le32(family);
    w.bytes(l3);
    return w.take();
}

// TCP option encoders.
namespace opt {
Bytes mss(std::uint16_t v) { return Writer{}.u8(2).u8(4).be16(v).take(); }
Bytes ws(std::uint8_t shift) { return Bytes{3, 3, shift}; }
Bytes sack_perm() { return Bytes{4, 2}; }
Bytes ts(std::uint32_t val, std::uint32_t ecr) {
    return Writer{}.u8(8).u8(10).be32(val).be32(ecr).take();
}
Bytes sack(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& blocks) {
    Writer w;
    w.u8(5).u8(static_cast<std::uint32_t>(2 + 8 * blocks.size()));
    for (auto [l, r] : blocks) w.be32(l).be32(r);
    return w.take();
}
Bytes nop(std::size_t n = 1) { return Bytes(n, 1); }
Bytes eol() { return Bytes{0}; }
}  // namespace opt

// The canonical Linux SYN option block: MSS, SACK-permitted, TS, NOP, WS.
// Offsets (from the frame start, Ethernet + 20-byte IPv4 + TCP at 34):
//   MSS kind 54, value 56 | SACKP 58 | TS kind 60, TSval 62 | NOP 70 | WS kind 71, shift 73.
Bytes linux_syn_options() {
    return cat({opt::mss(1460), opt::sack_perm(), opt::ts(0x11223344, 0x55667788), opt::nop(),
                opt::ws(7)});
}

const Bytes kPayload10{'m', 'i', 'g', 'w', 'a', 'r', 'e', '!', '\r', '\n'};

TcpSpec full_tcp() {
    TcpSpec t;
    t.options = linux_syn_options();
    t.payload = kPayload10;
    return t;
}

// Ethernet / IPv4 / TCP with options / 10 payload bytes = 84 bytes.
Bytes tcp_frame(const TcpSpec& t = full_tcp(), const Ipv4Spec& ip = {}, const EthSpec& e = {}) {
    return ethernet(e, ipv4(ip, tcp(t)));
}

Bytes tcp_with_options(const Bytes& options) {
    TcpSpec t;
    t.options = options;
    return tcp_frame(t);
}

Bytes icmp_echo_frame() {
    Ipv4Spec ip;
    ip.protocol = 1;
    return ethernet({}, ipv4(ip, icmp(8, 0, 0x1234, 0x0007, Bytes{1, 2, 3, 4, 5, 6, 7, 8})));
}

Bytes arp_frame() {
    EthSpec e;
    e.ethertype = kEtherArp;
    return ethernet(e, arp({}));
}

Bytes vlan_tcp_frame() {
    EthSpec e;
    e.tags = {{kTpid8021Q, 0x6064}};  // PCP 3, VID 100
    return tcp_frame(full_tcp(), {}, e);
}

// ---------------------------------------------------------------------------
// Running the parser. Every input is copied into a heap block of exactly its
// size, so ASan flags any read one byte past the captured frame.
// ---------------------------------------------------------------------------

struct Parsed {
    Verdict verdict;
    Packet packet;
};

Parsed run(const std::uint8_t* data, std::size_t n, std::uint32_t wire_length, LinkType link) {
    std::unique_ptr<std::byte[]> exact(new std::byte[n == 0 ? 1 : n]);
    if (n != 0) std::memcpy(exact.get(), data, n);  // data may be null when n == 0
    Parsed r;
    r.verdict = parse(std::span<const std::byte>(exact.get(), n), wire_length, link, r.packet);
    return r;
}

Parsed run(const Bytes& b, LinkType link = LinkType::Ethernet,
           std::optional<std::uint32_t> wire_length = std::nullopt) {
    return run(b.data(), b.size(), wire_length.value_or(static_cast<std::uint32_t>(b.size())),
               link);
}

// ^[a-z][a-z0-9]*(_[a-z0-9]+)*$
bool is_snake_case(std::string_view s) {
    if (s.empty() || s.front() < 'a' || s.front() > 'z' || s.back() == '_') return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok || (c == '_' && s[i - 1] == '_')) return false;
    }
    return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::uint32_t be32_in(const Bytes& b, std::size_t off) {
    return (std::uint32_t{b[off]} << 24) | (std::uint32_t{b[off + 1]} << 16) |
           (std::uint32_t{b[off + 2]} << 8) | b[off + 3];
}
std::uint16_t be16_in(const Bytes& b, std::size_t off) {
    return static_cast<std::uint16_t>((b[off] << 8) | b[off + 1]);
}

// ---------------------------------------------------------------------------
// Builder self-check: the checksum and layout match a well-known header.
// ---------------------------------------------------------------------------

TEST(FrameBuilder, Ipv4HeaderMatchesWellKnownExample) {
    // The classic example header (UDP, 192.168.0.1 -> 192.168.0.199), checksum 0xb861.
    const Bytes expected{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                         0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    Ipv4Spec s;
    s.tos = 0;
    s.total_length = 0x73;
    s.id = 0;
    s.ttl = 0x40;
    s.protocol = 0x11;
    s.src = 0xc0a80001;
    s.dst = 0xc0a800c7;
    EXPECT_EQ(ipv4(s, {}), expected);
}

// ---------------------------------------------------------------------------
// Round trip: every field of every layer, decoded exactly.
// ---------------------------------------------------------------------------

TEST(ParserRoundTrip, EthernetIpv4TcpEveryField) {
    const Bytes f = tcp_frame();
    ASSERT_EQ(f.size(), 84u);
    const auto [verdict, p] = run(f);
    ASSERT_EQ(verdict, std::nullopt);
    EXPECT_EQ(p.kind, PacketKind::Tcp);
    EXPECT_TRUE(p.has_ethernet);
    EXPECT_FALSE(p.truncated_by_capture);

    EXPECT_EQ(p.eth.dst, kDstMac);
    EXPECT_EQ(p.eth.src, kSrcMac);
    EXPECT_EQ(p.eth.vlan, std::nullopt);
    EXPECT_EQ(p.eth.ethertype, 0x0800);

    EXPECT_EQ(p.ip.src, Ipv4Addr{kClientIp});
    EXPECT_EQ(p.ip.dst, Ipv4Addr{kServerIp});
    EXPECT_EQ(p.ip.protocol, 6);
    EXPECT_EQ(p.ip.ttl, 63);
    EXPECT_EQ(p.ip.tos, 0xb8);
    EXPECT_EQ(p.ip.id, 0xabcd);
    EXPECT_EQ(p.ip.total_length, 70);
    EXPECT_EQ(p.ip.header_length, 20);
    EXPECT_FALSE(p.ip.has_options);
    EXPECT_TRUE(p.ip.dont_fragment);
    EXPECT_FALSE(p.ip.more_fragments);
    EXPECT_EQ(p.ip.fragment_offset, 0);
    EXPECT_FALSE(p.ip.is_fragment());

    EXPECT_EQ(p.tcp.src_port, Port{40000});
    EXPECT_EQ(p.tcp.dst_port, Port{8080});
    EXPECT_EQ(p.tcp.seq, SeqNum{0xfffffff0});
    EXPECT_EQ(p.tcp.ack, SeqNum{0x01020304});
    EXPECT_EQ(p.tcp.flags, tcp_flag::kSyn | tcp_flag::kAck);
    EXPECT_TRUE(p.tcp.has(tcp_flag::kSyn));
    EXPECT_TRUE(p.tcp.has(tcp_flag::kAck));
    EXPECT_FALSE(p.tcp.has(tcp_flag::kFin));
    EXPECT_FALSE(p.tcp.has(tcp_flag::kRst));
    EXPECT_EQ(p.tcp.window, 0xfedc);
    EXPECT_EQ(p.tcp.checksum, 0xbeef);
    EXPECT_EQ(p.tcp.urgent, 0x0102);
    EXPECT_EQ(p.tcp.header_length, 40);

    const TcpOptions& o = p.tcp.options;
    EXPECT_EQ(o.mss, std::optional<std::uint16_t>{1460});
    EXPECT_EQ(o.wscale, std::optional<std::uint8_t>{7});
    EXPECT_TRUE(o.sack_permitted);
    EXPECT_TRUE(o.has_timestamps);
    EXPECT_EQ(o.tsval, 0x11223344u);
    EXPECT_EQ(o.tsecr, 0x55667788u);
    EXPECT_EQ(o.sack_count, 0);
    EXPECT_EQ(o.unknown_count, 0);
    EXPECT_EQ(o.mss_offset, 56);
    EXPECT_EQ(o.wscale_offset, 73);
    EXPECT_EQ(o.ts_offset, 62);
    EXPECT_EQ(o.sack_offset, 0);
    // The offsets point at the bytes, not just at plausible numbers.
    EXPECT_EQ(be16_in(f, o.mss_offset), 1460);
    EXPECT_EQ(f[o.wscale_offset], 7);
    EXPECT_EQ(be32_in(f, o.ts_offset), 0x11223344u);
    EXPECT_EQ(be32_in(f, o.ts_offset + 4u), 0x55667788u);

    EXPECT_EQ(p.layout.l3, 14);
    EXPECT_EQ(p.layout.l4, 34);
    EXPECT_EQ(p.layout.payload, 74);
    EXPECT_EQ(p.payload_length, 10u);
    EXPECT_EQ(p.payload_captured, 10u);
    EXPECT_EQ(Bytes(f.begin() + p.layout.payload, f.end()), kPayload10);
}

TEST(ParserRoundTrip, EveryTcpFlagBit) {
    const std::uint8_t all[] = {tcp_flag::kFin, tcp_flag::kSyn, tcp_flag::kRst, tcp_flag::kPsh,
                                tcp_flag::kAck, tcp_flag::kUrg, tcp_flag::kEce, tcp_flag::kCwr};
    for (std::uint8_t flag : all) {
        TcpSpec t;
        t.flags = flag;
        const auto [verdict, p] = run(tcp_frame(t));
        ASSERT_EQ(verdict, std::nullopt);
        EXPECT_EQ(p.tcp.flags, flag);
        for (std::uint8_t other : all) EXPECT_EQ(p.tcp.has(other), other == flag) << int{flag};
    }
}

TEST(ParserRoundTrip, VlanTagAndOffsetsShift) {
    const Bytes f = vlan_tcp_frame();
    const auto [verdict, p] = run(f);
    ASSERT_EQ(verdict, std::nullopt);
    EXPECT_EQ(p.kind, PacketKind::Tcp);
    EXPECT_EQ(p.eth.vlan, std::optional<std::uint16_t>{0x6064});
    EXPECT_EQ(p.eth.ethertype, 0x0800);
    EXPECT_EQ(p.layout.l3, 18);
    EXPECT_EQ(p.layout.l4, 38);
    EXPECT_EQ(p.layout.payload, 78);
    EXPECT_EQ(p.tcp.options.mss_offset, 60);
    EXPECT_EQ(p.tcp.options.ts_offset, 66);
    EXPECT_EQ(p.tcp.options.wscale_offset, 77);
    EXPECT_EQ(p.payload_length, 10u);
}

TEST(ParserRoundTrip, StackedVlanTagsKeepOutermost) {
    const std::vector<std::vector<VlanTag>> stacks = {
        {{kTpid8021AD, 0x0010}, {kTpid8021Q, 0x0020}},
        {{kTpidQinQOld, 0x0011}, {kTpid8021Q, 0x0022}},
        {{kTpid8021Q, 0x0001}, {kTpid8021Q, 0x0002}, {kTpid8021Q, 0x0003}, {kTpid8021AD, 0x0004}},
    };
    for (const auto& tags : stacks) {
        EthSpec e;
        e.tags = tags;
        const auto [verdict, p] = run(tcp_frame(full_tcp(), {}, e));
        ASSERT_EQ(verdict, std::nullopt) << tags.size() << " tags";
        EXPECT_EQ(p.eth.vlan, std::optional<std::uint16_t>{tags.front().tci});
        EXPECT_EQ(p.eth.ethertype, 0x0800);
        EXPECT_EQ(p.layout.l3, 14 + 4 * tags.size());
        EXPECT_EQ(p.layout.l4, 34 + 4 * tags.size());
    }
}

TEST(ParserRoundTrip, IcmpEchoRequestAndReply) {
    for (std::uint8_t type : {std::uint8_t{8}, std::uint8_t{0}}) {
        Ipv4Spec ip;
        ip.protocol = 1;
        const Bytes f = ethernet({}, ipv4(ip, icmp(type, 0, 0x1234, 0x0007, Bytes(8, 0xaa))));
        const auto [verdict, p] = run(f);
        ASSERT_EQ(verdict, std::nullopt);
        EXPECT_EQ(p.kind, PacketKind::IcmpEcho);
        EXPECT_EQ(p.icmp.type, type);
        EXPECT_EQ(p.icmp.code, 0);
        EXPECT_EQ(p.icmp.id, 0x1234);
        EXPECT_EQ(p.icmp.sequence, 0x0007);
        EXPECT_EQ(p.ip.protocol, 1);
        EXPECT_EQ(p.layout.l3, 14);
        EXPECT_EQ(p.layout.l4, 34);
        EXPECT_EQ(p.layout.payload, 42);
        EXPECT_EQ(p.payload_length, 8u);
        EXPECT_EQ(p.payload_captured, 8u);
    }
}

TEST(ParserRoundTrip, IcmpNonEchoIsIcmpWithoutEchoFields) {
    Ipv4Spec ip;
    ip.protocol = 1;
    // Destination unreachable / port unreachable, with bytes where echo id/seq would be.
    const Bytes f = ethernet({}, ipv4(ip, icmp(3, 3, 0x1111, 0x2222, Bytes(28, 0x45))));
    const auto [verdict, p] = run(f);
    ASSERT_EQ(verdict, std::nullopt);
    EXPECT_EQ(p.kind, PacketKind::Icmp);
    EXPECT_EQ(p.icmp.type, 3);
    EXPECT_EQ(p.icmp.code, 3);
    EXPECT_EQ(p.icmp.id, 0);
    EXPECT_EQ(p.icmp.sequence, 0);
    EXPECT_EQ(p.layout.l4, 34);
    EXPECT_EQ(p.payload_length, 28u);
}

TEST(ParserRoundTrip, ArpEveryField) {
    ArpSpec a;
    a.op = 1;
    a.sender_mac = MacAddr{{0x00, 0x01, 0x02, 0x03, 0x04, 0x05}};
    a.sender_ip = 0x0a0a0a0a;
    a.target_mac = MacAddr{};
    a.target_ip = 0x0a0a0a01;
    EthSpec e;
    e.ethertype = kEtherArp;
    e.dst = MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    e.pad_to = 60;
    const auto [verdict, p] = run(ethernet(e, arp(a)));
    ASSERT_EQ(verdict, std::nullopt);
    EXPECT_EQ(p.kind, PacketKind::Arp);
    EXPECT_TRUE(p.has_ethernet);
    EXPECT_EQ(p.eth.ethertype, 0x0806);
    EXPECT_EQ(p.eth.dst, e.dst);
    EXPECT_EQ(p.arp.op, 1);
    EXPECT_EQ(p.arp.sender_mac, a.sender_mac);
    EXPECT_EQ(p.arp.sender_ip, Ipv4Addr{0x0a0a0a0a});
    EXPECT_EQ(p.arp.target_mac, MacAddr{});
    EXPECT_EQ(p.arp.target_ip, Ipv4Addr{0x0a0a0a01});
    EXPECT_EQ(p.layout.l3, 14);
}

// ---------------------------------------------------------------------------
// Table-driven cases: description, input builder, expected verdict and fields.
// ---------------------------------------------------------------------------

struct ParseCase {
    std::string name;
    std::function<Bytes()> build;
    Verdict verdict;                         // nullopt: must decode
    PacketKind kind = PacketKind::Tcp;       // checked on success
    LinkType link = LinkType::Ethernet;
    std::optional<std::uint32_t> wire_length;  // default: the frame's size
    std::function<void(const Packet&, const Bytes&)> check = nullptr;
};

void PrintTo(const ParseCase& c, std::ostream* os) { *os << c.name; }

class ParserCase : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParserCase, DecodesAsExpected) {
    const ParseCase& c = GetParam();
    const Bytes f = c.build();
    const auto [verdict, p] = run(f, c.link, c.wire_length);
    ASSERT_EQ(verdict, c.verdict);
    if (verdict) return;
    EXPECT_EQ(p.kind, c.kind);
    if (c.check) c.check(p, f);
}

std::string case_name(const ::testing::TestParamInfo<ParseCase>& info) {
    return info.param.name;
}

// --- TCP options -----------------------------------------------------------

std::vector<ParseCase> tcp_option_cases() {
    std::vector<ParseCase> v;
    // Options start at frame offset 54 in every case below.
    v.push_back({"mss_only", [] { return tcp_with_options(opt::mss(536)); }, std::nullopt,
                 PacketKind::Tcp, LinkType::Ethernet, std::nullopt, [](const Packet& p, const Bytes& f) {
                     EXPECT_EQ(p.tcp.options.mss, std::optional<std::uint16_t>{536});
                     EXPECT_EQ(p.tcp.options.mss_offset, 56);
                     EXPECT_EQ(be16_in(f, p.tcp.options.mss_offset), 536);
                     EXPECT_FALSE(p.tcp.options.wscale.has_value());
                     EXPECT_FALSE(p.tcp.options.has_timestamps);
                     EXPECT_FALSE(p.tcp.options.sack_permitted);
                     EXPECT_EQ(p.tcp.header_length, 24);
                 }});
    v.push_back({"window_scale_after_nop", [] { return tcp_with_options(cat({opt::nop(), opt::ws(14)})); },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes& f) {
                     EXPECT_EQ(p.tcp.options.wscale, std::optional<std::uint8_t>{14});
                     EXPECT_EQ(p.tcp.options.wscale_offset, 57);
                     EXPECT_EQ(f[p.tcp.options.wscale_offset], 14);
                     EXPECT_FALSE(p.tcp.options.mss.has_value());
                 }});
    v.push_back({"window_scale_above_14_kept_as_sent",
                 [] { return tcp_with_options(cat({opt::nop(), opt::ws(15)})); }, std::nullopt,
                 PacketKind::Tcp, LinkType::Ethernet, std::nullopt, [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.tcp.options.wscale, std::optional<std::uint8_t>{15});
                 }});
    v.push_back({"window_scale_zero_is_present",
                 [] { return tcp_with_options(cat({opt::nop(), opt::ws(0)})); }, std::nullopt,
                 PacketKind::Tcp, LinkType::Ethernet, std::nullopt, [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.tcp.options.wscale, std::optional<std::uint8_t>{0});
                 }});
    v.push_back({"sack_permitted", [] { return tcp_with_options(cat({opt::nop(2), opt::sack_perm()})); },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_TRUE(p.tcp.options.sack_permitted);
                     EXPECT_EQ(p.tcp.options.sack_count, 0);
                     EXPECT_EQ(p.tcp.options.unknown_count, 0);
                 }});
    for (std::size_t n = 1; n <= 4; ++n) {
        v.push_back({"sack_" + std::to_string(n) + "_blocks",
                     [n] {
                         std::vector<std::pair<std::uint32_t, std::uint32_t>> blocks;
                         for (std::size_t k = 0; k < n; ++k) {
                             const auto base = static_cast<std::uint32_t>(0xfffff000u + 0x1000u * k);
                             blocks.emplace_back(base, base + 0x800u);
                         }
                         return tcp_with_options(cat({opt::nop(2), opt::sack(blocks)}));
                     },
                     std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                     [n](const Packet& p, const Bytes& f) {
                         const TcpOptions& o = p.tcp.options;
                         ASSERT_EQ(o.sack_count, n);
                         EXPECT_EQ(o.sack_offset, 58);
                         for (std::size_t k = 0; k < n; ++k) {
                             const auto base = static_cast<std::uint32_t>(0xfffff000u + 0x1000u * k);
                             EXPECT_EQ(o.sack[k].left, SeqNum{base}) << k;
                             EXPECT_EQ(o.sack[k].right, SeqNum{base + 0x800u}) << k;
                             EXPECT_EQ(be32_in(f, o.sack_offset + 8 * k), base) << k;
                             EXPECT_EQ(be32_in(f, o.sack_offset + 8 * k + 4), base + 0x800u) << k;
                         }
                         EXPECT_EQ(p.tcp.header_length, 20 + ((2 + 2 + 8 * n + 3) / 4) * 4);
                     }});
    }
    v.push_back({"timestamps", [] { return tcp_with_options(cat({opt::nop(2), opt::ts(0xfffffffe, 7)})); },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes& f) {
                     const TcpOptions& o = p.tcp.options;
                     EXPECT_TRUE(o.has_timestamps);
                     EXPECT_EQ(o.tsval, 0xfffffffeu);
                     EXPECT_EQ(o.tsecr, 7u);
                     EXPECT_EQ(o.ts_offset, 58);
                     EXPECT_EQ(be32_in(f, o.ts_offset), 0xfffffffeu);
                     EXPECT_EQ(be32_in(f, o.ts_offset + 4u), 7u);
                 }});
    v.push_back({"nop_padding_only", [] { return tcp_with_options(opt::nop(8)); }, std::nullopt,
                 PacketKind::Tcp, LinkType::Ethernet, std::nullopt, [](const Packet& p, const Bytes&) {
                     const TcpOptions& o = p.tcp.options;
                     EXPECT_FALSE(o.mss || o.wscale || o.sack_permitted || o.has_timestamps);
                     EXPECT_EQ(o.unknown_count, 0);
                     EXPECT_EQ(p.tcp.header_length, 28);
                     EXPECT_EQ(p.layout.payload, 62);
                 }});
    v.push_back({"full_40_byte_option_area",
                 [] {
                     return tcp_with_options(cat({opt::mss(1460), opt::sack_perm(), opt::ts(1, 2),
                                                  opt::nop(), opt::ws(7), opt::nop(2),
                                                  opt::sack({{10, 20}, {30, 40}})}));
                 },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.tcp.header_length, 60);
                     EXPECT_EQ(p.tcp.options.sack_count, 2);
                     EXPECT_EQ(p.tcp.options.sack_offset, 78);
                     EXPECT_EQ(p.tcp.options.sack[1].right, SeqNum{40});
                     EXPECT_EQ(p.tcp.options.mss_offset, 56);
                     EXPECT_EQ(p.tcp.options.ts_offset, 62);
                     EXPECT_EQ(p.tcp.options.wscale_offset, 73);
                     EXPECT_EQ(p.layout.payload, 94);
                 }});
    // EOL stops parsing: whatever follows (here: an MSS of bad length) is ignored.
    v.push_back({"eol_ends_parsing_early",
                 [] { return tcp_with_options(cat({opt::mss(1400), opt::eol(), Bytes{2, 7, 3, 3}})); },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.tcp.options.mss, std::optional<std::uint16_t>{1400});
                     EXPECT_FALSE(p.tcp.options.wscale.has_value());
                     EXPECT_EQ(p.tcp.options.unknown_count, 0);
                 }});
    v.push_back({"eol_first_ignores_everything",
                 [] { return tcp_with_options(cat({opt::eol(), opt::mss(1400), Bytes{3}})); },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_FALSE(p.tcp.options.mss.has_value());
                     EXPECT_EQ(p.tcp.options.mss_offset, 0);
                 }});
    // Unknown kinds are skipped by their length; the MSS after them must land right.
    v.push_back({"unknown_kinds_skipped_by_length",
                 [] {
                     return tcp_with_options(cat({
                         Bytes{30, 4, 0x00, 0x81},                       // MPTCP MP_CAPABLE-ish
                         Bytes{34, 10, 1, 2, 3, 4, 5, 6, 7, 8},          // TFO cookie
                         Bytes{254, 4, 0xf9, 0x89},                      // RFC 6994 experimental
                         opt::mss(1234),
                     }));
                 },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes& f) {
                     EXPECT_EQ(p.tcp.options.unknown_count, 3);
                     EXPECT_EQ(p.tcp.options.mss, std::optional<std::uint16_t>{1234});
                     EXPECT_EQ(p.tcp.options.mss_offset, 54 + 18 + 2);
                     EXPECT_EQ(be16_in(f, p.tcp.options.mss_offset), 1234);
                 }});
    v.push_back({"unknown_kind_minimal_length_2",
                 [] { return tcp_with_options(Bytes{99, 2, 1, 1}); }, std::nullopt, PacketKind::Tcp,
                 LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) { EXPECT_EQ(p.tcp.options.unknown_count, 1); }});

    // Bad lengths for each known kind.
    struct Bad {
        const char* name;
        Bytes options;
    };
    const Bad bad[] = {
        {"mss_len_3", {2, 3, 5, 1}},
        {"mss_len_5", {2, 5, 5, 180, 0, 1, 1, 1}},
        {"mss_len_2", {2, 2, 1, 1}},
        {"ws_len_2", {3, 2, 1, 1}},
        {"ws_len_4", {3, 4, 7, 1}},
        {"sack_permitted_len_3", {4, 3, 1, 1}},
        {"sack_permitted_len_4", {4, 4, 1, 1}},
        {"sack_no_blocks_len_2", {5, 2, 1, 1}},
        {"sack_len_9", {5, 9, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1}},
        {"sack_len_11", {5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1}},
        {"sack_len_14_partial_block", {5, 14, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 1}},
        {"ts_len_8", {8, 8, 0, 0, 0, 1, 0, 0}},
        {"ts_len_11", {8, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1}},
        {"ts_len_2", {8, 2, 1, 1}},
        {"known_kind_len_0", {2, 0, 1, 1}},
        {"known_kind_len_1", {3, 1, 1, 1}},
        {"unknown_kind_len_0", {30, 0, 1, 1}},
        {"unknown_kind_len_1", {30, 1, 1, 1}},
        {"unknown_len_overruns_header", {30, 8, 1, 1}},
        {"mss_overruns_header", {1, 1, 1, 1, 1, 2, 4, 5}},  // MSS needs 4, 3 bytes left
        {"ts_overruns_header", {1, 1, 8, 10, 0, 0, 0, 1}},
        {"kind_without_length_byte", {1, 1, 1, 2}},
        {"unknown_kind_without_length_byte", {1, 1, 1, 77}},
    };
    for (const Bad& b : bad) {
        v.push_back({std::string("bad_option_") + b.name,
                     [opts = b.options] {
                         EXPECT_EQ(opts.size() % 4, 0u) << "case must fill whole words";
                         return tcp_with_options(opts);
                     },
                     DropReason::TcpBadOption});
    }
    return v;
}

INSTANTIATE_TEST_SUITE_P(TcpOptions, ParserCase, ::testing::ValuesIn(tcp_option_cases()), case_name);

// --- IPv4 / TCP header validation ------------------------------------------

Bytes ip_frame(const Ipv4Spec& ip, const TcpSpec& t = full_tcp()) {
    return ethernet({}, ipv4(ip, tcp(t)));
}

std::vector<ParseCase> header_cases() {
    std::vector<ParseCase> v;
    auto ip_case = [&](std::string name, std::function<void(Ipv4Spec&)> edit, Verdict verdict) {
        v.push_back({std::move(name),
                     [edit] {
                         Ipv4Spec ip;
                         edit(ip);
                         return ip_frame(ip);
                     },
                     verdict});
    };
    ip_case("ipv4_version_5", [](Ipv4Spec& s) { s.version = 5; }, DropReason::Ipv4BadVersion);
    ip_case("ipv4_version_6_under_0800", [](Ipv4Spec& s) { s.version = 6; },
            DropReason::Ipv4BadVersion);
    ip_case("ipv4_version_0", [](Ipv4Spec& s) { s.version = 0; }, DropReason::Ipv4BadVersion);
    ip_case("ipv4_ihl_4", [](Ipv4Spec& s) { s.ihl = 4; }, DropReason::Ipv4BadHeaderLength);
    ip_case("ipv4_ihl_0", [](Ipv4Spec& s) { s.ihl = 0; }, DropReason::Ipv4BadHeaderLength);
    // Total length below the header. The parser names 1..19 a header-length
    // problem and 0 (GSO/BIG TCP super-segments) or >= 20 a total-length one.
    ip_case("ipv4_total_length_19", [](Ipv4Spec& s) { s.total_length = 19; },
            DropReason::Ipv4BadHeaderLength);
    ip_case("ipv4_total_length_0_gso", [](Ipv4Spec& s) { s.total_length = 0; },
            DropReason::Ipv4BadTotalLength);
    ip_case("ipv4_total_length_below_ihl_with_options",
            [](Ipv4Spec& s) {
                s.options = {0x94, 0x04, 0x00, 0x00};  // router alert
                s.total_length = 20;
            },
            DropReason::Ipv4BadTotalLength);
    ip_case("ipv4_total_length_beyond_frame", [](Ipv4Spec& s) { s.total_length = 71; },
            DropReason::Ipv4BadTotalLength);
    ip_case("ipv4_total_length_1500_on_84_byte_frame", [](Ipv4Spec& s) { s.total_length = 1500; },
            DropReason::Ipv4BadTotalLength);
    ip_case("ipv4_checksum_off_by_one",
            [](Ipv4Spec& s) {
                Ipv4Spec good = s;
                const Bytes h = ipv4(good, {});
                s.checksum = static_cast<std::uint16_t>(be16_in(h, 10) + 1);
            },
            DropReason::Ipv4BadChecksum);
    ip_case("ipv4_checksum_zero", [](Ipv4Spec& s) { s.checksum = 0; }, DropReason::Ipv4BadChecksum);
    // A corrupted field under a checksum computed before the corruption.
    v.push_back({"ipv4_ttl_flipped_after_checksum",
                 [] {
                     Bytes f = ip_frame({});
                     f[14 + 8] ^= 0x01;
                     return f;
                 },
                 DropReason::Ipv4BadChecksum});
    v.push_back({"ipv4_option_byte_flipped_after_checksum",
                 [] {
                     Ipv4Spec s;
                     s.options = {0x94, 0x04, 0x00, 0x00};
                     Bytes f = ip_frame(s);
                     f[14 + 22] ^= 0x80;
                     return f;
                 },
                 DropReason::Ipv4BadChecksum});

    auto tcp_case = [&](std::string name, std::function<void(TcpSpec&)> edit, Verdict verdict) {
        v.push_back({std::move(name),
                     [edit] {
                         TcpSpec t = full_tcp();
                         edit(t);
                         return tcp_frame(t);
                     },
                     verdict});
    };
    tcp_case("tcp_data_offset_4", [](TcpSpec& t) { t.data_offset = 4; },
             DropReason::TcpBadDataOffset);
    tcp_case("tcp_data_offset_0", [](TcpSpec& t) { t.data_offset = 0; },
             DropReason::TcpBadDataOffset);
    tcp_case("tcp_data_offset_past_ip_end",
             [](TcpSpec& t) {
                 t.options.clear();
                 t.payload.clear();
                 t.data_offset = 6;
             },
             DropReason::TcpBadDataOffset);
    tcp_case("tcp_data_offset_15_past_ip_end", [](TcpSpec& t) { t.data_offset = 15; },
             DropReason::TcpBadDataOffset);
    // The bytes are in the frame (Ethernet padding) but not in the IP datagram.
    v.push_back({"tcp_data_offset_into_ethernet_padding",
                 [] {
                     TcpSpec t;
                     t.data_offset = 7;
                     EthSpec e;
                     e.pad_to = 80;
                     return tcp_frame(t, {}, e);
                 },
                 DropReason::TcpBadDataOffset});
    tcp_case("tcp_data_offset_exactly_ip_end",
             [](TcpSpec& t) { t.payload.clear(); }, std::nullopt);

    // VLAN depth.
    auto vlan_case = [&](std::string name, std::size_t depth, Verdict verdict) {
        v.push_back({std::move(name),
                     [depth] {
                         EthSpec e;
                         for (std::size_t i = 0; i < depth; ++i)
                             e.tags.push_back({kTpid8021Q, static_cast<std::uint16_t>(i + 1)});
                         return tcp_frame(full_tcp(), {}, e);
                     },
                     verdict});
    };
    vlan_case("vlan_depth_4_ok", 4, std::nullopt);
    vlan_case("vlan_depth_5_too_deep", 5, DropReason::VlanTooDeep);
    vlan_case("vlan_depth_9_too_deep", 9, DropReason::VlanTooDeep);
    return v;
}

INSTANTIATE_TEST_SUITE_P(Headers, ParserCase, ::testing::ValuesIn(header_cases()), case_name);

// --- Padding, fragments, options, other protocols ---------------------------

std::vector<ParseCase> classification_cases() {
    std::vector<ParseCase> v;
    v.push_back({"ethernet_padding_syn_payload_follows_ip_not_frame",
                 [] {
                     TcpSpec t;  // no options, no payload: 54 bytes, padded to 60
                     EthSpec e;
                     e.pad_to = 60;
                     return tcp_frame(t, {}, e);
                 },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes& f) {
                     EXPECT_EQ(f.size(), 60u);
                     EXPECT_EQ(p.ip.total_length, 40);
                     EXPECT_EQ(p.layout.payload, 54);
                     EXPECT_EQ(p.payload_length, 0u);
                     EXPECT_EQ(p.payload_captured, 0u);
                 }});
    v.push_back({"ethernet_padding_after_2_payload_bytes",
                 [] {
                     TcpSpec t;
                     t.payload = {'o', 'k'};
                     EthSpec e;
                     e.pad_to = 60;
                     return tcp_frame(t, {}, e);
                 },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.payload_length, 2u);
                     EXPECT_EQ(p.payload_captured, 2u);
                     EXPECT_FALSE(p.truncated_by_capture);
                 }});
    v.push_back({"ethernet_padding_icmp",
                 [] {
                     Ipv4Spec ip;
                     ip.protocol = 1;
                     EthSpec e;
                     e.pad_to = 60;
                     return ethernet(e, ipv4(ip, icmp(8, 0, 1, 2, {})));
                 },
                 std::nullopt, PacketKind::IcmpEcho, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.payload_length, 0u);
                     EXPECT_EQ(p.payload_captured, 0u);
                 }});
    v.push_back({"fragment_more_fragments_set",
                 [] {
                     Ipv4Spec ip;
                     ip.df = false;
                     ip.mf = true;
                     return ip_frame(ip);
                 },
                 std::nullopt, PacketKind::OtherIpv4, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_TRUE(p.ip.is_fragment());
                     EXPECT_TRUE(p.ip.more_fragments);
                     EXPECT_FALSE(p.ip.dont_fragment);
                     EXPECT_EQ(p.ip.fragment_offset, 0);
                     EXPECT_EQ(p.layout.l3, 14);
                 }});
    v.push_back({"fragment_nonzero_offset",
                 [] {
                     Ipv4Spec ip;
                     ip.df = false;
                     ip.frag_offset_units = 185;  // 1480 bytes
                     // The "TCP header" here is mid-stream data: garbage as TCP.
                     return ethernet({}, ipv4(ip, Bytes(30, 0xff)));
                 },
                 std::nullopt, PacketKind::OtherIpv4, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_TRUE(p.ip.is_fragment());
                     EXPECT_FALSE(p.ip.more_fragments);
                     EXPECT_EQ(p.ip.fragment_offset, 1480);
                 }});
    v.push_back({"fragment_max_offset",
                 [] {
                     Ipv4Spec ip;
                     ip.df = false;
                     ip.mf = true;
                     ip.frag_offset_units = 0x1fff;
                     return ethernet({}, ipv4(ip, Bytes(8, 0)));
                 },
                 std::nullopt, PacketKind::OtherIpv4, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.ip.fragment_offset, 0x1fff * 8);
                     EXPECT_TRUE(p.ip.more_fragments);
                 }});
    v.push_back({"ip_options_flagged_and_l4_shifted",
                 [] {
                     Ipv4Spec ip;
                     ip.options = {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00};  // RA, NOPs, EOL
                     return ip_frame(ip);
                 },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes& f) {
                     EXPECT_TRUE(p.ip.has_options);
                     EXPECT_EQ(p.ip.header_length, 28);
                     EXPECT_EQ(p.layout.l4, 42);
                     EXPECT_EQ(p.layout.payload, 82);
                     EXPECT_EQ(p.tcp.options.mss_offset, 64);
                     EXPECT_EQ(be16_in(f, p.tcp.options.mss_offset), 1460);
                     EXPECT_EQ(p.payload_length, 10u);
                 }});
    v.push_back({"ip_options_max_ihl_15",
                 [] {
                     Ipv4Spec ip;
                     ip.options = Bytes(40, 0x01);
                     return ip_frame(ip);
                 },
                 std::nullopt, PacketKind::Tcp, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.ip.header_length, 60);
                     EXPECT_EQ(p.layout.l4, 74);
                 }});
    v.push_back({"udp_is_other_ipv4",
                 [] {
                     Ipv4Spec ip;
                     ip.protocol = 17;
                     return ethernet({}, ipv4(ip, udp(53, 5353, Bytes(12, 0))));
                 },
                 std::nullopt, PacketKind::OtherIpv4, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.ip.protocol, 17);
                     EXPECT_EQ(p.layout.l3, 14);
                     EXPECT_EQ(p.ip.src, Ipv4Addr{kClientIp});
                 }});
    v.push_back({"gre_is_other_ipv4",
                 [] {
                     Ipv4Spec ip;
                     ip.protocol = 47;
                     return ethernet({}, ipv4(ip, Bytes(4, 0)));
                 },
                 std::nullopt, PacketKind::OtherIpv4});
    v.push_back({"ipv6_ethertype_not_ipv4",
                 [] {
                     EthSpec e;
                     e.ethertype = kEtherIpv6;
                     return ethernet(e, Bytes(40, 0x60));
                 },
                 std::nullopt, PacketKind::NotIpv4, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.eth.ethertype, 0x86dd);
                     EXPECT_TRUE(p.has_ethernet);
                 }});
    v.push_back({"lldp_not_ipv4",
                 [] {
                     EthSpec e;
                     e.ethertype = 0x88cc;
                     return ethernet(e, Bytes(10, 0));
                 },
                 std::nullopt, PacketKind::NotIpv4});
    v.push_back({"ipv6_under_vlan_not_ipv4",
                 [] {
                     EthSpec e;
                     e.tags = {{kTpid8021Q, 5}};
                     e.ethertype = kEtherIpv6;
                     return ethernet(e, Bytes(40, 0x60));
                 },
                 std::nullopt, PacketKind::NotIpv4, LinkType::Ethernet, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.eth.vlan, std::optional<std::uint16_t>{5});
                     EXPECT_EQ(p.eth.ethertype, 0x86dd);
                 }});
    auto arp_case = [&](std::string name, std::function<void(ArpSpec&)> edit) {
        v.push_back({std::move(name),
                     [edit] {
                         ArpSpec a;
                         edit(a);
                         EthSpec e;
                         e.ethertype = kEtherArp;
                         return ethernet(e, arp(a));
                     },
                     std::nullopt, PacketKind::NotIpv4});
    };
    arp_case("arp_htype_ieee802_not_ipv4", [](ArpSpec& a) { a.htype = 6; });
    arp_case("arp_ptype_ipv6_not_ipv4", [](ArpSpec& a) { a.ptype = kEtherIpv6; });
    arp_case("arp_hlen_8_not_ipv4", [](ArpSpec& a) { a.hlen = 8; });
    arp_case("arp_plen_16_not_ipv4", [](ArpSpec& a) { a.plen = 16; });
    // A foreign ARP needs only its fixed 8-byte part.
    v.push_back({"arp_foreign_short_body_not_ipv4",
                 [] {
                     ArpSpec a;
                     a.htype = 6;
                     EthSpec e;
                     e.ethertype = kEtherArp;
                     Bytes body = arp(a);
                     body.resize(8);
                     return ethernet(e, body);
                 },
                 std::nullopt, PacketKind::NotIpv4});
    return v;
}

INSTANTIATE_TEST_SUITE_P(Classification, ParserCase, ::testing::ValuesIn(classification_cases()),
                         case_name);

// --- Link types ------------------------------------------------------------

Bytes tcp_l3() { return ipv4({}, tcp(full_tcp())); }

void expect_tcp_at(const Packet& p, std::uint16_t l3) {
    EXPECT_EQ(p.layout.l3, l3);
    EXPECT_EQ(p.layout.l4, l3 + 20);
    EXPECT_EQ(p.layout.payload, l3 + 60);
    EXPECT_EQ(p.tcp.options.mss_offset, l3 + 42);
    EXPECT_EQ(p.ip.src, Ipv4Addr{kClientIp});
    EXPECT_EQ(p.tcp.dst_port, Port{8080});
    EXPECT_EQ(p.payload_length, 10u);
    EXPECT_EQ(p.eth.ethertype, 0x0800);
}

std::vector<ParseCase> link_cases() {
    std::vector<ParseCase> v;
    v.push_back({"sll_ipv4_tcp", [] { return sll(kEtherIpv4, tcp_l3()); }, std::nullopt,
                 PacketKind::Tcp, LinkType::LinuxSll, std::nullopt, [](const Packet& p, const Bytes&) {
                     EXPECT_FALSE(p.has_ethernet);
                     EXPECT_EQ(p.eth.src, kSrcMac);
                     EXPECT_EQ(p.eth.dst, MacAddr{});
                     EXPECT_EQ(p.eth.vlan, std::nullopt);
                     expect_tcp_at(p, 16);
                 }});
    v.push_back({"sll_non_ethernet_address_not_copied",
                 [] { return sll(kEtherIpv4, tcp_l3(), /*arphrd=*/772, /*alen=*/0); }, std::nullopt,
                 PacketKind::Tcp, LinkType::LinuxSll, std::nullopt, [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.eth.src, MacAddr{});
                     expect_tcp_at(p, 16);
                 }});
    v.push_back({"sll_arp", [] { return sll(kEtherArp, arp({})); }, std::nullopt, PacketKind::Arp,
                 LinkType::LinuxSll, std::nullopt, [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.layout.l3, 16);
                     EXPECT_EQ(p.arp.target_ip, Ipv4Addr{kServerIp});
                 }});
    v.push_back({"sll_ipv6_not_ipv4", [] { return sll(kEtherIpv6, Bytes(40, 0x60)); }, std::nullopt,
                 PacketKind::NotIpv4, LinkType::LinuxSll});
    v.push_back({"sll2_ipv4_tcp", [] { return sll2(kEtherIpv4, tcp_l3()); }, std::nullopt,
                 PacketKind::Tcp, LinkType::LinuxSll2, std::nullopt, [](const Packet& p, const Bytes&) {
                     EXPECT_FALSE(p.has_ethernet);
                     EXPECT_EQ(p.eth.src, kSrcMac);
                     EXPECT_EQ(p.eth.dst, MacAddr{});
                     expect_tcp_at(p, 20);
                 }});
    v.push_back({"sll2_non_ethernet_address_not_copied",
                 [] { return sll2(kEtherIpv4, tcp_l3(), /*arphrd=*/1, /*alen=*/4); }, std::nullopt,
                 PacketKind::Tcp, LinkType::LinuxSll2, std::nullopt, [](const Packet& p, const Bytes&) {
                     EXPECT_EQ(p.eth.src, MacAddr{});
                     expect_tcp_at(p, 20);
                 }});
    v.push_back({"sll2_bad_checksum_still_checked",
                 [] {
                     Bytes f = sll2(kEtherIpv4, tcp_l3());
                     f[20 + 10] ^= 0xff;
                     return f;
                 },
                 DropReason::Ipv4BadChecksum, PacketKind::Tcp, LinkType::LinuxSll2});
    v.push_back({"raw_ipv4_tcp", [] { return tcp_l3(); }, std::nullopt, PacketKind::Tcp,
                 LinkType::RawIp, std::nullopt, [](const Packet& p, const Bytes&) {
                     EXPECT_FALSE(p.has_ethernet);
                     expect_tcp_at(p, 0);
                 }});
    v.push_back({"raw_ipv6_not_ipv4",
                 [] { return Writer{}.u8(0x60).zeros(39).take(); }, std::nullopt,
                 PacketKind::NotIpv4, LinkType::RawIp});
    v.push_back({"raw_ipv6_single_byte_not_ipv4", [] { return Bytes{0x6f}; }, std::nullopt,
                 PacketKind::NotIpv4, LinkType::RawIp});
    v.push_back({"raw_version_5_bad_version",
                 [] {
                     Ipv4Spec ip;
                     ip.version = 5;
                     return ipv4(ip, tcp(full_tcp()));
                 },
                 DropReason::Ipv4BadVersion, PacketKind::Tcp, LinkType::RawIp});
    v.push_back({"null_af_inet_host_order_le", [] { return null_link(2, false, tcp_l3()); },
                 std::nullopt, PacketKind::Tcp, LinkType::Null, std::nullopt,
                 [](const Packet& p, const Bytes&) {
                     EXPECT_FALSE(p.has_ethernet);
                     expect_tcp_at(p, 4);
                 }});
    v.push_back({"loop_af_inet_network_order", [] { return null_link(2, true, tcp_l3()); },
                 std::nullopt, PacketKind::Tcp, LinkType::Null, std::nullopt,
                 [](const Packet& p, const Bytes&) { expect_tcp_at(p, 4); }});
    for (std::uint32_t family : {24u, 28u, 30u, 0u, 0x02000002u}) {
        for (bool network_order : {false, true}) {
            v.push_back({"null_family_" + std::to_string(family) + (network_order ? "_be" : "_le") +
                             "_not_ipv4",
                         [family, network_order] {
                             return null_link(family, network_order, Bytes(40, 0x60));
                         },
                         std::nullopt, PacketKind::NotIpv4, LinkType::Null});
        }
    }
    // Truncated link headers.
    v.push_back({"ethernet_13_bytes", [] { return Bytes(13, 0); }, DropReason::LinkTruncated});
    v.push_back({"ethernet_empty", [] { return Bytes{}; }, DropReason::LinkTruncated});
    v.push_back({"sll_15_bytes",
                 [] {
                     Bytes b = sll(kEtherIpv4, {});
                     b.resize(15);
                     return b;
                 },
                 DropReason::LinkTruncated, PacketKind::Tcp, LinkType::LinuxSll});
    v.push_back({"sll2_19_bytes",
                 [] {
                     Bytes b = sll2(kEtherIpv4, {});
                     b.resize(19);
                     return b;
                 },
                 DropReason::LinkTruncated, PacketKind::Tcp, LinkType::LinuxSll2});
    v.push_back({"null_3_bytes", [] { return Bytes{2, 0, 0}; }, DropReason::LinkTruncated,
                 PacketKind::Tcp, LinkType::Null});
    v.push_back({"raw_empty", [] { return Bytes{}; }, DropReason::Ipv4Truncated, PacketKind::Tcp,
                 LinkType::RawIp});
    return v;
}

INSTANTIATE_TEST_SUITE_P(LinkTypes, ParserCase, ::testing::ValuesIn(link_cases()), case_name);

// ---------------------------------------------------------------------------
// Truncation at every length.
//
// Short frame (wire_length = n): the frame really was that long, so every
// prefix is a drop. Snaplen cut (wire_length = full size): every prefix that
// still holds all headers decodes, flagged truncated_by_capture.
// ---------------------------------------------------------------------------

struct Range {
    std::size_t below;  // applies to n < below (first match wins)
    DropReason reason;
};

struct TruncationCase {
    std::string name;
    std::function<Bytes()> build;
    LinkType link;
    std::size_t header_end;          // first payload byte
    std::vector<Range> short_frame;  // wire_length = n
    std::vector<Range> snaplen_cut;  // wire_length = full size
};

void PrintTo(const TruncationCase& c, std::ostream* os) { *os << c.name; }

DropReason expected_in(const std::vector<Range>& ranges, std::size_t n) {
    for (const Range& r : ranges)
        if (n < r.below) return r.reason;
    ADD_FAILURE() << "no range covers n=" << n;
    return DropReason::kCount;
}

void expect_category_matches_name(DropReason r) {
    const bool named_truncated = ends_with(name_of(r), "truncated");
    EXPECT_EQ(category_of(r) == DropCategory::Truncated, named_truncated) << name_of(r);
}

class Truncation : public ::testing::TestWithParam<TruncationCase> {};

TEST_P(Truncation, ShortFrameEveryLengthIsDropped) {
    const TruncationCase& c = GetParam();
    const Bytes f = c.build();
    ASSERT_EQ(run(f, c.link).verdict, std::nullopt) << "the whole frame must decode";
    for (std::size_t n = 0; n < f.size(); ++n) {
        const auto [verdict, p] = run(f.data(), n, static_cast<std::uint32_t>(n), c.link);
        ASSERT_TRUE(verdict.has_value()) << "n=" << n << " decoded as " << name_of(p.kind);
        EXPECT_EQ(*verdict, expected_in(c.short_frame, n)) << "n=" << n;
        expect_category_matches_name(*verdict);
    }
}

TEST_P(Truncation, SnaplenCutDecodesOnceHeadersAreIn) {
    const TruncationCase& c = GetParam();
    const Bytes f = c.build();
    const auto wire = static_cast<std::uint32_t>(f.size());
    for (std::size_t n = 0; n < f.size(); ++n) {
        const auto [verdict, p] = run(f.data(), n, wire, c.link);
        if (n < c.header_end) {
            ASSERT_TRUE(verdict.has_value()) << "n=" << n << " decoded as " << name_of(p.kind);
            EXPECT_EQ(*verdict, expected_in(c.snaplen_cut, n)) << "n=" << n;
            EXPECT_EQ(category_of(*verdict), DropCategory::Truncated)
                << "n=" << n << " " << name_of(*verdict);
            expect_category_matches_name(*verdict);
            continue;
        }
        ASSERT_EQ(verdict, std::nullopt) << "n=" << n;
        EXPECT_TRUE(p.truncated_by_capture) << "n=" << n;
        EXPECT_EQ(p.layout.payload, c.header_end) << "n=" << n;
        EXPECT_EQ(p.payload_length, f.size() - c.header_end) << "n=" << n;
        EXPECT_EQ(p.payload_captured, n - c.header_end) << "n=" << n;
    }
}

std::vector<TruncationCase> truncation_cases() {
    using D = DropReason;
    std::vector<TruncationCase> v;
    v.push_back({"ethernet_tcp_with_options", [] { return tcp_frame(); }, LinkType::Ethernet, 74,
                 {{14, D::LinkTruncated}, {34, D::Ipv4Truncated}, {84, D::Ipv4BadTotalLength}},
                 {{14, D::LinkTruncated}, {34, D::Ipv4Truncated}, {74, D::TcpTruncated}}});
    v.push_back({"ethernet_tcp_with_ip_options",
                 [] {
                     Ipv4Spec ip;
                     ip.options = {0x94, 0x04, 0x00, 0x00};
                     return ip_frame(ip);
                 },
                 LinkType::Ethernet, 78,
                 {{14, D::LinkTruncated}, {38, D::Ipv4Truncated}, {88, D::Ipv4BadTotalLength}},
                 {{14, D::LinkTruncated}, {38, D::Ipv4Truncated}, {78, D::TcpTruncated}}});
    v.push_back({"vlan_tcp", [] { return vlan_tcp_frame(); }, LinkType::Ethernet, 78,
                 {{14, D::LinkTruncated},
                  {18, D::VlanTruncated},
                  {38, D::Ipv4Truncated},
                  {88, D::Ipv4BadTotalLength}},
                 {{14, D::LinkTruncated},
                  {18, D::VlanTruncated},
                  {38, D::Ipv4Truncated},
                  {78, D::TcpTruncated}}});
    v.push_back({"qinq_tcp",
                 [] {
                     EthSpec e;
                     e.tags = {{kTpid8021AD, 10}, {kTpid8021Q, 20}};
                     return tcp_frame(full_tcp(), {}, e);
                 },
                 LinkType::Ethernet, 82,
                 {{14, D::LinkTruncated},
                  {22, D::VlanTruncated},
                  {42, D::Ipv4Truncated},
                  {92, D::Ipv4BadTotalLength}},
                 {{14, D::LinkTruncated},
                  {22, D::VlanTruncated},
                  {42, D::Ipv4Truncated},
                  {82, D::TcpTruncated}}});
    v.push_back({"icmp_echo", [] { return icmp_echo_frame(); }, LinkType::Ethernet, 42,
                 {{14, D::LinkTruncated}, {34, D::Ipv4Truncated}, {50, D::Ipv4BadTotalLength}},
                 {{14, D::LinkTruncated}, {34, D::Ipv4Truncated}, {42, D::IcmpTruncated}}});
    v.push_back({"arp", [] { return arp_frame(); }, LinkType::Ethernet, 42,
                 {{14, D::LinkTruncated}, {42, D::ArpTruncated}},
                 {{14, D::LinkTruncated}, {42, D::ArpTruncated}}});
    v.push_back({"sll_tcp", [] { return sll(kEtherIpv4, tcp_l3()); }, LinkType::LinuxSll, 76,
                 {{16, D::LinkTruncated}, {36, D::Ipv4Truncated}, {86, D::Ipv4BadTotalLength}},
                 {{16, D::LinkTruncated}, {36, D::Ipv4Truncated}, {76, D::TcpTruncated}}});
    v.push_back({"sll2_tcp", [] { return sll2(kEtherIpv4, tcp_l3()); }, LinkType::LinuxSll2, 80,
                 {{20, D::LinkTruncated}, {40, D::Ipv4Truncated}, {90, D::Ipv4BadTotalLength}},
                 {{20, D::LinkTruncated}, {40, D::Ipv4Truncated}, {80, D::TcpTruncated}}});
    v.push_back({"null_tcp", [] { return null_link(2, false, tcp_l3()); }, LinkType::Null, 64,
                 {{4, D::LinkTruncated}, {24, D::Ipv4Truncated}, {74, D::Ipv4BadTotalLength}},
                 {{4, D::LinkTruncated}, {24, D::Ipv4Truncated}, {64, D::TcpTruncated}}});
    v.push_back({"raw_tcp", [] { return tcp_l3(); }, LinkType::RawIp, 60,
                 {{20, D::Ipv4Truncated}, {70, D::Ipv4BadTotalLength}},
                 {{20, D::Ipv4Truncated}, {60, D::TcpTruncated}}});
    return v;
}

std::string truncation_name(const ::testing::TestParamInfo<TruncationCase>& info) {
    return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(EveryLength, Truncation, ::testing::ValuesIn(truncation_cases()),
                         truncation_name);

TEST(ParserSnaplen, CutInsideEthernetPaddingKeepsIpPayloadLength) {
    TcpSpec t;
    t.payload = {'o', 'k'};
    EthSpec e;
    e.pad_to = 60;
    const Bytes f = tcp_frame(t, {}, e);  // 56 bytes of datagram + 4 of padding
    const auto [verdict, p] = run(f.data(), 57, 60, LinkType::Ethernet);
    ASSERT_EQ(verdict, std::nullopt);
    EXPECT_TRUE(p.truncated_by_capture);
    EXPECT_EQ(p.payload_length, 2u);
    EXPECT_EQ(p.payload_captured, 2u);
}

// ---------------------------------------------------------------------------
// Suspected parser bugs: these tests describe the documented contract.
// ---------------------------------------------------------------------------

// DropReason::Ipv4BadTotalLength is documented as "total length ... > the frame
// on the wire". A snaplen-cut frame must still be checked against wire_length.
TEST(ParserContract, SnaplenCutFrameCannotClaimMoreThanTheWire) {
    Ipv4Spec ip;
    ip.total_length = 1500;  // 14 + 1500 = 1514 bytes claimed
    const Bytes f = ip_frame(ip);  // 84 bytes captured, valid header checksum

    // Control: the wire really carried 1514 bytes; the capture kept 84.
    {
        const auto [verdict, p] = run(f, LinkType::Ethernet, 1514);
        ASSERT_EQ(verdict, std::nullopt);
        EXPECT_TRUE(p.truncated_by_capture);
        EXPECT_EQ(p.payload_length, 1440u);
        EXPECT_EQ(p.payload_captured, 10u);
    }
    // The wire frame was only 100 bytes: the IPv4 header lies.
    {
        const auto [verdict, p] = run(f, LinkType::Ethernet, 100);
        EXPECT_EQ(verdict, std::optional{DropReason::Ipv4BadTotalLength})
            << "accepted with payload_length=" << p.payload_length;
    }
}

// An IPv4 datagram too short to hold a TCP header (total length 30: 10 bytes
// of "TCP"). Fully captured, so this is invalid, not truncated, and the
// verdict must not depend on whether the NIC appended Ethernet padding.
TEST(ParserContract, TcpHeaderPastIpEndIsInvalidWithOrWithoutPadding) {
    Bytes l4 = tcp(TcpSpec{});
    l4.resize(10);  // ports, seq and half the ack
    const Bytes exact = ethernet({}, ipv4({}, l4));  // 44 bytes, total length 30
    EthSpec padded_spec;
    padded_spec.pad_to = 60;
    const Bytes padded = ethernet(padded_spec, ipv4({}, l4));
    ASSERT_EQ(exact.size(), 44u);

    const Verdict with_padding = run(padded).verdict;
    const Verdict without_padding = run(exact).verdict;
    ASSERT_TRUE(with_padding.has_value());
    ASSERT_TRUE(without_padding.has_value());
    EXPECT_EQ(*with_padding, DropReason::TcpBadDataOffset);
    EXPECT_EQ(*without_padding, *with_padding) << "same datagram, verdict changed by padding";
    EXPECT_EQ(category_of(*without_padding), DropCategory::Invalid)
        << name_of(*without_padding) << " on a frame the capture holds whole";
}

// ---------------------------------------------------------------------------
// Counters and names.
// ---------------------------------------------------------------------------

TEST(ParseCountersTest, RecordsByKindAndReason) {
    ParseCounters c;
    const auto record_frame = [&](const Bytes& f, std::optional<std::uint32_t> wire = std::nullopt) {
        const auto [verdict, p] = run(f, LinkType::Ethernet, wire);
        if (verdict)
            c.record(*verdict);
        else
            c.record(p);
    };
    record_frame(tcp_frame());
    record_frame(tcp_frame());
    record_frame(icmp_echo_frame());
    record_frame(arp_frame());
    Ipv4Spec frag;
    frag.mf = true;
    record_frame(ip_frame(frag));  // OtherIpv4, fragment
    Ipv4Spec with_opts;
    with_opts.options = {1, 1, 1, 0};
    record_frame(ip_frame(with_opts));  // Tcp, options
    const Bytes full = tcp_frame();
    record_frame(Bytes(full.begin(), full.begin() + 80), 84);               // snaplen cut
    record_frame(Bytes(5, 0));                                              // link truncated
    record_frame(tcp_with_options(Bytes{2, 3, 1, 1}));                      // bad option
    record_frame(tcp_with_options(Bytes{3, 2, 1, 1}));                      // bad option

    EXPECT_EQ(c.frames, 10u);
    EXPECT_EQ(c.kind(PacketKind::Tcp), 4u);
    EXPECT_EQ(c.kind(PacketKind::IcmpEcho), 1u);
    EXPECT_EQ(c.kind(PacketKind::Icmp), 0u);
    EXPECT_EQ(c.kind(PacketKind::Arp), 1u);
    EXPECT_EQ(c.kind(PacketKind::OtherIpv4), 1u);
    EXPECT_EQ(c.kind(PacketKind::NotIpv4), 0u);
    EXPECT_EQ(c.fragments, 1u);
    EXPECT_EQ(c.ipv4_with_options, 1u);
    EXPECT_EQ(c.truncated_by_capture, 1u);
    EXPECT_EQ(c.dropped[static_cast<std::size_t>(DropReason::LinkTruncated)], 1u);
    EXPECT_EQ(c.dropped[static_cast<std::size_t>(DropReason::TcpBadOption)], 2u);
    EXPECT_EQ(c.malformed(), 3u);
}

TEST(ParseCountersTest, MalformedSumsEveryReason) {
    ParseCounters c;
    for (std::size_t i = 0; i < kDropReasonCount; ++i)
        for (std::size_t k = 0; k <= i; ++k) c.record(static_cast<DropReason>(i));
    const std::uint64_t expected = kDropReasonCount * (kDropReasonCount + 1) / 2;
    EXPECT_EQ(c.malformed(), expected);
    EXPECT_EQ(c.frames, expected);
    for (std::size_t i = 0; i < kDropReasonCount; ++i) EXPECT_EQ(c.dropped[i], i + 1) << i;
    for (auto n : c.by_kind) EXPECT_EQ(n, 0u);
}

TEST(DropReasonNames, SnakeCaseCheckerRejectsNonSnakeCase) {
    EXPECT_TRUE(is_snake_case("tcp_bad_option"));
    EXPECT_TRUE(is_snake_case("ipv4_truncated"));
    for (std::string_view bad : {"", "Tcp", "tcp__bad", "_tcp", "tcp_", "tcp-bad", "tcp bad", "1tcp"})
        EXPECT_FALSE(is_snake_case(bad)) << bad;
}

TEST(DropReasonNames, UniqueSnakeCaseAndCategoryFollowsName) {
    std::set<std::string_view> seen;
    int truncated = 0;
    for (std::size_t i = 0; i < kDropReasonCount; ++i) {
        const auto r = static_cast<DropReason>(i);
        const std::string_view name = name_of(r);
        EXPECT_NE(name, "unknown") << i;
        EXPECT_TRUE(is_snake_case(name)) << name;
        EXPECT_TRUE(seen.insert(name).second) << "duplicate " << name;
        expect_category_matches_name(r);
        if (category_of(r) == DropCategory::Truncated) ++truncated;
    }
    EXPECT_EQ(seen.size(), kDropReasonCount);
    EXPECT_EQ(truncated, 6);
    EXPECT_EQ(category_of(DropReason::VlanTooDeep), DropCategory::Invalid);
    EXPECT_EQ(category_of(DropReason::Ipv4BadChecksum), DropCategory::Invalid);
    EXPECT_EQ(category_of(DropReason::TcpBadOption), DropCategory::Invalid);
    EXPECT_EQ(category_of(DropReason::ArpTruncated), DropCategory::Truncated);
}

TEST(PacketKindNames, UniqueSnakeCase) {
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < ParseCounters{}.by_kind.size(); ++i) {
        const std::string_view name = name_of(static_cast<PacketKind>(i));
        EXPECT_NE(name, "unknown") << i;
        EXPECT_TRUE(is_snake_case(name)) << name;
        EXPECT_TRUE(seen.insert(name).second) << "duplicate " << name;
    }
}

// ---------------------------------------------------------------------------
// Robustness: random and mutated input through every link type. ASan/UBSan
// catch out-of-bounds reads (inputs sit in exact-size heap blocks); the
// invariants catch offsets that point outside the frame.
// ---------------------------------------------------------------------------

constexpr LinkType kAllLinks[] = {LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2,
                                  LinkType::RawIp, LinkType::Null};

::testing::AssertionResult invariants_hold(const Bytes& f, std::uint32_t wire, LinkType link) {
    const auto [verdict, p] = run(f.data(), f.size(), wire, link);
    auto fail = [&]() {
        ::testing::AssertionResult r = ::testing::AssertionFailure();
        r << "link=" << static_cast<int>(link) << " size=" << f.size() << " wire=" << wire
          << " bytes=";
        for (auto b : f) r << std::hex << static_cast<int>(b) << ' ';
        return r;
    };
    if (verdict) {
        if (static_cast<std::size_t>(*verdict) >= kDropReasonCount) return fail() << " bad reason";
        return ::testing::AssertionSuccess();
    }
    const std::size_t n = f.size();
    const Layout& l = p.layout;
    if (l.l3 > n || l.l4 > n || l.payload > n) return fail() << " layout outside frame";
    if (p.truncated_by_capture != (wire > n)) return fail() << " truncated flag";
    switch (p.kind) {
        case PacketKind::Tcp: {
            if (l.l4 != l.l3 + p.ip.header_length) return fail() << " l4";
            if (l.payload != l.l4 + p.tcp.header_length) return fail() << " payload";
            if (p.tcp.header_length < 20 || p.tcp.header_length > 60) return fail() << " thl";
            const TcpOptions& o = p.tcp.options;
            auto in_opts = [&](std::uint16_t off, std::size_t len) {
                return off == 0 || (off >= l.l4 + 20 && off + len <= l.payload);
            };
            if (!in_opts(o.mss_offset, 2) || !in_opts(o.wscale_offset, 1) ||
                !in_opts(o.ts_offset, 8) || !in_opts(o.sack_offset, 8u * o.sack_count))
                return fail() << " option offset";
            if (o.mss.has_value() != (o.mss_offset != 0)) return fail() << " mss offset";
            if (o.sack_count > 4) return fail() << " sack count";
            [[fallthrough]];
        }
        case PacketKind::IcmpEcho:
        case PacketKind::Icmp:
            if (p.kind != PacketKind::Tcp && l.payload != l.l4 + 8) return fail() << " icmp";
            if (l.l3 + p.ip.header_length > n) return fail() << " ip header";
            if (p.payload_captured > p.payload_length) return fail() << " captured > length";
            if (p.payload_captured > n - l.payload) return fail() << " captured > frame";
            if (!p.truncated_by_capture && p.payload_captured != p.payload_length)
                return fail() << " short payload on full capture";
            if (l.l3 + std::size_t{p.ip.total_length} != l.payload + p.payload_length)
                return fail() << " payload_length vs total_length";
            break;
        case PacketKind::OtherIpv4:
            if (l.l3 + p.ip.header_length > n) return fail() << " ip header";
            break;
        case PacketKind::Arp:
            if (l.l3 + 28u > n) return fail() << " arp body";
            break;
        case PacketKind::NotIpv4:
            break;
    }
    return ::testing::AssertionSuccess();
}

TEST(ParserRobustness, RandomBytesThroughEveryLinkType) {
    std::mt19937 rng(0x6d696777);  // "migw"
    std::uniform_int_distribution<std::size_t> len(0, 200);
    std::size_t decoded = 0;
    for (int i = 0; i < 200000; ++i) {
        Bytes f(len(rng));
        for (auto& b : f) b = static_cast<std::uint8_t>(rng());
        // Bias some inputs towards deeper layers: a plausible IPv4 start.
        if (i % 4 == 1 && f.size() > 20) f[14] = 0x45, f[12] = 0x08, f[13] = 0x00;
        const auto wire = static_cast<std::uint32_t>(f.size() + (rng() % 3 == 0 ? rng() % 100 : 0));
        for (LinkType link : kAllLinks) {
            ASSERT_TRUE(invariants_hold(f, wire, link));
            decoded += run(f.data(), f.size(), wire, link).verdict ? 0 : 1;
        }
    }
    EXPECT_GT(decoded, 0u);  // the harness is not just exercising drops
}

TEST(ParserRobustness, MutatedValidFrames) {
    struct Seed {
        Bytes bytes;
        LinkType link;
    };
    const std::vector<Seed> seeds = {
        {tcp_frame(), LinkType::Ethernet},
        {vlan_tcp_frame(), LinkType::Ethernet},
        {icmp_echo_frame(), LinkType::Ethernet},
        {arp_frame(), LinkType::Ethernet},
        {tcp_with_options(cat({opt::nop(2), opt::sack({{1, 2}, {3, 4}, {5, 6}, {7, 8}})})),
         LinkType::Ethernet},
        {sll(kEtherIpv4, tcp_l3()), LinkType::LinuxSll},
        {sll2(kEtherIpv4, tcp_l3()), LinkType::LinuxSll2},
        {null_link(2, true, tcp_l3()), LinkType::Null},
        {tcp_l3(), LinkType::RawIp},
    };
    std::mt19937 rng(12345);
    std::size_t tcp_decoded = 0;
    for (int i = 0; i < 20000; ++i) {
        const Seed& s = seeds[rng() % seeds.size()];
        Bytes f = s.bytes;
        const int mutations = 1 + static_cast<int>(rng() % 3);
        for (int m = 0; m < mutations; ++m) f[rng() % f.size()] = static_cast<std::uint8_t>(rng());
        if (rng() % 4 == 0) f.resize(rng() % (f.size() + 1));
        const auto wire = static_cast<std::uint32_t>(
            rng() % 2 ? s.bytes.size() : f.size());  // snaplen cut or short frame
        for (LinkType link : kAllLinks) ASSERT_TRUE(invariants_hold(f, wire, link));
        const auto [verdict, p] = run(f.data(), f.size(), wire, s.link);
        if (!verdict && p.kind == PacketKind::Tcp) ++tcp_decoded;
    }
    EXPECT_GT(tcp_decoded, 1000u);  // most mutations keep a decodable TCP frame
}

}  // namespace
}  // namespace migware::sniffer

