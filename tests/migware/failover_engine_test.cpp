// FailoverEngine end to end with fake links, a memory event sink and time
// passed in: Normal (track) -> Recovery (twin handshake into the backup's
// stack) -> Proxy (translate both ways), DESIGN.md §2-3.
//
// Every frame is built here from scratch (Ethernet + IPv4 + TCP with Linux's
// option layouts, checksums computed naively), and every packet the engine
// emits is decoded here by a separate, naive decoder, so neither side of a
// check goes through sniffer/ or rewrite/.

#include "migware/failover.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "migware/event_log.hpp"
#include "migware/state_machine.hpp"
#include "sniffer/packet_source.hpp"

namespace migware {
namespace {

using Bytes = std::vector<std::byte>;
using Mac = std::array<std::uint8_t, 6>;
using Block = std::pair<std::uint32_t, std::uint32_t>;
namespace flag = sniffer::tcp_flag;

constexpr MonoNs kMs = monitor::kMillisecond;

constexpr std::uint32_t ip4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return (std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d;
}

// ---- the lab ---------------------------------------------------------------

constexpr std::uint32_t kClientIp = ip4(198, 18, 0, 10);
constexpr std::uint32_t kPrimaryIp = ip4(198, 18, 0, 1);
constexpr std::uint32_t kBackupIp = ip4(198, 18, 0, 2);
constexpr std::uint32_t kOtherClient = ip4(198, 18, 0, 11);  // same source port, other host
constexpr std::uint16_t kClientPort = 40000;
constexpr std::uint16_t kService = 7000;
constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
constexpr Mac kPrimaryMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr Mac kBackupMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// C<->P. The client's ISN is close to 2^32 so sequence numbers wrap during
// the test; window scale shifts differ on all three stacks so that a wrong
// shift anywhere changes a number.
constexpr std::uint32_t kIsnC = 0xffffff00u;
constexpr std::uint32_t kIsnP = 0x20000000u;
constexpr std::uint32_t kTsC = 5000;     // client TSval at the SYN
constexpr std::uint32_t kTsP = 900000;   // primary TSval at the SYN-ACK
constexpr std::uint8_t kWsC = 7;
constexpr std::uint8_t kWsP = 9;
constexpr std::uint16_t kMssC = 1460;
constexpr std::uint16_t kMssP = 1400;

// What the tracker has seen by the time the primary dies (see run_normal()).
constexpr std::uint32_t kA = kIsnC + 101;        // highest ACK from P
constexpr std::uint32_t kK = kIsnP + 301;        // highest ACK from C
constexpr std::uint32_t kClientEnd = kIsnC + 181;  // one past the client's highest byte
constexpr std::uint32_t kClientTsLatest = kTsC + 5;
constexpr std::uint32_t kPrimaryTsLast = kTsP + 10;
constexpr std::uint16_t kClientWindow = 501;     // raw, last one the client sent

// The backup's twin SYN-ACK.
constexpr std::uint32_t kIsnB = 0x7a000000u;
constexpr std::uint32_t kTsB0 = 123456;
constexpr std::uint8_t kWsB = 10;

// Offsets DESIGN.md §3 prescribes for the numbers above.
constexpr std::uint32_t kD1 = 0;
constexpr std::uint32_t kD2 = (kIsnB + 1) - kK;
constexpr std::uint32_t kDts = (kPrimaryTsLast + 1) - kTsB0;

// ---- a naive frame builder -------------------------------------------------

void put8(Bytes& b, std::uint8_t v) { b.push_back(std::byte{v}); }
void put16(Bytes& b, std::uint16_t v) {
    put8(b, static_cast<std::uint8_t>(v >> 8));
    put8(b, static_cast<std::uint8_t>(v));
}
void put32(Bytes& b, std::uint32_t v) {
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}
void put_mac(Bytes& b, const Mac& m) {
    for (auto x : m) put8(b, x);
}
std::uint8_t get8(std::span<const std::byte> b, std::size_t at) {
    return std::to_integer<std::uint8_t>(b[at]);
}
std::uint16_t get16(std::span<const std::byte> b, std::size_t at) {
    return static_cast<std::uint16_t>((get8(b, at) << 8) | get8(b, at + 1));
}
std::uint32_t get32(std::span<const std::byte> b, std::size_t at) {
    return (std::uint32_t{get16(b, at)} << 16) | get16(b, at + 2);
}
void poke16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = std::byte{static_cast<std::uint8_t>(v >> 8)};
    b[at + 1] = std::byte{static_cast<std::uint8_t>(v)};
}

/// RFC 1071 the slow way: 16-bit words, end-around carry after every add.
std::uint16_t naive_checksum(std::span<const std::byte> data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < data.size(); i += 2) {
        std::uint32_t word = std::uint32_t{get8(data, i)} << 8;
        if (i + 1 < data.size()) word |= get8(data, i + 1);
        sum += word;
        if (sum > 0xffff) sum = (sum & 0xffff) + 1;
    }
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

Bytes tcp_pseudo_and_segment(std::uint32_t src, std::uint32_t dst, std::span<const std::byte> seg) {
    Bytes all;
    put32(all, src);
    put32(all, dst);
    put8(all, 0);
    put8(all, 6);
    put16(all, static_cast<std::uint16_t>(seg.size()));
    all.insert(all.end(), seg.begin(), seg.end());
    return all;
}

struct Seg {
    std::uint32_t src_ip = 0, dst_ip = 0;
    std::uint16_t sport = 0, dport = 0;
    std::uint32_t seq = 0, ack = 0;
    std::uint8_t flags = flag::kAck;
    std::uint16_t window = 0;
    std::optional<std::uint16_t> mss;
    bool sack_perm = false;
    std::optional<Block> ts;  // TSval, TSecr
    std::optional<std::uint8_t> ws;
    std::vector<Block> sack;
    Bytes payload;
    std::uint16_t ip_id = 0x1234;
    std::uint8_t ttl = 64;
};

/// IPv4 + TCP, options in Linux's layouts, correct checksums.
Bytes ip_packet(const Seg& s) {
    Bytes opt;
    if (s.mss) {
        put8(opt, 2);
        put8(opt, 4);
        put16(opt, *s.mss);
    }
    if (s.ts) {
        if (s.sack_perm) {
            put8(opt, 4);
            put8(opt, 2);
        } else {
            put8(opt, 1);
            put8(opt, 1);
        }
        put8(opt, 8);
        put8(opt, 10);
        put32(opt, s.ts->first);
        put32(opt, s.ts->second);
    } else if (s.sack_perm) {
        put8(opt, 1);
        put8(opt, 1);
        put8(opt, 4);
        put8(opt, 2);
    }
    if (s.ws) {
        put8(opt, 1);
        put8(opt, 3);
        put8(opt, 3);
        put8(opt, *s.ws);
    }
    if (!s.sack.empty()) {
        put8(opt, 1);
        put8(opt, 1);
        put8(opt, 5);
        put8(opt, static_cast<std::uint8_t>(2 + 8 * s.sack.size()));
        for (const auto& [l, r] : s.sack) {
            put32(opt, l);
            put32(opt, r);
        }
    }
    while (opt.size() % 4) put8(opt, 0);
    const std::size_t tcp_len = 20 + opt.size() + s.payload.size();
    Bytes p;
    put8(p, 0x45);
    put8(p, 0);
    put16(p, static_cast<std::uint16_t>(20 + tcp_len));
    put16(p, s.ip_id);
    put16(p, 0x4000);
    put8(p, s.ttl);
    put8(p, 6);
    put16(p, 0);
    put32(p, s.src_ip);
    put32(p, s.dst_ip);
    poke16(p, 10, naive_checksum(std::span(p).first(20)));
    put16(p, s.sport);
    put16(p, s.dport);
    put32(p, s.seq);
    put32(p, s.ack);
    put8(p, static_cast<std::uint8_t>(((20 + opt.size()) / 4) << 4));
    put8(p, s.flags);
    put16(p, s.window);
    put16(p, 0);
    put16(p, 0);
    p.insert(p.end(), opt.begin(), opt.end());
    p.insert(p.end(), s.payload.begin(), s.payload.end());
    const Bytes sum = tcp_pseudo_and_segment(s.src_ip, s.dst_ip, std::span(p).subspan(20));
    poke16(p, 36, naive_checksum(sum));
    return p;
}

/// Ethernet II around `l3`, padded to the 60-byte minimum like a real NIC.
Bytes eth_frame(const Mac& src, const Mac& dst, std::uint16_t type, const Bytes& l3) {
    Bytes f;
    put_mac(f, dst);
    put_mac(f, src);
    put16(f, type);
    f.insert(f.end(), l3.begin(), l3.end());
    while (f.size() < 60) put8(f, 0);
    return f;
}

Bytes arp_request(const Mac& sender_mac, std::uint32_t sender_ip, std::uint32_t target_ip) {
    Bytes a;
    put16(a, 1);
    put16(a, 0x0800);
    put8(a, 6);
    put8(a, 4);
    put16(a, 1);
    put_mac(a, sender_mac);
    put32(a, sender_ip);
    put_mac(a, Mac{});
    put32(a, target_ip);
    return eth_frame(sender_mac, kBroadcast, 0x0806, a);
}

Bytes payload_of(std::size_t n, std::uint8_t seed) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = std::byte{static_cast<std::uint8_t>(seed + i * 7)};
    return b;
}

