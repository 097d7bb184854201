// A primary that never died (issue 10): proof of life undoes the takeover
// inside this host only, and points the clients back at the primary.

#include "migware/failover.hpp"

#include <array>

#include "migware/engine_detail.hpp"
#include "rewrite/handshake.hpp"

namespace migware {

using namespace detail;

void FailoverEngine::note_client_seen(Twin& t, const Packet& p) {
    // Contiguous coverage only: a segment that starts beyond what migware has
    // seen leaves a hole, and bytes in a hole may have reached the primary
    // without us (our capture link was down).
    extend_contiguous(t.proxy.client_contig, p.tcp.seq, segment_end(p.tcp.seq, p));
}

void FailoverEngine::heard_client(MonoNs now) {
    if (settled_) return;
    if (!heard_since_) {
        heard_since_ = now;
    } else if (now - *heard_since_ >= kSettleHeard) {
        settle(now, "client frames heard for " + std::to_string(kSettleHeard / monitor::kMillisecond) +
                        " ms after the takeover, no proof of life");
    }
}

void FailoverEngine::settle(MonoNs now, std::string_view why) {
    if (settled_ || state_ == State::Normal) return;
    settled_ = true;
    ++counters_.takeovers_settled;
    log_.emit(now, "takeover_settled",
              Fields{{"reason", std::string(why)},
                     {"since_takeover_ms", (now - recovery_started_) / monitor::kMillisecond},
                     {"action", "no rollback from here on; client segments past a hole are proxied"}});
}

bool FailoverEngine::proof_of_life(MonoNs now, const std::string& evidence, const sniffer::RawFrame& frame) {
    if (settled_ && counters_.fence_resets == at_takeover_.fence_resets) {
        // Past the window: a primary heard now is a returning one, fenced.
        if (counters_.life_after_settled++ == at_takeover_.life_after_settled)
            log_.emit(now, "primary_progress_after_settled",
                      Fields{{"evidence", evidence}, {"action", "none: the takeover had settled"}});
        return false;
    }
    // Not settled: neither the window has passed nor has this takeover's
    // fence acted (per takeover: an earlier takeover's fence says nothing).
    if (!settled_) {
        roll_back(now, evidence);
        // The frame that showed it is tracked like any in Normal (it is the
        // packet parse() last returned), so the table knows what it showed.
        // Otherwise a primary that is in fact dead (the capture had dropped
        // its last segments) is taken over again with the old numbers, and
        // the same ACK rolls it back again, for ever.
        pipeline_.track(frame, now);
        return true;
    }
    // Too late: the fence already judged the primary dead and reset some of
    // its sockets; undoing the takeover now would strand their clients.
    if (counters_.progress_after_fence++ == at_takeover_.progress_after_fence)
        log_.emit(now, "primary_progress_after_fence",
                  Fields{{"evidence", evidence},
                         {"action", "none: the fence had already reset some of its sockets"}});
    return false;
}

void FailoverEngine::roll_back(MonoNs now, const std::string& evidence) {
    if (state_ == State::Normal) return;
    const TwinsClosed closed = close_every_twin();
    counters_.rollback_twins_reset += closed.reset;
    point_clients_at_primary();
    ++counters_.rollbacks;
    log_.emit(now, "takeover_rolled_back",
              Fields{{"evidence", evidence},
                     {"twins_closed", closed.reset},
                     {"twins_that_carried_traffic", closed.carried},
                     {"new_connections_lost", closed.direct},
                     {"primary_fed", counters_.primary_fed},
                     {"action", "no probe or RST to the primary; twins closed inside this host; "
                                "clients pointed back at the primary's MAC; tracking resumes"}});
    forget_takeover(now);
    transition(Event::TakeoverRolledBack, now, evidence);
}

void FailoverEngine::stand_down(MonoNs now, const std::string& reason) {
    if (state_ == State::Normal) return;
    const TwinsClosed closed = close_every_twin();
    ++counters_.stood_down;
    log_.emit(now, "takeover_stood_down",
              Fields{{"reason", reason},
                     {"twins_closed", closed.reset},
                     {"twins_that_carried_traffic", closed.carried},
                     {"action", "nothing sent on the wire; twins closed inside this host; tracking resumes"}});
    forget_takeover(now);
    transition(Event::StoodDown, now, reason);
}

FailoverEngine::TwinsClosed FailoverEngine::close_every_twin() {
    TwinsClosed c;
    for (Twin& t : twins_) {
        if (t.released || t.phase == TwinPhase::Waiting || t.phase == TwinPhase::Failed) continue;
        if (t.stats.to_backup_bytes > 0 || t.stats.to_client_bytes > 0) ++c.carried;
        if (t.direct) ++c.direct;
        reset_twin_in_backup(t);
        ++c.reset;
    }
    return c;
}

void FailoverEngine::forget_takeover(MonoNs now) {
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
    absorbing_ = 0;
    client_resets_.clear();  // a primary that never died keeps its clients
    reset_clients_.clear();
    heard_since_.reset();
    settled_ = false;
    primary_back_ = false;
    primary_talking_logged_ = false;
    recovery_done_ = 0;
    // It just spoke: the monitor's passive veto must see that.
    last_primary_packet_ = now;
    retransmissions_since_primary_ = 0;
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

}  // namespace migware
