// Aligned and full replay (issue 13, DESIGN.md §6b). The twin starts at the
// client's current request (aligned) or at its first byte (full); the
// backup's reply is aligned with the primary's (D2 = ISNb + 1 - R0), and the
// bytes the client already has, [R0, K), are absorbed here: digested,
// acknowledged to the backup on the client's behalf, never forwarded. Only
// when their digest equals that of the primary's bytes, as they passed on the
// wire, does anything from K on reach the client. Otherwise the client's
// connection and the twin are reset: no differing byte is ever spliced.

#include <algorithm>
#include <array>
#include <limits>

#include "migware/engine_detail.hpp"
#include "migware/failover.hpp"
#include "rewrite/frames.hpp"
#include "rewrite/handshake.hpp"

namespace migware {

using namespace detail;
using tracker::ReplayMode;

namespace {
constexpr std::size_t kReplayLogLimit = 50;
}

std::optional<Unrecovered> FailoverEngine::plan_replay(Twin& t, const tracker::Connection& c, MonoNs now) {
    const ReplayMode want = c.replay_mode;  // full already fell back to aligned if over its cap
    if (want == ReplayMode::Push || !c.replay) return std::nullopt;
    const auto fell_back = [&](tracker::ReplayFallback why, std::string_view done, std::string_view detail = {}) {
        ++counters_.replay_fallback[static_cast<std::size_t>(why)];
        if (fallback_logged_++ < kReplayLogLimit) {
            Fields f{{"client", ep(c.key.client)},
                     {"server", ep(c.key.server)},
                     {"mode", std::string(tracker::name_of(want))},
                     {"done", std::string(done)},
                     {"reason", std::string(tracker::name_of(why))}};
            if (!detail.empty()) f.push_back({"detail", std::string(detail)});
            log_.emit(now, "replay_fallback", std::move(f));
        }
    };
    tracker::ReplayFallback why{};
    std::optional<tracker::ReplayPlan> plan = c.replay_plan(want, why);
    if (!plan && want == ReplayMode::Full) {
        const tracker::ReplayFallback full_why = why;
        plan = c.replay_plan(ReplayMode::Aligned, why);
        fell_back(full_why, plan ? "aligned" : "below");
        if (plan) ++counters_.replay_full_as_aligned;
    }
    if (!plan) {
        // Push is exact only when the turn's reply is known complete (seen
        // whole and acknowledged) or the connection was idle. Otherwise the
        // client would wait for ever for bytes nobody sends (or the backup
        // would get half a request): reset it; a client can retry, a hung
        // one cannot.
        const tracker::PushCheck check = c.push_check(capture_lost_after(c));
        if (check.risk != tracker::PushRisk::None) {
            fell_back(why, "reset", check.detail);
            switch (check.risk) {
                case tracker::PushRisk::ReplyInFlight: return Unrecovered::ReplyLost;
                case tracker::PushRisk::ReplyNotSeenWhole: return Unrecovered::ReplyNotSeenWhole;
                default: return Unrecovered::RequestUnanswered;
            }
        }
        fell_back(why, "push");
        ++counters_.replay_as_push;
        return std::nullopt;
    }
    // The twin's sequence numbers still equal the client's (D1 = 0); the
    // backup's first byte stands for the primary's byte at server_from.
    auto& o = t.recovery.observed;
    o.a = plan->client_from;
    o.k = plan->server_from;
    const std::uint32_t skip = (plan->client_from - c.unacked_base).value;
    t.recovery.unacked.resize(c.unacked.size() - skip);
    c.unacked.copy_out(skip, t.recovery.unacked);
    t.replay.mode = plan->mode;
    t.replay.from = plan->server_from;
    t.replay.until = plan->until;
    t.replay.digested = plan->server_from;
    t.replay.digest = tracker::kDigestBasis;
    t.replay.expected = plan->digest;
    t.replay.checkpoints = std::move(plan->checkpoints);
    t.replay.next_checkpoint = 0;
    ++(plan->mode == ReplayMode::Full ? counters_.replay_full : counters_.replay_aligned);
    return std::nullopt;
}

void FailoverEngine::reset_client_later(const tracker::FourTuple& key, SeqNum seq, SeqNum client_next,
                                        const sniffer::MacAddr& client_mac, std::optional<std::uint16_t> vlan,
                                        MonoNs now) {
    client_resets_.push_back(
        {key, seq, client_next, client_mac, vlan, std::max(now, recovery_started_ + kFenceClassify)});
}

void FailoverEngine::send_client_reset(const tracker::FourTuple& key, SeqNum seq, const sniffer::MacAddr& client_mac,
                                       std::optional<std::uint16_t> vlan) {
    const std::size_t eth = rewrite::write_ethernet(scratch_, {client_mac, our_mac(), vlan, rewrite::kEtherTypeIpv4});
    const std::size_t len =
        rewrite::build_reset(std::span(scratch_).subspan(eth), {key.server, key.client, seq, next_ip_id()});
    if (len > 0 && send_client(std::span(scratch_.data(), eth + len))) ++counters_.replay_client_resets;
}

void FailoverEngine::send_client_resets(MonoNs now) {
    std::size_t sent = 0;
    for (; sent < client_resets_.size() && client_resets_[sent].due <= now; ++sent) {
        const ClientReset& r = client_resets_[sent];
        send_client_reset(r.key, r.seq, r.client_mac, r.vlan);
        // The client may hold more than migware saw it acknowledge (its last
        // ACKs in flight, or lost by the capture): then the RST lies below its
        // window and is dropped without a word (RFC 5961 §3.2). One byte it
        // already has draws a duplicate ACK with its exact receive point
        // (RFC 9293 §3.10.7.4), which on_client_segment answers with a RST
        // there; a client already reset answers the byte with a RST of its own.
        const std::size_t eth =
            rewrite::write_ethernet(scratch_, {r.client_mac, our_mac(), r.vlan, rewrite::kEtherTypeIpv4});
        const rewrite::TwinDataSpec probe{r.key.server, r.key.client, r.seq - 1u, r.client_next, std::nullopt,
                                          0xffff, next_ip_id()};
        const std::array<std::byte, 1> byte{};
        const std::size_t len = rewrite::build_twin_data(std::span(scratch_).subspan(eth), probe, byte);
        if (len > 0) send_client(std::span(scratch_.data(), eth + len));
        reset_clients_.insert_or_assign(r.key, ResetClient{r.client_mac, r.vlan, kResetAnswers});
    }
    client_resets_.erase(client_resets_.begin(), client_resets_.begin() + static_cast<std::ptrdiff_t>(sent));
}

bool FailoverEngine::answer_reset_client(const Packet& p) {
    const auto it = reset_clients_.find({{p.ip.src, p.tcp.src_port}, {p.ip.dst, p.tcp.dst_port}});
    if (it == reset_clients_.end()) return false;
    ++counters_.client_unrecovered;
    if (p.tcp.has(tf::kRst)) {
        reset_clients_.erase(it);  // the client's own end of it
        return true;
    }
    // Its ACK field is its receive point: RFC 9293 §3.10.7.1 (a segment for
    // a connection that no longer exists), exact by construction.
    if (p.tcp.has(tf::kAck) && it->second.answers > 0) {
        --it->second.answers;
        ++counters_.reset_answers;
        send_client_reset(it->first, p.tcp.ack, it->second.client_mac, it->second.vlan);
    }
    return true;
}

void FailoverEngine::start_absorbing(Twin& t, MonoNs now) {
    if (t.replay.mode == ReplayMode::Push || t.replay.from == t.replay.until) return;  // nothing to absorb
    t.replay.absorbing = true;
    t.replay.stall_at = now + config_.replay_stall;
    ++absorbing_;
}

bool FailoverEngine::absorb_backup_packet(Twin& t, std::span<const std::byte> ip_packet, const Packet& p,
                                          MonoNs now) {
    if (p.tcp.options.has_timestamps) t.proxy.backup_tsval = sniffer::TsVal{p.tcp.options.tsval};
    if (p.tcp.has(tf::kRst)) {
        replay_diverged(t, now, "the backup reset the twin before it had regenerated what the client has");
        return true;
    }
    Twin::Replay& r = t.replay;
    const SeqNum start = rewrite::backup_to_client_seq(p.tcp.seq, t.proxy.offsets);
    const SeqNum end = start + p.payload_length;
    bool progressed = false;
    if (p.payload_length > 0 && !start.after(r.digested) && end.after(r.digested)) {
        const SeqNum last = end.after(r.until) ? r.until : end;
        while (r.digested != last) {
            // Up to the next checkpoint inside the segment, if any: a
            // difference is caught there, not only at K.
            SeqNum stop = last;
            const bool at_checkpoint = r.next_checkpoint < r.checkpoints.size() &&
                                       !r.checkpoints[r.next_checkpoint].first.after(last);
            if (at_checkpoint) stop = r.checkpoints[r.next_checkpoint].first;
            const std::uint32_t skip = (r.digested - start).value;
            const std::uint32_t take = (stop - r.digested).value;
            r.digest = tracker::digest_update(r.digest, ip_packet.subspan(std::size_t{p.layout.payload} + skip, take));
            r.digested = stop;
            counters_.replay_absorbed_bytes += take;
            progressed = true;
            if (at_checkpoint) {
                if (r.digest != r.checkpoints[r.next_checkpoint].second) {
                    replay_diverged(t, now, "the backup's bytes differ from those the client has");
                    return true;
                }
                ++r.next_checkpoint;
            }
        }
    }
    if (r.digested == r.until) {
        if (r.digest != r.expected) {
            replay_diverged(t, now, "the backup's bytes differ from those the client has");
            return true;
        }
        replay_verified(t, now);
        // What the segment holds from K on goes to the client; the bytes
        // before K in it equal what the client has, and it drops them as old.
        if (end.after(r.until) || p.tcp.has(tf::kFin)) return false;
        send_absorb_ack(t);
        return true;
    }
    if (p.tcp.has(tf::kFin)) {
        replay_diverged(t, now, "the backup's reply ended before what the client has");
        return true;
    }
    if (progressed) r.stall_at = now + config_.replay_stall;
    if (p.payload_length > 0) send_absorb_ack(t);
    return true;
}

void FailoverEngine::send_absorb_ack(Twin& t) {
    // On the client's behalf: its ACK field as the backup reads it, at the
    // end of what migware digested; the client's own segments wait (queued)
    // until the overlap is verified.
    rewrite::TwinDataSpec spec{t.twin_src,
                               t.backup,
                               t.proxy.to_backup_end,
                               rewrite::client_to_backup_ack(t.replay.digested, t.proxy.offsets),
                               std::nullopt,
                               rewrite::client_to_backup_window(t.recovery.client_window, t.proxy.offsets),
                               next_ip_id()};
    if (t.proxy.offsets.timestamps)
        spec.timestamps = rewrite::TimestampPair{t.recovery.observed.client_tsval_latest, t.proxy.backup_tsval};
    const std::size_t len = rewrite::build_twin_data(scratch_, spec, {});
    if (len > 0) send_backup(std::span(scratch_.data(), len));
}

void FailoverEngine::replay_verified(Twin& t, MonoNs now) {
    t.replay.absorbing = false;
    --absorbing_;
    ++counters_.replay_verified;
    flush_queued(t, now);
}

void FailoverEngine::replay_diverged(Twin& t, MonoNs now, std::string_view why) {
    Twin::Replay& r = t.replay;
    r.absorbing = false;
    r.diverged = true;
    --absorbing_;
    ++counters_.replay_diverged;
    if (replay_logged_++ < kReplayLogLimit)
        log_.emit(now, "replay_diverged",
                  Fields{{"client", ep(t.key.client)},
                         {"server", ep(t.key.server)},
                         {"mode", std::string(tracker::name_of(r.mode))},
                         {"digested", std::uint64_t{(r.digested - r.from).value}},
                         {"expected", std::uint64_t{(r.until - r.from).value}},
                         {"reason", std::string(why)},
                         {"note", "the connection is reset: the backup's reply differs from the primary's"}});
    // The client, at its exact rcv_nxt (K): RFC 5961 §3.2 accepts no other.
    if (const auto& macs = t.proxy.map.to_client.macs) reset_client_later(t.key, r.until, t.proxy.client_contig, macs->dst, t.vlan, now);
    reset_twin_in_backup(t);
    counters_.client_unrecovered += t.recovery.queued.size();
    std::vector<std::vector<std::byte>>().swap(t.recovery.queued);
    note_close(t, now);
}

void FailoverEngine::replay_timer(MonoNs now) {
    for (auto& t : twins_)
        if (t.replay.absorbing && t.phase == TwinPhase::Up && t.replay.stall_at <= now)
            replay_diverged(t, now, "the backup stopped short of what the client has");
}

MonoNs FailoverEngine::replay_deadline() const {
    MonoNs next = std::numeric_limits<MonoNs>::max();
    for (const Twin& t : twins_)
        if (t.replay.absorbing && t.phase == TwinPhase::Up) next = std::min(next, t.replay.stall_at);
    return next;
}

}  // namespace migware