Bytes concat(const Bytes& a, const Bytes& b) {
    Bytes out = a;
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

// ---- a naive decoder for what the engine emits ----------------------------

struct Decoded {
    bool has_eth = false;
    Mac eth_dst{}, eth_src{};
    std::uint16_t ethertype = 0;
    std::uint16_t ip_total = 0, ip_id = 0;
    std::uint8_t ttl = 0, proto = 0;
    std::uint32_t src_ip = 0, dst_ip = 0;
    std::uint16_t sport = 0, dport = 0;
    std::uint32_t seq = 0, ack = 0;
    std::uint8_t flags = 0;
    std::uint16_t window = 0;
    Bytes options;
    std::optional<std::uint16_t> mss;
    std::optional<std::uint8_t> ws;
    bool sack_perm = false;
    std::optional<Block> ts;
    std::vector<Block> sack;
    Bytes tcp_segment;  // header + payload
    Bytes payload;
    bool ip_checksum_ok = false;
    bool tcp_checksum_ok = false;
    std::size_t size = 0;
};

Decoded decode(std::span<const std::byte> b, bool eth) {
    Decoded d;
    d.size = b.size();
    std::size_t l3 = 0;
    if (eth) {
        d.has_eth = true;
        for (std::size_t i = 0; i < 6; ++i) {
            d.eth_dst[i] = get8(b, i);
            d.eth_src[i] = get8(b, 6 + i);
        }
        d.ethertype = get16(b, 12);
        l3 = 14;
    }
    const std::size_t ihl = (get8(b, l3) & 0xf) * 4u;
    d.ip_total = get16(b, l3 + 2);
    d.ip_id = get16(b, l3 + 4);
    d.ttl = get8(b, l3 + 8);
    d.proto = get8(b, l3 + 9);
    d.src_ip = get32(b, l3 + 12);
    d.dst_ip = get32(b, l3 + 16);
    d.ip_checksum_ok = naive_checksum(b.subspan(l3, ihl)) == 0;
    const std::size_t l4 = l3 + ihl;
    const std::size_t seg_len = d.ip_total - ihl;
    const auto seg = b.subspan(l4, seg_len);
    d.tcp_segment.assign(seg.begin(), seg.end());
    d.sport = get16(b, l4);
    d.dport = get16(b, l4 + 2);
    d.seq = get32(b, l4 + 4);
    d.ack = get32(b, l4 + 8);
    const std::size_t doff = (get8(b, l4 + 12) >> 4) * 4u;
    d.flags = get8(b, l4 + 13);
    d.window = get16(b, l4 + 14);
    d.options.assign(b.begin() + static_cast<std::ptrdiff_t>(l4 + 20),
                     b.begin() + static_cast<std::ptrdiff_t>(l4 + doff));
    for (std::size_t i = 0; i < d.options.size();) {
        const std::uint8_t kind = std::to_integer<std::uint8_t>(d.options[i]);
        if (kind == 0) break;
        if (kind == 1) {
            ++i;
            continue;
        }
        const std::uint8_t len = std::to_integer<std::uint8_t>(d.options[i + 1]);
        const std::span<const std::byte> o(d.options.data() + i, len);
        if (kind == 2) d.mss = get16(o, 2);
        if (kind == 3) d.ws = get8(o, 2);
        if (kind == 4) d.sack_perm = true;
        if (kind == 8) d.ts = Block{get32(o, 2), get32(o, 6)};
        if (kind == 5)
            for (std::size_t j = 2; j + 8 <= len; j += 8) d.sack.emplace_back(get32(o, j), get32(o, j + 4));
        i += len;
    }
    d.payload.assign(seg.begin() + static_cast<std::ptrdiff_t>(doff), seg.end());
    d.tcp_checksum_ok = naive_checksum(tcp_pseudo_and_segment(d.src_ip, d.dst_ip, seg)) == 0;
    return d;
}

/// The IPv4 frames among those sent (ARP left out).
std::vector<Bytes> ip_frames(const std::vector<Bytes>& frames) {
    std::vector<Bytes> out;
    for (const auto& f : frames)
        if (f.size() >= 14 && get16(f, 12) == 0x0800) out.push_back(f);
    return out;
}

/// An ARP frame as migware sends it: Ethernet from `eth_src`, no VLAN.
Bytes arp_frame(const Mac& eth_dst, const Mac& eth_src, std::uint16_t op, const Mac& sender_mac,
                std::uint32_t sender_ip, const Mac& target_mac, std::uint32_t target_ip) {
    Bytes f;
    put_mac(f, eth_dst);
    put_mac(f, eth_src);
    put16(f, 0x0806);
    put16(f, 1);
    put16(f, 0x0800);
    put8(f, 6);
    put8(f, 4);
    put16(f, op);
    put_mac(f, sender_mac);
    put32(f, sender_ip);
    put_mac(f, target_mac);
    put32(f, target_ip);
    return f;
}

// ---- fakes -----------------------------------------------------------------

class FakeBackupLink final : public BackupLink {
public:
    bool send_to_backup(std::span<const std::byte> ip_packet) override {
        sent.emplace_back(ip_packet.begin(), ip_packet.end());
        return accept;
    }
    std::vector<Bytes> sent;
    bool accept = true;
};

class FakeClientLink final : public ClientLink {
public:
    bool send_to_client(std::span<const std::byte> frame) override {
        sent.emplace_back(frame.begin(), frame.end());
        return accept;
    }
    std::vector<Bytes> sent;
    bool accept = true;
};

// ---- the fixture -----------------------------------------------------------

class FailoverEngineTest : public ::testing::Test {
protected:
    static FailoverConfig default_config() {
        FailoverConfig c;
        c.backup_mac = sniffer::MacAddr{kBackupMac};
        c.primary = Ipv4Addr{kPrimaryIp};
        c.backup = Ipv4Addr{kBackupIp};
        c.ports = {kService};
        c.table.servers = {Endpoint{Ipv4Addr{kPrimaryIp}, sniffer::Port{kService}}};
        return c;
    }

    void SetUp() override { make_engine(default_config()); }

    void make_engine(FailoverConfig c) {
        config_ = c;
        engine_ = std::make_unique<FailoverEngine>(std::move(c), backup_, client_, log_);
    }

    /// Feeds one captured frame at the current time, then advances 1 ms.
    void capture(const Bytes& frame) {
        const sniffer::RawFrame f{frame, static_cast<std::uint32_t>(frame.size()), now_};
        engine_->on_capture(f, sniffer::LinkType::Ethernet, now_);
        now_ += kMs;
    }
    void from_backup(const Bytes& ip) { engine_->on_backup_packet(ip, now_); }

    // C -> P and P -> C segments of the connection under test (or another
    // client port), as Ethernet frames on the hub.
    static Seg c2p(std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::uint32_t tsval,
                   std::uint32_t tsecr, std::uint16_t window = kClientWindow,
                   std::uint16_t port = kClientPort) {
        Seg s;
        s.src_ip = kClientIp;
        s.dst_ip = kPrimaryIp;
        s.sport = port;
        s.dport = kService;
        s.seq = seq;
        s.ack = ack;
        s.flags = flags;
        s.window = window;
        s.ts = Block{tsval, tsecr};
        return s;
    }
    static Seg p2c(std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::uint32_t tsval,
                   std::uint32_t tsecr, std::uint16_t port = kClientPort) {
        Seg s;
        s.src_ip = kPrimaryIp;
        s.dst_ip = kClientIp;
        s.sport = kService;
        s.dport = port;
        s.seq = seq;
        s.ack = ack;
        s.flags = flags;
        s.window = 500;
        s.ts = Block{tsval, tsecr};
        return s;
    }
    static Bytes from_client(const Seg& s) {
        return eth_frame(kClientMac, kPrimaryMac, 0x0800, ip_packet(s));
    }
    static Bytes from_primary(const Seg& s) {
        return eth_frame(kPrimaryMac, kClientMac, 0x0800, ip_packet(s));
    }

    /// Handshake, a request, a response (so K != ISNp + 1), and 80 client
    /// bytes the primary never acknowledges.
    void run_normal() {
        handshake();
        Seg req = c2p(kIsnC + 1, kIsnP + 1, flag::kAck | flag::kPsh, kTsC + 2, kTsP, 502);
        req.payload = payload_of(100, 1);
        capture(from_client(req));
        Seg resp = p2c(kIsnP + 1, kIsnC + 101, flag::kAck | flag::kPsh, kTsP + 10, kTsC + 2);
        resp.payload = payload_of(300, 2);
        capture(from_primary(resp));
        capture(from_client(c2p(kIsnC + 101, kK, flag::kAck, kTsC + 3, kTsP + 10, 502)));
        Seg d1 = c2p(kIsnC + 101, kK, flag::kAck | flag::kPsh, kTsC + 4, kTsP + 10, 502);
        d1.payload = unacked_part1();
        capture(from_client(d1));
        Seg d2 = c2p(kIsnC + 151, kK, flag::kAck | flag::kPsh, kTsC + 5, kTsP + 10, kClientWindow);
        d2.payload = unacked_part2();
        capture(from_client(d2));
    }
    /// SYN (MSS, SACK, TS, WS), SYN-ACK, ACK on C<->P.
    void handshake() {
        Seg syn = c2p(kIsnC, 0, flag::kSyn, kTsC, 0, 64240);
        syn.mss = kMssC;
        syn.sack_perm = true;
        syn.ws = kWsC;
        capture(from_client(syn));
        Seg synack = p2c(kIsnP, kIsnC + 1, flag::kSyn | flag::kAck, kTsP, kTsC);
        synack.window = 65160;
        synack.mss = kMssP;
        synack.sack_perm = true;
        synack.ws = kWsP;
        capture(from_primary(synack));
        capture(from_client(c2p(kIsnC + 1, kIsnP + 1, flag::kAck, kTsC + 1, kTsP, 502)));
    }
    static Bytes unacked_part1() { return payload_of(50, 3); }
    static Bytes unacked_part2() { return payload_of(30, 4); }
    static Bytes unacked() { return concat(unacked_part1(), unacked_part2()); }

    /// The backup's SYN-ACK for the twin SYN.
    static Seg backup_synack(std::uint32_t ack = kA, std::uint16_t mss = 1460) {
        Seg s;
        s.src_ip = kBackupIp;
        s.dst_ip = kPrimaryIp;
        s.sport = kService;
        s.dport = kClientPort;
        s.seq = kIsnB;
        s.ack = ack;
        s.flags = flag::kSyn | flag::kAck;
        s.window = 65160;
        s.mss = mss;
        s.sack_perm = true;
        s.ts = Block{kTsB0, kClientTsLatest};
        s.ws = kWsB;
        s.ip_id = 0;
        return s;
    }
    /// A segment from the backup on the twin (bare IP, as out of the TUN).
    static Seg b2t(std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::uint32_t tsval,
                   std::uint32_t tsecr, std::uint16_t window) {
        Seg s;
        s.src_ip = kBackupIp;
        s.dst_ip = kPrimaryIp;
        s.sport = kService;
        s.dport = kClientPort;
        s.seq = seq;
        s.ack = ack;
        s.flags = flags;
        s.window = window;
        s.ts = Block{tsval, tsecr};
        s.ip_id = 777;
        return s;
    }

    /// Normal traffic, primary_down, the backup's SYN-ACK: in Proxy.
    /// The primary is heard again in Proxy and its stale socket answers the
    /// fence's probe: reset once the classification window has passed.
    /// Returns when the round began.
    MonoNs fence_the_returning_primary() {
        const MonoNs round_start = now_;
        engine_->primary_heard(now_, "echo reply");
        capture(from_primary(p2c(kK, kA, flag::kAck, kTsP + 900, kTsC + 5)));
        engine_->on_timer(round_start + 150 * kMs);
        return round_start;
    }
    void reach_proxy() {
        run_normal();
        engine_->primary_down(now_, "4 consecutive echo probes unanswered");
        ASSERT_EQ(backup_.sent.size(), 1u);
        now_ += kMs;
        from_backup(ip_packet(backup_synack()));
        ASSERT_EQ(engine_->state(), State::Proxy);
        ASSERT_EQ(backup_.sent.size(), 3u);  // SYN, ACK, replayed bytes
        backup_.sent.clear();
        client_.sent.clear();
        now_ += kMs;
    }

    std::vector<MemorySink::Entry> events(const std::string& name) const {
        std::vector<MemorySink::Entry> out;
        for (const auto& e : log_.entries)
            if (e.event == name) out.push_back(e);
        return out;
    }
    std::uint64_t unrecovered(Unrecovered u) const {
        return engine_->counters().unrecovered[static_cast<std::size_t>(u)];
    }

    FailoverConfig config_;
    FakeBackupLink backup_;
    FakeClientLink client_;
    MemorySink log_;
    std::unique_ptr<FailoverEngine> engine_;
    MonoNs now_ = 1'000 * kMs;
};

// ---------------------------------------------------------------- state machine

TEST(StateMachineTest, NextStateTableForEveryStateAndEvent) {
    struct Row {
        State from;
        Event event;
        State to;
        bool changed;
    };
    const Row table[] = {
        {State::Normal, Event::PrimaryDown, State::Recovery, true},
        {State::Normal, Event::TwinsResolved, State::Normal, false},
        {State::Normal, Event::PrimaryAnswering, State::Normal, false},
        {State::Recovery, Event::PrimaryDown, State::Recovery, false},
        {State::Recovery, Event::TwinsResolved, State::Proxy, true},
        {State::Recovery, Event::PrimaryAnswering, State::Recovery, false},
        {State::Proxy, Event::PrimaryDown, State::Proxy, false},
        {State::Proxy, Event::TwinsResolved, State::Proxy, false},
        {State::Proxy, Event::PrimaryAnswering, State::Proxy, false},
        {State::Normal, Event::TakeoverRolledBack, State::Normal, false},
        {State::Recovery, Event::TakeoverRolledBack, State::Normal, true},
        {State::Proxy, Event::TakeoverRolledBack, State::Normal, true},
        {State::Normal, Event::StoodDown, State::Normal, false},
        {State::Recovery, Event::StoodDown, State::Normal, true},
        {State::Proxy, Event::StoodDown, State::Normal, true},
    };
    for (const auto& r : table) {
        const Transition t = next_state(r.from, r.event);
        EXPECT_EQ(t.to, r.to) << name_of(r.from) << " + " << name_of(r.event);
        EXPECT_EQ(t.changed, r.changed) << name_of(r.from) << " + " << name_of(r.event);
    }
    static_assert(next_state(State::Normal, Event::PrimaryDown).to == State::Recovery);
}

TEST(StateMachineTest, Names) {
    EXPECT_EQ(name_of(State::Normal), "normal");
    EXPECT_EQ(name_of(State::Recovery), "recovery");
    EXPECT_EQ(name_of(State::Proxy), "proxy");
    EXPECT_EQ(name_of(Event::PrimaryDown), "primary_down");
    EXPECT_EQ(name_of(Event::TwinsResolved), "twins_resolved");
    EXPECT_EQ(name_of(Event::PrimaryAnswering), "primary_answering");
    EXPECT_EQ(name_of(Event::TakeoverRolledBack), "takeover_rolled_back");
    EXPECT_EQ(name_of(Event::StoodDown), "stood_down");
}

TEST_F(FailoverEngineTest, NormalTracksAndSendsNothing) {
    run_normal();
    EXPECT_EQ(engine_->state(), State::Normal);
    EXPECT_TRUE(backup_.sent.empty());
    EXPECT_TRUE(client_.sent.empty());
    EXPECT_TRUE(log_.entries.empty());
    // Normal's only timer is the table's expiry sweep, once a second; it sends nothing.
    engine_->on_timer(now_);
    EXPECT_EQ(engine_->next_deadline(), now_ + 1'000 * kMs);
    EXPECT_TRUE(backup_.sent.empty());
    EXPECT_TRUE(client_.sent.empty());
    const auto* c = engine_->pipeline().table().find(
        {{Ipv4Addr{kClientIp}, sniffer::Port{kClientPort}}, {Ipv4Addr{kPrimaryIp}, sniffer::Port{kService}}});
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->server_ack_high);
    EXPECT_EQ(c->server_ack_high->raw(), kA);
    ASSERT_TRUE(c->client_ack_high);
    EXPECT_EQ(c->client_ack_high->raw(), kK);
}

TEST_F(FailoverEngineTest, PassiveSignalFollowsThePrimarysLastPacketAndClientRetransmissions) {
    EXPECT_FALSE(engine_->passive_signal().last_primary_packet);
    run_normal();
    // The primary's last segment was the response, 5th frame (t0 + 4 ms).
    const auto sig = engine_->passive_signal();
    ASSERT_TRUE(sig.last_primary_packet);
    EXPECT_EQ(*sig.last_primary_packet, 1'000 * kMs + 4 * kMs);
    EXPECT_EQ(sig.client_retransmissions, 0u);
    // The client retransmits its unacknowledged bytes twice.
    Seg again = c2p(kIsnC + 101, kK, flag::kAck | flag::kPsh, kTsC + 9, kTsP + 10);
    again.payload = unacked_part1();
    capture(from_client(again));
    capture(from_client(again));
    EXPECT_EQ(engine_->passive_signal().client_retransmissions, 2u);
    EXPECT_EQ(*engine_->passive_signal().last_primary_packet, 1'000 * kMs + 4 * kMs);
}

TEST_F(FailoverEngineTest, ATwinNeverTakesAPortThisHostAlreadyHoldsTowardThePrimary) {
    // A migware killed while active left its twins' sockets in the replica:
    // (IPp, 40000) is taken in the backup's kernel. The twin's SYN must come
    // from another port, or it would meet that socket and get no SYN-ACK.
    run_normal();
    engine_->primary_down(now_, "down", {kClientPort});
    ASSERT_EQ(backup_.sent.size(), 1u);
    const auto& syn = backup_.sent[0];
    ASSERT_GE(syn.size(), 40u);
    const std::uint16_t src_port = static_cast<std::uint16_t>(std::to_integer<int>(syn[20]) << 8 | std::to_integer<int>(syn[21]));
    EXPECT_NE(src_port, kClientPort);
    EXPECT_EQ(src_port, kClientPort + 1);
    ASSERT_EQ(events("twin_ports_avoided").size(), 1u);
    EXPECT_NE(events("twin_ports_avoided")[0].fields.find("sockets=1"), std::string::npos);
}

TEST_F(FailoverEngineTest, TransitionsNormalRecoveryProxyAreLogged) {
    run_normal();
    const MonoNs down_at = now_;
    engine_->primary_down(down_at, "4 consecutive echo probes unanswered");
    EXPECT_EQ(engine_->state(), State::Recovery);
    EXPECT_EQ(engine_->state_since(), down_at);
    EXPECT_EQ(engine_->twins_in(TwinPhase::SynSent), 1u);
    auto tr = events("transition");
    ASSERT_EQ(tr.size(), 1u);
    EXPECT_EQ(tr[0].mono_ns, down_at);
    EXPECT_EQ(tr[0].fields,
              "from=normal to=recovery cause=primary_down reason=\"4 consecutive echo probes "
              "unanswered\"");
    auto start = events("recovery_start");
    ASSERT_EQ(start.size(), 1u);
    EXPECT_EQ(start[0].fields,
              "twins=1 handshake_incomplete=0 handshake_unseen=0 closing=0 no_synack=0 "
              "backup_refused=0 reply_lost=0 reply_not_seen_whole=0 request_unanswered=0 replay_incomplete=0 restored=0 inferred=0 gone_before_failure=0 "
              "expired_before_failure=0");

    now_ = down_at + 2 * kMs;
    from_backup(ip_packet(backup_synack()));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->state_since(), down_at + 2 * kMs);
    EXPECT_EQ(engine_->recovery_duration(), 2 * kMs);
    EXPECT_EQ(engine_->twins_in(TwinPhase::Up), 1u);
    tr = events("transition");
    ASSERT_EQ(tr.size(), 2u);
    EXPECT_EQ(tr[1].mono_ns, down_at + 2 * kMs);
    EXPECT_EQ(tr[1].fields,
              "from=recovery to=proxy cause=twins_resolved reason=\"1 of 1 twins established, 0 "
              "failed, in 2000 us\"");

    // A second verdict changes nothing.
    engine_->primary_down(now_, "again");
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(events("transition").size(), 2u);
    EXPECT_EQ(engine_->counters().syn_sent, 1u);
}

TEST_F(FailoverEngineTest, NoConnectionsGoesStraightToProxy) {
    engine_->primary_down(now_, "down");
    EXPECT_EQ(engine_->state(), State::Proxy);
    const auto tr = events("transition");
    ASSERT_EQ(tr.size(), 2u);
    EXPECT_EQ(tr[0].fields.rfind("from=normal to=recovery cause=primary_down", 0), 0u);
    EXPECT_EQ(tr[1].fields.rfind("from=recovery to=proxy cause=twins_resolved", 0), 0u);
    EXPECT_TRUE(backup_.sent.empty());
}

TEST_F(FailoverEngineTest, PrimaryUpInNormalIsOnlyLogged) {
    engine_->primary_up(now_, "echo reply, rtt 300 us");
    EXPECT_EQ(engine_->state(), State::Normal);
    ASSERT_EQ(log_.entries.size(), 1u);
    EXPECT_EQ(log_.entries[0].event, "primary_up");
    EXPECT_EQ(log_.entries[0].fields, "reason=\"echo reply, rtt 300 us\"");
}

TEST_F(FailoverEngineTest, PrimaryUpInProxyLogsPrimaryAnsweringAndKeepsProxying) {
    FailoverConfig cfg = default_config();
    cfg.fence_returning_primary = false;  // fencing has its own tests below
    make_engine(cfg);
    reach_proxy();
    const auto transitions_before = events("transition").size();
    engine_->primary_up(now_, "echo reply, rtt 300 us");
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(events("transition").size(), transitions_before);
    const auto pa = events("primary_answering");
    ASSERT_EQ(pa.size(), 1u);
    EXPECT_EQ(pa[0].fields,
              "state=proxy reason=\"echo reply, rtt 300 us\" action=\"keep serving the twins; "
              "new connections stay with the backup (no automatic fail-back)\"");

    // Still proxying, both ways.
    Seg s = c2p(kClientEnd, kK, flag::kAck | flag::kPsh, kTsC + 20, kTsP + 10);
    s.payload = payload_of(10, 9);
    capture(from_client(s));
    ASSERT_EQ(backup_.sent.size(), 1u);
    EXPECT_EQ(decode(backup_.sent[0], false).seq, kClientEnd + kD1);
    from_backup(ip_packet(b2t(kIsnB + 1, kClientEnd + 10, flag::kAck, kTsB0 + 5, kTsC + 20, 100)));
    ASSERT_EQ(client_.sent.size(), 1u);
    EXPECT_EQ(decode(client_.sent[0], true).seq, kK);

    // The primary's own TCP on the wire is counted, logged once, never forwarded.
    capture(from_primary(p2c(kK, kClientEnd, flag::kAck, kTsP + 50, kTsC + 20)));
    capture(from_primary(p2c(kK, kClientEnd, flag::kAck, kTsP + 51, kTsC + 20)));
    EXPECT_EQ(engine_->counters().primary_packets_in_proxy, 2u);
    EXPECT_EQ(events("primary_tcp_seen").size(), 1u);
    EXPECT_EQ(backup_.sent.size(), 1u);
    EXPECT_EQ(client_.sent.size(), 1u);
    EXPECT_EQ(engine_->state(), State::Proxy);
}

// ---------------------------------------------------------------- twin handshake

TEST_F(FailoverEngineTest, TwinSynHasSeqAMinusOneAndTheClientsOptions) {
    run_normal();
    engine_->primary_down(now_, "down");
    ASSERT_EQ(backup_.sent.size(), 1u);
    const Decoded syn = decode(backup_.sent[0], false);
    EXPECT_EQ(syn.src_ip, kPrimaryIp);
    EXPECT_EQ(syn.dst_ip, kBackupIp);
    EXPECT_EQ(syn.sport, kClientPort);
    EXPECT_EQ(syn.dport, kService);
    EXPECT_EQ(syn.proto, 6);
    EXPECT_EQ(syn.ip_total, syn.size);
    EXPECT_EQ(syn.seq, kA - 1);
    EXPECT_EQ(syn.ack, 0u);
    EXPECT_EQ(syn.flags, flag::kSyn);
    EXPECT_EQ(syn.window, 65535);
    EXPECT_EQ(syn.mss, kMssC);
    EXPECT_TRUE(syn.sack_perm);
    ASSERT_TRUE(syn.ts);
    EXPECT_EQ(syn.ts->first, kClientTsLatest);
    EXPECT_EQ(syn.ts->second, 0u);
    EXPECT_EQ(syn.ws, kWsC);
    EXPECT_TRUE(syn.payload.empty());
    EXPECT_TRUE(syn.ip_checksum_ok);
    EXPECT_TRUE(syn.tcp_checksum_ok);
    EXPECT_EQ(engine_->counters().syn_sent, 1u);
    EXPECT_EQ(engine_->counters().twins, 1u);
    EXPECT_EQ(engine_->next_deadline(), now_ + config_.syn_rto);
}

TEST_F(FailoverEngineTest, SynAckIsAckedAndUnackedClientBytesReplayedAtOnce) {
    run_normal();
    engine_->primary_down(now_, "down");
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(backup_.sent.size(), 3u);

    const Decoded ack = decode(backup_.sent[1], false);
    EXPECT_EQ(ack.src_ip, kPrimaryIp);
    EXPECT_EQ(ack.dst_ip, kBackupIp);
    EXPECT_EQ(ack.sport, kClientPort);
    EXPECT_EQ(ack.dport, kService);
    EXPECT_EQ(ack.flags, flag::kAck);
    EXPECT_EQ(ack.seq, kA);
    EXPECT_EQ(ack.ack, kIsnB + 1);
    ASSERT_TRUE(ack.ts);
    EXPECT_EQ(ack.ts->first, kClientTsLatest);
    EXPECT_EQ(ack.ts->second, kTsB0);
    EXPECT_EQ(ack.window, kClientWindow);  // B accepted WSc: the raw window means the same
    EXPECT_TRUE(ack.payload.empty());
    EXPECT_TRUE(ack.ip_checksum_ok);
    EXPECT_TRUE(ack.tcp_checksum_ok);

    const Decoded data = decode(backup_.sent[2], false);
    EXPECT_EQ(data.src_ip, kPrimaryIp);
    EXPECT_EQ(data.dst_ip, kBackupIp);
    EXPECT_EQ(data.sport, kClientPort);
    EXPECT_EQ(data.dport, kService);
    EXPECT_EQ(data.flags, flag::kAck | flag::kPsh);
    EXPECT_EQ(data.seq, kA);
    EXPECT_EQ(data.ack, kIsnB + 1);
    ASSERT_TRUE(data.ts);
    EXPECT_EQ(data.ts->first, kClientTsLatest);
    EXPECT_EQ(data.ts->second, kTsB0);
    EXPECT_EQ(data.payload, unacked());  // exactly [A, client's highest seq)
    EXPECT_EQ(kA + data.payload.size(), kClientEnd);
    EXPECT_TRUE(data.ip_checksum_ok);
    EXPECT_TRUE(data.tcp_checksum_ok);

    const auto& k = engine_->counters();
    EXPECT_EQ(k.recovered, 1u);
    EXPECT_EQ(k.replayed_bytes, 80u);
    EXPECT_EQ(k.replay_incomplete, 0u);
    EXPECT_EQ(k.send_errors, 0u);
    // Toward the client only the takeover's gratuitous ARP, nothing of the twin.
    ASSERT_EQ(client_.sent.size(), 1u);
    EXPECT_EQ(get16(client_.sent[0], 12), 0x0806);
    EXPECT_EQ(engine_->next_deadline(), std::numeric_limits<MonoNs>::max());
}

TEST_F(FailoverEngineTest, ReplayIsCutIntoSegmentsOfTheSmallerMss) {
    run_normal();
    engine_->primary_down(now_, "down");
    from_backup(ip_packet(backup_synack(kA, 48)));  // B's MSS below the client's
    ASSERT_EQ(backup_.sent.size(), 4u);
    const Decoded first = decode(backup_.sent[2], false);
    const Decoded second = decode(backup_.sent[3], false);
    EXPECT_EQ(first.seq, kA);
    EXPECT_EQ(first.payload.size(), 48u);
    EXPECT_EQ(second.seq, kA + 48);
    EXPECT_EQ(second.payload.size(), 32u);
    EXPECT_EQ(concat(first.payload, second.payload), unacked());
    EXPECT_TRUE(second.tcp_checksum_ok);
    EXPECT_EQ(engine_->counters().replayed_bytes, 80u);
}

TEST_F(FailoverEngineTest, NothingToReplayWhenThePrimaryAckedEverything) {
    run_normal();
    // The primary acknowledges the 80 bytes before it dies.
    capture(from_primary(p2c(kK, kClientEnd, flag::kAck, kTsP + 11, kTsC + 5)));
    engine_->primary_down(now_, "down");
    const Decoded syn = decode(backup_.sent[0], false);
    EXPECT_EQ(syn.seq, kClientEnd - 1);
    Seg sa = backup_synack(kClientEnd);
    from_backup(ip_packet(sa));
    ASSERT_EQ(backup_.sent.size(), 2u);  // SYN, ACK: nothing to replay
    EXPECT_EQ(decode(backup_.sent[1], false).seq, kClientEnd);
    EXPECT_EQ(engine_->counters().replayed_bytes, 0u);
    EXPECT_EQ(engine_->state(), State::Proxy);
}

TEST_F(FailoverEngineTest, SynAckWithTheWrongAckIsIgnored) {
    run_normal();
    engine_->primary_down(now_, "down");
    from_backup(ip_packet(backup_synack(kA + 1)));
    EXPECT_EQ(engine_->state(), State::Recovery);
    EXPECT_EQ(engine_->twins_in(TwinPhase::SynSent), 1u);
    EXPECT_EQ(backup_.sent.size(), 1u);
    from_backup(ip_packet(backup_synack()));
    EXPECT_EQ(engine_->state(), State::Proxy);
}

TEST_F(FailoverEngineTest, LostSynAckSynIsRetransmittedAtTheDeadline) {
    run_normal();
    const MonoNs t0 = now_;
    engine_->primary_down(t0, "down");
    ASSERT_EQ(backup_.sent.size(), 1u);
    EXPECT_EQ(engine_->next_deadline(), t0 + 100 * kMs);
    engine_->on_timer(t0 + 100 * kMs - 1);
    EXPECT_EQ(backup_.sent.size(), 1u);
    EXPECT_EQ(engine_->counters().syn_retransmitted, 0u);

    engine_->on_timer(t0 + 100 * kMs);
    ASSERT_EQ(backup_.sent.size(), 2u);
    EXPECT_EQ(engine_->counters().syn_retransmitted, 1u);
    EXPECT_EQ(engine_->counters().syn_sent, 2u);
    const Decoded a = decode(backup_.sent[0], false);
    const Decoded b = decode(backup_.sent[1], false);
    // The same SYN: identical TCP segment (only the IP id may differ).
    EXPECT_EQ(a.tcp_segment, b.tcp_segment);
    EXPECT_EQ(b.src_ip, kPrimaryIp);
    EXPECT_EQ(b.dst_ip, kBackupIp);
    EXPECT_TRUE(b.ip_checksum_ok);
    // Exponential backoff: the next deadline is 200 ms later.
    EXPECT_EQ(engine_->next_deadline(), t0 + 300 * kMs);
    EXPECT_EQ(engine_->state(), State::Recovery);

    now_ = t0 + 150 * kMs;
    from_backup(ip_packet(backup_synack()));
    EXPECT_EQ(engine_->state(), State::Proxy);
    ASSERT_EQ(backup_.sent.size(), 4u);
    EXPECT_EQ(decode(backup_.sent[2], false).seq, kA);
    EXPECT_EQ(decode(backup_.sent[3], false).payload, unacked());
    EXPECT_EQ(engine_->counters().recovered, 1u);
    EXPECT_EQ(engine_->recovery_duration(), 150 * kMs);
    // Nothing more to retransmit.
    engine_->on_timer(t0 + 300 * kMs);
    EXPECT_EQ(backup_.sent.size(), 4u);
}

TEST_F(FailoverEngineTest, NoSynAckAtAllFailsTheTwinAfterSynTries) {
    run_normal();
    const MonoNs t0 = now_;
    engine_->primary_down(t0, "down");
    std::vector<MonoNs> wakeups;
    for (int i = 0; i < 20 && engine_->state() == State::Recovery; ++i) {
        const MonoNs at = engine_->next_deadline();
        ASSERT_NE(at, std::numeric_limits<MonoNs>::max());
        wakeups.push_back(at - t0);
        engine_->on_timer(at);
    }
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(backup_.sent.size(), 5u);  // syn_tries
    for (const auto& p : backup_.sent) EXPECT_EQ(decode(p, false).flags, flag::kSyn);
    EXPECT_EQ(engine_->counters().syn_sent, 5u);
    EXPECT_EQ(engine_->counters().syn_retransmitted, 4u);
    // 100, 200, 400, 800, 1600 ms between tries.
    EXPECT_EQ(wakeups, (std::vector<MonoNs>{100 * kMs, 300 * kMs, 700 * kMs, 1500 * kMs,
                                            3100 * kMs}));
    EXPECT_EQ(unrecovered(Unrecovered::NoSynAck), 1u);
    EXPECT_EQ(engine_->counters().recovered, 0u);
    EXPECT_EQ(engine_->twins_in(TwinPhase::Failed), 1u);
    const auto un = events("unrecoverable");
    ASSERT_EQ(un.size(), 1u);
    EXPECT_EQ(un[0].fields,
              "client=198.18.0.10:40000 server=198.18.0.1:7000 reason=no_synack syn_tries=5");
    const auto tr = events("transition");
    ASSERT_EQ(tr.size(), 2u);
    EXPECT_EQ(tr[1].fields,
              "from=recovery to=proxy cause=twins_resolved reason=\"0 of 1 twins established, 1 "
              "failed, in 3100000 us\"");
    EXPECT_EQ(engine_->next_deadline(), std::numeric_limits<MonoNs>::max());

    // The client's later packets are counted, not sent; a late SYN-ACK is unknown.
    capture(from_client(c2p(kClientEnd, kK, flag::kAck, kTsC + 50, kTsP + 10)));
    EXPECT_EQ(engine_->counters().client_unrecovered, 1u);
    from_backup(ip_packet(backup_synack()));
    EXPECT_EQ(engine_->counters().backup_unknown, 1u);
    EXPECT_EQ(backup_.sent.size(), 5u);
}

TEST_F(FailoverEngineTest, RstFromTheBackupIsBackupRefused) {
    run_normal();
    engine_->primary_down(now_, "down");
    Seg rst = backup_synack();
    rst.seq = 0;
    rst.flags = flag::kRst | flag::kAck;
    rst.mss.reset();
    rst.sack_perm = false;
    rst.ts.reset();
    rst.ws.reset();
    rst.window = 0;
    from_backup(ip_packet(rst));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(unrecovered(Unrecovered::BackupRefused), 1u);
    EXPECT_EQ(engine_->twins_in(TwinPhase::Failed), 1u);
    const auto un = events("unrecoverable");
    ASSERT_EQ(un.size(), 1u);
    EXPECT_EQ(un[0].fields,
              "client=198.18.0.10:40000 server=198.18.0.1:7000 reason=backup_refused syn_tries=1");
    EXPECT_EQ(backup_.sent.size(), 1u);  // the SYN only
    // No retransmission for a refused twin.
    engine_->on_timer(now_ + 10'000 * kMs);
    EXPECT_EQ(backup_.sent.size(), 1u);
}

TEST_F(FailoverEngineTest, ClientPacketDuringRecoveryIsQueuedThenSentAfterTheReplay) {
    run_normal();
    engine_->primary_down(now_, "down");
    // Before the SYN-ACK: new client data, after the 80 unacknowledged bytes.
    Seg late = c2p(kClientEnd, kK, flag::kAck | flag::kPsh, kTsC + 7, kTsP + 10);
    late.payload = payload_of(20, 5);
    capture(from_client(late));
    EXPECT_EQ(engine_->counters().queued_frames, 1u);
    EXPECT_EQ(backup_.sent.size(), 1u);  // still only the SYN
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(backup_.sent.size(), 4u);
    const Decoded ack = decode(backup_.sent[1], false);
    const Decoded replay = decode(backup_.sent[2], false);
    const Decoded queued = decode(backup_.sent[3], false);
    EXPECT_EQ(ack.flags, flag::kAck);
    EXPECT_EQ(replay.seq, kA);
    EXPECT_EQ(replay.payload, unacked());
    EXPECT_EQ(queued.src_ip, kPrimaryIp);
    EXPECT_EQ(queued.dst_ip, kBackupIp);
    EXPECT_EQ(queued.sport, kClientPort);
    EXPECT_EQ(queued.dport, kService);
    EXPECT_EQ(queued.seq, kClientEnd + kD1);
    EXPECT_EQ(queued.ack, kK + kD2);
    EXPECT_EQ(queued.ack, kIsnB + 1);
    ASSERT_TRUE(queued.ts);
    EXPECT_EQ(queued.ts->first, kTsC + 7);
    EXPECT_EQ(queued.ts->second, kTsP + 10 - kDts);
    EXPECT_EQ(queued.payload, late.payload);
    EXPECT_TRUE(queued.ip_checksum_ok);
    EXPECT_TRUE(queued.tcp_checksum_ok);
    EXPECT_EQ(engine_->counters().to_backup, 1u);
    EXPECT_EQ(engine_->counters().to_backup_bytes, 20u);
}

// ---------------------------------------------------------------- proxy

TEST_F(FailoverEngineTest, ClientSegmentIsTranslatedIntoTheTwin) {
    reach_proxy();
    Seg s = c2p(kClientEnd, kK, flag::kAck | flag::kPsh, kTsC + 10, kTsP + 10, 490);
    s.sack = {{kIsnP + 400, kIsnP + 500}, {kIsnP + 600, kIsnP + 650}};
    s.payload = payload_of(40, 6);
    s.ip_id = 4321;
    const Bytes in = ip_packet(s);
    capture(eth_frame(kClientMac, kPrimaryMac, 0x0800, in));
    ASSERT_EQ(backup_.sent.size(), 1u);
    ASSERT_EQ(backup_.sent[0].size(), in.size());  // a bare IP packet, no padding
    const Decoded d = decode(backup_.sent[0], false);
    EXPECT_EQ(d.src_ip, kPrimaryIp);
    EXPECT_EQ(d.dst_ip, kBackupIp);
    EXPECT_EQ(d.sport, kClientPort);
    EXPECT_EQ(d.dport, kService);
    EXPECT_EQ(d.ip_id, 4321);
    EXPECT_EQ(d.ttl, 64);
    EXPECT_EQ(d.ip_total, in.size());
    EXPECT_EQ(d.flags, flag::kAck | flag::kPsh);
    EXPECT_EQ(d.seq, kClientEnd + kD1);
    EXPECT_EQ(d.ack, kK + kD2);
    ASSERT_TRUE(d.ts);
    EXPECT_EQ(d.ts->first, kTsC + 10);
    EXPECT_EQ(d.ts->second, kPrimaryTsLast - kDts);  // = TSb0 - 1
    EXPECT_EQ(d.ts->second, kTsB0 - 1);
    ASSERT_EQ(d.sack.size(), 2u);
    EXPECT_EQ(d.sack[0], (Block{kIsnP + 400 + kD2, kIsnP + 500 + kD2}));
    EXPECT_EQ(d.sack[1], (Block{kIsnP + 600 + kD2, kIsnP + 650 + kD2}));
    EXPECT_EQ(d.sack[0].first, kIsnB + 100);
    EXPECT_EQ(d.window, 490);  // WSc on both sides: unchanged
    EXPECT_EQ(d.payload, s.payload);
    EXPECT_TRUE(d.ip_checksum_ok);
    EXPECT_TRUE(d.tcp_checksum_ok);

    // Field by field against a packet built from scratch with the translated
    // values: nothing else moved, and the checksums equal a full computation.
    Seg want = s;
    want.src_ip = kPrimaryIp;
    want.dst_ip = kBackupIp;
    want.seq = kClientEnd + kD1;
    want.ack = kK + kD2;
    want.ts = Block{kTsC + 10, kTsB0 - 1};
    want.sack = {{kIsnP + 400 + kD2, kIsnP + 500 + kD2}, {kIsnP + 600 + kD2, kIsnP + 650 + kD2}};
    EXPECT_EQ(backup_.sent[0], ip_packet(want));

    EXPECT_EQ(engine_->counters().to_backup, 1u);
    EXPECT_EQ(engine_->counters().to_backup_bytes, 40u);
    EXPECT_TRUE(client_.sent.empty());
}

TEST_F(FailoverEngineTest, BackupSegmentIsTranslatedOntoTheWireAsThePrimary) {
    reach_proxy();
    Seg s = b2t(kIsnB + 1, kClientEnd, flag::kAck | flag::kPsh, kTsB0 + 44, kClientTsLatest, 1000);
    s.sack = {{kIsnC + 300, kIsnC + 400}};
    s.payload = payload_of(60, 8);
    from_backup(ip_packet(s));
    ASSERT_EQ(client_.sent.size(), 1u);
    const Bytes& f = client_.sent[0];
    const Decoded d = decode(f, true);
    EXPECT_EQ(d.eth_dst, kClientMac);
    EXPECT_EQ(d.eth_src, kBackupMac);  // the clients point the primary's IP here since the takeover
    EXPECT_EQ(d.ethertype, 0x0800);
    EXPECT_EQ(f.size(), 14u + d.ip_total);
    EXPECT_EQ(d.src_ip, kPrimaryIp);
    EXPECT_EQ(d.dst_ip, kClientIp);
    EXPECT_EQ(d.sport, kService);
    EXPECT_EQ(d.dport, kClientPort);
    EXPECT_EQ(d.flags, flag::kAck | flag::kPsh);
    EXPECT_EQ(d.seq, kIsnB + 1 - kD2);
    EXPECT_EQ(d.seq, kK);  // the next server byte the client expects
    EXPECT_EQ(d.ack, kClientEnd - kD1);
    ASSERT_TRUE(d.ts);
    EXPECT_EQ(d.ts->first, kTsB0 + 44 + kDts);
    EXPECT_EQ(d.ts->first, kPrimaryTsLast + 45);  // above what the client saw from P (PAWS)
    EXPECT_EQ(d.ts->second, kClientTsLatest);
    ASSERT_EQ(d.sack.size(), 1u);
    EXPECT_EQ(d.sack[0], (Block{kIsnC + 300 - kD1, kIsnC + 400 - kD1}));
    // 1000 << WSb(10) = 1024000 bytes, >> WSp(9) = 2000.
    EXPECT_EQ(d.window, 2000);
    EXPECT_EQ(d.payload, s.payload);
    EXPECT_TRUE(d.ip_checksum_ok);
    EXPECT_TRUE(d.tcp_checksum_ok);

    Seg want = s;
    want.src_ip = kPrimaryIp;
    want.dst_ip = kClientIp;
    want.sport = kService;
    want.dport = kClientPort;
    want.seq = kK;
    want.ack = kClientEnd;
    want.ts = Block{kPrimaryTsLast + 45, kClientTsLatest};
    want.window = 2000;
    EXPECT_EQ(f, eth_frame(kBackupMac, kClientMac, 0x0800, ip_packet(want)));

    EXPECT_EQ(engine_->counters().to_client, 1u);
    EXPECT_EQ(engine_->counters().to_client_bytes, 60u);
    EXPECT_TRUE(backup_.sent.empty());
}

TEST_F(FailoverEngineTest, LargeBackupWindowIsClampedTo65535) {
    reach_proxy();
    // 65535 << 10 >> 9 = 131070: more than the field holds.
    from_backup(ip_packet(b2t(kIsnB + 1, kClientEnd, flag::kAck, kTsB0 + 1, kClientTsLatest, 65535)));
    ASSERT_EQ(client_.sent.size(), 1u);
    EXPECT_EQ(decode(client_.sent[0], true).window, 65535);
}

TEST_F(FailoverEngineTest, BackupPacketWithABadChecksumLeavesWithAGoodOne) {
    // The backup's stack may hand over partial checksums (offload).
    reach_proxy();
    Bytes pkt = ip_packet(b2t(kIsnB + 1, kClientEnd, flag::kAck, kTsB0 + 1, kClientTsLatest, 100));
    pkt[36] ^= std::byte{0x5a};
    from_backup(pkt);
    ASSERT_EQ(client_.sent.size(), 1u);
    const Decoded d = decode(client_.sent[0], true);
    EXPECT_TRUE(d.ip_checksum_ok);
    EXPECT_TRUE(d.tcp_checksum_ok);
    EXPECT_EQ(d.seq, kK);
}

TEST_F(FailoverEngineTest, RetransmittedSynAckInProxyIsReAckedAndNotForwarded) {
    reach_proxy();
    from_backup(ip_packet(backup_synack()));
    EXPECT_TRUE(client_.sent.empty());
    ASSERT_EQ(backup_.sent.size(), 1u);
    const Decoded ack = decode(backup_.sent[0], false);
    EXPECT_EQ(ack.flags, flag::kAck);
    EXPECT_EQ(ack.seq, kA);
    EXPECT_EQ(ack.ack, kIsnB + 1);
    EXPECT_TRUE(ack.tcp_checksum_ok);
}

TEST_F(FailoverEngineTest, BackupPacketsForNoTwinAreCounted) {
    reach_proxy();
    Seg other = b2t(kIsnB + 1, kClientEnd, flag::kAck, kTsB0 + 1, kClientTsLatest, 100);
    other.dport = 40999;  // no twin on this port
    from_backup(ip_packet(other));
    Seg wrong_src = b2t(kIsnB + 1, kClientEnd, flag::kAck, kTsB0 + 1, kClientTsLatest, 100);
    wrong_src.sport = 7001;  // not the twin's backup endpoint
    from_backup(ip_packet(wrong_src));
    EXPECT_EQ(engine_->counters().backup_unknown, 2u);
    EXPECT_TRUE(client_.sent.empty());
    const Bytes garbage(10, std::byte{0x45});
    from_backup(garbage);
    EXPECT_EQ(engine_->counters().backup_not_tcp, 1u);
}

TEST_F(FailoverEngineTest, FinBothWaysClosesTheTwinAndLingerRemovesTheMapping) {
    reach_proxy();
    // The client closes.
    capture(from_client(c2p(kClientEnd, kK, flag::kFin | flag::kAck, kTsC + 30, kTsP + 10)));
    ASSERT_EQ(backup_.sent.size(), 1u);
    const Decoded cfin = decode(backup_.sent[0], false);
    EXPECT_EQ(cfin.flags, flag::kFin | flag::kAck);
    EXPECT_EQ(cfin.seq, kClientEnd + kD1);
    EXPECT_EQ(cfin.ack, kIsnB + 1);
    EXPECT_TRUE(cfin.tcp_checksum_ok);
    EXPECT_EQ(engine_->twins_in(TwinPhase::Up), 1u);

    // The backup acknowledges and closes too.
    const MonoNs closed_at = now_;
    from_backup(ip_packet(b2t(kIsnB + 1, kClientEnd + 1, flag::kFin | flag::kAck, kTsB0 + 9,
                              kTsC + 30, 1000)));
    ASSERT_EQ(client_.sent.size(), 1u);
    const Decoded bfin = decode(client_.sent[0], true);
    EXPECT_EQ(bfin.flags, flag::kFin | flag::kAck);
    EXPECT_EQ(bfin.src_ip, kPrimaryIp);
    EXPECT_EQ(bfin.sport, kService);
    EXPECT_EQ(bfin.seq, kK);
    EXPECT_EQ(bfin.ack, kClientEnd + 1);
    ASSERT_TRUE(bfin.ts);
    EXPECT_EQ(bfin.ts->first, kTsB0 + 9 + kDts);
    EXPECT_TRUE(bfin.tcp_checksum_ok);
    EXPECT_EQ(engine_->twins_in(TwinPhase::Closed), 1u);
    EXPECT_EQ(engine_->counters().closed, 1u);
    EXPECT_EQ(engine_->next_deadline(), closed_at + config_.close_linger);

    // The client's last ACK still passes while the twin lingers.
    now_ += kMs;
    capture(from_client(c2p(kClientEnd + 1, kK + 1, flag::kAck, kTsC + 31, kTsP + 10 + 9 + 1)));
    ASSERT_EQ(backup_.sent.size(), 2u);
    const Decoded last = decode(backup_.sent[1], false);
    EXPECT_EQ(last.seq, kClientEnd + 1);
    EXPECT_EQ(last.ack, kIsnB + 2);
    ASSERT_TRUE(last.ts);
    EXPECT_EQ(last.ts->second, kTsB0 + 9);

    engine_->on_timer(closed_at + config_.close_linger - 1);
    // The close is complete: another bare ACK (a client in TIME_WAIT answering
    // a stray segment) would only draw a RST from the backup. Dropped.
    capture(from_client(c2p(kClientEnd + 1, kK + 1, flag::kAck, kTsC + 32, kTsP + 20)));
    EXPECT_EQ(backup_.sent.size(), 2u);
    EXPECT_EQ(engine_->counters().closed_acks_dropped, 1u);
    // Unless the backup sends its FIN again (it never got the ACK): then the
    // next one passes.
    from_backup(ip_packet(b2t(kIsnB + 1, kClientEnd + 1, flag::kFin | flag::kAck, kTsB0 + 11,
                              kTsC + 30, 1000)));
    capture(from_client(c2p(kClientEnd + 1, kK + 1, flag::kAck, kTsC + 32, kTsP + 22)));
    EXPECT_EQ(backup_.sent.size(), 3u);  // still mapped
    EXPECT_EQ(engine_->counters().client_unrecovered, 0u);

    engine_->on_timer(closed_at + config_.close_linger);
    EXPECT_EQ(engine_->next_deadline(), std::numeric_limits<MonoNs>::max());
    capture(from_client(c2p(kClientEnd + 1, kK + 1, flag::kAck, kTsC + 33, kTsP + 20)));
    EXPECT_EQ(backup_.sent.size(), 3u);
    EXPECT_EQ(engine_->counters().client_unrecovered, 1u);
    from_backup(ip_packet(b2t(kIsnB + 2, kClientEnd + 1, flag::kAck, kTsB0 + 10, kTsC + 33, 1000)));
    EXPECT_EQ(client_.sent.size(), 2u);  // the FIN retransmission only
    EXPECT_EQ(engine_->counters().backup_unknown, 1u);
}

TEST_F(FailoverEngineTest, ClientRstClosesTheTwin) {
    reach_proxy();
    Seg rst = c2p(kClientEnd, 0, flag::kRst, 0, 0, 0);
    rst.ts.reset();
    capture(from_client(rst));
    ASSERT_EQ(backup_.sent.size(), 1u);
    EXPECT_EQ(decode(backup_.sent[0], false).flags, flag::kRst);
    EXPECT_EQ(engine_->twins_in(TwinPhase::Closed), 1u);
}

// ---------------------------------------------------------------- ARP

TEST_F(FailoverEngineTest, ArpForThePrimaryIsAnsweredInProxyOnly) {
    run_normal();
    capture(arp_request(kClientMac, kClientIp, kPrimaryIp));
    EXPECT_TRUE(client_.sent.empty());  // Normal: the primary answers for itself
    EXPECT_EQ(engine_->counters().arp_replies, 0u);

    engine_->primary_down(now_, "down");
    // At takeover: one gratuitous ARP (RFC 5227 announcement), broadcast, that
    // points the primary's IP at this host's MAC.
    ASSERT_EQ(client_.sent.size(), 1u);
    {
        Bytes garp;
        put_mac(garp, Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
        put_mac(garp, kBackupMac);
        put16(garp, 0x0806);
        put16(garp, 1);
        put16(garp, 0x0800);
        put8(garp, 6);
        put8(garp, 4);
        put16(garp, 1);  // request
        put_mac(garp, kBackupMac);
        put32(garp, kPrimaryIp);
        put_mac(garp, Mac{});
        put32(garp, kPrimaryIp);
        EXPECT_EQ(client_.sent[0], garp);
        EXPECT_EQ(engine_->counters().gratuitous_arps, 1u);
    }
    client_.sent.clear();
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(engine_->state(), State::Proxy);
    capture(arp_request(kClientMac, kClientIp, kPrimaryIp));
    ASSERT_EQ(client_.sent.size(), 1u);
    Bytes want;
    put_mac(want, kClientMac);
    put_mac(want, kBackupMac);
    put16(want, 0x0806);
    put16(want, 1);
    put16(want, 0x0800);
    put8(want, 6);
    put8(want, 4);
    put16(want, 2);  // reply
    put_mac(want, kBackupMac);
    put32(want, kPrimaryIp);
    put_mac(want, kClientMac);
    put32(want, kClientIp);
    EXPECT_EQ(client_.sent[0], want);
    EXPECT_EQ(engine_->counters().arp_replies, 1u);

    // Not for other addresses.
    capture(arp_request(kClientMac, kClientIp, kBackupIp));
    EXPECT_EQ(client_.sent.size(), 1u);
}

// ---------------------------------------------------------------- not recovered

TEST_F(FailoverEngineTest, NewConnectionInProxyIsCarriedToTheBackupUnchangedButForAddresses) {
    reach_proxy();
    backup_.sent.clear();
    client_.sent.clear();
    Seg syn = c2p(kIsnC + 5000, 0, flag::kSyn, kTsC + 40, 0, 64240, 40001);
    syn.mss = kMssC;
    syn.sack_perm = true;
    syn.ws = kWsC;
    capture(from_client(syn));
    EXPECT_EQ(engine_->counters().new_connections, 1u);
    EXPECT_EQ(engine_->counters().new_connections_unserved, 0u);
    ASSERT_EQ(backup_.sent.size(), 1u);
    // The client's own SYN, into the backup's stack: only addresses change.
    Seg want = syn;
    want.src_ip = kPrimaryIp;
    want.dst_ip = kBackupIp;
    EXPECT_EQ(backup_.sent[0], ip_packet(want));

    // The backup's SYN-ACK goes to the client as the primary's, untranslated.
    Seg sa = b2t(0x77770000, kIsnC + 5001, flag::kSyn | flag::kAck, 9000, kTsC + 40, 65160);
    sa.dport = 40001;
    sa.mss = 1460;
    sa.sack_perm = true;
    sa.ws = 7;
    from_backup(ip_packet(sa));
    ASSERT_EQ(client_.sent.size(), 1u);
    Seg back = sa;
    back.src_ip = kPrimaryIp;
    back.dst_ip = kClientIp;
    EXPECT_EQ(client_.sent[0], eth_frame(kBackupMac, kClientMac, 0x0800, ip_packet(back)));
    // Not mistaken for a retransmitted twin SYN-ACK: nothing was sent back.
    EXPECT_EQ(backup_.sent.size(), 1u);
}

TEST_F(FailoverEngineTest, UnrecoverableConnectionsAreCountedByReason) {
    // Mid-stream pickup off: a connection whose handshake was never seen is
    // then reported, not recovered with inferred options.
    FailoverConfig cfg = default_config();
    cfg.recover_midstream = false;
    make_engine(cfg);
    run_normal();
    // 40002: still in its handshake (SYN, SYN-ACK, no final ACK).
    Seg syn = c2p(0x1000, 0, flag::kSyn, 700, 0, 64240, 40002);
    syn.mss = kMssC;
    syn.sack_perm = true;
    syn.ws = kWsC;
    capture(from_client(syn));
    Seg synack = p2c(0x9000, 0x1001, flag::kSyn | flag::kAck, 800, 700, 40002);
    synack.mss = kMssP;
    synack.sack_perm = true;
    synack.ws = kWsP;
    capture(from_primary(synack));
    // 40003: first seen mid-stream.
    Seg mid = c2p(0x5000, 0x6000, flag::kAck | flag::kPsh, 900, 901, 300, 40003);
    mid.payload = payload_of(10, 1);
    capture(from_client(mid));
    capture(from_primary(p2c(0x6000, 0x500a, flag::kAck, 902, 900, 40003)));
    // 40004: complete handshake, the client's FIN, acknowledged, and the
    // server's FIN, not yet acknowledged: both sides were closing.
    Seg syn4 = c2p(0x2000, 0, flag::kSyn, 1000, 0, 64240, 40004);
    syn4.mss = kMssC;
    syn4.sack_perm = true;
    syn4.ws = kWsC;
    capture(from_client(syn4));
    Seg synack4 = p2c(0xa000, 0x2001, flag::kSyn | flag::kAck, 2000, 1000, 40004);
    synack4.mss = kMssP;
    synack4.sack_perm = true;
    synack4.ws = kWsP;
    capture(from_primary(synack4));
    capture(from_client(c2p(0x2001, 0xa001, flag::kAck, 1001, 2000, 502, 40004)));
    capture(from_client(c2p(0x2001, 0xa001, flag::kFin | flag::kAck, 1002, 2000, 502, 40004)));
    capture(from_primary(p2c(0xa001, 0x2002, flag::kFin | flag::kAck, 2001, 1002, 40004)));

    engine_->primary_down(now_, "down");
    EXPECT_EQ(engine_->counters().twins, 1u);
    EXPECT_EQ(unrecovered(Unrecovered::HandshakeIncomplete), 1u);
    EXPECT_EQ(unrecovered(Unrecovered::HandshakeUnseen), 1u);
    EXPECT_EQ(unrecovered(Unrecovered::Closing), 1u);
    EXPECT_EQ(unrecovered(Unrecovered::NoSynAck), 0u);
    EXPECT_EQ(unrecovered(Unrecovered::BackupRefused), 0u);
    const auto start = events("recovery_start");
    ASSERT_EQ(start.size(), 1u);
    EXPECT_EQ(start[0].fields,
              "twins=1 handshake_incomplete=1 handshake_unseen=1 closing=1 no_synack=0 "
              "backup_refused=0 reply_lost=0 reply_not_seen_whole=0 request_unanswered=0 replay_incomplete=0 restored=0 inferred=0 gone_before_failure=0 "
              "expired_before_failure=0");
    const auto un = events("unrecoverable");
    // Every reason is logged, one event per connection, in table order.
    ASSERT_EQ(un.size(), 3u);
    EXPECT_EQ(un[0].fields,
              "client=198.18.0.10:40002 server=198.18.0.1:7000 reason=handshake_incomplete");
    EXPECT_EQ(un[1].fields,
              "client=198.18.0.10:40003 server=198.18.0.1:7000 reason=handshake_unseen");
    EXPECT_EQ(un[2].fields, "client=198.18.0.10:40004 server=198.18.0.1:7000 reason=closing");
    // Exactly one twin SYN, for the connection that can be carried over.
    ASSERT_EQ(backup_.sent.size(), 1u);
    EXPECT_EQ(decode(backup_.sent[0], false).sport, kClientPort);

    from_backup(ip_packet(backup_synack()));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().recovered, 1u);
    backup_.sent.clear();
    // Their packets in Proxy: counted, not proxied.
    capture(from_client(mid));
    capture(from_client(c2p(0x2002, 0xa002, flag::kAck, 1003, 2001, 502, 40004)));
    EXPECT_EQ(engine_->counters().client_unrecovered, 2u);
    EXPECT_TRUE(backup_.sent.empty());
    // The half-open client retries its SYN: now a new connection, served directly.
    capture(from_client(syn));
    EXPECT_EQ(engine_->counters().new_connections, 1u);
    EXPECT_EQ(backup_.sent.size(), 1u);
}

TEST_F(FailoverEngineTest, TwoClientsOnTheSamePortGetDistinctTwinPorts) {
    // Two client hosts may use the same source port; on the backup both
    // twins come from IPp, so the second gets another q.
    run_normal();
    Seg syn = c2p(0x3000, 0, flag::kSyn, 50, 0, 64240);
    syn.src_ip = kOtherClient;
    syn.mss = kMssC;
    capture(from_client(syn));
    Seg synack = p2c(0xb000, 0x3001, flag::kSyn | flag::kAck, 60, 50);
    synack.dst_ip = kOtherClient;
    synack.mss = kMssP;
    capture(from_primary(synack));
    Seg ack = c2p(0x3001, 0xb001, flag::kAck, 51, 60);
    ack.src_ip = kOtherClient;
    capture(from_client(ack));
    engine_->primary_down(now_, "down");
    ASSERT_EQ(backup_.sent.size(), 2u);
    const Decoded a = decode(backup_.sent[0], false);
    const Decoded b = decode(backup_.sent[1], false);
    EXPECT_EQ(a.sport, kClientPort);
    EXPECT_NE(b.sport, kClientPort);
    EXPECT_NE(b.sport, 0);
    EXPECT_EQ(b.seq, 0x3001u - 1);
}

TEST_F(FailoverEngineTest, TwinSynsArePacedByMaxConcurrentSyns) {
    FailoverConfig c = default_config();
    c.max_concurrent_syns = 1;
    make_engine(c);
    run_normal();
    Seg syn = c2p(0x3000, 0, flag::kSyn, 50, 0, 64240);
    syn.src_ip = kOtherClient;
    syn.mss = kMssC;
    capture(from_client(syn));
    Seg synack = p2c(0xb000, 0x3001, flag::kSyn | flag::kAck, 60, 50);
    synack.dst_ip = kOtherClient;
    synack.mss = kMssP;
    capture(from_primary(synack));
    Seg ack = c2p(0x3001, 0xb001, flag::kAck, 51, 60);
    ack.src_ip = kOtherClient;
    capture(from_client(ack));

    engine_->primary_down(now_, "down");
    ASSERT_EQ(backup_.sent.size(), 1u);  // one SYN in flight
    EXPECT_EQ(engine_->twins_in(TwinPhase::SynSent), 1u);
    EXPECT_EQ(engine_->twins_in(TwinPhase::Waiting), 1u);
    // A frame for the waiting twin is held too.
    Seg waiting = c2p(0x3001, 0xb001, flag::kAck | flag::kPsh, 52, 60);
    waiting.src_ip = kOtherClient;
    waiting.payload = payload_of(5, 1);
    capture(from_client(waiting));
    EXPECT_EQ(engine_->counters().queued_frames, 1u);

    from_backup(ip_packet(backup_synack()));
    EXPECT_EQ(engine_->state(), State::Recovery);
    ASSERT_EQ(backup_.sent.size(), 4u);  // SYN, ACK, replay, then the second SYN
    const Decoded second = decode(backup_.sent[3], false);
    EXPECT_EQ(second.flags, flag::kSyn);
    EXPECT_EQ(second.seq, 0x3001u - 1);
    EXPECT_NE(second.sport, kClientPort);

    Seg sa2 = backup_synack(0x3001);
    sa2.dport = second.sport;
    from_backup(ip_packet(sa2));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().recovered, 2u);
    ASSERT_EQ(backup_.sent.size(), 6u);  // its ACK, then the held frame
    const Decoded held = decode(backup_.sent[5], false);
    EXPECT_EQ(held.sport, second.sport);
    EXPECT_EQ(held.seq, 0x3001u);
    EXPECT_EQ(held.ack, kIsnB + 1);
    EXPECT_EQ(held.payload, waiting.payload);
}

TEST_F(FailoverEngineTest, RecoveryDurationIsZeroUntilEveryTwinIsResolved) {
    // failover.hpp: "Recovery's duration once every twin is resolved (0 until then)".
    run_normal();
    engine_->primary_down(now_, "down");
    ASSERT_EQ(engine_->state(), State::Recovery);
    EXPECT_EQ(engine_->recovery_duration(), 0);
}

TEST_F(FailoverEngineTest, LinkFailuresAreCountedAsSendErrors) {
    run_normal();
    backup_.accept = false;
    engine_->primary_down(now_, "down");
    EXPECT_EQ(engine_->counters().send_errors, 1u);
}

}  // namespace
}  // namespace migware

