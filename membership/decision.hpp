#pragma once
// The membership decision core (issue 12, first part; UNFINISHED: no
// provider yet, nothing in the daemon uses it). Which member, if any, may act
// for the primary's IP.
//
// Pure, like monitor/: no I/O, time passed in. Its inputs are what a group
// communication layer with virtual synchrony delivers (Corosync CPG: every
// member sees the same views and the same totally ordered messages, at the
// same point in the stream), plus this member's own monitor verdicts. Its
// outputs are a role with an epoch, the messages to multicast, and notices
// for the event log. Every member runs the same core over the same stream,
// so they agree who is active without a protocol of ours.
//
// The rules (../shared/DESIGN.md §6, seeds 000/002):
// - Only a member of a quorate view may be active; one that loses quorum
//   while active stops at once (Observer).
// - Rank is (priority, node id), lowest first. Only the best-ranked member
//   of a quorate view claims, only when no member is active, and only with
//   fresh evidence that the primary is down: its own verdict, and no member
//   of the view whose latest fresh verdict says the primary answers.
// - A claim names an epoch one above the highest this member knows. The
//   first claim delivered for an epoch above the group's wins; any other is
//   stale, everywhere alike. Epochs never go backwards.
// - Non-preemptive (seed 002): while a member is active, nobody claims,
//   whatever its rank.
// - Succession: once a takeover happened (epoch > 0), an active member that
//   leaves the quorate view is replaced by the best-ranked remaining member,
//   which claims the next epoch without waiting for its own monitor (whose
//   probes the departed active member had been answering for the primary's
//   IP).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "monitor/clock.hpp"

namespace migware::membership {

using monitor::MonoNs;
using NodeId = std::uint32_t;

enum class Role : std::uint8_t { Observer, Standby, Active };
std::string_view name_of(Role r);

/// A configuration change, as the group layer delivers it.
struct View {
    std::uint64_t ring_id = 0;
    std::vector<NodeId> members;
    bool quorate = false;
};

enum class MessageKind : std::uint8_t {
    Hello,    // after every view change: priority, and the epoch and active member it knows
    Verdict,  // its monitor's latest verdict on the primary
    Claim,    // takeover for `epoch`
};

struct Message {
    MessageKind kind = MessageKind::Hello;
    NodeId from = 0;
    std::uint32_t priority = 0;          // Hello
    std::uint64_t epoch = 0;             // Hello, Claim
    std::optional<NodeId> active;        // Hello
    bool primary_down = false;           // Verdict
    bool operator==(const Message&) const = default;
};

/// What happened, for the event log.
struct Notice {
    enum class Kind : std::uint8_t {
        BecameActive,      // our claim was delivered first
        LostQuorum,        // we were active and the view is no longer quorate: stopped
        Superseded,        // we were active and a higher epoch exists: stopped
        ActiveLeft,        // the active member left the view
        StaleClaim,        // a claim for an epoch not above the group's: ignored
        ConflictingActive, // two actives for one epoch after a merge: both stand down
    };
    Kind kind;
    NodeId node = 0;
    std::uint64_t epoch = 0;
};

struct Config {
    NodeId self = 0;
    std::uint32_t priority = 0;  // 0 is the most preferred
    /// A verdict older than this is no evidence either way.
    MonoNs verdict_fresh = 1'000 * monitor::kMillisecond;
};

class Decision {
public:
    explicit Decision(Config config) : config_(config) {}

    void on_view(const View& view, MonoNs now);
    void on_message(const Message& m, MonoNs now);
    /// This member's own monitor: kept, and multicast as a Verdict.
    void on_local_verdict(bool primary_down, MonoNs now);
    /// Re-evaluates whether to claim (verdicts age).
    void tick(MonoNs now);

    Role role() const { return role_; }
    std::uint64_t epoch() const { return epoch_; }
    std::optional<NodeId> active() const { return active_; }
    bool quorate() const { return view_.quorate; }
    const View& view() const { return view_; }
    /// True only while this member may inject frames for the primary's IP.
    bool may_act() const { return role_ == Role::Active; }

    std::vector<Message> take_outgoing();
    std::vector<Notice> take_notices();

private:
    struct Peer {
        std::optional<std::uint32_t> priority;
        std::optional<bool> primary_down;
        MonoNs verdict_at = 0;
    };
    bool in_view(NodeId n) const;
    /// The best-ranked member of the view, if every member's priority is known.
    std::optional<NodeId> best_ranked() const;
    bool evidence_primary_down(MonoNs now) const;
    void evaluate(MonoNs now);
    void set_active(std::optional<NodeId> who, std::uint64_t epoch);
    void step_down(Notice::Kind why);
    void notice(Notice::Kind k, NodeId node, std::uint64_t epoch) { notices_.push_back({k, node, epoch}); }

    Config config_;
    View view_;
    Role role_ = Role::Observer;
    std::uint64_t epoch_ = 0;
    std::optional<NodeId> active_;
    bool claim_pending_ = false;
    bool active_left_ = false;  // the active member of the current epoch left: succession
    std::optional<bool> own_down_;
    MonoNs own_verdict_at_ = 0;
    std::map<NodeId, Peer> peers_;  // by node id: members of the view only
    std::vector<Message> outgoing_;
    std::vector<Notice> notices_;
};

}  // namespace migware::membership
