// run_engine_replay on a synthetic capture: packet-time clock, timers between
// and after frames (bounded by the drain), the failover instant, the
// backup-side capture interleaved by time, the daemon's capture filters, the
// pcap writer, and the same output twice.
//
// Frames are built here (Ethernet + IPv4 + TCP, checksums computed naively);
// what the engine sends is decoded with the project's parser, which has its
// own tests.

#include "migware/engine_replay.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "sniffer/parser.hpp"
#include "sniffer/pcap_source.hpp"

namespace migware {
namespace {

using Bytes = std::vector<std::byte>;
using Mac = std::array<std::uint8_t, 6>;
namespace flag = sniffer::tcp_flag;

constexpr MonoNs kMs = monitor::kMillisecond;
constexpr MonoNs kT0 = 1'764'630'000'000'000'000;  // the capture's first frame (ns since the epoch)

constexpr std::uint32_t ip4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return (std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d;
}
constexpr std::uint32_t kClientIp = ip4(198, 18, 0, 10);
constexpr std::uint32_t kPrimaryIp = ip4(198, 18, 0, 1);
constexpr std::uint32_t kBackupIp = ip4(198, 18, 0, 2);
constexpr std::uint16_t kClientPort = 40000;
constexpr std::uint16_t kService = 7000;
constexpr Mac kClientMac{0x02, 0, 0, 0, 0, 0x0a};
constexpr Mac kPrimaryMac{0x02, 0, 0, 0, 0, 0x01};
constexpr Mac kBackupMac{0x02, 0, 0, 0, 0, 0x02};
constexpr std::uint32_t kIsnC = 1000;
constexpr std::uint32_t kIsnP = 5000;
constexpr std::uint32_t kIsnB = 9000;

void put8(Bytes& b, std::uint8_t v) { b.push_back(std::byte{v}); }
void put16(Bytes& b, std::uint16_t v) {
    put8(b, static_cast<std::uint8_t>(v >> 8));
    put8(b, static_cast<std::uint8_t>(v));
}
void put32(Bytes& b, std::uint32_t v) {
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}
void poke16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = std::byte{static_cast<std::uint8_t>(v >> 8)};
    b[at + 1] = std::byte{static_cast<std::uint8_t>(v)};
}

std::uint16_t naive_checksum(const Bytes& d) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < d.size(); i += 2) {
        std::uint32_t w = std::to_integer<std::uint32_t>(d[i]) << 8;
        if (i + 1 < d.size()) w |= std::to_integer<std::uint32_t>(d[i + 1]);
        sum += w;
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

struct Seg {
    std::uint32_t src_ip, dst_ip;
    std::uint16_t sport, dport;
    std::uint32_t seq, ack;
    std::uint8_t flags;
    std::string payload;
    bool mss = false;
};

/// IPv4 + TCP (MSS 1460 on SYNs when asked), correct checksums.
Bytes ip_packet(const Seg& s) {
    Bytes tcp;
    put16(tcp, s.sport);
    put16(tcp, s.dport);
    put32(tcp, s.seq);
    put32(tcp, s.ack);
    put8(tcp, static_cast<std::uint8_t>((s.mss ? 6 : 5) << 4));
    put8(tcp, s.flags);
    put16(tcp, 64000);
    put16(tcp, 0);  // checksum
    put16(tcp, 0);
    if (s.mss) {
        put8(tcp, 2);
        put8(tcp, 4);
        put16(tcp, 1460);
    }
    for (char c : s.payload) put8(tcp, static_cast<std::uint8_t>(c));
    Bytes pseudo;
    put32(pseudo, s.src_ip);
    put32(pseudo, s.dst_ip);
    put8(pseudo, 0);
    put8(pseudo, 6);
    put16(pseudo, static_cast<std::uint16_t>(tcp.size()));
    pseudo.insert(pseudo.end(), tcp.begin(), tcp.end());
    poke16(tcp, 16, naive_checksum(pseudo));
    Bytes ip;
    put8(ip, 0x45);
    put8(ip, 0);
    put16(ip, static_cast<std::uint16_t>(20 + tcp.size()));
    put16(ip, 1);
    put16(ip, 0x4000);
    put8(ip, 64);
    put8(ip, 6);
    put16(ip, 0);
    put32(ip, s.src_ip);
    put32(ip, s.dst_ip);
    poke16(ip, 10, naive_checksum(ip));
    ip.insert(ip.end(), tcp.begin(), tcp.end());
    return ip;
}

Bytes ether(const Mac& dst, const Mac& src, const Bytes& ip, std::uint16_t type = 0x0800) {
    Bytes f;
    for (auto x : dst) put8(f, x);
    for (auto x : src) put8(f, x);
    put16(f, type);
    f.insert(f.end(), ip.begin(), ip.end());
    return f;
}

sniffer::MemorySource::Frame frame_at(MonoNs t, Bytes bytes) {
    const auto n = static_cast<std::uint32_t>(bytes.size());
    return {std::move(bytes), n, t};
}

Bytes c2p(std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::string payload = {}, bool mss = false) {
    return ether(kPrimaryMac, kClientMac,
                 ip_packet({kClientIp, kPrimaryIp, kClientPort, kService, seq, ack, flags, std::move(payload), mss}));
}
Bytes p2c(std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, bool mss = false) {
    return ether(kClientMac, kPrimaryMac,
                 ip_packet({kPrimaryIp, kClientIp, kService, kClientPort, seq, ack, flags, {}, mss}));
}

/// One connection: handshake, 10 client bytes acknowledged, 5 more not.
std::vector<sniffer::MemorySource::Frame> client_side() {
    return {
        frame_at(kT0, c2p(kIsnC, 0, flag::kSyn, {}, true)),
        frame_at(kT0 + 1 * kMs, p2c(kIsnP, kIsnC + 1, flag::kSyn | flag::kAck, true)),
        frame_at(kT0 + 2 * kMs, c2p(kIsnC + 1, kIsnP + 1, flag::kAck)),
        frame_at(kT0 + 3 * kMs, c2p(kIsnC + 1, kIsnP + 1, flag::kAck | flag::kPsh, "0123456789")),
        frame_at(kT0 + 4 * kMs, p2c(kIsnP + 1, kIsnC + 11, flag::kAck)),
        frame_at(kT0 + 5 * kMs, c2p(kIsnC + 11, kIsnP + 1, flag::kAck | flag::kPsh, "abcde")),
    };
}

EngineReplayOptions options_at(MonoNs after_first) {
    EngineReplayOptions o;
    o.engine.primary = sniffer::Ipv4Addr{kPrimaryIp};
    o.engine.backup = sniffer::Ipv4Addr{kBackupIp};
    o.engine.ports = {kService};
    o.engine.table.servers = {{sniffer::Ipv4Addr{kPrimaryIp}, sniffer::Port{kService}}};
    o.failover_at = {false, after_first};
    return o;
}

sniffer::Packet decode(const SentPacket& p, sniffer::LinkType link) {
    sniffer::Packet out;
    EXPECT_FALSE(sniffer::parse(p.bytes, static_cast<std::uint32_t>(p.bytes.size()), link, out));
    return out;
}

std::string report(const EngineReplayResult& r) {
    std::ostringstream s;
    print_engine_replay(s, r, true);
    return s.str();
}

bool has_line(const std::vector<std::string>& lines, const std::string& want) {
    return std::find(lines.begin(), lines.end(), want) != lines.end();
}

// The backup never answers: every twin SYN retransmission happens on packet
// time (100 ms, doubled), then the twin fails and the engine is in Proxy.
TEST(EngineReplay, TimersFireOnPacketTimeAfterTheLastFrame) {
    sniffer::MemorySource capture(sniffer::LinkType::Ethernet, client_side());
    const auto r = run_engine_replay(capture, nullptr, options_at(10 * kMs));
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_TRUE(r.failed_over);
    const MonoNs t = kT0 + 10 * kMs;
    EXPECT_EQ(r.failover_at, t);
    ASSERT_EQ(r.to_backup.size(), 5u);
    const MonoNs want[] = {0, 100, 300, 700, 1500};
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(r.to_backup[i].at, t + want[i] * kMs) << i;
        const auto p = decode(r.to_backup[i], sniffer::LinkType::RawIp);
        EXPECT_EQ(p.tcp.flags, flag::kSyn) << i;
        EXPECT_EQ(p.ip.dst.value, kBackupIp);
        EXPECT_EQ(p.tcp.dst_port.value, kService);
    }
    EXPECT_EQ(r.input.frames, 6u);
    EXPECT_EQ(r.input.fed, 6u);
    EXPECT_EQ(r.final_state, State::Proxy);
    EXPECT_EQ(r.final_state_since, t + 3100 * kMs);  // 100+200+400+800+1600 ms
    EXPECT_TRUE(has_line(r.counter_lines, "unrecovered_no_synack=1"));
    EXPECT_TRUE(has_line(r.counter_lines, "syn_sent=5"));
    const std::string text = report(r);
    EXPECT_NE(text.find("transition t=+0.010000000 from=normal to=recovery cause=primary_down"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("transition t=+3.110000000 from=recovery to=proxy"), std::string::npos) << text;
}

TEST(EngineReplay, DrainBoundsTheTimersPastTheEnd) {
    sniffer::MemorySource capture(sniffer::LinkType::Ethernet, client_side());
    auto o = options_at(10 * kMs);
    o.drain = 200 * kMs;  // the SYNs at T and T+100 ms; T+300 ms is past it
    const auto r = run_engine_replay(capture, nullptr, o);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.to_backup.size(), 2u);
    EXPECT_EQ(r.final_state, State::Recovery);
    EXPECT_EQ(r.end, kT0 + 110 * kMs);
}