// ---------------------------------------------------------------- mid-stream pickup

namespace migware {
namespace {

// The same traffic as run_normal(), minus the handshake: migware (re)started
// after the connection opened, with no snapshot. Recovery infers what the
// segments show and assumes the rest (DESIGN-NOTES.md "Mid-stream pickup").
TEST_F(FailoverEngineTest, MidStreamConnectionIsRecoveredWithInferredOptions) {
    Seg req = c2p(kIsnC + 1, kIsnP + 1, flag::kAck | flag::kPsh, kTsC + 2, kTsP, 502);
    req.payload = payload_of(100, 1);
    capture(from_client(req));
    Seg resp = p2c(kIsnP + 1, kIsnC + 101, flag::kAck | flag::kPsh, kTsP + 10, kTsC + 2);
    resp.payload = payload_of(300, 2);
    capture(from_primary(resp));
    capture(from_client(c2p(kIsnC + 101, kK, flag::kAck, kTsC + 3, kTsP + 10, 502)));
    engine_->primary_down(now_, "down");
    EXPECT_EQ(engine_->counters().twins_inferred, 1u);
    ASSERT_EQ(backup_.sent.size(), 1u);
    const Decoded syn = decode(backup_.sent[0], false);
    EXPECT_EQ(syn.flags, flag::kSyn);
    EXPECT_EQ(syn.seq, kA - 1);
    EXPECT_EQ(syn.mss, std::optional<std::uint16_t>(536));  // max(536, largest server segment 300)
    EXPECT_FALSE(syn.ws.has_value());                       // assumed: no window scaling
    EXPECT_FALSE(syn.sack_perm);                            // assumed: no SACK
    ASSERT_TRUE(syn.ts.has_value());                        // inferred: both sides carry TS
    EXPECT_EQ(syn.ts->first, kTsC + 3);

    // The backup, offered no window scaling, answers without it.
    Seg sa = backup_synack();
    sa.ws.reset();
    sa.sack_perm = false;
    sa.ts = Block{kTsB0, kTsC + 3};
    from_backup(ip_packet(sa));
    ASSERT_EQ(engine_->state(), State::Proxy);
    client_.sent.clear();
    // Toward the client, windows are read with the primary's unseen shift:
    // assumed as large as the primary's last raw window (500) allows under
    // 16 MiB, i.e. 14, so 65160 bytes show as 65160 >> 14 = 3 (never overrun).
    Seg data = b2t(kIsnB + 1, kA, flag::kAck | flag::kPsh, kTsB0 + 5, kTsC + 3, 65160);
    data.payload = payload_of(10, 3);
    from_backup(ip_packet(data));
    ASSERT_EQ(client_.sent.size(), 1u);
    const Decoded out = decode(client_.sent[0], true);
    EXPECT_EQ(out.window, 3);
    EXPECT_EQ(out.seq, kK);  // the backup's first byte lands where the client expects the next
    EXPECT_TRUE(out.tcp_checksum_ok);
}

}  // namespace
}  // namespace migware

