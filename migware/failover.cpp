// The engine's core: the capture dispatch, the state, timers and views.
// Its parts live beside it: recovery.cpp, proxy.cpp, fence.cpp, rollback.cpp,
// relay.cpp, arp_defence.cpp (failover.hpp lists what each owns).

#include "migware/failover.hpp"

#include <algorithm>
#include <limits>

#include "migware/engine_detail.hpp"
#include "sniffer/checksum.hpp"

namespace migware {

using namespace detail;

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
        v.twin->replay = tracker::name_of(t.replay.mode);
        if (t.replay.diverged) {
            v.twin->overlap = "diverged";
        } else if (t.replay.absorbing) {
            v.twin->overlap = "absorbing";
        } else if (t.replay.mode != tracker::ReplayMode::Push && t.phase != TwinPhase::Waiting &&
                   t.phase != TwinPhase::SynSent && t.phase != TwinPhase::Failed) {
            v.twin->overlap = t.replay.from == t.replay.until ? "none" : "verified";
        }
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

void FailoverEngine::capture_lost(std::uint64_t frames, std::int64_t notice_wall_ns, MonoNs now) {
    loss_total_ += frames;
    last_loss_at_ = now;
    if (!loss_pending_wall_ || notice_wall_ns > *loss_pending_wall_) loss_pending_wall_ = notice_wall_ns;
    if (state_ != State::Normal || (loss_warned_at_ && now - *loss_warned_at_ < kLossWarnEvery)) return;
    loss_warned_at_ = now;
    log_.emit(now, "capture_losing_frames",
              Fields{{"lost", frames},
                     {"lost_total", loss_total_},
                     {"note", "the capture is losing frames: replies in flight at a failure will be reset"}});
}

bool FailoverEngine::capture_lost_after(const tracker::Connection& c) const {
    if (loss_pending_wall_) return true;  // no frame yet known to come after the loss
    return loss_behind_since_ && c.last_seen_ns < *loss_behind_since_;
}

bool FailoverEngine::capture_lost_near_takeover(MonoNs now) const {
    if (loss_pending_wall_) return true;
    return last_loss_at_ && *last_loss_at_ >= recovery_started_ - kLossWindow && *last_loss_at_ <= now;
}

void FailoverEngine::on_capture(const sniffer::RawFrame& frame, sniffer::LinkType link, MonoNs now) {
    if (loss_pending_wall_ && frame.timestamp_ns > *loss_pending_wall_) {
        // The first frame that arrived after the loss: from here on, every
        // connection's frames come after it.
        loss_behind_since_ = now;
        loss_pending_wall_.reset();
    }
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
        primary_vlan_ = p->eth.vlan;
    }
    const bool from_primary = p->kind == PacketKind::Arp ? p->arp.sender_ip == config_.primary
                                                         : p->ip.src == config_.primary;
    if (p->kind == PacketKind::Arp && from_primary && p->has_ethernet &&
        (!primary_mac_known_ || p->arp.sender_mac == primary_mac_)) {
        // The primary's kernel answering (or asking): alive, whatever its
        // firewall does with ICMP. Another host claiming its IP is not it.
        ++counters_.primary_arp_frames;
        if (!primary_mac_known_) primary_vlan_ = p->eth.vlan;
    }
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
        // One clock: the table's times are the engine's (restore() and
        // expiry use it too), never the capture's wall-clock stamps.
        const auto obs = pipeline_.track(frame, now);
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
        on_arp(*p, now);
        return;
    }
    if (p->kind != PacketKind::Tcp) return;
    if (p->ip.src == config_.primary) {
        on_primary_frame(frame, *p, now);
        return;
    }
    on_client_segment(frame, *p, now);
}

void FailoverEngine::track_only(const sniffer::RawFrame& frame, sniffer::LinkType link, MonoNs now) {
    const Packet* p = pipeline_.parse(frame, link);
    if (!p || p->kind != PacketKind::Tcp) return;
    if (p->has_ethernet && has_own_mac_ && p->eth.src == config_.backup_mac) return;
    if (config_.verify_tcp_checksums && !tcp_checksum_ok(frame, *p)) {
        ++counters_.tcp_bad_checksum;
        return;
    }
    pipeline_.track(frame, now);
}

