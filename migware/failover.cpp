#include "migware/failover.hpp"

#include <algorithm>
#include <cstring>

#include "rewrite/bytes.hpp"
#include "rewrite/checksum.hpp"
#include "rewrite/handshake.hpp"

namespace migware {

using sniffer::Packet;
using sniffer::PacketKind;
using sniffer::SeqNum;
namespace tf = sniffer::tcp_flag;

namespace {

constexpr std::size_t kScratchBytes = 65536 + 64;
constexpr std::uint16_t kDefaultMss = 536;  // RFC 9293 §3.7.1 when the client sent none
constexpr std::size_t kUnrecoverableLogLimit = 50;
constexpr std::size_t kResetLogLimit = 20;
// Gratuitous ARPs against the primary's own claims: one for every claim (an
// ARP request aimed at a host overrides its entry whatever its age), within a
// token bucket that only a flood would empty.
constexpr double kReassertBurst = 64;
constexpr double kReassertPerSecond = 1000;
constexpr MonoNs kFenceRoundGap = 1'000 * monitor::kMillisecond;
// No RST to a stale socket until the primary's ARP claims have been quiet this
// long: while some client still points at the primary, a live stale socket
// answers its segments with harmless duplicate ACKs, a reset one with RSTs.
constexpr MonoNs kFenceHold = 50 * monitor::kMillisecond;
// After a RST, the probe that checks the socket is gone. A primary with no
// socket answers at once and without rate limit.
constexpr MonoNs kFenceVerify = 20 * monitor::kMillisecond;
// No RST to any stale socket until this long after the primary is first heard
// (issue 10): a primary that never died shows it within milliseconds (its
// ACKs run past what migware saw the clients send), and one such ACK must
// stop the fence before it resets anything of a healthy service.
constexpr MonoNs kFenceClassify = 150 * monitor::kMillisecond;
constexpr MonoNs kRelaySweep = 1'000 * monitor::kMillisecond;
constexpr MonoNs kRelayIdle = 600'000 * monitor::kMillisecond;
constexpr std::size_t kEthernet = 14;

bool known(const sniffer::MacAddr& m) { return m != sniffer::MacAddr{}; }

/// Destination, source, the 802.1Q tag if any, the EtherType. Returns the
/// header's length (14 or 18).
std::size_t write_ethernet(std::span<std::byte> buf, const sniffer::MacAddr& dst,
                           const sniffer::MacAddr& src, std::optional<std::uint16_t> vlan,
                           std::uint16_t ethertype) {
    for (std::size_t i = 0; i < 6; ++i) {
        buf[i] = std::byte{dst.bytes[i]};
        buf[6 + i] = std::byte{src.bytes[i]};
    }
    std::size_t off = 12;
    if (vlan) {
        rewrite::store_be16(buf, off, 0x8100);
        rewrite::store_be16(buf, off + 2, *vlan);
        off += 4;
    }
    rewrite::store_be16(buf, off, ethertype);
    return off + 2;
}

std::string ep(const Endpoint& e) { return e.to_string(); }

/// One past the last sequence number `seq` occupies with `p`'s payload and FIN.
SeqNum segment_end(SeqNum seq, const Packet& p) {
    return seq + (p.payload_length + (p.tcp.has(tf::kFin) ? 1u : 0u));
}

/// Moves `edge` to `end` when [seq, end) starts inside what it already covers:
/// coverage that stays contiguous, never across a hole.
void extend_contiguous(SeqNum& edge, SeqNum seq, SeqNum end) {
    if (!seq.after(edge) && end.after(edge)) edge = end;
}

}  // namespace

std::string_view name_of(State s) {
    switch (s) {
        case State::Normal: return "normal";
        case State::Recovery: return "recovery";
        case State::Proxy: return "proxy";
    }
    return "unknown";
}

std::string_view name_of(Event e) {
    switch (e) {
        case Event::PrimaryDown: return "primary_down";
        case Event::TwinsResolved: return "twins_resolved";
        case Event::PrimaryAnswering: return "primary_answering";
        case Event::TakeoverRolledBack: return "takeover_rolled_back";
    }
    return "unknown";
}

std::string_view name_of(Phase p) {
    switch (p) {
        case Phase::Tracked: return "tracked";
        case Phase::Recovering: return "recovering";
        case Phase::Proxied: return "proxied";
        case Phase::Lost: return "lost";
        case Phase::Closed: return "closed";
    }
    return "unknown";
}

FailoverEngine::FailoverEngine(FailoverConfig config, BackupLink& backup, ClientLink& client,
                               EventSink& log)
    : config_(std::move(config)),
      backup_(backup),
      client_(client),
      log_(log),
      pipeline_(config_.table),
      has_own_mac_(known(config_.backup_mac)),
      scratch_(kScratchBytes) {}

bool FailoverEngine::advance(Twin& t, TwinEvent e) {
    const auto to = next_phase(t.phase, e);
    if (to) t.phase = *to;
    return to.has_value();
}

bool FailoverEngine::is_service(const Endpoint& e) const {
    return e.ip == config_.primary &&
           std::find(config_.ports.begin(), config_.ports.end(), e.port.value) != config_.ports.end();
}

monitor::PassiveSignal FailoverEngine::passive_signal() const {
    return {last_primary_packet_, retransmissions_since_primary_};
}

std::size_t FailoverEngine::twins_in(TwinPhase phase) const {
    return static_cast<std::size_t>(std::count_if(
        twins_.begin(), twins_.end(), [&](const Twin& t) { return t.phase == phase; }));
}

ConnectionView FailoverEngine::view_of(const tracker::Connection& c) const {
    ConnectionView v;
    v.connection = &c;
    v.phase = c.state == tracker::TcpState::Closed ? Phase::Closed : Phase::Tracked;
    if (const Twin* found = twins_.find(c.key)) {
        const Twin& t = *found;
        v.twin = t.stats;
        v.twin->twin_port = t.twin_src.port.value;
        switch (t.phase) {
            case TwinPhase::Waiting:
            case TwinPhase::SynSent: v.phase = Phase::Recovering; break;
            case TwinPhase::Up: v.phase = Phase::Proxied; break;
            case TwinPhase::Closed: v.phase = Phase::Closed; break;
            case TwinPhase::Failed:
                v.phase = Phase::Lost;
                v.reason = t.recovery.failure;
                break;
        }
    } else if (auto lit = lost_.find(c.key); lit != lost_.end()) {
        v.phase = Phase::Lost;
        v.reason = lit->second;
    } else if (state_ != State::Normal && c.state != tracker::TcpState::Closed) {
        v.phase = Phase::Closed;  // a twin that closed and whose mapping expired
    }
    return v;
}

// ---------------------------------------------------------------- capture path

void FailoverEngine::on_capture(const sniffer::RawFrame& frame, sniffer::LinkType link, MonoNs now) {
    const Packet* p = pipeline_.parse(frame, link);
    if (!p) return;
    if (p->has_ethernet && has_own_mac_ && p->eth.src == config_.backup_mac) {
        // This host's own frame (ours, or its kernel's), copied back to us by
        // a mirror port: never a client's or the primary's.
        ++counters_.own_frames;
        return;
    }
    if (config_.verify_tcp_checksums && p->kind == PacketKind::Tcp && !tcp_checksum_ok(frame, *p)) {
        // Corrupt on the wire: dropped, never repaired (a fresh checksum would
        // launder it into the backup, and the tracker would keep its bytes).
        ++counters_.tcp_bad_checksum;
        return;
    }
    if (p->kind == PacketKind::Tcp && p->ip.src == config_.primary && p->has_ethernet) {
        primary_mac_ = p->eth.src;
        primary_mac_known_ = true;
    }
    const bool from_primary = p->kind == PacketKind::Arp ? p->arp.sender_ip == config_.primary
                                                         : p->ip.src == config_.primary;
    if (!from_primary && !(primary_mac_known_ && p->has_ethernet && p->eth.src == primary_mac_)) {
        // Another host on the segment: proof that this host still hears it,
        // whatever the primary does (DESIGN.md §6a).
        ++counters_.segment_frames;
        if (p->has_ethernet) {
            if (p->kind == PacketKind::Arp && p->arp.sender_ip != config_.backup &&
                p->arp.sender_ip.value != 0)
                note_peer({p->arp.sender_ip, p->arp.sender_mac, p->eth.vlan});
            else if (p->kind == PacketKind::Tcp)
                note_peer({p->ip.src, p->eth.src, p->eth.vlan});
        }
    }
    if (p->kind == PacketKind::IcmpEcho) {
        if (state_ == State::Proxy && config_.answer_echo) answer_echo(frame, *p);
        return;
    }
    if (state_ == State::Normal) {
        const auto obs = pipeline_.track(frame);
        if (obs.connection) {
            if (obs.direction == tracker::Direction::FromServer) {
                last_primary_packet_ = now;
                retransmissions_since_primary_ = 0;
            } else if (obs.client_retransmission) {
                ++retransmissions_since_primary_;
            }
        }
        return;
    }
    if (p->kind == PacketKind::Arp) {
        if (p->arp.sender_ip == config_.primary) {
            if (!has_own_mac_) return;  // announcing with its MAC: nothing to defend
            // The primary claims its IP again (a request it broadcasts, or its
            // answer to a client's): every host that hears it points the IP
            // back at the primary's MAC, whose kernel would reset the migrated
            // clients. Announce ours again at once.
            if (config_.answer_arp) {
                // Asked about a client (or us)? Answer the primary first, so
                // it does not ask again.
                if (p->arp.op == 1 && config_.fence_returning_primary)
                    feed_primary(now, p->arp.target_ip);
                reassert_tokens_ = std::min(
                    kReassertBurst, reassert_tokens_ + kReassertPerSecond *
                                                           static_cast<double>(now - reassert_at_) / 1e9);
                reassert_at_ = now;
            }
            fence_hold_until_ = std::max(fence_hold_until_, now + kFenceHold);
            if (config_.answer_arp && reassert_tokens_ >= 1) {
                reassert_tokens_ -= 1;
                if (counters_.arp_reasserted++ < kResetLogLimit)
                    log_.emit(now, "arp_reasserted",
                              "claimed_by=" + p->arp.sender_mac.to_string() + " op=" +
                                  std::to_string(p->arp.op) + " n=" +
                                  std::to_string(counters_.arp_reasserted));
                announce(our_mac());
            }
            primary_heard(now, "arp from the primary");
            return;
        }
        if (config_.answer_arp) answer_arp(*p);
        return;
    }
    if (p->kind != PacketKind::Tcp) return;
    if (p->ip.src == config_.primary) {
        on_primary_frame(frame, *p, now);
        return;
    }
    if (!relayed_.empty()) {
        const tracker::FourTuple key{{p->ip.src, p->tcp.src_port}, {p->ip.dst, p->tcp.dst_port}};
        if (relayed_.contains(key)) {
            relay_to_primary(frame, *p, now);
            return;
        }
    }
    Twin* t = twin_for_client(*p);
    const bool new_syn = p->tcp.has(tf::kSyn) && !p->tcp.has(tf::kAck);
    if (new_syn && is_service({p->ip.dst, p->tcp.dst_port}) && !t &&
        primary_back_ && config_.new_connections_to_returning_primary) {
        // Fail-back policy: the returning primary takes it. The clients send
        // the primary's IP to this host's MAC now, so relay the connection's
        // frames to the primary's MAC; its answers go to the client directly.
        if (relay_to_primary(frame, *p, now)) ++counters_.new_connections_to_primary;
        return;
    }
    if (new_syn && is_service({p->ip.dst, p->tcp.dst_port}) &&
        (!t || t->phase == TwinPhase::Closed || t->phase == TwinPhase::Failed)) {
        // A connection opened after the failover (or a 4-tuple reused after
        // one closed): the backup's service takes it directly.
        t = open_direct_twin(*p, now);
    }
    if (!t) {
        if (is_service({p->ip.dst, p->tcp.dst_port}) && !new_syn) ++counters_.client_unrecovered;
        return;
    }
    if (!t->direct) {
        note_client_seen(*t, *p);
        const SeqNum served = t->proxy.to_client_end.after(t->proxy.server_high) ? t->proxy.to_client_end : t->proxy.server_high;
        if (p->tcp.has(tf::kAck) && !p->tcp.has(tf::kRst) && p->tcp.ack.after(served) &&
            proof_of_life(now, "client=" + ep({p->ip.src, p->tcp.src_port}) + " client_ack=" +
                                   std::to_string(p->tcp.ack.raw()) + " served_up_to=" +
                                   std::to_string(served.raw()) +
                                   " note=\"the client acknowledges server bytes only the primary "
                                   "can have sent it\""))
            return;
        if (p->tcp.seq.after(t->proxy.client_contig)) {
            // It starts past a hole in what migware saw: bytes that reached
            // nobody through us. Our own link was down (the client may be
            // talking to a living primary), or the capture dropped frames.
            // Not proxied: the twin's answer would speak beside the primary.
            // A real gap is filled by the client's retransmission.
            ++counters_.client_beyond_hole;
            return;
        }
    }
    switch (t->phase) {
        case TwinPhase::Waiting:
        case TwinPhase::SynSent:
            // Held, not lost: replayed the moment the twin is up.
            if (t->recovery.queued.size() < config_.queue_frames_per_twin) {
                t->recovery.queued.emplace_back(frame.bytes.begin(), frame.bytes.end());
                ++counters_.queued_frames;
            } else {
                ++counters_.queue_overflow;
            }
            break;
        case TwinPhase::Up:
        case TwinPhase::Closed:  // lingering: final ACKs still pass
            proxy_client_frame(*t, frame, *p, now);
            break;
        case TwinPhase::Failed:
            ++counters_.client_unrecovered;
            break;
    }
}

bool FailoverEngine::tcp_checksum_ok(const sniffer::RawFrame& frame, const Packet& p) {
    // A segment cut short by the capture cannot be checked; the tracker
    // already refuses to replay bytes it did not capture.
    const std::size_t end = std::size_t{p.layout.l3} + p.ip.total_length;
    if (p.payload_captured < p.payload_length || end > frame.bytes.size()) return true;
    return rewrite::tcp_checksum_ok(p.ip.src, p.ip.dst,
                                    frame.bytes.subspan(p.layout.l4, end - p.layout.l4));
}

Twin* FailoverEngine::twin_for_client(const Packet& p) {
    return twins_.find({{p.ip.src, p.tcp.src_port}, {p.ip.dst, p.tcp.dst_port}});
}

Twin* FailoverEngine::open_direct_twin(const Packet& p, MonoNs now) {
    if (!have_a_mac() || !p.has_ethernet) {
        ++counters_.new_connections_unserved;
        return nullptr;
    }
    const tracker::FourTuple key{{p.ip.src, p.tcp.src_port}, {p.ip.dst, p.tcp.dst_port}};
    twins_.unlink(key);
    // No sequence space to translate: the client and the backup run their own
    // handshake, and every option is negotiated between them. Only addresses,
    // ports and MACs change (zero offsets, equal window shifts).
    Twin t;
    t.key = key;
    t.direct = true;
    const std::uint16_t q = twins_.free_port(p.tcp.src_port.value);
    t.twin_src = {config_.primary, sniffer::Port{q}};
    t.backup = {config_.backup, p.tcp.dst_port};
    t.vlan = p.eth.vlan;
    t.proxy.map.to_backup = {t.twin_src, t.backup, std::nullopt};
    t.proxy.map.to_client = {key.server, key.client,
                       rewrite::MacRewrite{our_mac(),
                                           p.eth.src}};
    t.phase = TwinPhase::Up;
    // Recovery's pacing walks the twins by index; a slot added after it has
    // walked them all must not look like one still waiting.
    const bool all_pumped = next_waiting_ == twins_.size();
    const auto added = twins_.add(std::move(t), /*reuse=*/true);
    if (added.appended && all_pumped) ++next_waiting_;
    const std::uint32_t idx = added.index;
    ++counters_.new_connections;
    const Neighbour nb{p.ip.src, p.eth.src, p.eth.vlan};
    if (std::find(neighbours_.begin(), neighbours_.end(), nb) == neighbours_.end()) {
        neighbours_.push_back(nb);
        // A client the primary never had: should a segment of it reach the
        // primary, its RST must come here too.
        if (counters_.fence_rounds > 0) feed_primary(now, p.ip.src);
    }
    return &twins_[idx];
}

void FailoverEngine::proxy_client_frame(Twin& t, const sniffer::RawFrame& frame, const Packet& p,
                                        MonoNs now) {
    if (t.close.final_ack_passed && p.payload_length == 0 && !p.tcp.has(tf::kSyn) &&
        !p.tcp.has(tf::kFin) && !p.tcp.has(tf::kRst)) {
        // The close is complete on both sides: the backup's socket is gone
        // and would answer with a RST. Such ACKs come from a client in
        // TIME_WAIT answering a stray segment (a returning primary's stale
        // socket, say); a real server's TIME_WAIT peer would not see them.
        ++counters_.closed_acks_dropped;
        return;
    }
    const std::span<std::byte> buf(scratch_.data(), frame.bytes.size());
    std::memcpy(buf.data(), frame.bytes.data(), frame.bytes.size());
    const auto res = rewrite::translate_client_to_backup(buf, p, t.proxy.offsets, t.proxy.map);
    if (!res.ok()) {
        ++counters_.rewrite_errors;
        return;
    }
    if (p.tcp.has(tf::kFin)) {
        t.close.client_fin = true;
        t.close.client_fin_seq = p.tcp.seq + p.payload_length;
    }
    if (p.tcp.options.has_timestamps) t.fence.client_tsval = p.tcp.options.tsval;
    if (t.close.client_fin && t.close.backup_fin && p.tcp.has(tf::kAck) &&
        !SeqNum{rewrite::load_be32(buf, p.layout.l4 + 8)}.before(t.close.backup_fin_seq + 1u))
        t.close.final_ack_passed = true;  // the client acknowledged the backup's FIN
    {
        // Contiguous only: a segment beyond a hole is not in the backup's
        // stream (it will sit out of window there), so its end is no receive
        // point to reset the twin at.
        const SeqNum twin_seq{rewrite::load_be32(buf, p.layout.l4 + 4)};
        extend_contiguous(t.proxy.to_backup_end, twin_seq, segment_end(twin_seq, p));
    }
    if (send_backup(buf.subspan(p.layout.l3, p.ip.total_length))) {
        ++counters_.to_backup;
        counters_.to_backup_bytes += p.payload_length;
        ++t.stats.to_backup_packets;
        t.stats.to_backup_bytes += p.payload_length;
    }
    if (p.tcp.has(tf::kRst) || (t.close.client_fin && t.close.backup_fin)) note_close(t, now);
}

// ---------------------------------------------------------------- backup path

void FailoverEngine::on_backup_packet(std::span<const std::byte> ip_packet, MonoNs now) {
    Packet p;
    if (sniffer::parse(ip_packet, static_cast<std::uint32_t>(ip_packet.size()),
                       sniffer::LinkType::RawIp, p) ||
        p.kind != PacketKind::Tcp) {
        ++counters_.backup_not_tcp;
        return;
    }
    Twin* found = twins_.by_port(p.tcp.dst_port.value);
    if (p.ip.src != config_.backup || p.ip.dst != config_.primary || !found ||
        found->backup != Endpoint{p.ip.src, p.tcp.src_port}) {
        ++counters_.backup_unknown;
        return;
    }
    Twin& t = *found;
    if (p.tcp.has(tf::kAck) && (!t.proxy.backup_ack || p.tcp.ack.after(*t.proxy.backup_ack))) t.proxy.backup_ack = p.tcp.ack;
    switch (t.phase) {
        case TwinPhase::SynSent:
            if (p.tcp.has(tf::kSyn) && p.tcp.has(tf::kAck) && p.tcp.ack == t.recovery.syn_seq + 1u) {
                twin_established(t, p, now);
            } else if (p.tcp.has(tf::kRst)) {
                fail_twin(t, Unrecovered::BackupRefused, now);
            }
            break;
        case TwinPhase::Up:
        case TwinPhase::Closed:
            if (p.tcp.has(tf::kSyn) && !t.direct) {
                // A retransmitted SYN-ACK: the backup wants our ACK again. It
                // must never reach the client, whose connection is long open.
                rewrite::TwinHandshake th{t.recovery.syn_seq, t.recovery.isn_b, std::nullopt, false,
                                          t.proxy.offsets.timestamps, t.proxy.backup_tsval};
                std::array<std::byte, rewrite::kMaxHandshakePacket> ack{};
                const auto spec = rewrite::twin_ack_spec(t.recovery.observed, th, t.twin_src, t.backup,
                                                         t.recovery.client_window, next_ip_id());
                send_backup(std::span(ack.data(), rewrite::build_twin_ack(ack, spec)));
                return;
            }
            proxy_backup_packet(t, ip_packet, p, now);
            break;
        case TwinPhase::Waiting:
        case TwinPhase::Failed:
            ++counters_.backup_unknown;
            break;
    }
}

void FailoverEngine::proxy_backup_packet(Twin& t, std::span<const std::byte> ip_packet,
                                         const Packet& p, MonoNs now) {
    // The backup's stack hands over bare IP; put the primary's Ethernet
    // header (and the client's VLAN tag) in front of it.
    const std::size_t eth_len = t.vlan ? 18 : 14;
    const std::size_t len = eth_len + ip_packet.size();
    if (len > scratch_.size()) {
        ++counters_.rewrite_errors;
        return;
    }
    const std::span<std::byte> buf(scratch_.data(), len);
    const auto& macs = *t.proxy.map.to_client.macs;
    write_ethernet(buf, macs.dst, macs.src, t.vlan, 0x0800);
    std::memcpy(buf.data() + eth_len, ip_packet.data(), ip_packet.size());
    Packet fp;
    if (sniffer::parse(buf, static_cast<std::uint32_t>(len), sniffer::LinkType::Ethernet, fp)) {
        ++counters_.rewrite_errors;
        return;
    }
    if (p.tcp.options.has_timestamps) t.proxy.backup_tsval = sniffer::TsVal{p.tcp.options.tsval};
    const auto res = rewrite::translate_backup_to_client(buf, fp, t.proxy.offsets, t.proxy.map);
    if (!res.ok()) {
        ++counters_.rewrite_errors;
        return;
    }
    if (p.tcp.has(tf::kFin)) {
        t.close.backup_fin = true;
        t.close.backup_fin_seq = p.tcp.seq + p.payload_length;
        t.close.final_ack_passed = false;  // (again): its ACK must reach the backup
    }
    if (const SeqNum end = segment_end(SeqNum{rewrite::load_be32(buf, fp.layout.l4 + 4)}, p);
        end.after(t.proxy.to_client_end))
        t.proxy.to_client_end = end;
    if (send_client(buf)) {
        ++counters_.to_client;
        counters_.to_client_bytes += p.payload_length;
        ++t.stats.to_client_packets;
        t.stats.to_client_bytes += p.payload_length;
    }
    if (p.tcp.has(tf::kRst) || (t.close.client_fin && t.close.backup_fin)) note_close(t, now);
}

void FailoverEngine::note_close(Twin& t, MonoNs now) {
    if (!advance(t, TwinEvent::Closed)) return;
    t.close.closed_at = now;
    ++counters_.closed;
    twins_.linger(twins_.index_of(t), now);
}

// ---------------------------------------------------------------- recovery

void FailoverEngine::primary_down(MonoNs now, const std::string& reason) {
    if (state_ != State::Normal) return;
    transition(Event::PrimaryDown, now, reason);
    announce_takeover(now);
    start_recovery(now);
}

void FailoverEngine::primary_up(MonoNs now, const std::string& reason) {
    if (state_ == State::Normal) {
        log_.emit(now, "primary_up", "reason=" + logfmt_value(reason));
        return;
    }
    // PrimaryAnswering changes no state: the twins own the clients now.
    primary_back_ = true;
    primary_heard(now, "echo replies");
    log_.emit(now, "primary_answering",
              "state=" + std::string(name_of(state_)) + " reason=" + logfmt_value(reason) +
                  (config_.new_connections_to_returning_primary
                       ? " action=\"keep serving the twins; new connections go to the primary\""
                       : " action=\"keep serving the twins; new connections stay with the backup "
                         "(no automatic fail-back)\""));
}

void FailoverEngine::transition(Event event, MonoNs now, const std::string& reason) {
    const Transition tr = next_state(state_, event);
    if (!tr.changed) return;
    log_.emit(now, "transition",
              "from=" + std::string(name_of(state_)) + " to=" + std::string(name_of(tr.to)) +
                  " cause=" + std::string(name_of(event)) + " reason=" + logfmt_value(reason));
    state_ = tr.to;
    state_since_ = now;
}

void FailoverEngine::start_recovery(MonoNs now) {
    recovery_started_ = now;
    auto& table = pipeline_.table();
    table.for_each([&](const tracker::Connection& c) {
        if (c.state == tracker::TcpState::Closed) return;
        std::optional<Unrecovered> skip;
        const bool inferred = !c.handshake_seen();
        if (c.state == tracker::TcpState::Handshake) {
            skip = Unrecovered::HandshakeIncomplete;
        } else if (!c.server_ack_high || !c.client_ack_high ||
                   (inferred && !config_.recover_midstream)) {
            skip = Unrecovered::HandshakeUnseen;
        } else if (c.state == tracker::TcpState::Closing &&
                   (c.server_fin_seq || !c.client_fin_seq)) {
            // The server had started closing: its FIN would have to come from
            // the backup's application, which never opened this connection.
            skip = Unrecovered::Closing;
        }
        if (skip) {
            ++counters_.unrecovered[static_cast<std::size_t>(*skip)];
            lost_.emplace(c.key, *skip);
            log_unrecoverable(now, c.key, *skip, 0);
            return;
        }
        Twin t;
        t.key = c.key;
        auto& o = t.recovery.observed;
        o.a = *c.server_ack_high;
        o.k = *c.client_ack_high;
        o.client_mss = c.client_mss;
        o.client_wscale = c.client_wscale_offered;
        o.primary_wscale = c.server_wscale_offered;
        o.client_sack_permitted = c.client_sack_offered;
        o.primary_sack_permitted = c.server_sack_offered;
        o.client_timestamps = c.client_ts_offered;
        o.primary_timestamps = c.server_ts_offered;
        o.client_tsval_latest = sniffer::TsVal{c.client_tsval_high.value_or(0)};
        o.primary_tsval_last = sniffer::TsVal{c.server_tsval_high.value_or(0)};
        if (inferred) {
            // Mid-stream pickup (DESIGN-NOTES.md "Connections first seen
            // mid-stream"). Inferred: timestamps are in use when both sides'
            // segments carry them (RFC 7323 allows them only if negotiated);
            // the client's MSS is at least the largest segment it accepted.
            // Assumed: no SACK and no window scaling on the twin.
            o.client_timestamps = c.client_tsval_high.has_value();
            o.primary_timestamps = c.server_tsval_high.has_value();
            o.client_mss = std::max<std::uint16_t>(kDefaultMss, c.max_server_payload);
            o.client_wscale.reset();
            o.primary_wscale.reset();
            o.client_sack_permitted = o.primary_sack_permitted = false;
            t.inferred = true;
            ++counters_.twins_inferred;
        } else if (c.restored) {
            ++counters_.twins_restored;
        }
        const std::uint16_t q = twins_.free_port(c.key.client.port.value);
        t.twin_src = {config_.primary, sniffer::Port{q}};
        t.backup = {config_.backup, c.key.server.port};
        t.vlan = c.vlan;
        t.recovery.client_window = c.client_window;
        t.proxy.map.to_backup = {t.twin_src, t.backup, std::nullopt};
        t.proxy.map.to_client = {c.key.server, c.key.client,
                           rewrite::MacRewrite{has_own_mac_ ? config_.backup_mac : c.server_mac,
                                               c.client_mac}};
        // Where both streams stood at the takeover, as migware saw them.
        t.proxy.client_contig = c.client_seq_next.value_or(*c.server_ack_high);
        t.proxy.server_high = c.server_seq_next.value_or(*c.client_ack_high);
        if (c.client_ack_high->after(t.proxy.server_high)) t.proxy.server_high = *c.client_ack_high;
        t.proxy.to_client_end = *c.client_ack_high;
        // What fencing needs of the primary's stale socket, should it return.
        t.fence.primary_rcv = *c.server_ack_high;
        t.fence.primary_una = *c.client_ack_high;
        t.fence.client_tsval = c.client_tsval_high.value_or(0);
        if (c.state == tracker::TcpState::Closing) {
            // Only the client had closed (its FIN sent, the server's not):
            // carried over like an open connection, then the FIN is handed to
            // the backup so its application sees the end of the stream and
            // closes too. If the primary acknowledged the FIN, the twin starts
            // at it, since the client will not send it again.
            t.recovery.closing_fin = *c.client_fin_seq;
            if (o.a.after(*c.client_fin_seq)) o.a = *c.client_fin_seq;
        }
        const auto unanswered = config_.replay_unanswered ? c.unanswered_start() : std::nullopt;
        if (unanswered && unanswered->before(o.a)) {
            // The primary ACKed a request it never answered: start the twin
            // at the request, so the backup's service sees it and answers.
            // The twin's seq still equals the client's (D1 = 0).
            o.a = *unanswered;
            t.recovery.unacked.resize(c.unacked.size());
            c.unacked.copy_out(0, t.recovery.unacked);
            ++counters_.replayed_unanswered;
        } else if (const std::uint32_t pending = c.unacked_in_flight(); pending > 0) {
            if (c.can_replay_unacked()) {
                t.recovery.unacked.resize(pending);
                c.unacked.copy_out(c.unacked.size() - pending, t.recovery.unacked);
            } else {
                ++counters_.replay_incomplete;  // the client's own retransmission covers it
            }
        }
        const Neighbour nb{c.key.client.ip, c.client_mac, t.vlan};
        if (std::find(neighbours_.begin(), neighbours_.end(), nb) == neighbours_.end())
            neighbours_.push_back(nb);
        const tracker::FourTuple key = t.key;
        stale_.emplace(key, twins_.add(std::move(t), /*reuse=*/false).index);
    });
    counters_.twins = twins_.size();
    if (has_own_mac_) {
        // This host too: the primary answers our echo requests.
        const std::size_t clients = neighbours_.size();
        for (std::size_t i = 0; i < clients; ++i) {
            const Neighbour me{config_.backup, config_.backup_mac, neighbours_[i].vlan};
            if (std::find(neighbours_.begin(), neighbours_.end(), me) == neighbours_.end())
                neighbours_.push_back(me);
        }
    }
    std::string skipped;
    for (std::size_t i = 0; i < counters_.unrecovered.size(); ++i)
        skipped += " " + std::string(name_of(static_cast<Unrecovered>(i))) + "=" +
                   std::to_string(counters_.unrecovered[i]);
    log_.emit(now, "recovery_start", "twins=" + std::to_string(twins_.size()) + skipped +
                                         " replay_incomplete=" +
                                         std::to_string(counters_.replay_incomplete) +
                                         " restored=" + std::to_string(counters_.twins_restored) +
                                         " inferred=" + std::to_string(counters_.twins_inferred));
    pump_syns(now);
    check_resolved(now);
}

void FailoverEngine::pump_syns(MonoNs now) {
    if (config_.max_syn_rate > 0) {
        // Token bucket, at most one second of burst.
        if (syn_tokens_at_ == 0) {
            syn_tokens_at_ = now;
            syn_tokens_ = 1;
        }
        syn_tokens_ = std::min(config_.max_syn_rate,
                               syn_tokens_ + config_.max_syn_rate *
                                                 static_cast<double>(now - syn_tokens_at_) / 1e9);
        syn_tokens_at_ = now;
    }
    while (next_waiting_ < twins_.size() && syns_in_flight_ < config_.max_concurrent_syns) {
        if (config_.max_syn_rate > 0) {
            if (syn_tokens_ < 1) break;
            syn_tokens_ -= 1;
        }
        Twin& t = twins_[next_waiting_++];
        if (!advance(t, TwinEvent::SynSent)) continue;
        ++syns_in_flight_;
        send_syn(t, now);
    }
}

void FailoverEngine::send_syn(Twin& t, MonoNs now) {
    // A SYN's window is never scaled (RFC 7323 §2.2); the real window follows
    // in the ACK and every client segment.
    const auto spec = rewrite::twin_syn_spec(t.recovery.observed, t.twin_src, t.backup, 65535, next_ip_id());
    std::array<std::byte, rewrite::kMaxHandshakePacket> buf{};
    const std::size_t n = rewrite::build_twin_syn(buf, spec);
    t.recovery.syn_seq = spec.seq;
    t.proxy.to_backup_end = spec.seq + 1u;
    if (t.recovery.syn_tries > 0) ++counters_.syn_retransmitted;
    ++counters_.syn_sent;
    t.recovery.deadline = now + (config_.syn_rto << std::min(t.recovery.syn_tries, 20));
    ++t.recovery.syn_tries;
    send_backup(std::span(buf.data(), n));
}

void FailoverEngine::twin_established(Twin& t, const Packet& synack, MonoNs now) {
    const auto& so = synack.tcp.options;
    const rewrite::TwinHandshake th{t.recovery.syn_seq, synack.tcp.seq, so.wscale, so.sack_permitted,
                                    so.has_timestamps, sniffer::TsVal{so.tsval}};
    t.proxy.offsets = rewrite::compute_offsets(t.recovery.observed, th);
    if (t.inferred) t.proxy.offsets.primary_shift = assumed_client_view_shift(t);
    t.recovery.isn_b = synack.tcp.seq;
    t.proxy.backup_tsval = th.tsb0;
    std::array<std::byte, rewrite::kMaxHandshakePacket> ack{};
    // The client's raw window, as the backup will read it (rescaled only when
    // the backup declined window scaling).
    const std::uint16_t window = rewrite::client_to_backup_window(t.recovery.client_window, t.proxy.offsets);
    const auto ack_spec =
        rewrite::twin_ack_spec(t.recovery.observed, th, t.twin_src, t.backup, window, next_ip_id());
    send_backup(std::span(ack.data(), rewrite::build_twin_ack(ack, ack_spec)));

    // DESIGN.md §3: bytes in [A, client's highest seq) were on the wire but
    // never acknowledged. Hand them over now rather than waiting out the
    // client's backed-off retransmission timer.
    std::uint16_t mss = t.recovery.observed.client_mss.value_or(kDefaultMss);
    if (so.mss) mss = std::min(mss, *so.mss);
    SeqNum seq = t.recovery.observed.a;
    std::size_t off = 0;
    while (off < t.recovery.unacked.size()) {
        const std::size_t n = std::min<std::size_t>(mss, t.recovery.unacked.size() - off);
        rewrite::TwinDataSpec spec{t.twin_src, t.backup, seq + t.proxy.offsets.d1, t.recovery.isn_b + 1u,
                                   std::nullopt, window, next_ip_id()};
        if (t.proxy.offsets.timestamps)
            spec.timestamps = rewrite::TimestampPair{t.recovery.observed.client_tsval_latest, t.proxy.backup_tsval};
        const std::size_t len = rewrite::build_twin_data(
            scratch_, spec, std::span<const std::byte>(t.recovery.unacked).subspan(off, n));
        if (len > 0 && send_backup(std::span(scratch_.data(), len))) counters_.replayed_bytes += n;
        seq = seq + static_cast<std::uint32_t>(n);
        off += n;
    }
    t.proxy.to_backup_end = seq + t.proxy.offsets.d1;
    std::vector<std::byte>().swap(t.recovery.unacked);
    if (t.recovery.closing_fin && seq == *t.recovery.closing_fin) {
        rewrite::TwinDataSpec spec{t.twin_src, t.backup, seq + t.proxy.offsets.d1, t.recovery.isn_b + 1u,
                                   std::nullopt, window, next_ip_id()};
        spec.fin = true;
        if (t.proxy.offsets.timestamps)
            spec.timestamps = rewrite::TimestampPair{t.recovery.observed.client_tsval_latest, t.proxy.backup_tsval};
        const std::size_t len = rewrite::build_twin_data(scratch_, spec, {});
        if (len > 0) send_backup(std::span(scratch_.data(), len));
        t.proxy.to_backup_end = t.proxy.to_backup_end + 1u;
        ++counters_.replayed_fins;
    }
    // The client has closed; the backup's FIN will complete the close.
    if (t.recovery.closing_fin) {
        t.close.client_fin = true;
        t.close.client_fin_seq = *t.recovery.closing_fin;
    }

    advance(t, TwinEvent::Established);
    ++counters_.recovered;
    --syns_in_flight_;
    // Client frames that arrived while the twin was opening, in order.
    auto queued = std::move(t.recovery.queued);
    t.recovery.queued.clear();
    for (const auto& bytes : queued) {
        Packet qp;
        if (sniffer::parse(bytes, static_cast<std::uint32_t>(bytes.size()), sniffer::LinkType::Ethernet, qp))
            continue;
        const sniffer::RawFrame qf{bytes, static_cast<std::uint32_t>(bytes.size()), 0};
        proxy_client_frame(t, qf, qp, now);
    }
    pump_syns(now);
    check_resolved(now);
}

std::uint8_t FailoverEngine::assumed_client_view_shift(const Twin& t) const {
    // The client reads our windows with the primary's shift, which only the
    // unseen SYN-ACK carried. Assume the largest shift that keeps the
    // primary's last raw window under 16 MiB of real buffer: a guess too high
    // only shows the client a smaller window than the backup has (slower, never
    // overrun); the rescale never closes an open window.
    const tracker::Connection* c = pipeline_.table().find(t.key);
    const std::uint32_t raw = std::max<std::uint32_t>(c ? c->server_window : 1, 1);
    std::uint8_t shift = 0;
    while (shift < 14 && (std::uint64_t{raw} << (shift + 1)) <= (16u << 20)) ++shift;
    return shift;
}

std::size_t FailoverEngine::restore(const std::vector<tracker::HandshakeFacts>& facts, MonoNs now) {
    std::size_t n = 0;
    for (const auto& f : facts)
        if (pipeline_.table().restore(f, now)) ++n;
    return n;
}

std::vector<tracker::HandshakeFacts> FailoverEngine::handshake_facts() const {
    std::vector<tracker::HandshakeFacts> out;
    pipeline_.table().for_each([&](const tracker::Connection& c) {
        if (c.state == tracker::TcpState::Closed) return;
        if (auto f = c.handshake_facts()) out.push_back(*f);
    });
    return out;
}

void FailoverEngine::fail_twin(Twin& t, Unrecovered why, MonoNs now) {
    const TwinPhase was = t.phase;
    if (!advance(t, TwinEvent::Failed)) return;
    if (was == TwinPhase::SynSent) --syns_in_flight_;
    t.recovery.failure = why;
    ++twins_failed_;
    ++counters_.unrecovered[static_cast<std::size_t>(why)];
    counters_.client_unrecovered += t.recovery.queued.size();
    std::vector<std::vector<std::byte>>().swap(t.recovery.queued);
    log_unrecoverable(now, t.key, why, t.recovery.syn_tries);
    pump_syns(now);
    check_resolved(now);
}

void FailoverEngine::log_unrecoverable(MonoNs now, const tracker::FourTuple& key, Unrecovered why,
                                       int syn_tries) {
    // One event per connection up to a bound, then a summary at the end of
    // Recovery: thousands of lines would bury the transition the operator needs.
    if (unrecoverable_logged_++ >= kUnrecoverableLogLimit) return;
    std::string fields = "client=" + ep(key.client) + " server=" + ep(key.server) +
                         " reason=" + std::string(name_of(why));
    if (syn_tries > 0) fields += " syn_tries=" + std::to_string(syn_tries);
    log_.emit(now, "unrecoverable", fields);
}

void FailoverEngine::check_resolved(MonoNs now) {
    if (state_ != State::Recovery || syns_in_flight_ != 0 || next_waiting_ < twins_.size()) return;
    recovery_done_ = now;
    if (unrecoverable_logged_ > kUnrecoverableLogLimit)
        log_.emit(now, "unrecoverable_summary",
                  "logged=" + std::to_string(kUnrecoverableLogLimit) + " not_logged=" +
                      std::to_string(unrecoverable_logged_ - kUnrecoverableLogLimit));
    const std::uint64_t failed =
        counters_.unrecovered[static_cast<std::size_t>(Unrecovered::NoSynAck)] +
        counters_.unrecovered[static_cast<std::size_t>(Unrecovered::BackupRefused)];
    transition(Event::TwinsResolved, now,
               std::to_string(counters_.recovered) + " of " + std::to_string(counters_.twins) +
                   " twins established, " + std::to_string(failed) + " failed, in " +
                   std::to_string((recovery_done_ - recovery_started_) / 1000) + " us");
}

void FailoverEngine::on_timer(MonoNs now) {
    if (!fence_queue_.empty() || fence_round_open_) fence_timer(now);
    if (!relayed_.empty() && now >= next_relay_sweep_) expire_relays(now);
    if (state_ == State::Recovery) {
        for (auto& t : twins_) {
            if (t.phase != TwinPhase::SynSent || t.recovery.deadline > now) continue;
            if (t.recovery.syn_tries >= config_.syn_tries) {
                fail_twin(t, Unrecovered::NoSynAck, now);
            } else {
                send_syn(t, now);
            }
        }
        pump_syns(now);
        check_resolved(now);
    }
    // Closed twins linger so the last ACKs pass, then their mapping goes and
    // the slot is reused (connections opened after failover come and go).
    twins_.release_expired(now, config_.close_linger);
}

MonoNs FailoverEngine::next_deadline() const {
    MonoNs next = std::numeric_limits<MonoNs>::max();
    if (state_ == State::Recovery && config_.max_syn_rate > 0 && next_waiting_ < twins_.size() &&
        syns_in_flight_ < config_.max_concurrent_syns) {
        const double wait_s = std::max(0.0, (1 - syn_tokens_) / config_.max_syn_rate);
        next = std::min(next, syn_tokens_at_ + static_cast<MonoNs>(wait_s * 1e9) + 1);
    }
    if (state_ == State::Recovery)
        for (const Twin& t : twins_)
            if (t.phase == TwinPhase::SynSent) next = std::min(next, t.recovery.deadline);
    if (auto r = twins_.next_release(config_.close_linger)) next = std::min(next, *r);
    if (!fence_queue_.empty())
        next = std::min(next, std::max(fence_queue_.top().first, fence_hold_until_));
    if (!relayed_.empty()) next = std::min(next, next_relay_sweep_);
    return next;
}

// ---------------------------------------------------------------- the primary returns

void FailoverEngine::primary_heard(MonoNs now, const std::string& what) {
    if (state_ == State::Normal) return;
    start_fence_round(now, what);
}

std::size_t FailoverEngine::stale_unfenced() const {
    std::size_t n = 0;
    for (const auto& [key, idx] : stale_)
        if (twins_[idx].fence.state != FenceState::Done) ++n;
    return n;
}

void FailoverEngine::on_primary_frame(const sniffer::RawFrame& frame, const Packet& p, MonoNs now) {
    // The primary is back on the wire while the twins serve its clients.
    ++counters_.primary_packets_in_proxy;
    if (!primary_talking_logged_) {
        primary_talking_logged_ = true;
        log_.emit(now, "primary_tcp_seen",
                  "src=" + ep({p.ip.src, p.tcp.src_port}) + " dst=" + ep({p.ip.dst, p.tcp.dst_port}) +
                      " note=\"the primary sends TCP again; twins keep serving (logged once)\"");
    }
    primary_heard(now, "tcp from the primary");
    const tracker::FourTuple key{{p.ip.dst, p.tcp.dst_port}, {p.ip.src, p.tcp.src_port}};
    if (auto r = relayed_.find(key); r != relayed_.end()) {
        // The primary's side of a relayed connection: it reaches us because
        // its entry for the client points here (feed_primary). On to the client.
        if (has_own_mac_ && p.eth.dst == config_.backup_mac) forward_frame(frame, r->second.client_mac);
        return;
    }
    if (auto it = stale_.find(key); it != stale_.end()) {
        Twin& t = twins_[it->second];
        if (p.tcp.has(tf::kAck) && !p.tcp.has(tf::kRst) && p.tcp.ack.after(t.proxy.client_contig)) {
            // The primary acknowledges client bytes migware never saw: the
            // client kept talking to it all along (our link was dead, say),
            // so it never died. Nothing of it may be reset (DESIGN.md §6a).
            if (proof_of_life(now, "client=" + ep(key.client) + " primary_ack=" +
                                       std::to_string(p.tcp.ack.raw()) + " seen_up_to=" +
                                       std::to_string(t.proxy.client_contig.raw()) + " ahead_by=" +
                                       std::to_string((p.tcp.ack - t.proxy.client_contig).as_signed())))
                return;
        }
        if (t.fence.state == FenceState::Done) return;
        ++counters_.stale_segments;
        if (p.tcp.has(tf::kRst)) {
            // No socket left: the answer to a probe after our RST (its seq is
            // our probe's ACK field, below the client's window, so the client
            // drops it), or the primary ended the socket itself.
            finish_fence(t, FenceState::Done, now);
            return;
        }
        if (!config_.fence_returning_primary || !primary_mac_known_ || !p.tcp.has(tf::kAck)) return;
        if (now < std::max(fence_hold_until_, fence_reset_from_)) {
            // Reset once the hold is over, at this receive point: the socket
            // may not answer another probe for a while (see fence_interval).
            t.fence.learnt_rcv = p.tcp.ack;
            schedule_fence(it->second, std::max(fence_hold_until_, fence_reset_from_));
            return;
        }
        // A live stale socket: its ACK field is its receive point, exactly
        // where a RST is accepted (RFC 5961 §3.2). Then probe again to see it gone.
        send_fence_reset(t, p.tcp.ack);
        set_fence(t, FenceState::Reset);
        t.fence.tries = static_cast<std::uint8_t>(std::min<int>(t.fence.tries, config_.fence_tries - 1));
        schedule_fence(it->second, now + kFenceVerify);
        if (!fence_round_open_) {
            fence_round_open_ = true;
            fence_round_started_ = now;
        }
        return;
    }
    if (p.tcp.has(tf::kRst) && !relayed_.contains(key)) {
        // The primary's kernel answered one of the client's segments (the
        // client still pointed at it). Its entry for the client decides
        // where the RST went: here (fed by the fence, harmless) or to the
        // client, which it resets.
        if (has_own_mac_ && p.eth.dst == config_.backup_mac) {
            ++counters_.primary_resets_caught;
        } else if (counters_.primary_resets_seen++ < kResetLogLimit) {
            log_.emit(now, "primary_reset_client",
                      "client=" + ep(key.client) + " server=" + ep(key.server) + " seq=" +
                          std::to_string(p.tcp.seq.raw()) +
                          " note=\"the primary's kernel answered a client segment\"");
        }
    }
}

void FailoverEngine::start_fence_round(MonoNs now, const std::string& reason) {
    if (!config_.fence_returning_primary || stale_.empty() || !primary_mac_known_) return;
    if (fence_round_open_ || now < next_fence_round_) return;
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < twins_.size(); ++i) {
        Twin& t = twins_[i];
        if (t.direct || t.fence.state == FenceState::Done || !stale_.contains(t.key)) continue;
        t.fence.tries = 0;
        if (t.fence.state != FenceState::Reset) set_fence(t, FenceState::Probing);
        schedule_fence(i, now);
        ++n;
    }
    if (n == 0) return;
    // Before any probe: the primary's neighbour entries for the clients (and
    // this host), so that answering us needs no ARP from it. Each ARP it sent
    // would point the clients back at it until our next announcement.
    feed_primary(now, std::nullopt);
    fence_hold_until_ = std::max(fence_hold_until_, now + kFenceHold);
    fence_reset_from_ = now + kFenceClassify;
    fence_round_open_ = true;
    fence_round_started_ = now;
    ++counters_.fence_rounds;
    log_.emit(now, "fence_start", "reason=" + logfmt_value(reason) + " stale=" + std::to_string(n) +
                                      " primary_mac=" + primary_mac_.to_string());
}