namespace migware {
namespace {

TEST_F(FailoverEngineTest, ReturningPrimaryGetsNewConnectionsOnlyWhenThePolicySaysSo) {
    for (bool to_primary : {false, true}) {
        FailoverConfig cfg = default_config();
        cfg.new_connections_to_returning_primary = to_primary;
        backup_.sent.clear();
        client_.sent.clear();
        make_engine(cfg);
        reach_proxy();
        ASSERT_EQ(engine_->state(), State::Proxy);
        engine_->primary_up(now_, "echo reply");
        backup_.sent.clear();
        client_.sent.clear();  // the ARP replies that feed the primary (fencing)
        Seg syn = c2p(kIsnC + 5000, 0, flag::kSyn, kTsC + 40, 0, 64240, 40001);
        capture(from_client(syn));
        EXPECT_EQ(engine_->counters().new_connections, to_primary ? 0u : 1u) << to_primary;
        EXPECT_EQ(engine_->counters().new_connections_to_primary, to_primary ? 1u : 0u);
        EXPECT_EQ(backup_.sent.size(), to_primary ? 0u : 1u);
        if (to_primary) {
            // Relayed to the primary's MAC unchanged but for the Ethernet
            // source, and so is the rest of that connection.
            ASSERT_EQ(client_.sent.size(), 1u);
            const Bytes ip = ip_packet(syn);
            EXPECT_EQ(client_.sent[0], eth_frame(kBackupMac, kPrimaryMac, 0x0800, ip));
            capture(from_client(c2p(kIsnC + 5001, 77, flag::kAck, kTsC + 41, 9, 502, 40001)));
            EXPECT_EQ(client_.sent.size(), 2u);
            EXPECT_EQ(engine_->counters().relayed_to_primary, 2u);
            EXPECT_EQ(backup_.sent.size(), 0u);
            // The primary's side comes to us (its entry for the client points
            // here since the fence fed it): on to the client's MAC.
            client_.sent.clear();
            Seg sa = p2c(77, kIsnC + 5001, flag::kSyn | flag::kAck, kTsP + 500, kTsC + 40, 40001);
            capture(eth_frame(kPrimaryMac, kBackupMac, 0x0800, ip_packet(sa)));
            ASSERT_EQ(client_.sent.size(), 1u);
            EXPECT_EQ(client_.sent[0], eth_frame(kBackupMac, kClientMac, 0x0800, ip_packet(sa)));
            EXPECT_EQ(engine_->counters().relayed_to_primary, 3u);
        }
        // The twins recovered before stay with the backup either way.
        capture(from_client(c2p(kClientEnd, kK, flag::kAck, kTsC + 50, kTsP + 10, 502)));
        EXPECT_EQ(backup_.sent.size(), to_primary ? 1u : 2u);
    }
}

}  // namespace
}  // namespace migware

