// Recovery (DESIGN.md §2-3): a twin per tracked connection, its handshake
// into the backup's stack, paced, and the unacknowledged client bytes handed
// over; why each connection that was not carried over was not.

#include "migware/failover.hpp"

#include <algorithm>
#include <array>
#include <limits>

#include "migware/engine_detail.hpp"
#include "rewrite/handshake.hpp"

namespace migware {

using namespace detail;

void FailoverEngine::primary_down(MonoNs now, const std::string& reason,
                                  const std::vector<std::uint16_t>& busy_ports) {
    if (state_ != State::Normal) return;
    for (std::uint16_t q : busy_ports) twins_.reserve(q);
    if (!busy_ports.empty())
        log_.emit(now, "twin_ports_avoided",
                  Fields{{"sockets", std::uint64_t{busy_ports.size()}},
                         {"note", "this host already holds sockets toward the primary's IP (a previous "
                                  "migware's twins): their ports are not reused"}});
    transition(Event::PrimaryDown, now, reason);
    announce_takeover(now);
    start_recovery(now);
}

void FailoverEngine::start_recovery(MonoNs now) {
    recovery_started_ = now;
    // The counters are cumulative (metrics); what this takeover did is the
    // difference from here (a member can take over more than once).
    at_takeover_ = counters_;
    reset_clients_.clear();
    heard_since_.reset();
    settled_ = false;
    auto& table = pipeline_.table();
    table.for_each([&](const tracker::Connection& c) {
        if (c.state == tracker::TcpState::Closed) return;
        if (c.silent_since_restore()) {
            // Known only from the snapshot, and not one segment since the
            // restart: gone before the failure (closed while migware was
            // down), not lost at it. It expires like any idle connection.
            ++counters_.gone_before_failure;
            return;
        }
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
        // Aligned and full: the twin starts at the request (replay.cpp).
        if (const std::optional<Unrecovered> reset = plan_replay(t, c, now)) {
            const Unrecovered why = *reset;
            ++counters_.unrecovered[static_cast<std::size_t>(why)];
            lost_.emplace(c.key, why);
            log_unrecoverable(now, c.key, why, 0);
            reset_client_later(c.key, *c.client_ack_high, c.client_seq_next.value_or(*c.server_ack_high),
                               c.client_mac, c.vlan, now);
            return;
        }
        if (t.replay.mode != tracker::ReplayMode::Push) {
            // Planned: the held bytes from the request on are in t.recovery.unacked.
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
    const FailoverCounters& b = at_takeover_;
    Fields fields{{"twins", twins_.size()}};
    for (std::size_t i = 0; i < counters_.unrecovered.size(); ++i)
        fields.push_back({std::string(name_of(static_cast<Unrecovered>(i))), counters_.unrecovered[i] - b.unrecovered[i]});
    fields.push_back({"replay_incomplete", counters_.replay_incomplete - b.replay_incomplete});
    fields.push_back({"restored", counters_.twins_restored - b.twins_restored});
    fields.push_back({"inferred", counters_.twins_inferred - b.twins_inferred});
    fields.push_back({"gone_before_failure", counters_.gone_before_failure - b.gone_before_failure});
    fields.push_back({"expired_before_failure",
                      table.counters().expired_idle + table.counters().expired_closed});
    log_.emit(now, "recovery_start", std::move(fields));
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
    start_absorbing(t, now);
    // While the backup regenerates what the client has, the client's frames
    // wait: its ACKs would acknowledge bytes the backup has not sent yet.
    if (!t.replay.absorbing) flush_queued(t, now);
    pump_syns(now);
    check_resolved(now);
}

void FailoverEngine::flush_queued(Twin& t, MonoNs now) {
    auto queued = std::move(t.recovery.queued);
    t.recovery.queued.clear();
    for (const auto& bytes : queued) {
        Packet qp;
        if (sniffer::parse(bytes, static_cast<std::uint32_t>(bytes.size()), sniffer::LinkType::Ethernet, qp))
            continue;
        const sniffer::RawFrame qf{bytes, static_cast<std::uint32_t>(bytes.size()), 0};
        proxy_client_frame(t, qf, qp, now);
    }
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
    Fields fields{{"client", ep(key.client)}, {"server", ep(key.server)}, {"reason", std::string(name_of(why))}};
    if (syn_tries > 0) fields.push_back({"syn_tries", std::int64_t{syn_tries}});
    log_.emit(now, "unrecoverable", std::move(fields));
}

void FailoverEngine::check_resolved(MonoNs now) {
    if (state_ != State::Recovery || syns_in_flight_ != 0 || next_waiting_ < twins_.size()) return;
    recovery_done_ = now;
    if (unrecoverable_logged_ > kUnrecoverableLogLimit)
        log_.emit(now, "unrecoverable_summary",
                  Fields{{"logged", kUnrecoverableLogLimit},
                         {"not_logged", unrecoverable_logged_ - kUnrecoverableLogLimit}});
    const auto since = [&](Unrecovered u) {
        const auto i = static_cast<std::size_t>(u);
        return counters_.unrecovered[i] - at_takeover_.unrecovered[i];
    };
    const std::uint64_t failed = since(Unrecovered::NoSynAck) + since(Unrecovered::BackupRefused);
    transition(Event::TwinsResolved, now,
               std::to_string(counters_.recovered - at_takeover_.recovered) + " of " + std::to_string(counters_.twins) +
                   " twins established, " + std::to_string(failed) + " failed, in " +
                   std::to_string((recovery_done_ - recovery_started_) / 1000) + " us");
}


void FailoverEngine::recovery_timer(MonoNs now) {
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

MonoNs FailoverEngine::recovery_deadline() const {
    MonoNs next = std::numeric_limits<MonoNs>::max();
    if (config_.max_syn_rate > 0 && next_waiting_ < twins_.size() &&
        syns_in_flight_ < config_.max_concurrent_syns) {
        const double wait_s = std::max(0.0, (1 - syn_tokens_) / config_.max_syn_rate);
        next = std::min(next, syn_tokens_at_ + static_cast<MonoNs>(wait_s * 1e9) + 1);
    }
    for (const Twin& t : twins_)
        if (t.phase == TwinPhase::SynSent) next = std::min(next, t.recovery.deadline);
    return next;
}

}  // namespace migware