void FailoverEngine::fence_timer(MonoNs now) {
    if (now < fence_hold_until_) return;
    std::size_t budget = config_.fence_burst;
    while (!fence_queue_.empty() && fence_queue_.top().first <= now && budget > 0) {
        const auto [due, i] = fence_queue_.top();
        fence_queue_.pop();
        Twin& t = twins_[i];
        if (due != t.fence.due) continue;  // superseded by a later schedule_fence
        if (t.fence.state == FenceState::Done || t.fence.state == FenceState::GaveUp) continue;
        if (t.fence.learnt_rcv) {
            if (now < fence_reset_from_) {
                schedule_fence(i, fence_reset_from_);  // probed: reset when classified
                continue;
            }
            send_fence_reset(t, *t.fence.learnt_rcv);
            t.fence.learnt_rcv.reset();
            set_fence(t, FenceState::Reset);
            --budget;
            schedule_fence(i, now + kFenceVerify);
            continue;
        }
        if (t.fence.tries >= config_.fence_tries) {
            finish_fence(t, FenceState::GaveUp, now);
            continue;
        }
        send_fence_probe(t);
        ++t.fence.tries;
        --budget;
        schedule_fence(i, now + config_.fence_interval);
    }
    if (fence_round_open_ && fence_pending_ == 0) {
        // Every stale socket gone or given up: what is still queued is moot.
        fence_queue_ = {};
        fence_round_open_ = false;
        next_fence_round_ = now + kFenceRoundGap;
        log_.emit(now, "fence_done",
                  "fenced=" + std::to_string(counters_.fenced) + " resets=" +
                      std::to_string(counters_.fence_resets) + " probes=" +
                      std::to_string(counters_.fence_probes) + " unfenced=" +
                      std::to_string(stale_unfenced()) + " in_us=" +
                      std::to_string((now - fence_round_started_) / 1000));
    }
}

