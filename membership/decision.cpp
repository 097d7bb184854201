#include "membership/decision.hpp"

#include <algorithm>
#include <limits>
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

std::string_view name_of(MessageKind k) {
    switch (k) {
        case MessageKind::Hello: return "hello";
        case MessageKind::Heartbeat: return "heartbeat";
        case MessageKind::Claim: return "claim";
        case MessageKind::Release: return "release";
        case MessageKind::Facts: return "facts";
    }
    return "unknown";
}

std::string_view name_of(Notice::Kind k) {
    switch (k) {
        case Notice::Kind::BecameActive: return "became_active";
        case Notice::Kind::LostQuorum: return "lost_quorum";
        case Notice::Kind::Superseded: return "superseded";
        case Notice::Kind::ActiveLeft: return "active_left";
        case Notice::Kind::StaleClaim: return "stale_claim";
        case Notice::Kind::ConflictingActive: return "conflicting_active";
        case Notice::Kind::Released: return "released";
    }
    return "unknown";
}

bool Decision::in_view(NodeId n) const {
    return std::find(view_.members.begin(), view_.members.end(), n) != view_.members.end();
}

std::optional<NodeId> Decision::best_ranked(const std::vector<NodeId>& among) const {
    std::optional<std::pair<std::uint32_t, NodeId>> best;
    for (NodeId n : among) {
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
    const std::vector<NodeId> before = view_.members;
    if (active_ && *active_ != config_.self &&
        std::find(view.members.begin(), view.members.end(), *active_) == view.members.end()) {
        // Its lease runs from its last heartbeat, which reached us no later
        // than the last message we heard from it.
        const auto it = peers_.find(*active_);
        const MonoNs last = it != peers_.end() ? it->second.heard_at : now;
        succession_at_ = std::max(last, now - config_.lease) + config_.lease + config_.succession_margin;
    }
    view_ = view;
    for (auto it = peers_.begin(); it != peers_.end();) it = in_view(it->first) ? std::next(it) : peers_.erase(it);
    for (NodeId n : view_.members) peers_[n];
    peers_[config_.self].priority = config_.priority;
    claim_pending_ = false;
    hellos_.clear();

    std::vector<NodeId> stayed;
    bool joined = false;
    for (NodeId n : view_.members) {
        if (std::find(before.begin(), before.end(), n) != before.end()) stayed.push_back(n);
        else if (n != config_.self) joined = true;
    }
    if (joined && !stayed.empty() && best_ranked(stayed) == config_.self) table_wanted_ = true;

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
    if (!view_.members.empty()) {
        outgoing_.push_back({.kind = MessageKind::Hello, .priority = config_.priority, .epoch = epoch_,
                             .active = active_, .active_left = active_left_});
        heartbeat(now);
    }
    evaluate(now);
}

void Decision::on_message(const Message& m, MonoNs now) {
    if (!in_view(m.from)) return;  // not a member of this view: nothing it says counts
    Peer& from = peers_[m.from];
    from.heard_at = now;
    switch (m.kind) {
        case MessageKind::Hello: {
            from.priority = m.priority;
            hellos_.insert(m.from);
            const std::optional<NodeId> said = m.active && in_view(*m.active) ? m.active : std::nullopt;
            if (m.epoch > epoch_) {
                step_down(Notice::Kind::Superseded);
                set_active(said, m.epoch);
                // That epoch's active member is gone (it said so, or it is
                // not here): the next-ranked succeeds, once its lease is over.
                if (!said && (m.active_left || m.active)) {
                    active_left_ = true;
                    succession_at_ = now + config_.lease + config_.succession_margin;
                }
            } else if (m.epoch == epoch_ && said && active_ && *said != *active_) {
                // Two actives for one epoch: both stand down, and the group
                // claims the next epoch afresh.
                notice(Notice::Kind::ConflictingActive, *said, epoch_);
                step_down(Notice::Kind::ConflictingActive);
                set_active(std::nullopt, epoch_);
                active_left_ = true;
                succession_at_ = now + config_.lease + config_.succession_margin;
            } else if (m.epoch == epoch_ && said && !active_) {
                set_active(said, epoch_);
            } else if (m.epoch == epoch_ && !said && !active_ && m.active_left && epoch_ > 0 && !active_left_) {
                active_left_ = true;
                succession_at_ = now + config_.lease + config_.succession_margin;
            }
            break;
        }
        case MessageKind::Heartbeat: {
            from.primary_down = m.primary_down;
            from.verdict_at = now;
            if (m.from == config_.self && role_ == Role::Active && config_.lease > 0 && m.ring == view_.ring_id)
                lease_until_ = std::max(lease_until_, m.sent_at + config_.lease);
            break;
        }
        case MessageKind::Claim: {
            if (m.from == config_.self) claim_pending_ = false;
            if (m.epoch <= epoch_ || active_ || m.ring != view_.ring_id) {
                notice(Notice::Kind::StaleClaim, m.from, m.epoch);
                break;
            }
            set_active(m.from, m.epoch);
            if (m.from == config_.self) {
                active_by_succession_ = claim_is_succession_;
                lease_until_ = m.sent_at + config_.lease;
                notice(Notice::Kind::BecameActive, config_.self, epoch_);
            }
            break;
        }
        case MessageKind::Release: {
            if (!active_ || *active_ != m.from || m.epoch != epoch_) break;
            notice(Notice::Kind::Released, m.from, epoch_);
            set_active(std::nullopt, epoch_);
            break;
        }
        case MessageKind::Facts:
            facts_.push_back(m.facts);
            break;
    }
    evaluate(now);
}

void Decision::on_local_verdict(bool primary_down, MonoNs now) {
    const bool changed = own_down_ != primary_down;
    own_down_ = primary_down;
    own_verdict_at_ = now;
    if (changed && !view_.members.empty()) heartbeat(now);
    evaluate(now);
}

void Decision::release(MonoNs now) {
    if (role_ != Role::Active) return;
    outgoing_.push_back({.kind = MessageKind::Release, .epoch = epoch_, .sent_at = now});
}

void Decision::heartbeat(MonoNs now) {
    std::optional<bool> verdict;
    if (own_down_ && now - own_verdict_at_ <= config_.verdict_fresh) verdict = own_down_;
    outgoing_.push_back(
        {.kind = MessageKind::Heartbeat, .primary_down = verdict, .sent_at = now, .ring = view_.ring_id});
    next_heartbeat_ = now + config_.heartbeat_every;
}

void Decision::tick(MonoNs now) {
    if (!view_.members.empty() && now >= next_heartbeat_) heartbeat(now);
    evaluate(now);
}

MonoNs Decision::next_deadline() const {
    MonoNs at = view_.members.empty() ? std::numeric_limits<MonoNs>::max() : next_heartbeat_;
    if (active_left_ && !claim_pending_) at = std::min(at, succession_at_);
    if (role_ == Role::Active && config_.lease > 0) at = std::min(at, lease_until_);
    return at;
}

std::vector<Decision::MemberView> Decision::members() const {
    std::vector<MemberView> out;
    for (const auto& [node, p] : peers_) out.push_back({node, p.priority, p.primary_down, p.heard_at});
    return out;
}

void Decision::evaluate(MonoNs now) {
    if (role_ != Role::Standby || claim_pending_ || active_) return;
    if (best_ranked(view_.members) != config_.self) return;
    if (active_left_) {
        if (now < succession_at_) return;
    } else if (!evidence_primary_down(now)) {
        return;
    }
    outgoing_.push_back({.kind = MessageKind::Claim, .epoch = epoch_ + 1, .sent_at = now, .ring = view_.ring_id});
    claim_pending_ = true;
    claim_is_succession_ = active_left_;
}

std::vector<Message> Decision::take_outgoing() {
    std::vector<Message> out = std::exchange(outgoing_, {});
    for (Message& m : out) m.from = config_.self;
    return out;
}
std::vector<Notice> Decision::take_notices() { return std::exchange(notices_, {}); }
std::vector<std::string> Decision::take_facts() { return std::exchange(facts_, {}); }

}  // namespace migware::membership
