// The primary returns (DESIGN-NOTES.md "The primary returns"): its stale
// sockets probed for their exact receive point and reset there, after the
// hold and the classification window.

#include "migware/failover.hpp"

#include <algorithm>
#include <array>

#include "migware/engine_detail.hpp"
#include "rewrite/frames.hpp"
#include "rewrite/handshake.hpp"

namespace migware {

using namespace detail;

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
                  Fields{{"src", ep({p.ip.src, p.tcp.src_port})},
                         {"dst", ep({p.ip.dst, p.tcp.dst_port})},
                         {"note", "the primary sends TCP again; twins keep serving (logged once)"}});
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
                                       std::to_string((p.tcp.ack - t.proxy.client_contig).as_signed()),
                              frame))
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
        send_fence_reset(t, p.tcp.ack, now);
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
                      Fields{{"client", ep(key.client)},
                             {"server", ep(key.server)},
                             {"seq", std::uint64_t{p.tcp.seq.raw()}},
                             {"note", "the primary's kernel answered a client segment"}});
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
    log_.emit(now, "fence_start",
              Fields{{"reason", reason}, {"stale", n}, {"primary_mac", primary_mac_.to_string()}});
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
            send_fence_reset(t, *t.fence.learnt_rcv, now);
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
                  Fields{{"fenced", counters_.fenced},
                         {"resets", counters_.fence_resets},
                         {"probes", counters_.fence_probes},
                         {"unfenced", stale_unfenced()},
                         {"in_us", (now - fence_round_started_) / 1000}});
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
    const std::size_t eth = rewrite::write_ethernet(
        scratch_, {primary_mac_, our_mac(), t.vlan, rewrite::kEtherTypeIpv4});
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

void FailoverEngine::send_fence_reset(Twin& t, SeqNum seq, MonoNs now) {
    const std::size_t eth = rewrite::write_ethernet(
        scratch_, {primary_mac_, our_mac(), t.vlan, rewrite::kEtherTypeIpv4});
    const std::size_t len = rewrite::build_reset(
        std::span(scratch_).subspan(eth), {t.key.client, t.key.server, seq, next_ip_id()});
    if (len > 0 && send_client(std::span(scratch_.data(), eth + len))) {
        ++counters_.fence_resets;
        settle(now, "the fence reset a stale socket of the primary");
    }
}

}  // namespace migware