void FailoverEngine::schedule_fence(std::uint32_t i, MonoNs at) {
    // One pending action per stale socket: the newest schedule wins.
    twins_[i].fence.due = at;
    fence_queue_.emplace(at, i);
}

void FailoverEngine::set_fence(Twin& t, FenceState f) {
    const auto pending = [](FenceState x) {
        return x == FenceState::Probing || x == FenceState::Reset;
    };
    if (pending(t.fence.state) && !pending(f)) --fence_pending_;
    if (!pending(t.fence.state) && pending(f)) ++fence_pending_;
    t.fence.state = f;
}

void FailoverEngine::finish_fence(Twin& t, FenceState how, MonoNs) {
    if (t.fence.state == how) return;
    set_fence(t, how);
    if (how == FenceState::Done) ++counters_.fenced;
    if (how == FenceState::GaveUp) ++counters_.fence_gave_up;
}

void FailoverEngine::feed_primary(MonoNs, std::optional<Ipv4Addr> only) {
    // Point the primary's neighbour entry for every client at this host: an
    // ARP request for the primary's IP, unicast to it, "from" the client's IP
    // with this host's MAC. A host always takes the sender of a request aimed
    // at it into its table (RFC 826; Linux overrides whatever it had), and
    // answers only the sender, us. From then on whatever the primary sends a
    // client (a stale socket's FIN, its kernel's RST for a segment it should
    // never have got) comes here instead, and it has no reason to ARP for the
    // clients (which would point them back at it). The clients never see it.
    if (!primary_mac_known_ || !has_own_mac_) return;
    for (const Neighbour& n : neighbours_) {
        if (only && n.ip != *only) continue;
        send_arp_from(1, primary_mac_, config_.backup_mac, n.ip, sniffer::MacAddr{}, config_.primary,
                      n.vlan);
        ++counters_.primary_fed;
    }
}