bool FailoverEngine::tcp_checksum_ok(const sniffer::RawFrame& frame, const Packet& p) {
    // A segment cut short by the capture cannot be checked; the tracker
    // already refuses to replay bytes it did not capture.
    const std::size_t end = std::size_t{p.layout.l3} + p.ip.total_length;
    if (p.payload_captured < p.payload_length || end > frame.bytes.size()) return true;
    return sniffer::tcp_checksum_ok(p.ip.src, p.ip.dst,
                                    frame.bytes.subspan(p.layout.l4, end - p.layout.l4));
}

void FailoverEngine::primary_up(MonoNs now, const std::string& reason) {
    if (state_ == State::Normal) {
        log_.emit(now, "primary_up", Fields{{"reason", reason}});
        return;
    }
    // PrimaryAnswering changes no state: the twins own the clients now.
    primary_back_ = true;
    primary_heard(now, "echo replies");
    log_.emit(now, "primary_answering",
              Fields{{"state", std::string(name_of(state_))},
                     {"reason", reason},
                     {"action", config_.new_connections_to_returning_primary
                                    ? "keep serving the twins; new connections go to the primary"
                                    : "keep serving the twins; new connections stay with the backup "
                                      "(no automatic fail-back)"}});
}

void FailoverEngine::transition(Event event, MonoNs now, const std::string& reason) {
    const Transition tr = next_state(state_, event);
    if (!tr.changed) return;
    log_.emit(now, "transition",
              Fields{{"from", std::string(name_of(state_))},
                     {"to", std::string(name_of(tr.to))},
                     {"cause", std::string(name_of(event))},
                     {"reason", reason}});
    state_ = tr.to;
    state_since_ = now;
}

void FailoverEngine::on_timer(MonoNs now) {
    if (!fence_queue_.empty() || fence_round_open_) fence_timer(now);
    if (!relayed_.empty() && now >= next_relay_sweep_) expire_relays(now);
    if (state_ == State::Recovery) recovery_timer(now);
    if (absorbing_ > 0) replay_timer(now);
    if (!client_resets_.empty()) send_client_resets(now);
    if (state_ == State::Normal && now >= next_expiry_) {
        // Only in Normal: from the takeover on the table is the record of
        // what was carried over, and nothing feeds it.
        pipeline_.table().expire(now);
        next_expiry_ = now + kExpirySweep;
    }
    // Closed twins linger so the last ACKs pass, then their mapping goes and
    // the slot is reused (connections opened after failover come and go).
    twins_.release_expired(now, config_.close_linger);
}

MonoNs FailoverEngine::next_deadline() const {
    MonoNs next = std::numeric_limits<MonoNs>::max();
    if (state_ == State::Recovery) next = std::min(next, recovery_deadline());
    if (absorbing_ > 0) next = std::min(next, replay_deadline());
    if (!client_resets_.empty()) next = std::min(next, client_resets_.front().due);
    const auto& table = pipeline_.table();
    if (state_ == State::Normal && table.size() > 0 &&
        (table.config().idle_timeout_ns > 0 || table.config().closed_linger_ns > 0))
        next = std::min(next, next_expiry_);
    if (auto r = twins_.next_release(config_.close_linger)) next = std::min(next, *r);
    if (!fence_queue_.empty())
        next = std::min(next, std::max(fence_queue_.top().first, fence_hold_until_));
    if (!relayed_.empty()) next = std::min(next, next_relay_sweep_);
    return next;
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
        // Not sent, and the caller knows it: a fence RST withheld is not a
        // RST sent (its socket is probed again, or given up, counted).
        ++(client_.withholding() ? counters_.frames_withheld : counters_.send_errors);
        return false;
    }
    return true;
}

}  // namespace migware
