// libFuzzer target: the real FailoverEngine driven by a script.
//
// Input: [config:1] then records [op:1][len:2, big-endian][len bytes]; the
// last record may be cut short (it gets what is left). Per record, time
// first advances by (op >> 3)^2 ms (0..961 ms), then op & 7 selects:
//   0 on_capture(bytes as an Ethernet frame)
//   1 on_backup_packet(bytes as an IP packet)
//   2 on_timer at next_deadline() (at most 10 s ahead), or now if later
//   3 primary_down   4 primary_heard   5 primary_up   7 probe_segment
//   6 the backup's stack answers the oldest unanswered twin SYN with a
//     SYN-ACK (bytes[0..4): its ISN), so that Recovery can reach Proxy: the
//     fuzzer cannot guess a twin's port and sequence number.
// The config byte: bit 0 verify_tcp_checksums (the daemon's setting), 1
// answer_arp, 2 fence_returning_primary, 3 new_connections_to_returning_primary,
// 4 replay aligned (full with bit 0), 5 recover_midstream off, 6 this host's MAC known,
// 7 max_syn_rate 1000/s. scripts/fuzz_seeds.py writes scripts from captures.
//
// Oracle besides the sanitizers: everything the engine sends decodes
// cleanly, and with checksum verification on, every TCP segment it sends
// carries a valid checksum (the backup's stack and the clients would drop
// it otherwise).
//
// Only FailoverEngine's public API is used, so this keeps compiling however
// the engine is split into files.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <optional>
#include <algorithm>
#include <span>
#include <vector>

#include "migware/event_log.hpp"
#include "migware/failover.hpp"
#include "sniffer/packet_source.hpp"
#include "sniffer/parser.hpp"

namespace {

using migware::MonoNs;
using migware::sniffer::Ipv4Addr;
using migware::sniffer::LinkType;
using migware::sniffer::Packet;
using migware::sniffer::PacketKind;
namespace tcp_flag = migware::sniffer::tcp_flag;

constexpr std::uint32_t kPrimaryIp = 0xc6120001;  // 198.18.0.1
constexpr std::uint32_t kBackupIp = 0xc6120002;   // 198.18.0.2
constexpr std::uint16_t kService = 80;
constexpr std::size_t kMaxRecords = 4096;
constexpr std::size_t kMaxPendingSyns = 256;

bool g_check_tcp_checksums = false;

void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "fuzz_engine: invariant broken: %s\n", what);
    std::abort();
}

std::uint8_t u8(std::span<const std::byte> b, std::size_t i) { return std::to_integer<std::uint8_t>(b[i]); }
std::uint16_t be16(std::span<const std::byte> b, std::size_t i) {
    return static_cast<std::uint16_t>(u8(b, i) << 8 | u8(b, i + 1));
}
std::uint32_t be32(std::span<const std::byte> b, std::size_t i) {
    return std::uint32_t{be16(b, i)} << 16 | be16(b, i + 2);
}
void put16(std::vector<std::byte>& v, std::size_t i, std::uint16_t x) {
    v[i] = std::byte(x >> 8);
    v[i + 1] = std::byte(x & 0xff);
}
void put32(std::vector<std::byte>& v, std::size_t i, std::uint32_t x) {
    put16(v, i, static_cast<std::uint16_t>(x >> 16));
    put16(v, i + 2, static_cast<std::uint16_t>(x));
}

// RFC 1071, written out here rather than borrowed from rewrite/: an
// independent oracle for the engine's own checksum code.
std::uint32_t sum16(std::span<const std::byte> b, std::uint32_t acc = 0) {
    std::size_t i = 0;
    for (; i + 1 < b.size(); i += 2) acc += be16(b, i);
    if (i < b.size()) acc += std::uint32_t{u8(b, i)} << 8;
    return acc;
}
std::uint16_t fold(std::uint32_t s) {
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<std::uint16_t>(s);
}
std::uint32_t pseudo_sum(const Packet& p) {
    const std::uint32_t l4_length = p.ip.total_length - p.ip.header_length;
    return (p.ip.src.value >> 16) + (p.ip.src.value & 0xffff) + (p.ip.dst.value >> 16) +
           (p.ip.dst.value & 0xffff) + 6 + l4_length;
}

