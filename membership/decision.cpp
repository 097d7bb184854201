#include "membership/decision.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

namespace migware::membership {

std::string_view name_of(Role r) {
    switch (r) {
        case Role::Observer: return "observer";
        case Role::Standby: return "standby";
        case Role::Active: return "active";
    }
    return "unknown";
}

bool Decision::in_view(NodeId n) const {
    return std::find(view_.members.begin(), view_.members.end(), n) != view_.members.end();
}

std::optional<NodeId> Decision::best_ranked() const {
    std::optional<std::pair<std::uint32_t, NodeId>> best;
    for (NodeId n : view_.members) {
        const auto it = peers_.find(n);
        if (it == peers_.end() || !it->second.priority) return std::nullopt;  // ranks not agreed yet
        const std::pair<std::uint32_t, NodeId> rank{*it->second.priority, n};
        if (!best || rank < *best) best = rank;
    }
    if (!best) return std::nullopt;
    return best->second;
}

bool Decision::evidence_primary_down(MonoNs now) const {
    if (!own_down_ || !*own_down_ || now - own_verdict_at_ > config_.verdict_fresh) return false;
    for (const auto& [node, peer] : peers_) {
        if (node == config_.self || !peer.primary_down) continue;
        // A member whose own monitor still hears the primary vetoes the takeover.
        if (!*peer.primary_down && now - peer.verdict_at <= config_.verdict_fresh) return false;
    }
    return true;
}

void Decision::set_active(std::optional<NodeId> who, std::uint64_t epoch) {
    epoch_ = epoch;
    active_ = who;
    active_left_ = false;
    if (!view_.quorate) {
        role_ = Role::Observer;
    } else {
        role_ = active_ == config_.self ? Role::Active : Role::Standby;
    }
}

void Decision::step_down(Notice::Kind why) {
    if (role_ != Role::Active) return;
    notice(why, config_.self, epoch_);
    role_ = view_.quorate ? Role::Standby : Role::Observer;
}

void Decision::on_view(const View& view, MonoNs now) {
    view_ = view;
    for (auto it = peers_.begin(); it != peers_.end();) it = in_view(it->first) ? std::next(it) : peers_.erase(it);
    for (NodeId n : view_.members) peers_[n];
    peers_[config_.self].priority = config_.priority;
    claim_pending_ = false;
    if (active_ && !in_view(*active_)) {
        notice(Notice::Kind::ActiveLeft, *active_, epoch_);
        active_.reset();
        active_left_ = epoch_ > 0;
    }
    if (!view_.quorate) {
        // Whatever the other side does, this one may not act.
        if (role_ == Role::Active) notice(Notice::Kind::LostQuorum, config_.self, epoch_);
        role_ = Role::Observer;
        active_.reset();
    } else {
        role_ = active_ == config_.self ? Role::Active : Role::Standby;
    }
    outgoing_.push_back({.kind = MessageKind::Hello, .from = config_.self, .priority = config_.priority,
                         .epoch = epoch_, .active = active_});
    evaluate(now);
}

void Decision::on_message(const Message& m, MonoNs now) {
    if (!in_view(m.from)) return;  // not a member of this view: nothing it says counts
    switch (m.kind) {
        case MessageKind::Hello: {
            peers_[m.from].priority = m.priority;
            const std::optional<NodeId> said = m.active && in_view(*m.active) ? m.active : std::nullopt;
            if (m.epoch > epoch_) {
                step_down(Notice::Kind::Superseded);
                set_active(said, m.epoch);
                active_left_ = !said;  // that epoch's active member is not here
            } else if (m.epoch == epoch_ && said && active_ && *said != *active_) {
                // Two actives for one epoch: both stand down, and the group
                // claims the next epoch afresh.
                notice(Notice::Kind::ConflictingActive, *said, epoch_);
                step_down(Notice::Kind::ConflictingActive);
                set_active(std::nullopt, epoch_);
                active_left_ = true;
            } else if (m.epoch == epoch_ && said && !active_) {
                set_active(said, epoch_);
            }
            break;
        }
        case MessageKind::Verdict: {
            Peer& p = peers_[m.from];
            p.primary_down = m.primary_down;
            p.verdict_at = now;
            break;
        }
        case MessageKind::Claim: {
            if (m.from == config_.self) claim_pending_ = false;
            if (m.epoch <= epoch_ || !view_.quorate || active_) {
                notice(Notice::Kind::StaleClaim, m.from, m.epoch);
                break;
            }
            set_active(m.from, m.epoch);
            if (m.from == config_.self) notice(Notice::Kind::BecameActive, config_.self, epoch_);
            break;
        }
    }
    evaluate(now);
}

void Decision::on_local_verdict(bool primary_down, MonoNs now) {
    own_down_ = primary_down;
    own_verdict_at_ = now;
    outgoing_.push_back({.kind = MessageKind::Verdict, .from = config_.self, .primary_down = primary_down});
    evaluate(now);
}

void Decision::tick(MonoNs now) { evaluate(now); }

void Decision::evaluate(MonoNs now) {
    if (role_ != Role::Standby || claim_pending_ || active_) return;
    if (best_ranked() != config_.self) return;
    if (!active_left_ && !evidence_primary_down(now)) return;
    outgoing_.push_back({.kind = MessageKind::Claim, .from = config_.self, .epoch = epoch_ + 1});
    claim_pending_ = true;
}

std::vector<Message> Decision::take_outgoing() { return std::exchange(outgoing_, {}); }
std::vector<Notice> Decision::take_notices() { return std::exchange(notices_, {}); }

}  // namespace migware::membership
