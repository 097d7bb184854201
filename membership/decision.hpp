#pragma once
// The membership decision core (issue 12): which member, if any, may act for
// the primary's IP.
//
// Pure, like monitor/: no I/O, time passed in. Its inputs are what a group
// communication layer with virtual synchrony delivers (Corosync CPG: every
// member sees the same views and the same totally ordered messages, at the
// same point in the stream), plus this member's own monitor verdict. Its
// outputs are a role with an epoch, the messages to multicast, and notices
// for the event log. Every member runs the same core over the same stream,
// so they agree who is active without a protocol of ours.
//
// The rules (../shared/DESIGN.md §6, seeds 000/002/003):
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
// - The lease: an active member may inject only while its own heartbeat,
//   sent at most `lease` ago, has come back through the ordered stream. A
//   member cut off from the group, or whose Corosync is paused, stops
//   injecting within `lease` of its last delivered heartbeat, whatever the
//   group layer tells it later.
// - Succession: once a takeover happened (epoch > 0), an active member that
//   leaves the quorate view is replaced by the best-ranked remaining member,
//   without waiting for its own monitor (whose probes the departed active
//   member had been answering for the primary's IP); but not before the
//   departed member's lease has run out: `lease` + `succession_margin` after
//   the last message heard from it.
// - Hand-off: an active member whose takeover was rolled back (the primary
//   never died) releases its epoch; nobody is active until fresh evidence.
// - Views: a claim counts only in the view it was sent in, and only a
//   heartbeat sent in the current view renews a lease (Corosync delivers
//   what a paused member queued in whatever view comes next). After every
//   view change an active member holds its frames until every member of the
//   new view has said Hello: a merge tells it first whether a higher epoch
//   exists.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
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
    Hello,      // after every view change: priority, and the epoch and active member it knows
    Heartbeat,  // periodic: its monitor's verdict on the primary; renews the sender's lease
    Claim,      // takeover for `epoch`
    Release,    // the active member's takeover for `epoch` was rolled back: the primary lives
    Facts,      // handshake facts (opaque to the core: delivered in order to the daemon)
};
std::string_view name_of(MessageKind k);

struct Message {
    MessageKind kind = MessageKind::Hello;
    NodeId from = 0;                     // set by the group layer on delivery, never trusted from the payload
    std::uint32_t priority = 0;          // Hello
    std::uint64_t epoch = 0;             // Hello, Claim, Release
    std::optional<NodeId> active;        // Hello
    bool active_left = false;            // Hello: `epoch`'s active member left; succession pending
    std::optional<bool> primary_down;    // Heartbeat: its monitor's fresh verdict, if it has one
    MonoNs sent_at = 0;                  // Heartbeat, Claim: the sender's clock (its own lease only)
    std::uint64_t ring = 0;              // Heartbeat, Claim: the view the sender was in when it sent it
    std::string facts;                   // Facts
    bool operator==(const Message&) const = default;
};

/// What happened, for the event log.
struct Notice {
    enum class Kind : std::uint8_t {
        BecameActive,       // our claim was delivered first
        LostQuorum,         // we were active and the view is no longer quorate: stopped
        Superseded,         // we were active and a higher epoch exists: stopped
        ActiveLeft,         // the active member left the view
        StaleClaim,         // a claim for an epoch not above the group's, or while one is active: ignored
        ConflictingActive,  // two actives for one epoch after a merge: both stand down
        Released,           // the active member handed its epoch back (the primary lives)
    };
    Kind kind;
    NodeId node = 0;
    std::uint64_t epoch = 0;
};
std::string_view name_of(Notice::Kind k);

struct Config {
    NodeId self = 0;
    std::uint32_t priority = 0;  // 0 is the most preferred
    /// A peer's verdict older than this is no evidence either way; so is our own.
    MonoNs verdict_fresh = 1'000 * monitor::kMillisecond;
    /// 0: no lease (standalone: a group of one, whose stream is itself).
    MonoNs lease = 300 * monitor::kMillisecond;
    MonoNs heartbeat_every = 50 * monitor::kMillisecond;
    MonoNs succession_margin = 50 * monitor::kMillisecond;
};

class Decision {
public:
    explicit Decision(Config config) : config_(config) {}

    void on_view(const View& view, MonoNs now);
    void on_message(const Message& m, MonoNs now);
    /// This member's own monitor, as often as the caller likes. A change is
    /// multicast at once; the current verdict rides every heartbeat.
    void on_local_verdict(bool primary_down, MonoNs now);
    /// This member's takeover was rolled back (the primary never died).
    void release(MonoNs now);
    /// Heartbeats, and whether to claim (verdicts age, leases run out).
    void tick(MonoNs now);
    MonoNs next_deadline() const;

    Role role() const { return role_; }
    std::uint64_t epoch() const { return epoch_; }
    std::optional<NodeId> active() const { return active_; }
    /// This member became active by succession (the active member left),
    /// not on its own evidence that the primary died.
    bool by_succession() const { return role_ == Role::Active && active_by_succession_; }
    bool quorate() const { return view_.quorate; }
    const View& view() const { return view_; }
    const Config& config() const { return config_; }
    /// True only while this member may inject frames for the primary's IP:
    /// active, and within its lease.
    bool may_act(MonoNs now) const {
        return role_ == Role::Active && hellos_.size() >= view_.members.size() &&
               (config_.lease == 0 || now < lease_until_);
    }
    /// Active, but the lease ran out: hold every frame until it is renewed.
    bool suspended(MonoNs now) const { return role_ == Role::Active && !may_act(now); }
    /// A member's rank and latest verdict, for status views.
    struct MemberView {
        NodeId node;
        std::optional<std::uint32_t> priority;
        std::optional<bool> primary_down;
        MonoNs heard_at;
    };
    std::vector<MemberView> members() const;

    std::vector<Message> take_outgoing();
    std::vector<Notice> take_notices();
    /// Handshake-fact payloads, in stream order, from members of the view.
    std::vector<std::string> take_facts();
    /// True once after a view in which members joined, on the one surviving
    /// member that should send them the table (the best-ranked of those that
    /// were already here).
    bool take_table_wanted() { return std::exchange(table_wanted_, false); }

private:
    struct Peer {
        std::optional<std::uint32_t> priority;
        std::optional<bool> primary_down;
        MonoNs verdict_at = 0;
        MonoNs heard_at = 0;
    };
    bool in_view(NodeId n) const;
    /// The best-ranked member of `among`, if every one's priority is known.
    std::optional<NodeId> best_ranked(const std::vector<NodeId>& among) const;
    bool evidence_primary_down(MonoNs now) const;
    void heartbeat(MonoNs now);
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
    bool claim_is_succession_ = false;
    bool active_by_succession_ = false;
    bool active_left_ = false;     // the active member of the current epoch left: succession
    MonoNs succession_at_ = 0;     // ... not before its lease has run out
    MonoNs lease_until_ = 0;
    MonoNs next_heartbeat_ = 0;
    std::optional<bool> own_down_;
    MonoNs own_verdict_at_ = 0;
    bool table_wanted_ = false;
    std::map<NodeId, Peer> peers_;  // by node id: members of the view only
    std::set<NodeId> hellos_;       // members whose Hello arrived in this view
    std::vector<Message> outgoing_;
    std::vector<Notice> notices_;
    std::vector<std::string> facts_;
};

}  // namespace migware::membership