/// What the engine sent must be something a receiver accepts.
void check_sent(std::span<const std::byte> bytes, LinkType link, const char* side) {
    Packet p;
    const auto dropped = migware::sniffer::parse(bytes, static_cast<std::uint32_t>(bytes.size()), link, p);
    if (dropped) {
        std::fprintf(stderr, "fuzz_engine: sent to the %s: %zu bytes the parser drops (%.*s)\n", side,
                     bytes.size(), static_cast<int>(migware::sniffer::name_of(*dropped).size()),
                     migware::sniffer::name_of(*dropped).data());
        std::abort();
    }
    if (g_check_tcp_checksums && p.kind == PacketKind::Tcp && !p.ip.is_fragment()) {
        const auto segment = bytes.subspan(p.layout.l4, p.ip.total_length - p.ip.header_length);
        if (fold(sum16(segment, pseudo_sum(p))) != 0xffff) {
            std::fprintf(stderr, "fuzz_engine: sent to the %s: a TCP segment with a bad checksum\n", side);
            std::abort();
        }
    }
}

class CountingBackupLink final : public migware::BackupLink {
public:
    bool send_to_backup(std::span<const std::byte> ip_packet) override {
        ++packets;
        check_sent(ip_packet, LinkType::RawIp, "backup");
        Packet p;
        if (!migware::sniffer::parse(ip_packet, static_cast<std::uint32_t>(ip_packet.size()),
                                     LinkType::RawIp, p) &&
            p.kind == PacketKind::Tcp && p.tcp.flags == tcp_flag::kSyn &&
            pending_syns.size() < kMaxPendingSyns)
            pending_syns.push_back(p);
        else if (p.kind == PacketKind::Tcp && !p.tcp.has(tcp_flag::kSyn) && !p.tcp.has(tcp_flag::kRst))
            last_segment = p;
        return true;
    }
    std::optional<Packet> last_segment;  // the latest twin segment into the backup
    std::uint64_t packets = 0;
    std::deque<Packet> pending_syns;  // twin SYNs not yet answered
};

class CountingClientLink final : public migware::ClientLink {
public:
    bool send_to_client(std::span<const std::byte> frame) override {
        ++frames;
        check_sent(frame, LinkType::Ethernet, "clients");
        return true;
    }
    std::uint64_t frames = 0;
};

