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

bool FailoverEngine::plan_replay(Twin& t, const tracker::Connection& c, MonoNs now) {
    const ReplayMode want = c.replay_mode;  // full already fell back to aligned if over its cap
    if (want == ReplayMode::Push || !c.replay) return true;
    const auto fell_back = [&](tracker::ReplayFallback why, std::string_view done) {
        ++counters_.replay_fallback[static_cast<std::size_t>(why)];
        if (fallback_logged_++ < kReplayLogLimit)
            log_.emit(now, "replay_fallback",
                      Fields{{"client", ep(c.key.client)},
                             {"server", ep(c.key.server)},
                             {"mode", std::string(tracker::name_of(want))},
                             {"done", std::string(done)},
                             {"reason", std::string(tracker::name_of(why))}});
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
        // Reply bytes in flight (the client had not acknowledged all the
        // server sent): push would leave the client waiting for them for
        // ever. Reset it; a client can retry, a hung one cannot.
        const auto& r = *c.replay;
        const bool reply_lost = r.server_data_end && c.client_ack_high && c.client_ack_high->before(*r.server_data_end);
        fell_back(why, reply_lost ? "reset" : "push");
        if (reply_lost) return false;
        ++counters_.replay_as_push;
        return true;
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
    return true;
}

void FailoverEngine::reset_client_later(const tracker::FourTuple& key, SeqNum seq, const sniffer::MacAddr& client_mac,
                                        std::optional<std::uint16_t> vlan, MonoNs now) {
    client_resets_.push_back({key, seq, client_mac, vlan, std::max(now, recovery_started_ + kFenceClassify)});
}

void FailoverEngine::send_client_resets(MonoNs now) {
    std::size_t sent = 0;
    for (; sent < client_resets_.size() && client_resets_[sent].due <= now; ++sent) {
        const ClientReset& r = client_resets_[sent];
        const std::size_t eth = rewrite::write_ethernet(scratch_, {r.client_mac, our_mac(), r.vlan, rewrite::kEtherTypeIpv4});
        const std::size_t len = rewrite::build_reset(std::span(scratch_).subspan(eth),
                                                     {r.key.server, r.key.client, r.seq, next_ip_id()});
        if (len > 0 && send_client(std::span(scratch_.data(), eth + len))) ++counters_.replay_client_resets;
    }
    client_resets_.erase(client_resets_.begin(), client_resets_.begin() + static_cast<std::ptrdiff_t>(sent));
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
    if (const auto& macs = t.proxy.map.to_client.macs) reset_client_later(t.key, r.until, macs->dst, t.vlan, now);
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