TEST(EngineReplay, NoFailoverBeforeT) {
    sniffer::MemorySource capture(sniffer::LinkType::Ethernet, client_side());
    auto o = options_at(0);
    o.failover_at = {true, kT0 + 4 * kMs};  // absolute: between frames 5 and 6
    const auto r = run_engine_replay(capture, nullptr, o);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.failover_at, kT0 + 4 * kMs);
    ASSERT_FALSE(r.to_backup.empty());
    EXPECT_EQ(r.to_backup.front().at, kT0 + 4 * kMs);
    EXPECT_EQ(r.events.front().event, "transition");
}

/// The twin SYN the engine sends for client_side(), from a replay with no backup.
sniffer::Packet twin_syn() {
    sniffer::MemorySource capture(sniffer::LinkType::Ethernet, client_side());
    auto o = options_at(10 * kMs);
    o.drain = 0;
    const auto r = run_engine_replay(capture, nullptr, o);
    EXPECT_EQ(r.to_backup.size(), 1u);
    return decode(r.to_backup.at(0), sniffer::LinkType::RawIp);
}

/// The backup's side, as a TUN capture (RAW): the engine's own SYN as written
/// (to be skipped: it is not toward the primary), then the backup's SYN-ACK.
std::vector<sniffer::MemorySource::Frame> backup_side(const sniffer::Packet& syn, MonoNs synack_at) {
    const std::uint16_t q = syn.tcp.src_port.value;
    return {
        frame_at(kT0 + 10 * kMs, ip_packet({kPrimaryIp, kBackupIp, q, kService, syn.tcp.seq.raw(), 0,
                                            flag::kSyn, {}, true})),
        frame_at(synack_at, ip_packet({kBackupIp, kPrimaryIp, kService, q, kIsnB, syn.tcp.seq.raw() + 1,
                                       flag::kSyn | flag::kAck, {}, true})),
    };
}