void FailoverEngine::send_fence_probe(Twin& t) {
    // One byte the primary already acknowledged, as the client: a live stale
    // socket answers with a duplicate ACK that carries its exact receive
    // point. The ACK field is one below the client's last ACK, so that a
    // primary with no socket left answers with a RST whose seq is below the
    // client's window: the client drops it (RFC 5961 §3.2).
    const std::size_t eth = write_ethernet(scratch_, primary_mac_, our_mac(), t.vlan, 0x0800);
    rewrite::TwinDataSpec spec{t.key.client,     t.key.server,  t.fence.primary_rcv - 1u,
                               t.fence.primary_una - 1u, std::nullopt, t.recovery.client_window,
                               next_ip_id()};
    if (t.recovery.observed.client_timestamps && t.recovery.observed.primary_timestamps)
        spec.timestamps = rewrite::TimestampPair{sniffer::TsVal{t.fence.client_tsval},
                                                 t.recovery.observed.primary_tsval_last};
    const std::array<std::byte, 1> byte{};
    const std::size_t len =
        rewrite::build_twin_data(std::span(scratch_).subspan(eth), spec, byte);
    if (len > 0 && send_client(std::span(scratch_.data(), eth + len))) ++counters_.fence_probes;
}

void FailoverEngine::send_fence_reset(Twin& t, SeqNum seq) {
    const std::size_t eth = write_ethernet(scratch_, primary_mac_, our_mac(), t.vlan, 0x0800);
    const std::size_t len = rewrite::build_reset(
        std::span(scratch_).subspan(eth), {t.key.client, t.key.server, seq, next_ip_id()});
    if (len > 0 && send_client(std::span(scratch_.data(), eth + len))) ++counters_.fence_resets;
}

