#include "monitor/icmp_monitor.hpp"

#include <algorithm>
#include <cstring>

namespace migware::monitor {

namespace {
constexpr std::size_t kMaxOutstanding = 128;
constexpr std::size_t kRttHistory = 64;
// A reply this late still proves the host alive; older probes are forgotten.
constexpr MonoNs kForgetAfter = 2'000 * kMillisecond;

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

IcmpMonitor::IcmpMonitor(MonitorConfig config, std::uint16_t echo_id, std::uint64_t seed)
    : config_(config), id_(echo_id), rng_(seed) {
    if (config_.interval <= 0) config_.interval = kMillisecond;
    if (config_.timeout <= 0) config_.timeout = config_.interval;
    if (config_.misses < 1) config_.misses = 1;
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
    outstanding_.push_back({p.sequence, now, p.payload, false});
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
    alive_since_last_tick_ = true;
    return true;
}

std::optional<Verdict> IcmpMonitor::tick(MonoNs now, const PassiveSignal& passive) {
    for (auto& o : outstanding_) {
        if (!o.timed_out && now - o.sent_at >= config_.timeout) {
            o.timed_out = true;
            ++misses_;
            if (!first_miss_sent_at_) first_miss_sent_at_ = o.sent_at;
            recent_misses_.push_back(o.sent_at);
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
    if (misses_ >= config_.misses && health_ != Health::Down) {
        // The tracker may veto but never trigger: TCP from the primary after
        // the oldest of the last `misses` unanswered probes proves the host
        // alive (ICMP lost or filtered). Only that window counts, so a primary
        // that was vetoed once and then really dies is still declared down.
        if (passive.last_primary_packet && !recent_misses_.empty() &&
            *passive.last_primary_packet > recent_misses_.front()) {
            ++vetoed_;
            return std::nullopt;
        }
        health_ = Health::Down;
        std::string reason = std::to_string(misses_) + " consecutive echo probes unanswered (" +
                             ms(now - first_miss_sent_at_.value_or(now)) + " since the first)";
        if (passive.last_primary_packet) {
            reason += "; passive: primary silent for " + ms(now - *passive.last_primary_packet) +
                      ", " + std::to_string(passive.client_retransmissions) +
                      " client retransmissions since";
        } else {
            reason += "; passive: no TCP seen from the primary";
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