TEST(EngineReplay, BackupCaptureIsInterleavedByTime) {
    const auto syn = twin_syn();
    sniffer::MemorySource capture(sniffer::LinkType::Ethernet, client_side());
    sniffer::MemorySource backup(sniffer::LinkType::RawIp, backup_side(syn, kT0 + 11 * kMs));
    const auto r = run_engine_replay(capture, &backup, options_at(10 * kMs));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.input.backup_frames, 2u);
    EXPECT_EQ(r.input.backup_fed, 1u);
    EXPECT_EQ(r.input.backup_skipped, 1u);
    EXPECT_EQ(r.final_state, State::Proxy);
    EXPECT_EQ(r.final_state_since, kT0 + 11 * kMs);
    EXPECT_TRUE(has_line(r.counter_lines, "recovered=1"));
    EXPECT_TRUE(has_line(r.counter_lines, "replayed_bytes=5"));
    // After the SYN-ACK, at its time: the handshake's ACK and the 5 bytes
    // the primary never acknowledged, in the backup's sequence space.
    ASSERT_GE(r.to_backup.size(), 2u);
    EXPECT_EQ(r.to_backup[0].at, kT0 + 10 * kMs);
    std::string replayed;
    for (std::size_t i = 1; i < r.to_backup.size(); ++i) {
        EXPECT_EQ(r.to_backup[i].at, kT0 + 11 * kMs);
        const auto p = decode(r.to_backup[i], sniffer::LinkType::RawIp);
        EXPECT_EQ(p.tcp.ack.raw(), kIsnB + 1);
        for (std::uint32_t k = 0; k < p.payload_captured; ++k)
            replayed += static_cast<char>(std::to_integer<std::uint8_t>(r.to_backup[i].bytes[p.layout.payload + k]));
    }
    EXPECT_EQ(replayed, "abcde");
    ASSERT_EQ(r.connection_lines.size(), 1u);
    EXPECT_NE(r.connection_lines[0].find(" phase=proxied"), std::string::npos) << r.connection_lines[0];
}