bool FailoverEngine::relay_to_primary(const sniffer::RawFrame& frame, const Packet& p, MonoNs now) {
    if (!primary_mac_known_ || !p.has_ethernet || frame.bytes.size() > scratch_.size()) {
        ++counters_.new_connections_unserved;
        return false;
    }
    if (!forward_frame(frame, primary_mac_)) return false;
    Relay& r = relayed_[{{p.ip.src, p.tcp.src_port}, {p.ip.dst, p.tcp.dst_port}}];
    r.last = now;
    r.client_mac = p.eth.src;
    if (p.tcp.has(tf::kFin) || p.tcp.has(tf::kRst)) r.closing = true;
    if (next_relay_sweep_ == 0) next_relay_sweep_ = now + kRelaySweep;
    return true;
}

bool FailoverEngine::forward_frame(const sniffer::RawFrame& frame, const sniffer::MacAddr& dst) {
    // Only the Ethernet addresses change: to `dst`, from this host (a client's
    // MAC as the source would teach a switch the client is here).
    if (frame.bytes.size() < kEthernet || frame.bytes.size() > scratch_.size()) return false;
    const std::span<std::byte> buf(scratch_.data(), frame.bytes.size());
    std::memcpy(buf.data(), frame.bytes.data(), frame.bytes.size());
    for (std::size_t i = 0; i < 6; ++i) {
        buf[i] = std::byte{dst.bytes[i]};
        if (has_own_mac_) buf[6 + i] = std::byte{config_.backup_mac.bytes[i]};
    }
    if (!send_client(buf)) return false;
    ++counters_.relayed_to_primary;
    return true;
}

