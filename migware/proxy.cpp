// Proxy (DESIGN.md §3): client frames into the backup's stack and the
// backup's packets onto the wire, translated; connections opened after the
// failover, NAT only; the close.

#include "migware/failover.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "migware/engine_detail.hpp"
#include "sniffer/wire.hpp"
#include "rewrite/handshake.hpp"

namespace migware {

using namespace detail;

void FailoverEngine::on_client_segment(const sniffer::RawFrame& frame, const Packet& p, MonoNs now) {
    if (!relayed_.empty()) {
        const tracker::FourTuple key{{p.ip.src, p.tcp.src_port}, {p.ip.dst, p.tcp.dst_port}};
        if (relayed_.contains(key)) {
            relay_to_primary(frame, p, now);
            return;
        }
    }
    const bool new_syn = p.tcp.has(tf::kSyn) && !p.tcp.has(tf::kAck);
    if (!new_syn && !reset_clients_.empty() && answer_reset_client(p)) return;
    Twin* t = twin_for_client(p);
    if (new_syn && is_service({p.ip.dst, p.tcp.dst_port}) && !t &&
        primary_back_ && config_.new_connections_to_returning_primary) {
        // Fail-back policy: the returning primary takes it. The clients send
        // the primary's IP to this host's MAC now, so relay the connection's
        // frames to the primary's MAC; its answers go to the client directly.
        if (relay_to_primary(frame, p, now)) ++counters_.new_connections_to_primary;
        return;
    }
    if (new_syn && is_service({p.ip.dst, p.tcp.dst_port}) &&
        (!t || t->phase == TwinPhase::Closed || t->phase == TwinPhase::Failed)) {
        // A connection opened after the failover (or a 4-tuple reused after
        // one closed): the backup's service takes it directly.
        t = open_direct_twin(p, now);
    }
    if (!t) {
        if (is_service({p.ip.dst, p.tcp.dst_port}) && !new_syn) ++counters_.client_unrecovered;
        return;
    }
    if (!t->direct) {
        heard_client(now);
        note_client_seen(*t, p);
        const SeqNum served = t->proxy.to_client_end.after(t->proxy.server_high) ? t->proxy.to_client_end : t->proxy.server_high;
        const bool acks_unseen = p.tcp.has(tf::kAck) && !p.tcp.has(tf::kRst) && p.tcp.ack.after(served);
        if (acks_unseen && capture_lost_near_takeover(now)) {
            // Server bytes migware never saw, while the capture was losing
            // frames: the primary may have sent them before it died, and the
            // capture dropped them. Not the primary's own word: no rollback
            // on this alone (the primary's own segments still roll back,
            // fence.cpp).
            if (counters_.rollback_unconfirmed++ == at_takeover_.rollback_unconfirmed)
                log_.emit(now, "rollback_unconfirmed",
                          Fields{{"client", ep({p.ip.src, p.tcp.src_port})},
                                 {"client_ack", std::uint64_t{p.tcp.ack.raw()}},
                                 {"served_up_to", std::uint64_t{served.raw()}},
                                 {"note", "the capture lost frames around the takeover: an ACK of unseen server "
                                          "bytes is no proof that the primary lives"}});
        } else if (acks_unseen &&
            proof_of_life(now, "client=" + ep({p.ip.src, p.tcp.src_port}) + " client_ack=" +
                                   std::to_string(p.tcp.ack.raw()) + " served_up_to=" +
                                   std::to_string(served.raw()) +
                                   " note=\"the client acknowledges server bytes only the primary "
                                   "can have sent it\"",
                          frame))
            return;
        if (!settled_ && p.tcp.seq.after(t->proxy.client_contig)) {
            // It starts past a hole in what migware saw: bytes that reached
            // nobody through us. Our own link was down (the client may be
            // talking to a living primary), or the capture dropped frames.
            // Not proxied: the twin's answer would speak beside the primary.
            // A real gap is filled by the client's retransmission.
            ++counters_.client_beyond_hole;
            return;
        }
    }
    if (t->replay.diverged) {
        ++counters_.client_unrecovered;  // reset by migware: the backup's reply differed
        return;
    }
    switch (t->phase) {
        case TwinPhase::Up:
            if (!t->replay.absorbing) {
                proxy_client_frame(*t, frame, p, now);
                break;
            }
            [[fallthrough]];  // the backup is regenerating what the client has: held
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
        case TwinPhase::Closed:  // lingering: final ACKs still pass
            proxy_client_frame(*t, frame, p, now);
            break;
        case TwinPhase::Failed:
            ++counters_.client_unrecovered;
            break;
    }
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
        if (counters_.fence_rounds > at_takeover_.fence_rounds) feed_primary(now, p.ip.src);
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
        !SeqNum{sniffer::wire::load_be32(buf, p.layout.l4 + 8)}.before(t.close.backup_fin_seq + 1u))
        t.close.final_ack_passed = true;  // the client acknowledged the backup's FIN
    {
        // Contiguous only: a segment beyond a hole is not in the backup's
        // stream (it will sit out of window there), so its end is no receive
        // point to reset the twin at.
        const SeqNum twin_seq{sniffer::wire::load_be32(buf, p.layout.l4 + 4)};
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
            if (t.replay.diverged) return;  // reset on both sides: not one more byte
            if (t.replay.absorbing && t.phase == TwinPhase::Up && absorb_backup_packet(t, ip_packet, p, now))
                return;
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
    // The backup's stack hands over bare IP, parsed once (on_backup_packet);
    // the rewriter puts the primary's Ethernet header (and the client's VLAN
    // tag) in front of it as it copies it into scratch, and rewrites it there.
    if (p.tcp.options.has_timestamps) t.proxy.backup_tsval = sniffer::TsVal{p.tcp.options.tsval};
    const rewrite::FrameOut out = rewrite::translate_backup_to_client_frame(
        ip_packet, p, t.vlan, t.proxy.offsets, t.proxy.map, scratch_);
    if (!out.ok()) {
        ++counters_.rewrite_errors;
        return;
    }
    const std::span<std::byte> buf(scratch_.data(), out.length);
    if (p.tcp.has(tf::kFin)) {
        t.close.backup_fin = true;
        t.close.backup_fin_seq = p.tcp.seq + p.payload_length;
        t.close.final_ack_passed = false;  // (again): its ACK must reach the backup
    }
    if (const SeqNum end = segment_end(SeqNum{sniffer::wire::load_be32(buf, out.l4 + 4)}, p);
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

}  // namespace migware