namespace migware {
namespace {

// Only the client had closed when the primary died (its FIN sent and ACKed,
// the server's not): the twin is opened at the FIN and the FIN is handed to
// the backup, whose application then closes and sends its own FIN.
TEST_F(FailoverEngineTest, ClientClosingConnectionIsCarriedOverAndItsFinHandedOn) {
    Seg syn = c2p(0x2000, 0, flag::kSyn, 1000, 0, 64240, 40004);
    syn.mss = kMssC;
    syn.ws = kWsC;
    capture(from_client(syn));
    Seg synack = p2c(0xa000, 0x2001, flag::kSyn | flag::kAck, 2000, 1000, 40004);
    synack.mss = kMssP;
    synack.ws = kWsP;
    capture(from_primary(synack));
    capture(from_client(c2p(0x2001, 0xa001, flag::kAck, 1001, 2000, 502, 40004)));
    Seg data = c2p(0x2001, 0xa001, flag::kAck | flag::kPsh, 1002, 2000, 502, 40004);
    data.payload = payload_of(20, 9);
    capture(from_client(data));
    capture(from_client(c2p(0x2015, 0xa001, flag::kFin | flag::kAck, 1003, 2000, 502, 40004)));
    capture(from_primary(p2c(0xa001, 0x2016, flag::kAck, 2001, 1003, 40004)));  // FIN ACKed
    engine_->primary_down(now_, "down");
    EXPECT_EQ(engine_->counters().twins, 1u);
    ASSERT_EQ(backup_.sent.size(), 1u);
    EXPECT_EQ(decode(backup_.sent[0], false).seq, 0x2015u - 1);  // the twin starts at the FIN
    Seg sa = backup_synack(0x2015, 1460);
    sa.dport = 40004;
    sa.sack_perm = false;
    from_backup(ip_packet(sa));
    ASSERT_EQ(engine_->state(), State::Proxy);
    ASSERT_EQ(backup_.sent.size(), 3u);  // SYN, ACK, FIN
    const Decoded fin = decode(backup_.sent[2], false);
    EXPECT_EQ(fin.flags, flag::kFin | flag::kAck);
    EXPECT_EQ(fin.seq, 0x2015u);
    EXPECT_EQ(fin.ack, kIsnB + 1);
    EXPECT_TRUE(fin.tcp_checksum_ok);
    EXPECT_EQ(engine_->counters().replayed_fins, 1u);
}

}  // namespace
}  // namespace migware

// ---------------------------------------------------------------- the primary returns
//
// Fencing (DESIGN-NOTES.md "The primary returns"): the primary's stale socket
// is probed with one byte it already acknowledged, answers with its exact
// receive point, and is reset exactly there; a probe after that draws the RST
// of a primary with no socket left.

namespace migware {
namespace {

TEST_F(FailoverEngineTest, ReturningPrimarysStaleSocketIsProbedResetAtItsExactReceivePointAndConfirmedGone) {
    reach_proxy();
    // A client segment in Proxy carries the client's newest TSval.
    Seg s = c2p(kClientEnd, kK, flag::kAck, kTsC + 30, kTsP + 10, 502);
    capture(from_client(s));
    client_.sent.clear();
    backup_.sent.clear();

    const MonoNs round_start = now_;
    engine_->primary_heard(now_, "echo reply");
    const auto fs = events("fence_start");
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0].fields, "reason=\"echo reply\" stale=1 primary_mac=02:00:00:00:00:01");
    EXPECT_EQ(engine_->stale_unfenced(), 1u);
    // First the primary's neighbour entries, by ARP requests unicast to it:
    // the client's IP (and ours) at this host's MAC, so that whatever the
    // primary sends the client comes here, and it need not ARP for it.
    ASSERT_EQ(client_.sent.size(), 2u);
    EXPECT_EQ(client_.sent[0],
              arp_frame(kPrimaryMac, kBackupMac, 1, kBackupMac, kClientIp, Mac{}, kPrimaryIp));
    EXPECT_EQ(client_.sent[1],
              arp_frame(kPrimaryMac, kBackupMac, 1, kBackupMac, kBackupIp, Mac{}, kPrimaryIp));
    EXPECT_EQ(engine_->counters().primary_fed, 2u);
    client_.sent.clear();
    // Nothing more for 50 ms: the primary's ARP traffic settles first (a client
    // still sent to the primary meets a live stale socket, not a RST).
    EXPECT_EQ(engine_->next_deadline(), now_ + 50 * kMs);
    engine_->on_timer(now_ + 49 * kMs);
    EXPECT_TRUE(client_.sent.empty());
    now_ += 50 * kMs;
    engine_->on_timer(now_);
    ASSERT_EQ(client_.sent.size(), 1u);
    {
        const Decoded d = decode(client_.sent[0], true);
        EXPECT_EQ(d.eth_dst, kPrimaryMac);
        EXPECT_EQ(d.eth_src, kBackupMac);
        EXPECT_EQ(d.src_ip, kClientIp);
        EXPECT_EQ(d.dst_ip, kPrimaryIp);
        EXPECT_EQ(d.sport, kClientPort);
        EXPECT_EQ(d.dport, kService);
        EXPECT_EQ(d.seq, kA - 1);  // a byte the primary acknowledged
        EXPECT_EQ(d.ack, kK - 1);  // below the client's window, should a RST come back
        EXPECT_EQ(d.flags, flag::kAck | flag::kPsh);
        EXPECT_EQ(d.payload.size(), 1u);
        ASSERT_TRUE(d.ts);
        EXPECT_EQ(d.ts->first, kTsC + 30);  // passes the primary's PAWS check
        EXPECT_EQ(d.ts->second, kPrimaryTsLast);
        EXPECT_TRUE(d.ip_checksum_ok);
        EXPECT_TRUE(d.tcp_checksum_ok);
    }
    EXPECT_EQ(engine_->counters().fence_probes, 1u);

    // The stale socket's duplicate ACK: its receive point is past A (it had
    // taken 30 more bytes whose ACK never left before the cable went), but
    // not past what migware saw the client send: a primary that died, not
    // one that kept serving. Still no RST until 150 ms after the primary was
    // first heard (issue 10: a primary that never died must be seen first).
    client_.sent.clear();
    capture(from_primary(p2c(kK, kA + 30, flag::kAck, kTsP + 900, kTsC + 30)));
    EXPECT_TRUE(client_.sent.empty());
    engine_->on_timer(round_start + 150 * kMs - 1);
    EXPECT_TRUE(client_.sent.empty());
    now_ = round_start + 150 * kMs;
    engine_->on_timer(now_);
    ASSERT_EQ(client_.sent.size(), 1u);
    {
        const Decoded d = decode(client_.sent[0], true);
        EXPECT_EQ(d.eth_dst, kPrimaryMac);
        EXPECT_EQ(d.eth_src, kBackupMac);
        EXPECT_EQ(d.src_ip, kClientIp);
        EXPECT_EQ(d.sport, kClientPort);
        EXPECT_EQ(d.flags, flag::kRst);
        EXPECT_EQ(d.seq, kA + 30);
        EXPECT_TRUE(d.options.empty());
        EXPECT_TRUE(d.payload.empty());
        EXPECT_TRUE(d.tcp_checksum_ok);
    }
    EXPECT_EQ(engine_->counters().fence_resets, 1u);
    EXPECT_EQ(engine_->counters().stale_segments, 1u);
    EXPECT_TRUE(backup_.sent.empty());  // nothing of the primary's reaches the backup

    // One interval later: a probe to check. A primary with no socket answers RST.
    client_.sent.clear();
    now_ += config_.fence_interval;
    engine_->on_timer(now_);
    ASSERT_GE(client_.sent.size(), 1u);
    EXPECT_EQ(decode(client_.sent.back(), true).seq, kA - 1);
    Seg rst = p2c(kK - 1, 0, flag::kRst, 0, 0);
    rst.ts.reset();
    capture(from_primary(rst));
    EXPECT_EQ(engine_->counters().fenced, 1u);
    EXPECT_EQ(engine_->stale_unfenced(), 0u);

    // No more probes; the round ends and says so.
    client_.sent.clear();
    for (int i = 0; i < 8; ++i) {
        now_ += config_.fence_interval;
        engine_->on_timer(now_);
    }
    EXPECT_TRUE(client_.sent.empty());
    const auto done = events("fence_done");
    ASSERT_EQ(done.size(), 1u);
    EXPECT_NE(done[0].fields.find("fenced=1 resets=1 "), std::string::npos) << done[0].fields;
    EXPECT_NE(done[0].fields.find("unfenced=0"), std::string::npos) << done[0].fields;
    EXPECT_EQ(engine_->state(), State::Proxy);

    // The twin still proxies both ways.
    Seg more = c2p(kClientEnd, kK, flag::kAck | flag::kPsh, kTsC + 40, kTsP + 10);
    more.payload = payload_of(10, 9);
    capture(from_client(more));
    EXPECT_FALSE(backup_.sent.empty());
}

TEST_F(FailoverEngineTest, UnansweredFenceProbesGiveUpAfterFenceTries) {
    reach_proxy();
    engine_->primary_heard(now_, "arp from the primary");
    now_ += 50 * kMs;  // the hold
    for (int i = 0; i < config_.fence_tries + 2 && events("fence_done").empty(); ++i) {
        engine_->on_timer(now_);
        if (events("fence_done").empty()) now_ += config_.fence_interval;
    }
    EXPECT_EQ(engine_->counters().fence_probes, static_cast<std::uint64_t>(config_.fence_tries));
    EXPECT_EQ(engine_->counters().fence_gave_up, 1u);
    EXPECT_EQ(engine_->stale_unfenced(), 1u);
    ASSERT_EQ(events("fence_done").size(), 1u);
    EXPECT_NE(events("fence_done")[0].fields.find("unfenced=1"), std::string::npos);
    // A second sign within a second starts no new round; later one does.
    engine_->primary_heard(now_, "echo reply");
    EXPECT_EQ(events("fence_start").size(), 1u);
    now_ += 1'000 * kMs;
    engine_->primary_heard(now_, "echo reply");
    EXPECT_EQ(events("fence_start").size(), 2u);
}

TEST_F(FailoverEngineTest, StaleSocketTalkingIsResetOnlyAfterTheHoldAndTheClassificationWindow) {
    reach_proxy();
    // The stale socket retransmits old data before any probe: it starts the
    // round, but within the hold nothing is reset.
    Seg old = p2c(kK - 300, kA, flag::kAck | flag::kPsh, kTsP + 700, kTsC + 5);
    old.payload = payload_of(300, 2);
    const MonoNs round_start = now_;
    capture(from_primary(old));
    EXPECT_TRUE(ip_frames(client_.sent).empty());
    EXPECT_EQ(events("fence_start").size(), 1u);
    EXPECT_EQ(engine_->counters().primary_packets_in_proxy, 1u);
    // An ARP claim from the primary extends the hold.
    now_ += 40 * kMs;
    capture(arp_request(kPrimaryMac, kPrimaryIp, kClientIp));
    now_ += 20 * kMs;
    engine_->on_timer(now_);
    EXPECT_TRUE(ip_frames(client_.sent).empty());
    // After the hold but inside the classification window (150 ms from the
    // first sign): its receive point is kept, reset when the window ends.
    now_ += 40 * kMs;
    client_.sent.clear();
    capture(from_primary(old));
    EXPECT_TRUE(ip_frames(client_.sent).empty());
    engine_->on_timer(round_start + 150 * kMs);
    const auto sent = ip_frames(client_.sent);
    ASSERT_EQ(sent.size(), 1u);
    const Decoded d = decode(sent[0], true);
    EXPECT_EQ(d.flags, flag::kRst);
    EXPECT_EQ(d.seq, kA);
    // From then on, a stale segment is reset at once, at the ACK it carries.
    now_ = round_start + 160 * kMs;
    client_.sent.clear();
    capture(from_primary(old));
    ASSERT_EQ(ip_frames(client_.sent).size(), 1u);
    EXPECT_EQ(decode(ip_frames(client_.sent)[0], true).flags, flag::kRst);
    EXPECT_TRUE(backup_.sent.empty());
}

TEST_F(FailoverEngineTest, ReceivePointHeardDuringTheHoldIsResetWhenItEnds) {
    reach_proxy();
    engine_->primary_heard(now_, "echo reply");
    const MonoNs hold_end = now_ + 150 * kMs;  // the hold, then the classification window
    // The stale socket talks within the hold (a push-only socket may then not
    // answer a probe for 500 ms): its receive point is kept...
    capture(from_primary(p2c(kK, kA + 7, flag::kAck, kTsP + 900, kTsC + 5)));
    EXPECT_TRUE(ip_frames(client_.sent).empty());
    // ... and reset when the hold ends, without a probe first.
    client_.sent.clear();
    engine_->on_timer(hold_end);
    const auto sent = ip_frames(client_.sent);
    ASSERT_EQ(sent.size(), 1u);
    const Decoded d = decode(sent[0], true);
    EXPECT_EQ(d.flags, flag::kRst);
    EXPECT_EQ(d.seq, kA + 7);
    EXPECT_EQ(engine_->counters().fence_probes, 0u);
    // 20 ms later the probe that checks it is gone.
    client_.sent.clear();
    engine_->on_timer(hold_end + 20 * kMs);
    ASSERT_EQ(ip_frames(client_.sent).size(), 1u);
    EXPECT_EQ(decode(ip_frames(client_.sent)[0], true).payload.size(), 1u);
}

TEST_F(FailoverEngineTest, FencingOffLeavesTheStaleSocketsAlone) {
    FailoverConfig cfg = default_config();
    cfg.fence_returning_primary = false;
    make_engine(cfg);
    reach_proxy();
    engine_->primary_heard(now_, "echo reply");
    engine_->on_timer(now_);
    capture(from_primary(p2c(kK, kA, flag::kAck, kTsP + 900, kTsC + 5)));
    EXPECT_TRUE(client_.sent.empty());
    EXPECT_TRUE(events("fence_start").empty());
}

TEST_F(FailoverEngineTest, EveryArpClaimFromThePrimaryIsAnsweredWithAGratuitousArp) {
    reach_proxy();
    const Bytes garp =
        arp_frame(kBroadcast, kBackupMac, 1, kBackupMac, kPrimaryIp, Mac{}, kPrimaryIp);
    // The primary asks for the backup's MAC (to answer an echo request): every
    // host hearing it would point the primary's IP back at the primary.
    capture(arp_request(kPrimaryMac, kPrimaryIp, kBackupIp));
    ASSERT_GE(client_.sent.size(), 2u);
    // Answered to the primary alone (so it does not ask again), then announced.
    EXPECT_EQ(client_.sent[0],
              arp_frame(kPrimaryMac, kBackupMac, 1, kBackupMac, kBackupIp, Mac{}, kPrimaryIp));
    EXPECT_EQ(client_.sent[1], garp);
    EXPECT_EQ(engine_->counters().arp_reasserted, 1u);
    EXPECT_EQ(events("fence_start").size(), 1u);  // and the primary is back: fence
    // A request aimed at a client overrides its entry whatever its age, so the
    // next claim, 1 ms later, is answered too.
    client_.sent.clear();
    capture(arp_request(kPrimaryMac, kPrimaryIp, kClientIp));
    ASSERT_EQ(client_.sent.size(), 2u);
    EXPECT_EQ(client_.sent[0],
              arp_frame(kPrimaryMac, kBackupMac, 1, kBackupMac, kClientIp, Mac{}, kPrimaryIp));
    EXPECT_EQ(client_.sent[1], garp);
    EXPECT_EQ(engine_->counters().arp_reasserted, 2u);
    // A flood at one instant: 64 announcements (the bucket), not one per frame.
    const Bytes claim = arp_request(kPrimaryMac, kPrimaryIp, kOtherClient);
    const sniffer::RawFrame f{claim, static_cast<std::uint32_t>(claim.size()), now_};
    for (int i = 0; i < 100; ++i) engine_->on_capture(f, sniffer::LinkType::Ethernet, now_);
    EXPECT_EQ(engine_->counters().arp_reasserted, 2u + 64u);
    EXPECT_LE(events("arp_reasserted").size(), 20u);  // the log is bounded
}

TEST_F(FailoverEngineTest, OwnFramesCopiedBackByAMirrorAreIgnored) {
    reach_proxy();
    // Our own fencing RST toward the primary, mirrored back to our port: it
    // must never reach the twin, which it would reset.
    Seg rst = c2p(kA, 0, flag::kRst, 0, 0);
    rst.ts.reset();
    capture(eth_frame(kBackupMac, kPrimaryMac, 0x0800, ip_packet(rst)));
    // ... and our own gratuitous ARP: not the primary claiming its IP.
    Bytes a;
    put16(a, 1);
    put16(a, 0x0800);
    put8(a, 6);
    put8(a, 4);
    put16(a, 1);
    put_mac(a, kBackupMac);
    put32(a, kPrimaryIp);
    put_mac(a, Mac{});
    put32(a, kPrimaryIp);
    capture(eth_frame(kBackupMac, kBroadcast, 0x0806, a));
    EXPECT_TRUE(backup_.sent.empty());
    EXPECT_TRUE(client_.sent.empty());
    EXPECT_EQ(engine_->counters().own_frames, 2u);
    EXPECT_EQ(engine_->counters().arp_reasserted, 0u);
    EXPECT_TRUE(events("fence_start").empty());
}