/// A segment from the backup's stack answering `to` (a packet the engine
/// sent it): addresses swapped, the given seq/ack/flags. A SYN-ACK carries
/// MSS, SACK-permitted and window scale; timestamps echo `to`'s when it had
/// them.
std::vector<std::byte> backup_reply(const Packet& to, std::uint32_t seq, std::uint32_t ack,
                                    std::uint8_t flags, std::span<const std::byte> payload) {
    const bool syn = (flags & tcp_flag::kSyn) != 0;
    const bool ts = to.tcp.options.has_timestamps;
    const std::size_t options = (syn ? 12 : 0) + (ts ? 12 : 0);
    const std::size_t t = 20;
    const std::size_t size = std::min<std::size_t>(t + 20 + options + payload.size(), 0xffff);
    std::vector<std::byte> v(size);
    v[0] = std::byte{0x45};
    put16(v, 2, static_cast<std::uint16_t>(v.size()));
    put16(v, 6, 0x4000);  // DF
    v[8] = std::byte{64};
    v[9] = std::byte{6};
    put32(v, 12, to.ip.dst.value);
    put32(v, 16, to.ip.src.value);
    put16(v, 10, static_cast<std::uint16_t>(~fold(sum16(std::span(v).first(20)))));
    put16(v, t, to.tcp.dst_port.value);
    put16(v, t + 2, to.tcp.src_port.value);
    put32(v, t + 4, seq);
    put32(v, t + 8, ack);
    v[t + 12] = std::byte(static_cast<std::uint8_t>((20 + options) / 4) << 4);
    v[t + 13] = std::byte{flags};
    put16(v, t + 14, 65160);
    std::size_t o = t + 20;
    if (syn) {
        v[o] = std::byte{2}, v[o + 1] = std::byte{4}, put16(v, o + 2, 1460), o += 4;  // MSS
        v[o] = std::byte{1}, v[o + 1] = std::byte{1}, o += 2;                         // NOP NOP
        v[o] = std::byte{4}, v[o + 1] = std::byte{2}, o += 2;                         // SACK-permitted
        v[o] = std::byte{1}, v[o + 1] = std::byte{3}, v[o + 2] = std::byte{3};        // NOP, wscale 7
        v[o + 3] = std::byte{7}, o += 4;
    }
    if (ts) {
        v[o] = std::byte{1}, v[o + 1] = std::byte{1}, v[o + 2] = std::byte{8};  // NOP NOP TS
        v[o + 3] = std::byte{10}, put32(v, o + 4, seq ^ 0x5a5a5a5a);
        put32(v, o + 8, to.tcp.options.tsval), o += 12;
    }
    std::copy_n(payload.begin(), v.size() - o, v.begin() + static_cast<std::ptrdiff_t>(o));
    Packet pseudo;
    pseudo.ip.src = to.ip.dst;
    pseudo.ip.dst = to.ip.src;
    pseudo.ip.total_length = static_cast<std::uint16_t>(v.size());
    pseudo.ip.header_length = 20;
    put16(v, t + 16, static_cast<std::uint16_t>(~fold(sum16(std::span(v).subspan(t), pseudo_sum(pseudo)))));
    return v;
}