// A SYN-ACK recorded before the replay's failover belongs to no twin yet: the
// replay does not reorder inputs to make a capture fit.
TEST(EngineReplay, BackupPacketBeforeTheFailoverIsUnknown) {
    const auto syn = twin_syn();
    sniffer::MemorySource capture(sniffer::LinkType::Ethernet, client_side());
    sniffer::MemorySource backup(sniffer::LinkType::RawIp, backup_side(syn, kT0 + 9 * kMs));
    auto o = options_at(10 * kMs);
    o.drain = 0;
    const auto r = run_engine_replay(capture, &backup, o);
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(has_line(r.counter_lines, "recovered=0"));
    EXPECT_TRUE(has_line(r.counter_lines, "backup_unknown=1"));
}

TEST(EngineReplay, SameOutputTwice) {
    const auto syn = twin_syn();
    std::string text[2], client_pcap[2], backup_pcap[2];
    for (int i = 0; i < 2; ++i) {
        sniffer::MemorySource capture(sniffer::LinkType::Ethernet, client_side());
        sniffer::MemorySource backup(sniffer::LinkType::RawIp, backup_side(syn, kT0 + 11 * kMs));
        const auto r = run_engine_replay(capture, &backup, options_at(10 * kMs));
        text[i] = report(r);
        client_pcap[i] = pcap_bytes(kLinktypeEthernet, r.to_client);
        backup_pcap[i] = pcap_bytes(kLinktypeRaw, r.to_backup);
    }
    EXPECT_EQ(text[0], text[1]);
    EXPECT_EQ(client_pcap[0], client_pcap[1]);
    EXPECT_EQ(backup_pcap[0], backup_pcap[1]);
    EXPECT_NE(text[0].find("frame n=1 "), std::string::npos);
}