void FailoverEngine::expire_relays(MonoNs now) {
    next_relay_sweep_ = now + kRelaySweep;
    std::erase_if(relayed_, [&](const auto& kv) {
        const Relay& r = kv.second;
        return r.last + (r.closing ? config_.close_linger : kRelayIdle) <= now;
    });
}

// ---------------------------------------------------------------- a primary that never died (issue 10)

void FailoverEngine::note_client_seen(Twin& t, const Packet& p) {
    // Contiguous coverage only: a segment that starts beyond what migware has
    // seen leaves a hole, and bytes in a hole may have reached the primary
    // without us (our capture link was down).
    extend_contiguous(t.proxy.client_contig, p.tcp.seq, segment_end(p.tcp.seq, p));
}

bool FailoverEngine::proof_of_life(MonoNs now, const std::string& evidence) {
    if (counters_.fence_resets == 0) {
        roll_back(now, evidence);
        return true;
    }
    // Too late: the fence already judged the primary dead and reset some of
    // its sockets; undoing the takeover now would strand their clients.
    if (counters_.progress_after_fence++ == 0)
        log_.emit(now, "primary_progress_after_fence",
                  "evidence=" + logfmt_value(evidence) +
                      " action=\"none: the fence had already reset some of its sockets\"");
    return false;
}