TEST_F(FailoverEngineTest, PrimaryResettingAClientIsReported) {
    reach_proxy();
    // A connection opened after the failover: the primary never had it, so
    // a RST from the primary means its kernel got one of the client's segments.
    Seg syn = c2p(kIsnC + 5000, 0, flag::kSyn, kTsC + 40, 0, 64240, 40001);
    capture(from_client(syn));
    ASSERT_EQ(engine_->counters().new_connections, 1u);
    Seg rst = p2c(77, 0, flag::kRst, 0, 0, 40001);
    rst.ts.reset();
    capture(from_primary(rst));
    EXPECT_EQ(engine_->counters().primary_resets_seen, 1u);
    ASSERT_EQ(events("primary_reset_client").size(), 1u);
    // Once the fence has fed the primary, its RSTs come to this host instead:
    // counted apart, not reported as a client reset.
    capture(eth_frame(kPrimaryMac, kBackupMac, 0x0800, ip_packet(rst)));
    EXPECT_EQ(engine_->counters().primary_resets_seen, 1u);
    EXPECT_EQ(engine_->counters().primary_resets_caught, 1u);
    EXPECT_EQ(events("primary_reset_client").size(), 1u);
}

TEST_F(FailoverEngineTest, WithoutTheBackupsMacTheTakeoverAnnouncesThePrimarysMac) {
    // Pcap replays and hosts where the MAC cannot be read: the old way, the
    // primary's MAC moved to this port (no fencing against ARP claims).
    FailoverConfig cfg = default_config();
    cfg.backup_mac = {};
    make_engine(cfg);
    run_normal();
    engine_->primary_down(now_, "down");
    ASSERT_EQ(client_.sent.size(), 1u);
    ASSERT_GE(client_.sent[0].size(), 42u);  // the gratuitous ARP
    for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(get8(client_.sent[0], 6 + i), kPrimaryMac[i]);
    from_backup(ip_packet(backup_synack()));
    client_.sent.clear();
    capture(arp_request(kPrimaryMac, kPrimaryIp, kBackupIp));
    EXPECT_TRUE(client_.sent.empty());
    from_backup(ip_packet(b2t(kIsnB + 1, kClientEnd, flag::kAck, kTsB0 + 5, kClientTsLatest, 100)));
    ASSERT_EQ(client_.sent.size(), 1u);
    EXPECT_EQ(decode(client_.sent[0], true).eth_src, kPrimaryMac);
}

// ---- issue 10: a primary that never died, echo, segment evidence ---------

/// An ICMP echo request or reply in an Ethernet frame.
Bytes icmp_echo(const Mac& src_mac, const Mac& dst_mac, std::uint32_t src_ip, std::uint32_t dst_ip,
                std::uint8_t type, std::uint16_t id, std::uint16_t seq, const Bytes& data) {
    Bytes icmp;
    put8(icmp, type);
    put8(icmp, 0);
    put16(icmp, 0);
    put16(icmp, id);
    put16(icmp, seq);
    icmp.insert(icmp.end(), data.begin(), data.end());
    poke16(icmp, 2, naive_checksum(icmp));
    Bytes p;
    put8(p, 0x45);
    put8(p, 0);
    put16(p, static_cast<std::uint16_t>(20 + icmp.size()));
    put16(p, 4321);
    put16(p, 0x4000);
    put8(p, 64);
    put8(p, 1);
    put16(p, 0);
    put32(p, src_ip);
    put32(p, dst_ip);
    poke16(p, 10, naive_checksum(std::span(p).first(20)));
    p.insert(p.end(), icmp.begin(), icmp.end());
    return eth_frame(src_mac, dst_mac, 0x0800, p);
}

TEST_F(FailoverEngineTest, StandingDownForAnotherMemberSendsNothingOnTheWireAndClosesTwinsInside) {
    // Membership (issue 12): another backup is active now. Unlike a
    // rollback, no ARP points the clients anywhere: they belong to it.
    reach_proxy();
    ASSERT_EQ(engine_->twins_in(TwinPhase::Up), 1u);
    backup_.sent.clear();
    client_.sent.clear();
    engine_->stand_down(now_, "member 2 is active at epoch 2");
    EXPECT_EQ(engine_->state(), State::Normal);
    EXPECT_TRUE(client_.sent.empty()) << "a frame on the wire while another member acts";
    EXPECT_FALSE(backup_.sent.empty()) << "the twin was not reset inside this host";
    EXPECT_EQ(engine_->counters().stood_down, 1u);
    EXPECT_EQ(engine_->counters().rollbacks, 0u);
    const auto sd = events("takeover_stood_down");
    ASSERT_EQ(sd.size(), 1u);
    EXPECT_NE(sd[0].fields.find("twins_closed=1"), std::string::npos) << sd[0].fields;
    const auto tr = events("transition");
    ASSERT_FALSE(tr.empty());
    EXPECT_NE(tr.back().fields.find("from=proxy to=normal cause=stood_down"), std::string::npos) << tr.back().fields;
    // Tracking resumes: the next client segment is tracked, not proxied.
    backup_.sent.clear();
    engine_->stand_down(now_, "again");  // in Normal: nothing
    EXPECT_EQ(engine_->counters().stood_down, 1u);
    EXPECT_TRUE(backup_.sent.empty());
}

TEST_F(FailoverEngineTest, APrimaryThatAcksBytesMigwareNeverSawIsRolledBackWithoutAnyRst) {
    // Our own link was dead when we took over (monitor.segment-evidence off,
    // say): the client kept talking to the living primary. When our link
    // comes back, the first frames show the client far ahead, with a hole
    // migware never saw, and the primary acknowledging all of it.
    reach_proxy();
    ASSERT_EQ(engine_->twins_in(TwinPhase::Up), 1u);
    Seg ahead = c2p(kClientEnd + 5000, kK, flag::kAck | flag::kPsh, kTsC + 900, kTsP + 800);
    ahead.payload = payload_of(100, 5);
    backup_.sent.clear();
    client_.sent.clear();
    capture(from_client(ahead));
    // Past a hole in what migware saw: not proxied (the twin's answer would
    // speak for the primary beside the living primary).
    EXPECT_TRUE(backup_.sent.empty());
    EXPECT_EQ(engine_->counters().client_beyond_hole, 1u);
    capture(from_primary(p2c(kK, kClientEnd + 5100, flag::kAck, kTsP + 901, kTsC + 900)));

    EXPECT_EQ(engine_->state(), State::Normal);
    EXPECT_EQ(engine_->counters().rollbacks, 1u);
    const auto rb = events("takeover_rolled_back");
    ASSERT_EQ(rb.size(), 1u);
    EXPECT_NE(rb[0].fields.find("ahead_by=5100"), std::string::npos) << rb[0].fields;
    EXPECT_NE(rb[0].fields.find("twins_closed=1"), std::string::npos) << rb[0].fields;
    const auto tr = events("transition");
    ASSERT_FALSE(tr.empty());
    EXPECT_NE(tr.back().fields.find("from=proxy to=normal cause=takeover_rolled_back"), std::string::npos)
        << tr.back().fields;
    // Nothing reaches the primary but ARP: no probe, no RST (and no fence).
    EXPECT_TRUE(ip_frames(client_.sent).empty());
    EXPECT_EQ(engine_->counters().fence_probes, 0u);
    EXPECT_EQ(engine_->counters().fence_resets, 0u);
    // The clients are pointed back at the primary's MAC: an announcement and
    // a reply aimed at the client (Ethernet source ours, for the switch).
    EXPECT_NE(std::find(client_.sent.begin(), client_.sent.end(),
                        arp_frame(kBroadcast, kBackupMac, 1, kPrimaryMac, kPrimaryIp, Mac{}, kPrimaryIp)),
              client_.sent.end());
    EXPECT_NE(std::find(client_.sent.begin(), client_.sent.end(),
                        arp_frame(kClientMac, kBackupMac, 2, kPrimaryMac, kPrimaryIp, kClientMac, kClientIp)),
              client_.sent.end());
    // The twin is closed inside the backup's stack only: RSTs into the TUN,
    // as the twin's peer, at what the backup has received.
    ASSERT_FALSE(backup_.sent.empty());
    for (const auto& pkt : backup_.sent) {
        const Decoded d = decode(pkt, false);
        EXPECT_EQ(d.flags, flag::kRst);
        EXPECT_EQ(d.src_ip, kPrimaryIp);
        EXPECT_EQ(d.dst_ip, kBackupIp);
        EXPECT_EQ(d.dport, kService);
        EXPECT_TRUE(d.tcp_checksum_ok);
    }
    EXPECT_EQ(decode(backup_.sent.back(), false).seq, kClientEnd);  // SYN seq A-1, +1, + replayed bytes

    // Tracking as before: the client's next segments are not proxied, and the
    // tracker follows the primary's numbers again.
    backup_.sent.clear();
    client_.sent.clear();
    Seg next = c2p(kClientEnd + 5100, kK, flag::kAck | flag::kPsh, kTsC + 901, kTsP + 901);
    next.payload = payload_of(10, 6);
    capture(from_client(next));
    capture(from_primary(p2c(kK, kClientEnd + 5110, flag::kAck, kTsP + 902, kTsC + 901)));
    EXPECT_TRUE(backup_.sent.empty());
    EXPECT_TRUE(client_.sent.empty());
    const auto* c = engine_->pipeline().table().find(
        {{Ipv4Addr{kClientIp}, sniffer::Port{kClientPort}}, {Ipv4Addr{kPrimaryIp}, sniffer::Port{kService}}});
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->server_ack_high->raw(), kClientEnd + 5110);
    // And a later real failure is a fresh takeover.
    engine_->primary_down(now_, "4 consecutive echo probes unanswered");
    EXPECT_EQ(engine_->state(), State::Recovery);
    ASSERT_EQ(backup_.sent.size(), 1u);
    EXPECT_EQ(decode(backup_.sent[0], false).seq, kClientEnd + 5110 - 1);  // a twin SYN at the new A
}

TEST_F(FailoverEngineTest, AClientAckingServerBytesTheBackupNeverSentIsProofOfLife) {
    // Request/response: while our link was dead the living primary kept
    // answering. The client's first segment we see acknowledges reply bytes
    // beyond anything the primary had sent by the takeover or the backup
    // since: only a living primary can have sent them. Rolled back before
    // the primary's own frames even arrive, and before anything is proxied.
    reach_proxy();
    Seg req = c2p(kClientEnd + 800, kK + 1200, flag::kAck | flag::kPsh, kTsC + 900, kTsP + 800);
    req.payload = payload_of(100, 5);
    capture(from_client(req));
    EXPECT_EQ(engine_->state(), State::Normal);
    EXPECT_EQ(engine_->counters().rollbacks, 1u);
    const auto rb = events("takeover_rolled_back");
    ASSERT_EQ(rb.size(), 1u);
    EXPECT_NE(rb[0].fields.find("client_ack="), std::string::npos) << rb[0].fields;
    for (const auto& pkt : backup_.sent) EXPECT_EQ(decode(pkt, false).flags, flag::kRst);
    EXPECT_TRUE(ip_frames(client_.sent).empty());
}

TEST_F(FailoverEngineTest, AClientAckOfUnseenBytesAmidCaptureLossIsNoProofOfLife) {
    // The primary is dead; the capture was losing frames just before the
    // takeover and dropped its last segments. The client's ACK of them is
    // not the primary's word: no rollback (counted), and a frame from the
    // primary itself would still be proof.
    run_normal();
    engine_->capture_lost(40, now_, now_);
    engine_->primary_down(now_, "4 consecutive echo probes unanswered");
    now_ += kMs;
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(engine_->state(), State::Proxy);
    now_ += kMs;
    capture(from_client(c2p(kClientEnd, kK + 1200, flag::kAck, kTsC + 900, kTsP + 800)));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().rollbacks, 0u);
    EXPECT_EQ(engine_->counters().rollback_unconfirmed, 1u);
    EXPECT_EQ(events("rollback_unconfirmed").size(), 1u);
    // The primary's own frame acknowledging client bytes migware never saw:
    // that is proof, capture loss or not.
    Seg ahead = c2p(kClientEnd + 5000, kK, flag::kAck | flag::kPsh, kTsC + 901, kTsP + 800);
    ahead.payload = payload_of(100, 5);
    capture(from_client(ahead));
    capture(from_primary(p2c(kK, kClientEnd + 5100, flag::kAck, kTsP + 901, kTsC + 901)));
    EXPECT_EQ(engine_->state(), State::Normal);
    EXPECT_EQ(engine_->counters().rollbacks, 1u);
}

TEST_F(FailoverEngineTest, TheAckThatRolledATakeoverBackIsTrackedSoItCannotRollTheNextBackToo) {
    // The primary is dead, but the capture dropped its last segments: the
    // client acknowledges bytes migware never saw, and the takeover is rolled
    // back. The monitor says Down again; the same ACK must not undo the
    // second takeover (a loop that would leave every connection dead).
    reach_proxy();
    capture(from_client(c2p(kClientEnd, kK + 1200, flag::kAck, kTsC + 900, kTsP + 800)));
    ASSERT_EQ(engine_->state(), State::Normal);
    const auto* c = engine_->pipeline().table().find(
        {{Ipv4Addr{kClientIp}, sniffer::Port{kClientPort}}, {Ipv4Addr{kPrimaryIp}, sniffer::Port{kService}}});
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->client_ack_high->raw(), kK + 1200);
    engine_->primary_down(now_, "4 consecutive echo probes unanswered");
    now_ += kMs;
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(engine_->state(), State::Proxy);
    capture(from_client(c2p(kClientEnd, kK + 1200, flag::kAck, kTsC + 901, kTsP + 800)));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().rollbacks, 1u);
    // New progress is proof again.
    capture(from_client(c2p(kClientEnd, kK + 1300, flag::kAck, kTsC + 902, kTsP + 800)));
    EXPECT_EQ(engine_->state(), State::Normal);
    EXPECT_EQ(engine_->counters().rollbacks, 2u);
}

TEST_F(FailoverEngineTest, AClientAckOfTheBackupsOwnBytesIsNoProofOfLife) {
    reach_proxy();
    // The backup answers through the twin; the client acknowledges it.
    Seg b = b2t(kIsnB + 1, kClientEnd, flag::kAck | flag::kPsh, kTsB0 + 5, kClientTsLatest, 500);
    b.payload = payload_of(200, 8);
    from_backup(ip_packet(b));
    ASSERT_FALSE(client_.sent.empty());
    capture(from_client(c2p(kClientEnd, kK + 200, flag::kAck, kTsC + 40, kTsP + 20)));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().rollbacks, 0u);
    // One byte more than the backup sent is proof.
    capture(from_client(c2p(kClientEnd, kK + 201, flag::kAck, kTsC + 41, kTsP + 20)));
    EXPECT_EQ(engine_->state(), State::Normal);
}

TEST_F(FailoverEngineTest, AReturningPrimarysStaleAckIsFencedNotRolledBack) {
    // The primary died (cable) and comes back: its socket acknowledges bytes
    // it had taken before the pull, within what migware saw the client send.
    reach_proxy();
    capture(from_primary(p2c(kK, kClientEnd, flag::kAck, kTsP + 900, kTsC + 5)));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().rollbacks, 0u);
    EXPECT_EQ(events("fence_start").size(), 1u);
}

TEST_F(FailoverEngineTest, AckOfClientBytesMigwareSawAfterTheTakeoverIsNoProofOfLife) {
    // An idle client's first segment after the takeover reaches the returning
    // primary (its ARP pointed the client at it for a moment): it has no hole,
    // so the primary ACKs it. Migware saw every byte of it: no rollback.
    reach_proxy();
    Seg s1 = c2p(kClientEnd, kK, flag::kAck | flag::kPsh, kTsC + 50, kTsP + 10);
    s1.payload = payload_of(40, 7);
    capture(from_client(s1));
    capture(from_primary(p2c(kK, kClientEnd + 40, flag::kAck, kTsP + 950, kTsC + 50)));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().rollbacks, 0u);
    // One byte beyond what migware saw is proof.
    capture(from_primary(p2c(kK, kClientEnd + 41, flag::kAck, kTsP + 951, kTsC + 50)));
    EXPECT_EQ(engine_->state(), State::Normal);
    EXPECT_EQ(engine_->counters().rollbacks, 1u);
}

TEST_F(FailoverEngineTest, ProgressSeenOnlyAfterTheFenceResetIsCountedNotRolledBack) {
    reach_proxy();
    const MonoNs round_start = fence_the_returning_primary();
    ASSERT_EQ(engine_->counters().fence_resets, 1u);
    now_ = round_start + 151 * kMs;
    capture(from_primary(p2c(kK, kClientEnd + 10000, flag::kAck, kTsP + 990, kTsC + 5)));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().rollbacks, 0u);
    EXPECT_EQ(engine_->counters().progress_after_fence, 1u);
    EXPECT_EQ(events("primary_progress_after_fence").size(), 1u);
}

TEST_F(FailoverEngineTest, RollbackIsJudgedPerTakeoverNotByLifetimeCounters) {
    // A legitimate takeover whose fence reset a stale socket of a returning
    // primary, a stand-down back to Normal, then a wrong takeover: the fence
    // of the first must not stop the second from being rolled back.
    reach_proxy();
    const MonoNs round_start = fence_the_returning_primary();
    ASSERT_EQ(engine_->counters().fence_resets, 1u);
    now_ = round_start + 200 * kMs;
    engine_->stand_down(now_, "test: another member acts");
    ASSERT_EQ(engine_->state(), State::Normal);
    // The wrong takeover.
    now_ += 1000 * kMs;
    backup_.sent.clear();
    engine_->primary_down(now_, "4 consecutive echo probes unanswered");
    ASSERT_EQ(backup_.sent.size(), 1u);
    now_ += kMs;
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(engine_->state(), State::Proxy);
    now_ += kMs;
    Seg ahead = c2p(kClientEnd + 5000, kK, flag::kAck | flag::kPsh, kTsC + 900, kTsP + 950);
    ahead.payload = payload_of(100, 5);
    capture(from_client(ahead));
    capture(from_primary(p2c(kK, kClientEnd + 5100, flag::kAck, kTsP + 991, kTsC + 900)));
    EXPECT_EQ(engine_->state(), State::Normal) << "the second takeover was not rolled back";
    EXPECT_EQ(engine_->counters().rollbacks, 1u);
    EXPECT_EQ(engine_->counters().progress_after_fence, 0u);
}

TEST_F(FailoverEngineTest, ASettledTakeoverProxiesSegmentsPastAHoleAndIsNotRolledBack) {
    // Before the takeover settles, a segment past a hole is held back (the
    // client may be talking to a living primary); once client frames have
    // been heard for kSettleHeard with no proof of life, a hole is an
    // ordinary lost frame: the segments after it go to the backup, whose
    // duplicate ACKs make the client retransmit the one frame.
    reach_proxy();
    Seg past = c2p(kClientEnd + 1000, kK, flag::kAck | flag::kPsh, kTsC + 900, kTsP + 800);
    past.payload = payload_of(100, 5);
    capture(from_client(past));
    EXPECT_TRUE(backup_.sent.empty());
    EXPECT_EQ(engine_->counters().client_beyond_hole, 1u);
    EXPECT_EQ(engine_->counters().takeovers_settled, 0u);
    // The client goes on (its own bytes, contiguous), heard for 500 ms.
    now_ += 510 * kMs;
    capture(from_client(c2p(kClientEnd, kK, flag::kAck, kTsC + 901, kTsP + 800)));
    EXPECT_EQ(engine_->counters().takeovers_settled, 1u);
    ASSERT_EQ(events("takeover_settled").size(), 1u);
    backup_.sent.clear();
    past.seq = kClientEnd + 2000;
    capture(from_client(past));
    ASSERT_EQ(backup_.sent.size(), 1u) << "a segment past a hole is proxied once settled";
    EXPECT_EQ(engine_->counters().client_beyond_hole, 1u);
    // A primary heard now is a returning one: fenced, not rolled back.
    capture(from_primary(p2c(kK, kClientEnd + 2100, flag::kAck, kTsP + 901, kTsC + 900)));
    EXPECT_EQ(engine_->state(), State::Proxy);
    EXPECT_EQ(engine_->counters().rollbacks, 0u);
    EXPECT_EQ(engine_->counters().life_after_settled, 1u);
}