TEST(EngineReplay, DaemonFilterAndDirection) {
    auto frames = client_side();
    // UDP to the primary: outside the daemon's filter.
    Bytes udp = ip_packet({kClientIp, kPrimaryIp, 5000, 53, 0, 0, 0, {}, false});
    udp[9] = std::byte{17};
    poke16(udp, 10, 0);
    poke16(udp, 10, naive_checksum(Bytes(udp.begin(), udp.begin() + 20)));
    frames.push_back(frame_at(kT0 + 6 * kMs, ether(kPrimaryMac, kClientMac, udp)));
    // TCP to another port of the primary: outside it too.
    frames.push_back(frame_at(kT0 + 6 * kMs, ether(kPrimaryMac, kClientMac,
                                                   ip_packet({kClientIp, kPrimaryIp, 41000, 22, 1, 0,
                                                              flag::kSyn, {}, false}))));
    // Sent from the backup's MAC: the daemon's capture (inbound only) never has it.
    frames.push_back(frame_at(kT0 + 7 * kMs, ether(kClientMac, kBackupMac,
                                                   ip_packet({kBackupIp, kClientIp, kService, kClientPort, 1, 0,
                                                              flag::kSyn, {}, false}))));
    auto o = options_at(50 * kMs);
    o.drain = 0;
    o.engine.backup_mac.bytes = kBackupMac;
    {
        sniffer::MemorySource capture(sniffer::LinkType::Ethernet, frames);
        const auto r = run_engine_replay(capture, nullptr, o);
        EXPECT_EQ(r.input.frames, 9u);
        EXPECT_EQ(r.input.fed, 6u);
        EXPECT_EQ(r.input.skipped_filter, 2u);
        EXPECT_EQ(r.input.skipped_outbound, 1u);
        EXPECT_TRUE(has_line(r.counter_lines, "own_frames=0"));
    }
    o.daemon_filter = false;
    {
        sniffer::MemorySource capture(sniffer::LinkType::Ethernet, frames);
        const auto r = run_engine_replay(capture, nullptr, o);
        EXPECT_EQ(r.input.fed, 9u);
        EXPECT_TRUE(has_line(r.counter_lines, "own_frames=1"));  // the engine's own check
    }
}

TEST(EngineReplay, TimeNeverStepsBack) {
    auto frames = client_side();
    frames.push_back(frame_at(kT0 + 2 * kMs, c2p(kIsnC + 16, kIsnP + 1, flag::kAck)));  // stamped earlier
    sniffer::MemorySource capture(sniffer::LinkType::Ethernet, frames);
    auto o = options_at(10 * kMs);
    o.drain = 0;
    const auto r = run_engine_replay(capture, nullptr, o);
    EXPECT_EQ(r.input.time_steps_back, 1u);
    EXPECT_EQ(r.failover_at, kT0 + 10 * kMs);
}

TEST(EngineReplay, PcapWriterRoundTrip) {
    const std::vector<SentPacket> sent = {
        {kT0 + 123456789, ip_packet({kPrimaryIp, kBackupIp, 1, 2, 3, 4, flag::kSyn, {}, false})},
        {kT0 + 2'000'000'001, ip_packet({kPrimaryIp, kBackupIp, 1, 2, 4, 5, flag::kAck, "xyz", false})},
    };
    char path[] = "/tmp/engine_replay_test.XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    write_pcap(path, kLinktypeRaw, sent);
    {
        sniffer::PcapFileSource in(path);
        EXPECT_EQ(in.link(), sniffer::LinkType::RawIp);
        sniffer::RawFrame f;
        for (const auto& want : sent) {
            ASSERT_EQ(in.next(f), sniffer::ReadStatus::Frame);
            EXPECT_EQ(f.timestamp_ns, want.at);
            EXPECT_EQ(Bytes(f.bytes.begin(), f.bytes.end()), want.bytes);
            EXPECT_EQ(f.wire_length, want.bytes.size());
        }
        EXPECT_EQ(in.next(f), sniffer::ReadStatus::End);
    }
    std::ifstream raw(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(raw)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes, pcap_bytes(kLinktypeRaw, sent));
    EXPECT_EQ(bytes.substr(0, 4), std::string("\x4d\x3c\xb2\xa1", 4));  // nanosecond pcap, little-endian
    std::remove(path);
}

TEST(EngineReplay, FailoverInstantParse) {
    auto a = FailoverInstant::parse("2.5");
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->absolute);
    EXPECT_EQ(a->ns, 2'500'000'000);
    auto b = FailoverInstant::parse("@1764630000.123456789");
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->absolute);
    EXPECT_EQ(b->ns, 1'764'630'000'123'456'789);
    EXPECT_EQ(FailoverInstant::parse("0")->ns, 0);
    for (const char* bad : {"", "@", "x", "1.", ".5", "-1", "1.1234567890", "1e3", "1.2.3", "12345678901"})
        EXPECT_FALSE(FailoverInstant::parse(bad)) << bad;
}

}  // namespace
}  // namespace migware
