#include "migware/engine_replay.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <limits>
#include <ostream>
#include <stdexcept>

#include "migware/counters.hpp"
#include "sniffer/parser.hpp"
#include "tracker/stream_digest.hpp"

namespace migware {

namespace {

using sniffer::PacketKind;

constexpr MonoNs kNever = std::numeric_limits<MonoNs>::max();
// on_timer calls in a row that leave next_deadline() where it was: the engine
// did not act on a due timer, and replaying on would spin for ever.
constexpr std::uint64_t kMaxStuckTimers = 1000;

/// Records what the engine sends on both links, stamped with the replay's
/// packet time.
class VectorLinks final : public BackupLink, public ClientLink {
public:
    VectorLinks(const MonoNs& now, std::vector<SentPacket>& to_backup, std::vector<SentPacket>& to_client)
        : now_(now), to_backup_(to_backup), to_client_(to_client) {}
    bool send_to_backup(std::span<const std::byte> ip_packet) override { return record(to_backup_, ip_packet); }
    bool send_to_client(std::span<const std::byte> frame) override { return record(to_client_, frame); }

private:
    bool record(std::vector<SentPacket>& out, std::span<const std::byte> bytes) {
        out.push_back({now_, {bytes.begin(), bytes.end()}});
        return true;
    }
    const MonoNs& now_;
    std::vector<SentPacket>& to_backup_;
    std::vector<SentPacket>& to_client_;
};

class VectorSink final : public EventSink {
public:
    explicit VectorSink(std::vector<LoggedEvent>& out) : out_(out) {}
    using EventSink::emit;
    void emit(std::int64_t mono_ns, std::string_view event, Fields fields) override {
        out_.push_back({mono_ns, std::string(event), to_logfmt(fields)});
    }

private:
    std::vector<LoggedEvent>& out_;
};

/// One source with one frame of look-ahead (a source's bytes are only valid
/// until its next read, and the merge must see both heads).
class Cursor {
public:
    explicit Cursor(sniffer::PacketSource* source) : source_(source) { advance(); }
    bool has() const { return has_; }
    MonoNs time() const { return frame_.timestamp_ns; }
    const sniffer::RawFrame& frame() const { return frame_; }
    sniffer::LinkType link() const { return source_->link(); }
    bool error() const { return error_; }
    std::string error_text() const { return source_ ? source_->error() : std::string(); }
    void advance() {
        has_ = false;
        if (!source_ || error_) return;
        sniffer::RawFrame f;
        switch (source_->next(f)) {
            case sniffer::ReadStatus::Frame:
                bytes_.assign(f.bytes.begin(), f.bytes.end());
                frame_ = {bytes_, f.wire_length, f.timestamp_ns};
                has_ = true;
                break;
            case sniffer::ReadStatus::End:
                break;
            case sniffer::ReadStatus::Error:
                error_ = true;
                break;
        }
    }

private:
    sniffer::PacketSource* source_;
    std::vector<std::byte> bytes_;
    sniffer::RawFrame frame_;
    bool has_ = false;
    bool error_ = false;
};

bool is_port(const std::vector<std::uint16_t>& ports, sniffer::Port p) {
    return std::find(ports.begin(), ports.end(), p.value) != ports.end();
}

/// The daemon's capture filters, as a predicate on a decoded frame (see
/// sniffer::capture_filter and sniffer::arp_capture_filter; "vlan and ..." is
/// the same test on the inner headers, which the parser has already reached).
bool daemon_would_capture(const sniffer::Packet& p, const FailoverConfig& c) {
    switch (p.kind) {
        case PacketKind::Arp:
            return true;
        case PacketKind::Tcp:
            return (p.ip.src == c.primary || p.ip.dst == c.primary) &&
                   (c.ports.empty() || is_port(c.ports, p.tcp.src_port) ||
                    is_port(c.ports, p.tcp.dst_port));
        case PacketKind::IcmpEcho:
            return p.ip.dst == c.primary && p.icmp.type == 8;
        default:
            return false;
    }
}

/// Every engine counter the table lists, as `name=value`, in table order.
std::vector<std::string> engine_counter_lines(const FailoverEngine& engine) {
    std::vector<std::string> out;
    counters::for_each_json({.engine = &engine}, [&](const std::string& key, std::uint64_t v) {
        out.push_back(key + "=" + std::to_string(v));
    });
    return out;
}

std::string connection_line(std::size_t n, const ConnectionView& v) {
    const tracker::Connection& c = *v.connection;
    std::string s = "connection n=" + std::to_string(n) + " client=" + c.key.client.to_string() +
                    " server=" + c.key.server.to_string() +
                    " tcp=" + std::string(tracker::name_of(c.state)) +
                    " partial=" + (c.partial ? "true" : "false") +
                    " phase=" + std::string(name_of(v.phase));
    if (v.reason) s += " reason=" + std::string(name_of(*v.reason));
    if (v.twin)
        s += " twin_port=" + std::to_string(v.twin->twin_port) +
             " to_backup=" + std::to_string(v.twin->to_backup_packets) +
             " to_backup_bytes=" + std::to_string(v.twin->to_backup_bytes) +
             " to_client=" + std::to_string(v.twin->to_client_packets) +
             " to_client_bytes=" + std::to_string(v.twin->to_client_bytes);
    return s;
}

/// The IPv4 packet inside a backup-side frame (TUN captures are RAW; an
/// Ethernet or cooked capture of the same traffic works too), if it is one
/// the backup's stack sent toward the primary's IP.
std::optional<std::span<const std::byte>> backup_ip_packet(const sniffer::RawFrame& f,
                                                           sniffer::LinkType link,
                                                           const FailoverConfig& c) {
    sniffer::Packet p;
    if (sniffer::parse(f.bytes, f.wire_length, link, p)) return std::nullopt;
    if (p.kind == PacketKind::Arp || p.kind == PacketKind::NotIpv4) return std::nullopt;
    if (p.ip.dst != c.primary) return std::nullopt;
    return f.bytes.subspan(p.layout.l3);
}

void put_le16(std::string& s, std::uint16_t v) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>(v >> 8);
}
void put_le32(std::string& s, std::uint32_t v) {
    put_le16(s, static_cast<std::uint16_t>(v & 0xffff));
    put_le16(s, static_cast<std::uint16_t>(v >> 16));
}

std::string rel_time(MonoNs t, MonoNs base) {
    const MonoNs d = t - base;
    const MonoNs a = d < 0 ? -d : d;
    char buf[48];
    std::snprintf(buf, sizeof buf, "%c%lld.%09lld", d < 0 ? '-' : '+',
                  static_cast<long long>(a / 1'000'000'000), static_cast<long long>(a % 1'000'000'000));
    return buf;
}

std::string abs_time(MonoNs t) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "@%lld.%09lld", static_cast<long long>(t / 1'000'000'000),
                  static_cast<long long>(t % 1'000'000'000));
    return buf;
}

std::string tcp_flags(std::uint8_t f) {
    // tcpdump's letters, in its order; '.' for ACK.
    static constexpr std::array<std::pair<std::uint8_t, char>, 8> kLetters{{
        {sniffer::tcp_flag::kSyn, 'S'}, {sniffer::tcp_flag::kFin, 'F'},
        {sniffer::tcp_flag::kRst, 'R'}, {sniffer::tcp_flag::kPsh, 'P'},
        {sniffer::tcp_flag::kUrg, 'U'}, {sniffer::tcp_flag::kEce, 'E'},
        {sniffer::tcp_flag::kCwr, 'W'}, {sniffer::tcp_flag::kAck, '.'},
    }};
    std::string s;
    for (const auto& [bit, letter] : kLetters)
        if (f & bit) s += letter;
    return s.empty() ? "none" : s;
}

/// One frame, decoded by the project's parser, for people reading a diff.
std::string describe(std::span<const std::byte> bytes, sniffer::LinkType link) {
    sniffer::Packet p;
    if (auto drop = sniffer::parse(bytes, static_cast<std::uint32_t>(bytes.size()), link, p))
        return "malformed=" + std::string(sniffer::name_of(*drop));
    std::string s;
    if (p.has_ethernet) {
        s += "eth=" + p.eth.src.to_string() + ">" + p.eth.dst.to_string();
        if (p.eth.vlan) s += " vlan=" + std::to_string(*p.eth.vlan & 0x0fff);
        s += ' ';
    }
    switch (p.kind) {
        case PacketKind::Tcp:
            s += "tcp " + sniffer::Endpoint{p.ip.src, p.tcp.src_port}.to_string() + ">" +
                 sniffer::Endpoint{p.ip.dst, p.tcp.dst_port}.to_string() +
                 " flags=" + tcp_flags(p.tcp.flags) + " seq=" + std::to_string(p.tcp.seq.raw()) +
                 " ack=" + std::to_string(p.tcp.ack.raw()) + " win=" + std::to_string(p.tcp.window) +
                 " len=" + std::to_string(p.payload_length) + " ipid=" + std::to_string(p.ip.id);
            if (p.tcp.options.has_timestamps)
                s += " ts=" + std::to_string(p.tcp.options.tsval) + "/" +
                     std::to_string(p.tcp.options.tsecr);
            break;
        case PacketKind::Arp:
            s += std::string("arp op=") + (p.arp.op == 1 ? "request" : p.arp.op == 2 ? "reply" : "other") +
                 " sender=" + p.arp.sender_ip.to_string() + "/" + p.arp.sender_mac.to_string() +
                 " target=" + p.arp.target_ip.to_string() + "/" + p.arp.target_mac.to_string();
            break;
        case PacketKind::IcmpEcho:
        case PacketKind::Icmp:
            s += "icmp " + p.ip.src.to_string() + ">" + p.ip.dst.to_string() +
                 " type=" + std::to_string(p.icmp.type) + " code=" + std::to_string(p.icmp.code);
            if (p.kind == PacketKind::IcmpEcho)
                s += " id=" + std::to_string(p.icmp.id) + " seq=" + std::to_string(p.icmp.sequence);
            break;
        default:
            s += "kind=" + std::string(sniffer::name_of(p.kind));
            break;
    }
    return s;
}

}  // namespace

std::optional<FailoverInstant> FailoverInstant::parse(std::string_view text) {
    FailoverInstant out;
    if (!text.empty() && text.front() == '@') {
        out.absolute = true;
        text.remove_prefix(1);
    }
    const auto dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (whole.empty() || whole.size() > 10 || frac.size() > 9) return std::nullopt;
    if (dot != std::string_view::npos && frac.empty()) return std::nullopt;
    std::int64_t s = 0, ns = 0;
    for (char c : whole) {
        if (c < '0' || c > '9') return std::nullopt;
        s = s * 10 + (c - '0');
    }
    for (std::size_t i = 0; i < 9; ++i) {
        const char c = i < frac.size() ? frac[i] : '0';
        if (c < '0' || c > '9') return std::nullopt;
        ns = ns * 10 + (c - '0');
    }
    out.ns = s * 1'000'000'000 + ns;
    return out;
}

EngineReplayResult run_engine_replay(sniffer::PacketSource& capture,
                                     sniffer::PacketSource* backup_capture,
                                     const EngineReplayOptions& options) {
    EngineReplayResult r;
    MonoNs now = 0;
    VectorLinks links(now, r.to_backup, r.to_client);
    VectorSink sink(r.events);
    const FailoverConfig& cfg = options.engine;
    FailoverEngine engine(cfg, links, links, sink);
    const bool skip_outbound = options.daemon_filter && cfg.backup_mac != sniffer::MacAddr{};

    Cursor client(&capture);
    Cursor backup(backup_capture);
    if (!client.has()) {
        // Nothing to replay, and no first packet for a relative T.
        r.ok = false;
        r.error = client.error() ? "read error after 0 packets: " + client.error_text()
                                 : "the capture holds no frames";
        return r;
    }
    r.first_packet = client.time();
    const MonoNs failover_at =
        options.failover_at.absolute ? options.failover_at.ns : r.first_packet + options.failover_at.ns;
    bool failover_pending = true;
    bool started = false;

    // Moves packet time to `t`, never backwards.
    auto advance_to = [&](MonoNs t) {
        if (!started) {
            now = t;
            started = true;
        } else if (t < now) {
            ++r.input.time_steps_back;
        } else {
            now = t;
        }
    };
    // Fires every timer due at or before `limit`, in deadline order.
    std::uint64_t stuck = 0;
    auto fire_timers = [&](MonoNs limit) {
        for (;;) {
            const MonoNs due = engine.next_deadline();
            if (due == kNever || due > limit) return true;
            if (started && due < now) {
                // Due before the current time: the engine set it in the past.
            } else {
                now = due;
                started = true;
            }
            engine.on_timer(now);
            ++r.input.timer_calls;
            if (engine.next_deadline() == due) {
                if (++stuck > kMaxStuckTimers) {
                    r.ok = false;
                    r.error = "the engine's timer due at " + abs_time(due) +
                              " stayed due after " + std::to_string(kMaxStuckTimers) + " on_timer calls";
                    return false;
                }
            } else {
                stuck = 0;
            }
        }
    };

    for (;;) {
        // The next input event: the earlier head; at equal times the client
        // side, then the backup side, then the failover.
        MonoNs next_t = kNever;
        int which = -1;  // 0 client, 1 backup, 2 failover
        if (client.has()) {
            next_t = client.time();
            which = 0;
        }
        if (backup.has() && backup.time() < next_t) {
            next_t = backup.time();
            which = 1;
        }
        if (failover_pending && failover_at < next_t) {
            next_t = failover_at;
            which = 2;
        }
        if (which < 0) break;
        if (!fire_timers(std::max(next_t, started ? now : next_t))) return r;
        advance_to(next_t);
        if (which == 0) {
            ++r.input.frames;
            const sniffer::RawFrame& f = client.frame();
            bool feed = true;
            if (options.daemon_filter) {
                sniffer::Packet p;
                // A frame the parser refuses is handed over anyway: the
                // engine's parser counts it, as the daemon's would.
                if (!sniffer::parse(f.bytes, f.wire_length, client.link(), p)) {
                    if (skip_outbound && p.has_ethernet && p.eth.src == cfg.backup_mac) {
                        ++r.input.skipped_outbound;
                        feed = false;
                    } else if (!daemon_would_capture(p, cfg)) {
                        ++r.input.skipped_filter;
                        feed = false;
                    }
                }
            }
            if (feed) {
                ++r.input.fed;
                engine.on_capture(f, client.link(), now);
            }
            client.advance();
        } else if (which == 1) {
            ++r.input.backup_frames;
            if (auto ip = backup_ip_packet(backup.frame(), backup.link(), cfg)) {
                ++r.input.backup_fed;
                engine.on_backup_packet(*ip, now);
            } else {
                ++r.input.backup_skipped;
            }
            backup.advance();
        } else {
            failover_pending = false;
            r.failover_at = now;
            r.failed_over = true;
            engine.primary_down(now, "replay --failover-at " + abs_time(failover_at));
        }
    }
    if (client.error() || backup.error()) {
        r.ok = false;
        r.error = client.error() ? "read error after " + std::to_string(r.input.frames) +
                                       " packets: " + client.error_text()
                                 : "backup capture: read error after " +
                                       std::to_string(r.input.backup_frames) +
                                       " packets: " + backup.error_text();
    }
    // After the last packet: whatever is due within the drain window.
    if (started && !fire_timers(now + options.drain)) return r;
    r.end = now;

    r.final_state = engine.state();
    r.final_state_since = r.first_packet;
    for (const auto& e : r.events)
        if (e.event == "transition") r.final_state_since = e.at;
    std::size_t n = 0;
    engine.for_each_connection([&](const ConnectionView& v) { r.connection_lines.push_back(connection_line(++n, v)); });
    r.counter_lines = engine_counter_lines(engine);
    return r;
}

std::string pcap_bytes(std::uint32_t linktype, const std::vector<SentPacket>& packets) {
    std::string s;
    put_le32(s, 0xa1b23c4d);  // pcap, nanosecond timestamps
    put_le16(s, 2);
    put_le16(s, 4);
    put_le32(s, 0);  // thiszone
    put_le32(s, 0);  // sigfigs
    put_le32(s, 262144);
    put_le32(s, linktype);
    for (const SentPacket& p : packets) {
        const auto t = static_cast<std::uint64_t>(p.at);
        put_le32(s, static_cast<std::uint32_t>(t / 1'000'000'000));
        put_le32(s, static_cast<std::uint32_t>(t % 1'000'000'000));
        put_le32(s, static_cast<std::uint32_t>(p.bytes.size()));
        put_le32(s, static_cast<std::uint32_t>(p.bytes.size()));
        for (std::byte b : p.bytes) s += static_cast<char>(std::to_integer<std::uint8_t>(b));
    }
    return s;
}

void write_pcap(const std::string& path, std::uint32_t linktype, const std::vector<SentPacket>& packets) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const std::string bytes = pcap_bytes(linktype, packets);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write '" + path + "'");
}

void print_engine_replay(std::ostream& out, const EngineReplayResult& r, bool list_frames) {
    const MonoNs base = r.first_packet;
    const auto& in = r.input;
    out << "replay first=" << abs_time(base) << " frames=" << in.frames << " fed=" << in.fed
        << " skipped_outbound=" << in.skipped_outbound << " skipped_filter=" << in.skipped_filter
        << " backup_frames=" << in.backup_frames << " backup_fed=" << in.backup_fed
        << " backup_skipped=" << in.backup_skipped << " time_steps_back=" << in.time_steps_back
        << " timer_calls=" << in.timer_calls << '\n';
    if (r.failed_over)
        out << "failover t=" << rel_time(r.failover_at, base) << " at=" << abs_time(r.failover_at) << '\n';
    else
        out << "failover none\n";  // nothing was replayed (an empty capture)
    for (const auto& e : r.events)
        if (e.event == "transition") out << "transition t=" << rel_time(e.at, base) << ' ' << e.fields << '\n';
    if (list_frames) {
        // Both links in one time line; at equal times, in the order sent
        // within each link, client first.
        std::size_t ci = 0, bi = 0, n = 0;
        while (ci < r.to_client.size() || bi < r.to_backup.size()) {
            const bool take_client =
                bi == r.to_backup.size() ||
                (ci < r.to_client.size() && r.to_client[ci].at <= r.to_backup[bi].at);
            const SentPacket& p = take_client ? r.to_client[ci++] : r.to_backup[bi++];
            char hash[20];
            std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(tracker::digest_update(tracker::kDigestBasis, p.bytes)));
            out << "frame n=" << ++n << " to=" << (take_client ? "client" : "backup")
                << " t=" << rel_time(p.at, base) << " len=" << p.bytes.size() << " fnv=" << hash << ' '
                << describe(p.bytes, take_client ? sniffer::LinkType::Ethernet : sniffer::LinkType::RawIp)
                << '\n';
        }
    }
    for (const auto& c : r.connection_lines) out << c << '\n';
    out << "state final=" << name_of(r.final_state) << " since=" << rel_time(r.final_state_since, base)
        << " end=" << rel_time(r.end, base) << " to_client=" << r.to_client.size()
        << " to_backup=" << r.to_backup.size() << '\n';
    for (const auto& c : r.counter_lines) out << "counter " << c << '\n';
}

}  // namespace migware