TEST_F(FailoverEngineTest, EchoForThePrimarysIpIsAnsweredOnlyInProxyAndOnlyWhenSentToUs) {
    const Bytes data = payload_of(56, 9);
    const Bytes to_us = icmp_echo(kClientMac, kBackupMac, kClientIp, kPrimaryIp, 8, 0x1234, 7, data);
    // Normal: the primary answers for itself.
    run_normal();
    client_.sent.clear();
    capture(to_us);
    EXPECT_TRUE(client_.sent.empty());
    EXPECT_EQ(engine_->counters().echo_answered, 0u);
    // Recovery: not yet the active node.
    engine_->primary_down(now_, "test");
    ASSERT_EQ(engine_->state(), State::Recovery);
    client_.sent.clear();
    capture(to_us);
    EXPECT_TRUE(ip_frames(client_.sent).empty());
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(engine_->state(), State::Proxy);
    client_.sent.clear();
    capture(to_us);
    ASSERT_EQ(client_.sent.size(), 1u);
    const Bytes& r = client_.sent[0];
    const Bytes expect = icmp_echo(kBackupMac, kClientMac, kPrimaryIp, kClientIp, 0, 0x1234, 7, data);
    // Same as a fresh reply, except the IP id and TTL fields we copy or set.
    ASSERT_EQ(r.size(), 14 + 20 + 8 + data.size());
    EXPECT_EQ(Bytes(r.begin(), r.begin() + 12), Bytes(expect.begin(), expect.begin() + 12));
    EXPECT_EQ(get32(r, 14 + 12), kPrimaryIp);
    EXPECT_EQ(get32(r, 14 + 16), kClientIp);
    EXPECT_EQ(get8(r, 14 + 20), 0);  // echo reply
    EXPECT_EQ(Bytes(r.begin() + 14 + 24, r.end()), Bytes(expect.begin() + 14 + 24, expect.begin() + 14 + 28 + 56));
    EXPECT_EQ(naive_checksum(std::span(r).subspan(14, 20)), 0);
    EXPECT_EQ(naive_checksum(std::span(r).subspan(34)), 0);
    EXPECT_EQ(engine_->counters().echo_answered, 1u);
    // A request still addressed to the primary's MAC is the primary's to answer.
    client_.sent.clear();
    capture(icmp_echo(kClientMac, kPrimaryMac, kClientIp, kPrimaryIp, 8, 0x1234, 8, data));
    EXPECT_TRUE(client_.sent.empty());
    // After a rollback, never.
    Seg ahead = c2p(kClientEnd + 5000, kK, flag::kAck | flag::kPsh, kTsC + 900, kTsP + 800);
    ahead.payload = payload_of(10, 5);
    capture(from_client(ahead));
    capture(from_primary(p2c(kK, kClientEnd + 5010, flag::kAck, kTsP + 901, kTsC + 900)));
    ASSERT_EQ(engine_->state(), State::Normal);
    client_.sent.clear();
    capture(to_us);
    EXPECT_TRUE(client_.sent.empty());
}

TEST_F(FailoverEngineTest, OtherHostsFramesAreSegmentEvidenceAndRecentPeersAreAskedByArp) {
    run_normal();
    const auto frames = engine_->counters().segment_frames;
    EXPECT_GT(frames, 0u);  // the client's segments
    // The primary's own frames are not evidence.
    capture(from_primary(p2c(kK, kClientEnd, flag::kAck, kTsP + 11, kTsC + 5)));
    capture(arp_request(kPrimaryMac, kPrimaryIp, kClientIp));
    EXPECT_EQ(engine_->counters().segment_frames, frames);
    // Another host's ARP is.
    const Mac other{0x02, 0, 0, 0, 0, 0x0b};
    capture(arp_request(other, kOtherClient, kBackupIp));
    EXPECT_EQ(engine_->counters().segment_frames, frames + 1);
    // Asked: the most recent first, from this host's own address.
    client_.sent.clear();
    engine_->probe_segment(now_);
    ASSERT_EQ(client_.sent.size(), 2u);
    EXPECT_EQ(client_.sent[0], arp_frame(other, kBackupMac, 1, kBackupMac, kBackupIp, Mac{}, kOtherClient));
    EXPECT_EQ(client_.sent[1], arp_frame(kClientMac, kBackupMac, 1, kBackupMac, kBackupIp, Mac{}, kClientIp));
    EXPECT_EQ(engine_->counters().segment_arp_probes, 2u);
}

TEST_F(FailoverEngineTest, CorruptSegmentsAreDroppedNeverBufferedNorProxied) {
    // Issue 11: a segment whose TCP checksum fails is corruption on the wire.
    // Reported: the tracker kept the first (corrupt) copy and recovery handed
    // it to the backup; the good retransmission was ignored.
    FailoverConfig cfg = default_config();
    cfg.verify_tcp_checksums = true;
    make_engine(cfg);
    run_normal();
    Seg d3 = c2p(kClientEnd, kK, flag::kAck | flag::kPsh, kTsC + 6, kTsP + 10, kClientWindow);
    d3.payload = payload_of(20, 11);
    Bytes bad = from_client(d3);
    bad.back() ^= std::byte{0x40};  // one payload bit flipped after the checksum was made
    capture(bad);
    EXPECT_EQ(engine_->counters().tcp_bad_checksum, 1u);
    capture(from_client(d3));  // the client's retransmission, intact
    engine_->primary_down(now_, "test");
    now_ += kMs;
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(engine_->state(), State::Proxy);
    ASSERT_EQ(backup_.sent.size(), 3u);  // SYN, ACK, the replayed bytes
    EXPECT_EQ(decode(backup_.sent[2], false).payload, concat(unacked(), d3.payload));
    // In Proxy too: dropped, not proxied.
    backup_.sent.clear();
    Seg d4 = c2p(kClientEnd + 20, kK, flag::kAck | flag::kPsh, kTsC + 7, kTsP + 10, kClientWindow);
    d4.payload = payload_of(30, 12);
    Bytes bad4 = from_client(d4);
    bad4.back() ^= std::byte{0x01};
    capture(bad4);
    EXPECT_TRUE(backup_.sent.empty());
    EXPECT_EQ(engine_->counters().tcp_bad_checksum, 2u);
    capture(from_client(d4));
    ASSERT_EQ(backup_.sent.size(), 1u);
    EXPECT_TRUE(decode(backup_.sent[0], false).tcp_checksum_ok);
}

TEST_F(FailoverEngineTest, WithoutVerificationACorruptFirstCopyWouldBeReplayed) {
    // The same capture with verification off (pcap replays of a sender's own
    // capture, whose checksums are partial under offload): the first copy is
    // kept. This is why the daemon turns verification on.
    run_normal();
    Seg d3 = c2p(kClientEnd, kK, flag::kAck | flag::kPsh, kTsC + 6, kTsP + 10, kClientWindow);
    d3.payload = payload_of(20, 11);
    Bytes bad = from_client(d3);
    bad.back() ^= std::byte{0x40};
    capture(bad);
    capture(from_client(d3));
    EXPECT_EQ(engine_->counters().tcp_bad_checksum, 0u);
    engine_->primary_down(now_, "test");
    now_ += kMs;
    from_backup(ip_packet(backup_synack()));
    ASSERT_EQ(backup_.sent.size(), 3u);
    EXPECT_NE(decode(backup_.sent[2], false).payload, concat(unacked(), d3.payload));
}



// ---------------------------------------------------------------- expiry (issue 11 item 5)

constexpr MonoNs kS = 1'000 * kMs;

tracker::HandshakeFacts snapshot_entry(std::uint16_t client_port) {
    tracker::HandshakeFacts f;
    f.key = {{Ipv4Addr{kClientIp}, sniffer::Port{client_port}}, {Ipv4Addr{kPrimaryIp}, sniffer::Port{kService}}};
    f.client_isn = sniffer::SeqNum{1000};
    f.server_isn = sniffer::SeqNum{2000};
    f.client_mac = sniffer::MacAddr{kClientMac};
    f.server_mac = sniffer::MacAddr{kPrimaryMac};
    return f;
}

TEST_F(FailoverEngineTest, IdleConnectionsExpireOnTheEnginesTimerInNormal) {
    auto c = default_config();
    c.table.idle_timeout_ns = 10 * kS;
    make_engine(c);
    run_normal();
    ASSERT_EQ(engine_->pipeline().table().size(), 1u);
    EXPECT_LE(engine_->next_deadline(), now_ + kS);  // the sweep is due within a second
    engine_->on_timer(now_ + 9 * kS);
    EXPECT_EQ(engine_->pipeline().table().size(), 1u);
    engine_->on_timer(now_ + 11 * kS);
    EXPECT_EQ(engine_->pipeline().table().size(), 0u);
    EXPECT_EQ(engine_->pipeline().table().counters().expired_idle, 1u);
}

TEST_F(FailoverEngineTest, TheTablesTimesAreTheEnginesClockNotTheCapturesStamps) {
    // Live frames carry pcap's wall-clock stamps; restore() and expiry run on
    // the monotonic clock. Were the table stamped with the capture's time, a
    // connection would never look idle (wall clock >> monotonic).
    auto c = default_config();
    c.table.idle_timeout_ns = 10 * kS;
    make_engine(c);
    const std::int64_t wall = 1'764'000'000 * kS;
    Seg syn = c2p(kIsnC, 0, flag::kSyn, kTsC, 0, 64240);
    const Bytes f = from_client(syn);
    engine_->on_capture({f, static_cast<std::uint32_t>(f.size()), wall}, sniffer::LinkType::Ethernet, now_);
    ASSERT_EQ(engine_->pipeline().table().size(), 1u);
    engine_->on_timer(now_ + 11 * kS);
    EXPECT_EQ(engine_->pipeline().table().size(), 0u);
}

TEST_F(FailoverEngineTest, ClosedConnectionsLeaveTheTableAfterTheirLinger) {
    auto c = default_config();
    c.table.closed_linger_ns = 2 * kS;
    make_engine(c);
    run_normal();
    capture(from_client(c2p(kIsnC + 181, kK, flag::kRst, kTsC + 6, kTsP + 10)));
    engine_->on_timer(now_ + kS);
    EXPECT_EQ(engine_->pipeline().table().size(), 1u);
    engine_->on_timer(now_ + 3 * kS);
    EXPECT_EQ(engine_->pipeline().table().size(), 0u);
    EXPECT_EQ(engine_->pipeline().table().counters().expired_closed, 1u);
}

TEST_F(FailoverEngineTest, NothingExpiresOnceTakenOver) {
    auto c = default_config();
    c.table.idle_timeout_ns = 10 * kS;
    make_engine(c);
    reach_proxy();
    engine_->on_timer(now_ + 60 * kS);
    EXPECT_EQ(engine_->pipeline().table().size(), 1u);
}

TEST_F(FailoverEngineTest, SnapshotEntriesSilentSinceTheRestartAreGoneBeforeTheFailureNotLost) {
    auto c = default_config();
    c.table.idle_timeout_ns = 10 * kS;
    make_engine(c);
    ASSERT_EQ(engine_->restore({snapshot_entry(41000), snapshot_entry(kClientPort)}, now_), 2u);
    run_normal();  // the second entry's connection talks; the first stays silent
    engine_->primary_down(now_, "test");
    EXPECT_EQ(engine_->counters().gone_before_failure, 1u);
    EXPECT_EQ(engine_->counters().twins, 1u);
    for (std::size_t i = 0; i < static_cast<std::size_t>(Unrecovered::kCount); ++i)
        EXPECT_EQ(engine_->counters().unrecovered[i], 0u) << name_of(static_cast<Unrecovered>(i));
    const auto start = events("recovery_start");
    ASSERT_EQ(start.size(), 1u);
    EXPECT_NE(start[0].fields.find("gone_before_failure=1"), std::string::npos) << start[0].fields;
}

TEST_F(FailoverEngineTest, SilentSnapshotEntriesExpireLikeAnyIdleConnection) {
    auto c = default_config();
    c.table.idle_timeout_ns = 10 * kS;
    make_engine(c);
    ASSERT_EQ(engine_->restore({snapshot_entry(41000)}, now_), 1u);
    engine_->on_timer(now_ + 9 * kS);
    EXPECT_EQ(engine_->pipeline().table().size(), 1u);
    engine_->on_timer(now_ + 11 * kS);
    EXPECT_EQ(engine_->pipeline().table().size(), 0u);
    EXPECT_TRUE(engine_->handshake_facts().empty());  // and so leaves the snapshot
}

// ---------------------------------------------------------------- replay (issue 13)

/// Aligned and full replay: the primary dies in the middle of a reply. The
/// client sent one 100-byte request (two in full mode); the primary replied
/// with 500 bytes in two segments and the client acknowledged the first 300.
class ReplayTest : public FailoverEngineTest {
protected:
    static constexpr std::uint32_t kReq = 100;
    static constexpr std::uint32_t kReply = 500;
    static constexpr std::uint32_t kHave = 300;  // reply bytes the client acknowledged (K - R0)

    void make(tracker::ReplayMode mode) {
        FailoverConfig c = default_config();
        c.table.replay_mode = mode;
        c.replay_stall = 500 * kMs;
        make_engine(c);
    }
    static Bytes request(int n) { return payload_of(kReq, static_cast<std::uint8_t>(10 + n)); }
    static Bytes reply(int n) { return payload_of(kReply, static_cast<std::uint8_t>(50 + n)); }

    /// One request and its reply, starting at client/server offsets `q`/`r`
    /// past the ISNs; `have` reply bytes acknowledged by the client.
    void exchange(int n, std::uint32_t q, std::uint32_t r, std::uint32_t have) {
        Seg req = c2p(kIsnC + 1 + q, kIsnP + 1 + r, flag::kAck | flag::kPsh, kTsC + 2 + n, kTsP, 502);
        req.payload = request(n);
        capture(from_client(req));
        const Bytes rep = reply(n);
        Seg r1 = p2c(kIsnP + 1 + r, kIsnC + 1 + q + kReq, flag::kAck, kTsP + 10 + n, kTsC + 2 + n);
        r1.payload.assign(rep.begin(), rep.begin() + kHave);
        capture(from_primary(r1));
        Seg r2 = p2c(kIsnP + 1 + r + kHave, kIsnC + 1 + q + kReq, flag::kAck | flag::kPsh, kTsP + 11 + n,
                     kTsC + 2 + n);
        r2.payload.assign(rep.begin() + kHave, rep.end());
        capture(from_primary(r2));
        capture(from_client(c2p(kIsnC + 1 + q + kReq, kIsnP + 1 + r + have, flag::kAck, kTsC + 3 + n,
                                kTsP + 10 + n, kClientWindow)));
    }
    /// The takeover and the backup's SYN-ACK for a twin whose SYN is at `syn`.
    void take_over(std::uint32_t syn) {
        engine_->primary_down(now_, "test");
        ASSERT_EQ(backup_.sent.size(), 1u);
        const Decoded s = decode(backup_.sent[0], false);
        ASSERT_EQ(s.flags, flag::kSyn);
        ASSERT_EQ(s.seq, syn);
        now_ += kMs;
        Seg sa = backup_synack(syn + 1);
        from_backup(ip_packet(sa));
        ASSERT_EQ(engine_->state(), State::Proxy);
    }
    /// The backup's reply bytes [from, from + bytes.size()) of its stream.
    void backup_sends(std::uint32_t from, const Bytes& bytes, std::uint8_t flags = flag::kAck) {
        Seg s = b2t(kIsnB + 1 + from, 0, flags, kTsB0 + 1, kClientTsLatest, 500);
        s.payload = bytes;
        from_backup(ip_packet(s));
    }
    static Bytes part(const Bytes& b, std::size_t from, std::size_t to) {
        return Bytes(b.begin() + static_cast<std::ptrdiff_t>(from), b.begin() + static_cast<std::ptrdiff_t>(to));
    }
    /// Every data byte the client was sent, by client-space sequence number.
    std::vector<std::pair<std::uint32_t, Bytes>> client_data() const {
        std::vector<std::pair<std::uint32_t, Bytes>> out;
        for (const auto& f : ip_frames(client_.sent)) {
            const Decoded d = decode(f, true);
            if (!d.payload.empty()) out.emplace_back(d.seq, d.payload);
        }
        return out;
    }
    const FailoverCounters& counters() const { return engine_->counters(); }
    /// Client data other than the reset's probe: one byte the client already
    /// has, at `k` - 1, sent right after the RST at `k`.
    std::vector<std::pair<std::uint32_t, Bytes>> client_data_but_probe(std::uint32_t k) const {
        auto out = client_data();
        std::erase_if(out, [&](const auto& d) { return d.first == k - 1 && d.second.size() == 1; });
        return out;
    }
    /// The frames to the client after a reset at `k`: the RST there, then the
    /// probe (one byte below `k`, whose duplicate ACK tells the client's real
    /// receive point if it holds more).
    void expect_reset_then_probe(std::uint32_t k) const {
        const auto frames = ip_frames(client_.sent);
        ASSERT_EQ(frames.size(), 2u);
        const Decoded rst = decode(frames[0], true);
        EXPECT_EQ(rst.flags & flag::kRst, flag::kRst);
        EXPECT_EQ(rst.seq, k);
        EXPECT_EQ(rst.src_ip, kPrimaryIp);
        EXPECT_EQ(rst.dst_ip, kClientIp);
        EXPECT_EQ(rst.dport, kClientPort);
        EXPECT_TRUE(rst.tcp_checksum_ok);
        const Decoded probe = decode(frames[1], true);
        EXPECT_EQ(probe.flags & flag::kRst, 0);
        EXPECT_EQ(probe.seq, k - 1);
        EXPECT_EQ(probe.payload.size(), 1u);
        EXPECT_TRUE(probe.tcp_checksum_ok);
    }
};

TEST_F(ReplayTest, AlignedReplaysTheRequestAbsorbsWhatTheClientHasAndForwardsTheRest) {
    make(tracker::ReplayMode::Aligned);
    handshake();
    exchange(0, 0, 0, kHave);
    take_over(kIsnC);  // the twin starts at the request, not at A
    EXPECT_EQ(counters().replay_aligned, 1u);
    // ACK, then the request itself, replayed.
    ASSERT_EQ(backup_.sent.size(), 3u);
    const Decoded replayed = decode(backup_.sent[2], false);
    EXPECT_EQ(replayed.seq, kIsnC + 1);
    EXPECT_EQ(replayed.payload, request(0));
    backup_.sent.clear();

    // The backup regenerates the reply from its first byte (aligned to R0).
    const Bytes rep = reply(0);
    backup_sends(0, part(rep, 0, 250));
    EXPECT_TRUE(client_data().empty()) << "bytes the client already has must not be forwarded";
    ASSERT_EQ(backup_.sent.size(), 1u);  // migware acknowledges them itself
    const Decoded ack = decode(backup_.sent[0], false);
    EXPECT_EQ(ack.ack, kIsnB + 1 + 250);
    EXPECT_TRUE(ack.payload.empty());
    EXPECT_EQ(ack.seq, kIsnC + 1 + kReq);
    // The segment across K: verified, forwarded; the client keeps [K, end).
    backup_sends(250, part(rep, 250, kReply));
    EXPECT_EQ(counters().replay_verified, 1u);
    EXPECT_EQ(counters().replay_diverged, 0u);
    EXPECT_EQ(counters().replay_absorbed_bytes, kHave);
    const auto sent = client_data();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].first, kIsnP + 1 + 250);
    EXPECT_EQ(sent[0].second, part(rep, 250, kReply));  // every byte the primary's
    // From now on the backup's bytes pass as in push mode.
    backup_sends(kReply, payload_of(20, 99));
    ASSERT_EQ(client_data().size(), 2u);
    EXPECT_EQ(client_data()[1].first, kIsnP + 1 + kReply);
}

