#include "tracker/connection.hpp"

#include <algorithm>

namespace migware::tracker {

std::string_view name_of(TcpState s) {
    switch (s) {
        case TcpState::Handshake: return "handshake";
        case TcpState::Established: return "established";
        case TcpState::Closing: return "closing";
        case TcpState::Closed: return "closed";
    }
    return "unknown";
}

std::string_view name_of(ReplayMode m) {
    switch (m) {
        case ReplayMode::Push: return "push";
        case ReplayMode::Aligned: return "aligned";
        case ReplayMode::Full: return "full";
    }
    return "unknown";
}

std::optional<ReplayMode> parse_replay_mode(std::string_view text) {
    for (ReplayMode m : {ReplayMode::Push, ReplayMode::Aligned, ReplayMode::Full})
        if (text == name_of(m)) return m;
    return std::nullopt;
}

std::string_view name_of(ReplayFallback f) {
    switch (f) {
        case ReplayFallback::NoTurn: return "no_request_seen";
        case ReplayFallback::TurnNotHeld: return "request_over_cap";
        case ReplayFallback::Pipelined: return "pipelined";
        case ReplayFallback::DigestBroken: return "reply_not_seen_whole";
        case ReplayFallback::NoMark: return "ack_not_at_segment_end";
        case ReplayFallback::NotFromStart: return "stream_start_not_held";
        case ReplayFallback::kCount: break;
    }
    return "unknown";
}

std::uint8_t Connection::client_wscale() const {
    return wscale_in_use() ? std::min<std::uint8_t>(*client_wscale_offered, 14) : 0;
}

std::uint8_t Connection::server_wscale() const {
    return wscale_in_use() ? std::min<std::uint8_t>(*server_wscale_offered, 14) : 0;
}

namespace {

// Data bytes acknowledged between isn+1 and ack_high, not counting a FIN the
// ack covers (a FIN occupies one sequence number but carries no byte).
std::optional<std::uint32_t> bytes_acked(const Seen<SeqNum>& isn, const Seen<SeqNum>& ack_high,
                                         const Seen<SeqNum>& fin_seq) {
    if (!isn || !ack_high) return std::nullopt;
    const SeqNum first = *isn + 1u;
    if (ack_high->before(first)) return 0;
    std::uint32_t n = (*ack_high - first).value;
    if (fin_seq && ack_high->after(*fin_seq) && n > 0) --n;
    return n;
}

}  // namespace

std::optional<HandshakeFacts> Connection::handshake_facts() const {
    if (!client_isn || !server_isn) return std::nullopt;
    return HandshakeFacts{key,
                          *client_isn,
                          *server_isn,
                          client_mss,
                          server_mss,
                          client_wscale_offered,
                          server_wscale_offered,
                          client_sack_offered,
                          server_sack_offered,
                          client_ts_offered,
                          server_ts_offered,
                          client_mac,
                          server_mac,
                          vlan};
}

std::optional<std::uint32_t> Connection::client_bytes_acked() const {
    return bytes_acked(client_isn, server_ack_high, client_fin_seq);
}

std::optional<std::uint32_t> Connection::server_bytes_acked() const {
    return bytes_acked(server_isn, client_ack_high, server_fin_seq);
}

std::uint32_t Connection::unacked_in_flight() const {
    if (!server_ack_high || !client_data_end) return 0;
    if (client_data_end->before_or_eq(*server_ack_high)) return 0;
    return (*client_data_end - *server_ack_high).value;
}

bool Connection::can_replay_unacked() const {
    if (!server_ack_high) return false;
    const std::uint32_t pending = unacked_in_flight();
    if (pending == 0) return true;
    // The ring may start before A (aligned and full replay); it must
    // reach back to A and run up to the last byte sent.
    return unacked_base_set && unacked_base.before_or_eq(*server_ack_high) &&
           unacked.size() >= pending && unacked_base + static_cast<std::uint32_t>(unacked.size()) == *client_data_end;
}

bool Connection::holds_from(SeqNum from) const {
    if (!unacked_base_set || !client_data_end) return false;
    if (from.before(unacked_base) || from.after(*client_data_end)) return false;
    return unacked_base + static_cast<std::uint32_t>(unacked.size()) == *client_data_end;
}

std::optional<ReplayPlan> Connection::replay_plan(ReplayMode mode, ReplayFallback& why) const {
    if (!replay || !client_ack_high || !server_ack_high || !client_data_end) {
        why = ReplayFallback::NoTurn;
        return std::nullopt;
    }
    const ReplayTrack& r = *replay;
    const SeqNum k = *client_ack_high;
    // The digest of the primary's bytes up to K: a mark at exactly K (the
    // client acknowledges whole segments; one cut in two leaves no mark).
    const DigestMark* mark = r.live_marks() > 0 ? &r.marks[r.marks_head] : nullptr;
    if (mark && mark->end != k) mark = nullptr;
    if (mode == ReplayMode::Full) {
        if (!r.full_held || !client_isn || !server_isn || !holds_from(*client_isn + 1u)) {
            why = ReplayFallback::NotFromStart;
            return std::nullopt;
        }
        if (!r.full_ok || !r.digest_end || r.digest_end->before(k)) {
            why = ReplayFallback::DigestBroken;
            return std::nullopt;
        }
        if (!mark) {
            why = ReplayFallback::NoMark;
            return std::nullopt;
        }
        ReplayPlan plan{ReplayMode::Full, *client_isn + 1u, *server_isn + 1u, k, mark->full, {}};
        for (const DigestMark& cp : r.checkpoints)
            if (cp.end.after(plan.server_from) && cp.end.before(k)) plan.checkpoints.emplace_back(cp.end, cp.full);
        return plan;
    }
    if (!r.q0 || !r.r0) {
        why = ReplayFallback::NoTurn;
        return std::nullopt;
    }
    if (!r.turn_held || !holds_from(*r.q0) || r.q0->after(*server_ack_high)) {
        why = ReplayFallback::TurnNotHeld;
        return std::nullopt;
    }
    if (k.before(*r.r0)) {
        why = ReplayFallback::Pipelined;
        return std::nullopt;
    }
    if (!r.turn_ok || !r.digest_end || r.digest_end->before(k)) {
        why = ReplayFallback::DigestBroken;
        return std::nullopt;
    }
    if (!mark) {
        why = ReplayFallback::NoMark;
        return std::nullopt;
    }
    ReplayPlan plan{ReplayMode::Aligned, *r.q0, *r.r0, k, mark->turn, {}};
    for (const DigestMark& cp : r.checkpoints)
        if (cp.end.after(*r.r0) && cp.end.before(k)) plan.checkpoints.emplace_back(cp.end, cp.turn);
    return plan;
}

PushCheck Connection::push_check(bool capture_lost_after_last_frame) const {
    if (!replay || !client_ack_high) return {};
    const ReplayTrack& r = *replay;
    const SeqNum k = *client_ack_high;
    if (r.server_data_end && k.before(*r.server_data_end))
        return {PushRisk::ReplyInFlight, "the client had not acknowledged every server byte"};
    if (r.server_data_end && k.after(*r.server_data_end))
        return {PushRisk::ReplyNotSeenWhole, "the client acknowledged server bytes the capture never showed"};
    // Server bytes since the turn began (or, with no turn, since the stream
    // began), each seen, in order, no snaplen cut?
    const Seen<SeqNum> from = r.r0 ? r.r0 : (server_isn ? Seen<SeqNum>{*server_isn + 1u} : std::nullopt);
    const bool server_spoke = r.server_data_end && (!from || r.server_data_end->after(*from));
    if (server_spoke) {
        const bool whole = (r.r0 ? r.turn_ok : r.full_ok) && from && r.digest_end &&
                           *r.digest_end == *r.server_data_end && r.early.empty();
        if (!whole) return {PushRisk::ReplyNotSeenWhole, "a hole in the server's bytes migware saw"};
    }
    // Frames lost after its last one may have carried more of the reply
    // (and the client's ACKs of it): nothing seen proves it complete.
    if (capture_lost_after_last_frame)
        return {PushRisk::ReplyNotSeenWhole, "the capture lost frames after the connection's last one"};
    if (r.q0 && !r.server_spoke_last && client_data_end && client_data_end->after(*r.q0) &&
        !(server_ack_high && *server_ack_high == *r.q0 && can_replay_unacked()))
        return {PushRisk::RequestUnanswered, "the current request cannot be handed to the backup whole"};
    return {};
}

}  // namespace migware::tracker