void FailoverEngine::roll_back(MonoNs now, const std::string& evidence) {
    if (state_ == State::Normal) return;
    std::size_t reset = 0, carried = 0, direct = 0;
    for (Twin& t : twins_) {
        if (t.released || t.phase == TwinPhase::Waiting || t.phase == TwinPhase::Failed) continue;
        if (t.stats.to_backup_bytes > 0 || t.stats.to_client_bytes > 0) ++carried;
        if (t.direct) ++direct;
        reset_twin_in_backup(t);
        ++reset;
    }
    counters_.rollback_twins_reset += reset;
    point_clients_at_primary();
    ++counters_.rollbacks;
    log_.emit(now, "takeover_rolled_back",
              "evidence=" + logfmt_value(evidence) + " twins_closed=" + std::to_string(reset) +
                  " twins_that_carried_traffic=" + std::to_string(carried) +
                  " new_connections_lost=" + std::to_string(direct) +
                  " primary_fed=" + std::to_string(counters_.primary_fed) +
                  " action=\"no probe or RST to the primary; twins closed inside this host; "
                  "clients pointed back at the primary's MAC; tracking resumes\"");
    // Forget every twin; the tracker's table stays and catches up with the
    // next segments (A and K only move forward, the held bytes heal).
    twins_.clear();
    next_waiting_ = 0;
    syns_in_flight_ = 0;
    stale_.clear();
    fence_queue_ = {};
    fence_round_open_ = false;
    fence_pending_ = 0;
    relayed_.clear();
    lost_.clear();
    neighbours_.clear();
    twins_failed_ = 0;
    primary_back_ = false;
    primary_talking_logged_ = false;
    recovery_done_ = 0;
    // It just spoke: the monitor's passive veto must see that.
    last_primary_packet_ = now;
    retransmissions_since_primary_ = 0;
    transition(Event::TakeoverRolledBack, now, evidence);
}

void FailoverEngine::reset_twin_in_backup(Twin& t) {
    // Inside this host only: the RST goes into the backup's stack through the
    // TUN device, as the twin's peer. At the backup's last ACK (its rcv_nxt
    // once it has acknowledged everything), and at the end of what we sent it
    // if that differs: one of the two is exact (RFC 5961 §3.2).
    std::array<std::byte, rewrite::kMaxHandshakePacket> buf{};
    const auto reset_at = [&](SeqNum seq) {
        const std::size_t n = rewrite::build_reset(buf, {t.twin_src, t.backup, seq, next_ip_id()});
        if (n > 0) send_backup(std::span(buf.data(), n));
    };
    if (t.proxy.backup_ack) reset_at(*t.proxy.backup_ack);
    if (!t.proxy.backup_ack || *t.proxy.backup_ack != t.proxy.to_backup_end) reset_at(t.proxy.to_backup_end);
}

