#include "monitor/icmp_monitor.hpp"

#include <algorithm>
#include <cstring>

namespace migware::monitor {

namespace {
constexpr std::size_t kMaxOutstanding = 128;
constexpr std::size_t kRttHistory = 64;
// A reply this late still proves the host alive; older probes are forgotten.
constexpr MonoNs kForgetAfter = 2'000 * kMillisecond;
// Asking the segment for evidence: at most this often while a silence lasts.
constexpr MonoNs kSegmentProbeGap = 25 * kMillisecond;

std::string ms(MonoNs ns) { return std::to_string(ns / kMillisecond) + " ms"; }
}  // namespace

std::string_view name_of(Health h) {
    switch (h) {
        case Health::Unknown: return "unknown";
        case Health::Up: return "up";
        case Health::Down: return "down";
    }
    return "unknown";
}

std::string_view name_of(Veto v) {
    switch (v) {
        case Veto::PrimaryTcp: return "primary_tcp";
        case Veto::PrimaryArp: return "primary_arp";
        case Veto::Carrier: return "carrier";
        case Veto::NoSegmentEvidence: return "no_segment_evidence";
        case Veto::kCount: break;
    }
    return "unknown";
}

IcmpMonitor::IcmpMonitor(MonitorConfig config, std::uint16_t echo_id, std::uint64_t seed)
    : config_(config), id_(echo_id), rng_(seed) {
    if (config_.interval <= 0) config_.interval = kMillisecond;
    if (config_.timeout <= 0) config_.timeout = config_.interval;
    if (config_.misses < 1) config_.misses = 1;
    // Evidence is a frame between two missed probes: one miss has no "between".
    if (config_.require_segment_evidence && config_.misses < 2) config_.misses = 2;
}

std::optional<Probe> IcmpMonitor::due(MonoNs now) {
    if (now < next_send_) return std::nullopt;
    // After a stall, do not fire a burst of catch-up probes.
    next_send_ = now + config_.interval;
    Probe p;
    p.id = id_;
    p.sequence = next_seq_++;
    for (std::size_t i = 0; i < kNonceBytes; i += 8) {
        const std::uint64_t r = rng_();
        std::memcpy(p.payload.data() + i, &r, 8);
    }
    if (outstanding_.size() == kMaxOutstanding) outstanding_.pop_front();
    outstanding_.push_back({p.sequence, now, p.payload, false, segment_frames_, carrier_downs_,
                            carrier_up_});
    ++sent_;
    return p;
}

bool IcmpMonitor::on_reply(std::uint16_t id, std::uint16_t sequence,
                           std::span<const std::byte> payload, MonoNs now) {
    auto it = std::find_if(outstanding_.begin(), outstanding_.end(),
                           [&](const Outstanding& o) { return o.sequence == sequence; });
    // A reply counts only if it echoes our id, a sequence we sent, and that
    // probe's random nonce: a stray or forged reply cannot keep a dead primary "up".
    if (id == id_ && it == outstanding_.end() &&
        std::find(answered_.begin(), answered_.end(), sequence) != answered_.end()) {
        // A second copy of a reply already counted: a mirror port delivers a
        // frame both by forwarding and as the mirror's copy. Not forged.
        ++duplicates_;
        return false;
    }
    if (id != id_ || it == outstanding_.end() || payload.size() < kNonceBytes ||
        std::memcmp(payload.data(), it->nonce.data(), kNonceBytes) != 0) {
        ++rejected_;
        return false;
    }
    answered_.push_back(sequence);
    if (answered_.size() > 64) answered_.pop_front();
    ++replies_;
    if (it->timed_out) ++late_;
    rtts_.push_back(now - it->sent_at);
    if (rtts_.size() > kRttHistory) rtts_.pop_front();
    outstanding_.erase(it);
    misses_ = 0;
    first_miss_sent_at_.reset();
    recent_misses_.clear();
    current_veto_.reset();
    alive_since_last_tick_ = true;
    ever_alive_ = true;
    return true;
}

void IcmpMonitor::on_primary_arp(std::uint64_t total, MonoNs now) {
    if (total <= primary_arp_frames_) return;
    arp_answers_ += total - primary_arp_frames_;
    primary_arp_frames_ = total;
    last_primary_arp_ = now;
    ever_alive_ = true;
    arp_since_last_tick_ = true;
}

bool IcmpMonitor::arp_probe_due(MonoNs now) const {
    if (!config_.arp_probe || health_ == Health::Down || now - last_arp_probe_ < config_.interval) return false;
    if (misses_ > 0) return true;
    // Before the first miss: once the oldest probe still waiting is an
    // interval overdue (a LAN answers echo in well under a millisecond), so
    // that the answer is in before the misses add up to a Down.
    for (const auto& o : outstanding_)
        if (!o.timed_out) return now - o.sent_at >= config_.interval;
    return false;
}

bool IcmpMonitor::take_never_answered_notice() {
    const bool n = never_answered_notice_;
    never_answered_notice_ = false;
    return n;
}

void IcmpMonitor::on_carrier(bool up, MonoNs) {
    if (carrier_known_ && carrier_up_ && !up) ++carrier_downs_;
    if (!carrier_known_ && !up) ++carrier_downs_;
    carrier_known_ = true;
    carrier_up_ = up;
}

bool IcmpMonitor::segment_probe_due(MonoNs now) const {
    // Only while a Down is still undecided: once declared, nothing more to prove.
    if (!config_.require_segment_evidence || health_ == Health::Down ||
        now - last_segment_probe_ < kSegmentProbeGap)
        return false;
    // Evidence counts from the oldest probe of the current streak on (the
    // window veto_for() judges); before the first miss, from the oldest probe
    // still waiting, once it is an interval overdue (a LAN answers in well
    // under a millisecond). Ask only if nobody has been heard since.
    if (!recent_misses_.empty()) return segment_frames_ == recent_misses_.front().segment_frames;
    for (const auto& o : outstanding_)
        if (!o.timed_out) return now - o.sent_at >= config_.interval && segment_frames_ == o.segment_frames;
    return false;
}

std::optional<VetoNotice> IcmpMonitor::take_veto_notice() {
    auto n = std::move(notice_);
    notice_.reset();
    return n;
}

std::uint64_t IcmpMonitor::vetoes() const {
    std::uint64_t n = 0;
    for (auto v : vetoes_by_reason_) n += v;
    return n;
}

std::optional<Veto> IcmpMonitor::veto_for(const PassiveSignal& passive) const {
    const Miss& oldest = recent_misses_.front();
    const Miss& newest = recent_misses_.back();
    // The tracker may veto but never trigger: TCP from the primary after the
    // oldest of the last `misses` unanswered probes proves the host alive
    // (ICMP lost or filtered). Only that window counts, so a primary that was
    // vetoed once and then really dies is still declared down.
    if (passive.last_primary_packet && *passive.last_primary_packet > oldest.sent_at)
        return Veto::PrimaryTcp;
    // The second level: an ARP frame from the primary in the same window.
    if (last_primary_arp_ && *last_primary_arp_ > oldest.sent_at) return Veto::PrimaryArp;
    if (!config_.require_segment_evidence) return std::nullopt;
    // DESIGN.md §6a: a backup whose own link is dead sees the same silence as
    // one whose primary died. Our carrier must have stayed up since the oldest
    // missed probe left (a link that came back since proves nothing: the
    // probes it lost were never on the wire)...
    if (carrier_known_ &&
        (!carrier_up_ || carrier_downs_ != oldest.carrier_downs ||
         std::any_of(recent_misses_.begin(), recent_misses_.end(),
                     [](const Miss& m) { return !m.carrier_up; })))
        return Veto::Carrier;
    // ... and some other host must have been heard *during* the silence: after
    // the oldest missed probe left and before a later one, also missed, left.
    // A frame heard only after the last missed probe may be the first sign of
    // our own link coming back; the next probe then settles it.
    if (newest.segment_frames == oldest.segment_frames) return Veto::NoSegmentEvidence;
    return std::nullopt;
}

void IcmpMonitor::note_veto(Veto v, MonoNs now, const PassiveSignal& passive) {
    if (current_veto_ == v) return;  // counted once per silence and reason
    current_veto_ = v;
    ++vetoes_by_reason_[static_cast<std::size_t>(v)];
    std::string detail = std::to_string(misses_) + " consecutive echo probes unanswered (" +
                         ms(now - first_miss_sent_at_.value_or(now)) + " since the first)";
    switch (v) {
        case Veto::PrimaryTcp:
            detail += "; the primary sent TCP " + ms(now - passive.last_primary_packet.value_or(now)) +
                      " ago: alive, ICMP lost or filtered";
            break;
        case Veto::PrimaryArp:
            detail += "; the primary answered ARP " + ms(now - last_primary_arp_.value_or(now)) +
                      " ago: alive, ICMP echo filtered or lost";
            break;
        case Veto::Carrier:
            detail += carrier_up_ ? "; this host's link went down during the silence"
                                  : "; this host's link is down";
            break;
        case Veto::NoSegmentEvidence:
            detail += "; no frame from any other host during the silence: this host may be cut "
                      "off, waiting for evidence";
            break;
        case Veto::kCount: break;
    }
    notice_ = VetoNotice{v, std::move(detail)};
}

std::optional<Verdict> IcmpMonitor::tick(MonoNs now, const PassiveSignal& passive) {
    for (auto& o : outstanding_) {
        if (!o.timed_out && now - o.sent_at >= config_.timeout) {
            o.timed_out = true;
            ++misses_;
            if (!first_miss_sent_at_) first_miss_sent_at_ = o.sent_at;
            recent_misses_.push_back({o.sent_at, o.segment_frames, o.carrier_downs, o.carrier_up});
            while (recent_misses_.size() > static_cast<std::size_t>(config_.misses))
                recent_misses_.pop_front();
        }
    }
    while (!outstanding_.empty() && now - outstanding_.front().sent_at > kForgetAfter)
        outstanding_.pop_front();

    if (alive_since_last_tick_ && misses_ == 0) {
        alive_since_last_tick_ = false;
        if (health_ != Health::Up) {
            health_ = Health::Up;
            return Verdict{Health::Up, "echo reply, rtt " + std::to_string(rtts_.back() / 1000) + " us"};
        }
        return std::nullopt;
    }
    alive_since_last_tick_ = false;
    const bool arp = arp_since_last_tick_;
    arp_since_last_tick_ = false;
    if (health_ == Health::Unknown && arp) {
        // Never answered echo (or not since a rollback), but answers ARP: up.
        health_ = Health::Up;
        return Verdict{Health::Up, "ARP reply (echo unanswered: filtered?)"};
    }
    if (misses_ >= config_.misses && health_ != Health::Down && !recent_misses_.empty()) {
        if (const auto veto = veto_for(passive)) {
            note_veto(*veto, now, passive);
            return std::nullopt;
        }
        if (!ever_alive_) {
            // A primary that never once answered, echo or ARP, is judged by
            // no rule: it may filter both. Unknown, never Down.
            if (!never_answered_noticed_) never_answered_notice_ = never_answered_noticed_ = true;
            return std::nullopt;
        }
        health_ = Health::Down;
        current_veto_.reset();
        std::string reason = std::to_string(misses_) + " consecutive echo probes unanswered (" +
                             ms(now - first_miss_sent_at_.value_or(now)) + " since the first)";
        if (passive.last_primary_packet) {
            reason += "; passive: primary silent for " + ms(now - *passive.last_primary_packet) +
                      ", " + std::to_string(passive.client_retransmissions) +
                      " client retransmissions since";
        } else {
            reason += "; passive: no TCP seen from the primary";
        }
        if (config_.require_segment_evidence) {
            reason += "; segment: " +
                      std::to_string(recent_misses_.back().segment_frames -
                                     recent_misses_.front().segment_frames) +
                      " frames from other hosts during the silence, carrier " +
                      (carrier_known_ ? "up throughout" : "unknown");
        }
        return Verdict{Health::Down, reason};
    }
    return std::nullopt;
}

MonoNs IcmpMonitor::next_deadline() const {
    MonoNs next = next_send_;
    for (const auto& o : outstanding_)
        if (!o.timed_out) next = std::min(next, o.sent_at + config_.timeout);
    return next;
}

}  // namespace migware::monitor