TEST_F(ReplayTest, AlignedResetsTheClientAndTheTwinWhenTheBackupsBytesDiffer) {
    make(tracker::ReplayMode::Aligned);
    handshake();
    exchange(0, 0, 0, kHave);
    take_over(kIsnC);
    backup_.sent.clear();
    Bytes rep = reply(0);
    rep[123] ^= std::byte{0x01};  // one bit, inside what the client has
    backup_sends(0, part(rep, 0, 250));
    backup_sends(250, part(rep, 250, kReply));
    EXPECT_EQ(counters().replay_diverged, 1u);
    EXPECT_EQ(counters().replay_verified, 0u);
    EXPECT_TRUE(client_data().empty()) << "a differing reply is never spliced";
    // The client is reset at its exact rcv_nxt, K, but not before a primary
    // that never died would have shown itself (kFenceClassify, 150 ms).
    EXPECT_TRUE(ip_frames(client_.sent).empty());
    now_ += 160 * kMs;
    engine_->on_timer(now_);
    EXPECT_EQ(counters().replay_client_resets, 1u);
    expect_reset_then_probe(kIsnP + 1 + kHave);
    // ... and so is the twin, inside this host.
    bool twin_reset = false;
    for (const auto& p : backup_.sent) twin_reset |= (decode(p, false).flags & flag::kRst) != 0;
    EXPECT_TRUE(twin_reset);
    ASSERT_EQ(events("replay_diverged").size(), 1u);
    // Later bytes of that twin never reach the client either.
    backup_sends(kReply, payload_of(20, 99));
    EXPECT_TRUE(client_data_but_probe(kIsnP + 1 + kHave).empty());
}

TEST_F(ReplayTest, ADifferenceEarlyInALongReplyIsCaughtAtTheFirstCheckpointNotAtK) {
    // One request, a reply of 100 segments of 1000 bytes; the client has the first 90.
    const Bytes rep = payload_of(100'000, 77);
    const auto long_reply_in_flight = [&] {
        make(tracker::ReplayMode::Aligned);
        client_.sent.clear();
        backup_.sent.clear();
        handshake();
        Seg req = c2p(kIsnC + 1, kIsnP + 1, flag::kAck | flag::kPsh, kTsC + 2, kTsP, 502);
        req.payload = request(0);
        capture(from_client(req));
        for (std::uint32_t i = 0; i < 100; ++i) {
            Seg d = p2c(kIsnP + 1 + i * 1000, kIsnC + 1 + kReq, flag::kAck, kTsP + 10, kTsC + 2);
            d.payload = part(rep, i * 1000, (i + 1) * 1000);
            capture(from_primary(d));
        }
        capture(from_client(
            c2p(kIsnC + 1 + kReq, kIsnP + 1 + 90'000, flag::kAck, kTsC + 3, kTsP + 10, kClientWindow)));
        take_over(kIsnC);
    };
    long_reply_in_flight();
    Bytes wrong = rep;
    wrong[100] ^= std::byte{0x01};
    // The first checkpoint is at 66,000 bytes (64 KiB rounded up to a segment's end).
    for (std::uint32_t off = 0; off < 65'000; off += 1000) backup_sends(off, part(wrong, off, off + 1000));
    EXPECT_EQ(counters().replay_diverged, 0u);
    backup_sends(65'000, part(wrong, 65'000, 66'000));
    EXPECT_EQ(counters().replay_diverged, 1u) << "caught at the checkpoint, 24 kB before K";
    EXPECT_EQ(counters().replay_absorbed_bytes, 66'000u);
    EXPECT_TRUE(client_data().empty());
    // The same reply, right, passes every checkpoint and K.
    long_reply_in_flight();
    for (std::uint32_t off = 0; off < 100'000; off += 1400)
        backup_sends(off, part(rep, off, std::min<std::uint32_t>(off + 1400, 100'000)));
    EXPECT_EQ(counters().replay_diverged, 0u);
    EXPECT_EQ(counters().replay_verified, 1u);
    EXPECT_FALSE(client_data().empty());
}

TEST_F(ReplayTest, AlignedHoldsTheClientsFramesUntilTheOverlapIsVerified) {
    make(tracker::ReplayMode::Aligned);
    handshake();
    exchange(0, 0, 0, kHave);
    take_over(kIsnC);
    backup_.sent.clear();
    // A pure ACK from the client: its ACK field would acknowledge backup
    // bytes not yet regenerated, so it waits.
    capture(from_client(c2p(kIsnC + 1 + kReq, kIsnP + 1 + kHave, flag::kAck, kTsC + 9, kTsP + 10, kClientWindow)));
    EXPECT_TRUE(backup_.sent.empty());
    const Bytes rep = reply(0);
    backup_sends(0, part(rep, 0, kHave));  // exactly up to K
    EXPECT_EQ(counters().replay_verified, 1u);
    EXPECT_TRUE(client_data().empty());
    // Now the held ACK went through, translated (K + D2 on the aligned twin).
    bool passed = false;
    for (const auto& p : backup_.sent) {
        const Decoded d = decode(p, false);
        if (d.ack == kIsnB + 1 + kHave && d.ts && d.ts->first == kTsC + 9) passed = true;
    }
    EXPECT_TRUE(passed);
}

TEST_F(ReplayTest, ABackupThatStopsShortOfWhatTheClientHasDiverges) {
    make(tracker::ReplayMode::Aligned);
    handshake();
    exchange(0, 0, 0, kHave);
    take_over(kIsnC);
    backup_sends(0, part(reply(0), 0, 100));
    now_ += 400 * kMs;
    engine_->on_timer(now_);
    EXPECT_EQ(counters().replay_diverged, 0u);  // still within the stall time
    EXPECT_LE(engine_->next_deadline(), now_ + 100 * kMs + kMs);
    now_ += 200 * kMs;
    engine_->on_timer(now_);
    EXPECT_EQ(counters().replay_diverged, 1u);
    EXPECT_TRUE(client_data_but_probe(kIsnP + 1 + kHave).empty());
}

TEST_F(ReplayTest, ABackupReplyThatEndsEarlyDiverges) {
    make(tracker::ReplayMode::Aligned);
    handshake();
    exchange(0, 0, 0, kHave);
    take_over(kIsnC);
    backup_sends(0, part(reply(0), 0, 100), flag::kAck | flag::kFin);
    EXPECT_EQ(counters().replay_diverged, 1u);
    EXPECT_TRUE(client_data().empty());
}

TEST_F(ReplayTest, PushModeStartsAtAAndForwardsTheBackupAsItIs) {
    make(tracker::ReplayMode::Push);
    handshake();
    exchange(0, 0, 0, kHave);
    take_over(kIsnC + kReq);  // A - 1
    EXPECT_EQ(counters().replay_aligned, 0u);
    backup_sends(0, payload_of(40, 7));
    ASSERT_EQ(client_data().size(), 1u);
    EXPECT_EQ(client_data()[0].first, kIsnP + 1 + kHave);  // aligned to K, not R0
}

TEST_F(ReplayTest, FullReplaysEveryRequestSinceTheHandshakeAndChecksEverythingTheClientHas) {
    make(tracker::ReplayMode::Full);
    handshake();
    exchange(0, 0, 0, kReply);            // the first reply, whole
    exchange(1, kReq, kReply, kHave);     // the second, in flight
    take_over(kIsnC);
    EXPECT_EQ(counters().replay_full, 1u);
    // Both requests, from the stream's first byte.
    Bytes replayed;
    for (std::size_t i = 2; i < backup_.sent.size(); ++i) {
        const Decoded d = decode(backup_.sent[i], false);
        replayed.insert(replayed.end(), d.payload.begin(), d.payload.end());
    }
    EXPECT_EQ(replayed, concat(request(0), request(1)));
    // The backup's whole output up to K is absorbed: the first reply, and
    // the second up to what the client has.
    const Bytes out = concat(reply(0), reply(1));
    backup_sends(0, part(out, 0, 400));
    backup_sends(400, part(out, 400, 800));
    EXPECT_TRUE(client_data().empty());
    backup_sends(800, part(out, 800, 1000));
    EXPECT_EQ(counters().replay_verified, 1u);
    EXPECT_EQ(counters().replay_absorbed_bytes, kReply + kHave);
    ASSERT_EQ(client_data().size(), 1u);
    EXPECT_EQ(client_data()[0].first, kIsnP + 1 + 800);
    EXPECT_EQ(client_data()[0].second, part(out, 800, 1000));
}

TEST_F(ReplayTest, FullOverItsCapFallsBackToAligned) {
    FailoverConfig c = default_config();
    c.table.replay_mode = tracker::ReplayMode::Full;
    c.table.per_connection_buffer_cap = 150;  // one request fits, not two
    make_engine(c);
    handshake();
    exchange(0, 0, 0, kReply);
    exchange(1, kReq, kReply, kHave);
    EXPECT_EQ(engine_->pipeline().table().counters().replay_full_over_cap, 1u);
    take_over(kIsnC + kReq);  // the second request's start
    EXPECT_EQ(counters().replay_full, 0u);
    EXPECT_EQ(counters().replay_aligned, 1u);
    const Bytes rep = reply(1);
    backup_sends(0, part(rep, 0, kReply));
    EXPECT_EQ(counters().replay_verified, 1u);
    ASSERT_EQ(client_data().size(), 1u);
    EXPECT_EQ(client_data()[0].first, kIsnP + 1 + kReply);  // R0 of the second reply
    EXPECT_EQ(client_data()[0].second, rep);
}

TEST_F(ReplayTest, AReplyThatCannotBeCheckedWhileBytesAreInFlightIsResetNotLeftHanging) {
    make(tracker::ReplayMode::Aligned);
    handshake();
    exchange(0, 0, 0, 200);  // the client acknowledged part of the first segment only: no mark at K
    engine_->primary_down(now_, "test");
    EXPECT_TRUE(backup_.sent.empty()) << "no twin: push would leave the client waiting for ever";
    EXPECT_EQ(counters().replay_aligned, 0u);
    EXPECT_EQ(counters().replay_fallback[static_cast<std::size_t>(tracker::ReplayFallback::NoMark)], 1u);
    EXPECT_EQ(unrecovered(Unrecovered::ReplyLost), 1u);
    ASSERT_EQ(events("replay_fallback").size(), 1u);
    EXPECT_NE(events("replay_fallback")[0].fields.find("done=reset"), std::string::npos);
    EXPECT_TRUE(ip_frames(client_.sent).empty());
    now_ += 160 * kMs;
    engine_->on_timer(now_);
    expect_reset_then_probe(kIsnP + 1 + 200);  // K, exactly
}

TEST_F(ReplayTest, AReplyThatCannotBeCheckedButIsWhollyAcknowledgedFallsBackToPush) {
    FailoverConfig c = default_config();
    c.table.replay_mode = tracker::ReplayMode::Aligned;
    c.table.per_connection_buffer_cap = 50;  // the 100-byte request does not fit
    make_engine(c);
    handshake();
    exchange(0, 0, 0, kReply);  // the whole reply acknowledged
    take_over(kIsnC + kReq);   // A - 1: push
    EXPECT_EQ(counters().replay_as_push, 1u);
    EXPECT_EQ(counters().replay_fallback[static_cast<std::size_t>(tracker::ReplayFallback::TurnNotHeld)], 1u);
    EXPECT_EQ(unrecovered(Unrecovered::ReplyLost), 0u);
}

TEST_F(ReplayTest, AReplyTheCaptureDidNotShowWholeIsResetNotPushed) {
    // The capture lost the reply's second segment; the client acknowledged
    // it all. Everything migware saw is acknowledged, and the reply is still
    // not complete: push would leave the client waiting for ever.
    make(tracker::ReplayMode::Aligned);
    handshake();
    Seg req = c2p(kIsnC + 1, kIsnP + 1, flag::kAck | flag::kPsh, kTsC + 2, kTsP, 502);
    req.payload = request(0);
    capture(from_client(req));
    const Bytes rep = reply(0);
    Seg r1 = p2c(kIsnP + 1, kIsnC + 1 + kReq, flag::kAck, kTsP + 10, kTsC + 2);
    r1.payload = part(rep, 0, kHave);
    capture(from_primary(r1));  // r2, [kHave, kReply), never captured
    capture(from_client(c2p(kIsnC + 1 + kReq, kIsnP + 1 + kReply, flag::kAck, kTsC + 3, kTsP + 11, kClientWindow)));
    engine_->primary_down(now_, "test");
    EXPECT_TRUE(backup_.sent.empty()) << "no twin: the reply cannot be completed";
    EXPECT_EQ(counters().replay_as_push, 0u);
    EXPECT_EQ(counters().replay_fallback[static_cast<std::size_t>(tracker::ReplayFallback::DigestBroken)], 1u);
    EXPECT_EQ(unrecovered(Unrecovered::ReplyNotSeenWhole), 1u);
    ASSERT_EQ(events("replay_fallback").size(), 1u);
    EXPECT_NE(events("replay_fallback")[0].fields.find("done=reset"), std::string::npos);
    now_ += 160 * kMs;
    engine_->on_timer(now_);
    expect_reset_then_probe(kIsnP + 1 + kReply);
    // The client held more than migware saw it acknowledge: its duplicate
    // ACK (the probe's answer) carries its receive point, and the RST goes
    // there, exactly.
    client_.sent.clear();
    capture(from_client(c2p(kIsnC + 1 + kReq, kIsnP + 1 + kReply + 40, flag::kAck, kTsC + 4, kTsP + 12,
                            kClientWindow)));
    auto frames = ip_frames(client_.sent);
    ASSERT_EQ(frames.size(), 1u);
    const Decoded answer = decode(frames[0], true);
    EXPECT_EQ(answer.flags & flag::kRst, flag::kRst);
    EXPECT_EQ(answer.seq, kIsnP + 1 + kReply + 40);
    EXPECT_TRUE(answer.tcp_checksum_ok);
    EXPECT_EQ(counters().reset_answers, 1u);
    // The client's own RST (the probe hit a closed socket) ends the answers.
    client_.sent.clear();
    capture(from_client(c2p(kIsnC + 1 + kReq, 0, flag::kRst, kTsC + 5, kTsP + 12, 0)));
    capture(from_client(c2p(kIsnC + 1 + kReq, kIsnP + 1 + kReply + 40, flag::kAck, kTsC + 6, kTsP + 12,
                            kClientWindow)));
    EXPECT_TRUE(ip_frames(client_.sent).empty());
}

TEST_F(ReplayTest, CaptureLossAfterAConnectionsLastFrameLeavesItsReplyUnknown) {
    // As AReplyThatCannotBeCheckedButIsWhollyAcknowledgedFallsBackToPush, but
    // the capture lost frames after the connection's last one: its reply may
    // have gone on unseen (the primary's last segments and the client's
    // ACKs of them, all dropped), so push is not known to be exact.
    FailoverConfig c = default_config();
    c.table.replay_mode = tracker::ReplayMode::Aligned;
    c.table.per_connection_buffer_cap = 50;  // the 100-byte request does not fit
    make_engine(c);
    handshake();
    exchange(0, 0, 0, kReply);
    now_ += kMs;
    engine_->capture_lost(3, now_, now_);
    ASSERT_EQ(events("capture_losing_frames").size(), 1u);
    EXPECT_NE(events("capture_losing_frames")[0].fields.find("replies in flight"), std::string::npos);
    engine_->capture_lost(2, now_ + kMs, now_ + kMs);
    EXPECT_EQ(events("capture_losing_frames").size(), 1u) << "one warning a minute at most";
    engine_->primary_down(now_, "test");
    EXPECT_EQ(counters().replay_as_push, 0u);
    EXPECT_EQ(unrecovered(Unrecovered::ReplyNotSeenWhole), 1u);
    EXPECT_TRUE(backup_.sent.empty());
}

TEST_F(ReplayTest, AConnectionHeardAfterTheLossIsPushedAsBefore) {
    FailoverConfig c = default_config();
    c.table.replay_mode = tracker::ReplayMode::Aligned;
    c.table.per_connection_buffer_cap = 50;
    make_engine(c);
    handshake();
    engine_->capture_lost(3, now_, now_);
    now_ += kMs;  // stamped after the loss: it came later, and so did the rest
    exchange(0, 0, 0, kReply);
    take_over(kIsnC + kReq);  // A - 1: push
    EXPECT_EQ(counters().replay_as_push, 1u);
    EXPECT_EQ(unrecovered(Unrecovered::ReplyNotSeenWhole), 0u);
}

TEST_F(ReplayTest, ARequestThePrimaryTookAndNeverAnsweredIsResetNotPushed) {
    // Too big to hold, acknowledged by the primary, no reply: push would hand
    // the backup nothing of it, and the client would wait for ever.
    FailoverConfig c = default_config();
    c.table.replay_mode = tracker::ReplayMode::Aligned;
    c.table.per_connection_buffer_cap = 50;
    make_engine(c);
    handshake();
    Seg req = c2p(kIsnC + 1, kIsnP + 1, flag::kAck | flag::kPsh, kTsC + 2, kTsP, 502);
    req.payload = request(0);
    capture(from_client(req));
    capture(from_primary(p2c(kIsnP + 1, kIsnC + 1 + kReq, flag::kAck, kTsP + 10, kTsC + 2)));
    engine_->primary_down(now_, "test");
    EXPECT_EQ(counters().replay_as_push, 0u);
    EXPECT_EQ(unrecovered(Unrecovered::RequestUnanswered), 1u);
    EXPECT_TRUE(backup_.sent.empty());
    now_ += 160 * kMs;
    engine_->on_timer(now_);
    expect_reset_then_probe(kIsnP + 1);
}

TEST_F(ReplayTest, ARollbackCancelsTheResetsNotYetSent) {
    make(tracker::ReplayMode::Aligned);
    handshake();
    exchange(0, 0, 0, kHave);
    take_over(kIsnC);
    Bytes rep = reply(0);
    rep[5] ^= std::byte{0x80};
    backup_sends(0, part(rep, 0, kHave));
    ASSERT_EQ(counters().replay_diverged, 1u);
    // The client acknowledges bytes only a living primary can have sent it.
    capture(from_client(c2p(kIsnC + 1 + kReq, kIsnP + 1 + kReply + 100, flag::kAck, kTsC + 9, kTsP + 20,
                            kClientWindow)));
    ASSERT_EQ(engine_->state(), State::Normal);
    now_ += 200 * kMs;
    engine_->on_timer(now_);
    for (const auto& f : ip_frames(client_.sent))
        EXPECT_EQ(decode(f, true).flags & flag::kRst, 0) << "a living primary's client was reset";
    EXPECT_EQ(counters().replay_client_resets, 0u);
}

}  // namespace
}  // namespace migware