void FailoverEngine::point_clients_at_primary() {
    // The takeover's gratuitous ARP may have reached some clients: tell every
    // host the primary's IP is at the primary's MAC again, broadcast (RFC 5227
    // announcement) and, for the clients we know, a reply aimed at each. The
    // Ethernet source stays ours (a switch must not learn the primary's MAC
    // on our port).
    if (primary_mac_known_ && has_own_mac_) {
        announce(primary_mac_);
        for (const Neighbour& n : neighbours_) {
            if (n.ip == config_.backup) continue;
            send_arp_from(2, n.mac, primary_mac_, config_.primary, n.mac, n.ip, n.vlan);
            if (counters_.primary_fed > 0) {
                // Undo the fence's feeding: the primary's entry for this
                // client points at the client's own MAC again.
                send_arp_from(1, primary_mac_, n.mac, n.ip, sniffer::MacAddr{}, config_.primary,
                              n.vlan);
            }
        }
    }
}

void FailoverEngine::note_peer(const Neighbour& n) {
    // Most recent first; four distinct hosts are enough to ask.
    std::size_t i = 0;
    while (i < recent_peers_n_ && recent_peers_[i] != n) ++i;
    if (i == 0 && recent_peers_n_ > 0) return;  // the common case: the same host again
    if (i == recent_peers_n_) {
        if (recent_peers_n_ < kRecentPeers) ++recent_peers_n_;
        i = recent_peers_n_ - 1;
    }
    for (; i > 0; --i) recent_peers_[i] = recent_peers_[i - 1];
    recent_peers_[0] = n;
}

void FailoverEngine::probe_segment(MonoNs) {
    // An ARP request for the neighbour's own IP, unicast to its MAC, from
    // this host's real address: a live host on a live segment answers at
    // once. Off-link clients (behind a router) do not; their retransmissions
    // or a configured reference address serve instead.
    if (!has_own_mac_) return;
    for (std::size_t i = 0; i < recent_peers_n_; ++i) {
        const Neighbour& n = recent_peers_[i];
        send_arp_from(1, n.mac, config_.backup_mac, config_.backup, sniffer::MacAddr{}, n.ip, n.vlan);
        ++counters_.segment_arp_probes;
    }
}

void FailoverEngine::answer_echo(const sniffer::RawFrame& frame, const Packet& p) {
    // Only while this host is the active node (Proxy), only for requests sent
    // to our MAC (a client that still points at the primary's MAC gets the
    // primary's own answer, should it be alive), never fragments.
    if (p.icmp.type != 8 || p.ip.dst != config_.primary || !p.has_ethernet || !has_own_mac_ ||
        p.eth.dst != config_.backup_mac || p.ip.is_fragment() ||
        p.payload_captured < p.payload_length || frame.bytes.size() > scratch_.size())
        return;
    const std::size_t l3 = p.layout.l3, l4 = p.layout.l4;
    const std::size_t end = l3 + p.ip.total_length;
    if (end > frame.bytes.size() || l4 + 8 > end) return;
    const std::span<std::byte> buf(scratch_.data(), end);
    std::memcpy(buf.data(), frame.bytes.data(), end);
    for (std::size_t i = 0; i < 6; ++i) {
        buf[i] = std::byte{p.eth.src.bytes[i]};
        buf[6 + i] = std::byte{config_.backup_mac.bytes[i]};
    }
    rewrite::store_be32(buf, l3 + 12, config_.primary.value);
    rewrite::store_be32(buf, l3 + 16, p.ip.src.value);
    rewrite::store_u8(buf, l3 + 8, 64);  // TTL
    rewrite::store_be16(buf, l3 + 10, 0);
    rewrite::store_be16(buf, l3 + 10,
                        rewrite::ipv4_header_checksum(std::span<const std::byte>(buf).subspan(l3, l4 - l3)));
    rewrite::store_u8(buf, l4, 0);  // echo reply (RFC 792)
    rewrite::store_be16(buf, l4 + 2, 0);
    rewrite::store_be16(buf, l4 + 2,
                        rewrite::internet_checksum(std::span<const std::byte>(buf).subspan(l4, end - l4)));
    if (send_client(buf)) ++counters_.echo_answered;
}

// ---------------------------------------------------------------- ARP, links

void FailoverEngine::answer_arp(const Packet& p) {
    // While the twins serve the primary's clients, the clients' neighbour
    // entries for the primary must stay valid and point here: answer for it,
    // with this host's MAC.
    if (p.arp.op != 1 || p.arp.target_ip != config_.primary ||
        !have_a_mac() || p.arp.sender_ip == config_.primary)
        return;
    send_arp(2, p.arp.sender_mac, p.arp.sender_mac, p.arp.sender_ip, p.eth.vlan);
    ++counters_.arp_replies;
}

void FailoverEngine::send_arp(std::uint16_t op, const sniffer::MacAddr& eth_dst,
                              const sniffer::MacAddr& target_mac, Ipv4Addr target_ip,
                              std::optional<std::uint16_t> vlan) {
    send_arp_from(op, eth_dst, our_mac(), config_.primary, target_mac, target_ip, vlan);
}

void FailoverEngine::send_arp_from(std::uint16_t op, const sniffer::MacAddr& eth_dst,
                                   const sniffer::MacAddr& sender_mac, Ipv4Addr sender_ip,
                                   const sniffer::MacAddr& target_mac, Ipv4Addr target_ip,
                                   std::optional<std::uint16_t> vlan) {
    std::array<std::byte, 46> buf{};
    // The Ethernet source is always this host: a switch must not learn a
    // client's MAC (or the primary's) on our port.
    const std::size_t eth = write_ethernet(buf, eth_dst, our_mac(), vlan, 0x0806);
    const std::span<std::byte> f(buf.data(), eth + 28);
    rewrite::store_be16(f, eth, 1);  // Ethernet
    rewrite::store_be16(f, eth + 2, 0x0800);
    rewrite::store_u8(f, eth + 4, 6);
    rewrite::store_u8(f, eth + 5, 4);
    rewrite::store_be16(f, eth + 6, op);  // RFC 826: 1 request, 2 reply
    for (std::size_t i = 0; i < 6; ++i) {
        f[eth + 8 + i] = std::byte{sender_mac.bytes[i]};
        f[eth + 18 + i] = std::byte{target_mac.bytes[i]};
    }
    rewrite::store_be32(f, eth + 14, sender_ip.value);
    rewrite::store_be32(f, eth + 24, target_ip.value);
    send_client(f);
}

void FailoverEngine::announce_takeover(MonoNs now) {
    // A gratuitous ARP (RFC 5227 §3 announcement: a request with sender =
    // target = the primary's IP) from this host's MAC, on every VLAN the
    // clients used. Hosts point the primary's IP at this host, and so does a
    // router in front of remote clients. From then on the clients' frames
    // reach this port by the switch's ordinary learning, and never the
    // primary's kernel again should it come back (it would reset them).
    if (!have_a_mac()) return;
    const std::size_t vlans = announce(our_mac());
    log_.emit(now, "gratuitous_arp", "ip=" + config_.primary.to_string() + " mac=" +
                                         our_mac().to_string() + " vlans=" + std::to_string(vlans));
}

std::size_t FailoverEngine::announce(const sniffer::MacAddr& sender) {
    if (!have_a_mac()) return 0;
    std::vector<std::optional<std::uint16_t>> vlans;
    pipeline_.table().for_each([&](const tracker::Connection& c) {
        const std::optional<std::uint16_t> v =
            c.vlan ? std::optional<std::uint16_t>(*c.vlan & 0x0fffu) : std::nullopt;
        if (std::find(vlans.begin(), vlans.end(), v) == vlans.end()) vlans.push_back(v);
    });
    if (vlans.empty()) vlans.push_back(std::nullopt);
    const sniffer::MacAddr broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    for (const auto& v : vlans) {
        send_arp_from(1, broadcast, sender, config_.primary, sniffer::MacAddr{}, config_.primary, v);
        ++counters_.gratuitous_arps;
    }
    return vlans.size();
}

bool FailoverEngine::send_backup(std::span<const std::byte> packet) {
    if (packet.empty() || !backup_.send_to_backup(packet)) {
        ++counters_.send_errors;
        return false;
    }
    return true;
}

bool FailoverEngine::send_client(std::span<const std::byte> frame) {
    if (!client_.send_to_client(frame)) {
        ++counters_.send_errors;
        return false;
    }
    return true;
}

}  // namespace migware