migware::FailoverConfig config_from(std::uint8_t bits) {
    migware::FailoverConfig c;
    c.primary = Ipv4Addr{kPrimaryIp};
    c.backup = Ipv4Addr{kBackupIp};
    c.ports = {kService};
    c.table.servers = {migware::sniffer::Endpoint{c.primary, migware::sniffer::Port{kService}}};
    c.table.max_connections = 256;
    c.table.per_connection_buffer_cap = 1u << 16;
    c.table.global_buffer_cap = 4u << 20;
    c.verify_tcp_checksums = (bits & 0x01) != 0;
    c.answer_arp = (bits & 0x02) != 0;
    c.fence_returning_primary = (bits & 0x04) != 0;
    c.new_connections_to_returning_primary = (bits & 0x08) != 0;
    // Replay modes (issue 13): aligned, or full when checksums are verified too.
    if ((bits & 0x10) != 0)
        c.table.replay_mode = (bits & 0x01) != 0 ? migware::tracker::ReplayMode::Full
                                                 : migware::tracker::ReplayMode::Aligned;
    c.recover_midstream = (bits & 0x20) == 0;
    if ((bits & 0x40) != 0) c.backup_mac = migware::sniffer::MacAddr{{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};
    if ((bits & 0x80) != 0) c.max_syn_rate = 1000;
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto input = std::as_bytes(std::span(data, size));
    const std::uint8_t bits = data[0];
    g_check_tcp_checksums = (bits & 0x01) != 0;

    CountingBackupLink backup;
    CountingClientLink client;
    migware::MemorySink log;
    migware::FailoverEngine engine(config_from(bits), backup, client, log);

    MonoNs now = 1'000'000'000;
    std::size_t pos = 1;
    for (std::size_t n = 0; n < kMaxRecords && pos < size; ++n) {
        const std::uint8_t op = data[pos];
        std::size_t len = pos + 2 < size ? be16(input, pos + 1) : 0;
        pos = std::min(size, pos + 3);
        len = std::min(len, size - pos);
        const auto bytes = input.subspan(pos, len);
        pos += len;
        const MonoNs step = op >> 3;
        now += step * step * migware::monitor::kMillisecond;
        switch (op & 7) {
            case 0: {
                const migware::sniffer::RawFrame frame{bytes, static_cast<std::uint32_t>(bytes.size()),
                                                       now};
                engine.on_capture(frame, LinkType::Ethernet, now);
                break;
            }
            case 1:
                engine.on_backup_packet(bytes, now);
                break;
            case 2: {
                const MonoNs due = engine.next_deadline();
                const MonoNs limit = now + 10'000 * migware::monitor::kMillisecond;
                if (due != std::numeric_limits<MonoNs>::max() && due > now) now = std::min(due, limit);
                engine.on_timer(now);
                break;
            }
            case 3: engine.primary_down(now, "fuzz"); break;
            case 4: engine.primary_heard(now, "fuzz"); break;
            case 5: engine.primary_up(now, "fuzz"); break;
            case 6: {
                // The oldest unanswered twin SYN gets its SYN-ACK (ISN from
                // the record); else the latest twin segment is acknowledged,
                // with the rest of the record as the backup's data.
                const std::uint32_t isn = bytes.size() >= 4 ? be32(bytes, 0) : 0x10000000u;
                if (!backup.pending_syns.empty()) {
                    const Packet syn = backup.pending_syns.front();
                    backup.pending_syns.pop_front();
                    engine.on_backup_packet(
                        backup_reply(syn, isn, syn.tcp.seq.raw() + 1, tcp_flag::kSyn | tcp_flag::kAck, {}),
                        now);
                } else if (backup.last_segment) {
                    const Packet& to = *backup.last_segment;
                    const std::uint32_t end = to.tcp.seq.raw() + to.payload_length +
                                              (to.tcp.has(tcp_flag::kFin) ? 1u : 0u);
                    const auto payload = bytes.size() > 4 ? bytes.subspan(4) : bytes.subspan(0, 0);
                    const std::uint8_t flags = static_cast<std::uint8_t>(
                        tcp_flag::kAck | (payload.empty() ? 0 : tcp_flag::kPsh) |
                        (bytes.size() == 1 ? tcp_flag::kFin : 0));
                    engine.on_backup_packet(backup_reply(to, to.tcp.ack.raw(), end, flags, payload), now);
                }
                break;
            }
            case 7: engine.probe_segment(now); break;
        }
        log.entries.clear();  // bounded memory on long scripts
    }

    // Every view the control socket would show.
    std::size_t views = 0;
    engine.for_each_connection([&](const migware::ConnectionView& v) {
        require(v.connection != nullptr, "a view without its connection");
        ++views;
    });
    require(views <= 256, "more connections than the table holds");

    // FUZZ_ENGINE_VERBOSE=1: how far a script got (seed corpus checks, triage).
    static const bool verbose = std::getenv("FUZZ_ENGINE_VERBOSE") != nullptr;
    if (verbose) {
        const auto& c = engine.counters();
        std::fprintf(stderr,
                     "fuzz_engine: state=%.*s connections=%zu twins=%llu recovered=%llu "
                     "to_backup=%llu to_client=%llu fence_probes=%llu sent_backup=%llu "
                     "sent_clients=%llu\n",
                     static_cast<int>(migware::name_of(engine.state()).size()),
                     migware::name_of(engine.state()).data(), views,
                     static_cast<unsigned long long>(c.twins),
                     static_cast<unsigned long long>(c.recovered),
                     static_cast<unsigned long long>(c.to_backup),
                     static_cast<unsigned long long>(c.to_client),
                     static_cast<unsigned long long>(c.fence_probes),
                     static_cast<unsigned long long>(backup.packets),
                     static_cast<unsigned long long>(client.frames));
    }
    return 0;
}
