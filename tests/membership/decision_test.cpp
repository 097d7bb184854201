#include "membership/decision.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

namespace migware::membership {
namespace {

constexpr MonoNs kMs = monitor::kMillisecond;

/// A group layer with virtual synchrony, as Corosync CPG gives it: each
/// component (a set of members that can talk) sees the same views and the
/// same messages in one total order. Partitions split the group into
/// components; each gets its own views.
class Group {
public:
    void add(NodeId id, std::uint32_t priority) {
        nodes_.emplace(id, Decision(Config{.self = id, .priority = priority}));
    }
    Decision& operator[](NodeId id) { return nodes_.at(id); }
    /// The member's host dies: it sends and injects nothing more.
    void kill(NodeId id) {
        nodes_.erase(id);
        component_of_.erase(id);
        monitor_.erase(id);
        frozen_.erase(id);
    }
    /// Its Corosync stops (SIGSTOP): the member's process runs on, but
    /// nothing it sends is delivered and it receives nothing.
    void freeze(NodeId id) { frozen_.insert(id); }

    /// A new view for the members of `component`, then every message until quiet.
    void view(std::vector<NodeId> component, bool quorate) {
        std::sort(component.begin(), component.end());
        ++ring_;
        for (NodeId n : component) {
            component_of_[n] = component;
            nodes_.at(n).on_view({ring_, component, quorate}, now_);
        }
        pump();
    }
    /// Delivers what every member has queued, in one order per component,
    /// until nobody has anything left to say. `only`: deliver just that
    /// member's messages (the others are slow).
    void pump(std::optional<NodeId> only = std::nullopt) {
        for (int round = 0; round < 100; ++round) {
            bool any = false;
            for (auto& [id, d] : nodes_) {
                if (only && id != *only) continue;
                std::vector<Message> out = d.take_outgoing();
                if (frozen_.count(id)) continue;  // lost with the frozen Corosync
                for (const Message& m : out) {
                    any = true;
                    for (NodeId peer : component_of_[id])
                        if (!frozen_.count(peer)) nodes_.at(peer).on_message(m, now_);
                    check_one_actor();
                }
            }
            if (!any) return;
        }
        FAIL() << "the group never went quiet";
    }
    /// The member's monitor says this from now on (refreshed every step, as
    /// the daemon does every loop turn).
    void verdict(NodeId id, bool down) {
        monitor_[id] = down;
        nodes_.at(id).on_local_verdict(down, now_);
        pump();
    }
    /// The member's monitor says nothing more (its verdict ages).
    void silence(NodeId id) { monitor_.erase(id); }
    /// Time passes in 10 ms steps: heartbeats, leases, verdict refreshes.
    void advance(MonoNs d) {
        for (MonoNs end = now_ + d; now_ < end;) {
            now_ = std::min(end, now_ + 10 * kMs);
            for (auto& [id, n] : nodes_) {
                if (auto it = monitor_.find(id); it != monitor_.end()) n.on_local_verdict(it->second, now_);
                n.tick(now_);
            }
            pump();
            check_one_actor();
        }
    }
    /// Delivers a message as if `from` had sent it (a slow member's old claim).
    void inject(const Message& m) {
        for (NodeId peer : component_of_[m.from]) nodes_.at(peer).on_message(m, now_);
        pump();
    }
    std::vector<NodeId> actors() const {
        std::vector<NodeId> out;
        for (const auto& [id, d] : nodes_)
            if (d.may_act(now_)) out.push_back(id);
        return out;
    }
    std::vector<Notice::Kind> notices(NodeId id) {
        std::vector<Notice::Kind> out;
        for (const Notice& n : nodes_.at(id).take_notices()) out.push_back(n.kind);
        return out;
    }
    /// Never two members that may act, in the whole group; and epochs never go back.
    void check_one_actor() {
        EXPECT_LE(actors().size(), 1u) << "at " << now_ / kMs << " ms";
        for (const auto& [id, d] : nodes_) {
            EXPECT_GE(d.epoch(), last_epoch_[id]) << "node " << id;
            last_epoch_[id] = d.epoch();
        }
    }
    MonoNs now() const { return now_; }

private:
    std::map<NodeId, Decision> nodes_;
    std::map<NodeId, std::vector<NodeId>> component_of_;
    std::map<NodeId, std::uint64_t> last_epoch_;
    std::map<NodeId, bool> monitor_;
    std::set<NodeId> frozen_;
    std::uint64_t ring_ = 0;
    MonoNs now_ = 1'000 * kMs;
};

/// A (priority 0), B (1), C (2) in one quorate view.
Group three() {
    Group g;
    g.add(1, 0);
    g.add(2, 1);
    g.add(3, 2);
    g.view({1, 2, 3}, true);
    return g;
}

void primary_dies(Group& g, std::vector<NodeId> who) {
    for (NodeId n : who) g.verdict(n, true);
}

TEST(MembershipDecision, NobodyActsBeforeAnyEvidence) {
    Group g = three();
    EXPECT_TRUE(g.actors().empty());
    for (NodeId n : {1u, 2u, 3u}) {
        EXPECT_EQ(g[n].role(), Role::Standby);
        EXPECT_EQ(g[n].epoch(), 0u);
    }
}

TEST(MembershipDecision, TheBestRankedClaimsAndEveryMemberAgrees) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
    EXPECT_FALSE(g[1].by_succession());
    for (NodeId n : {1u, 2u, 3u}) {
        EXPECT_EQ(g[n].epoch(), 1u);
        EXPECT_EQ(g[n].active(), NodeId{1});
    }
    EXPECT_EQ(g.notices(1), (std::vector<Notice::Kind>{Notice::Kind::BecameActive}));
}

TEST(MembershipDecision, ALowerRankedMemberWithEvidenceWaitsForTheBestRanked) {
    Group g = three();
    primary_dies(g, {2, 3});
    EXPECT_TRUE(g.actors().empty());  // A has not seen it die: no claim from anyone
    primary_dies(g, {1});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
}

TEST(MembershipDecision, AMemberWhoseMonitorStillHearsThePrimaryVetoesUntilItsVerdictIsStale) {
    Group g = three();
    g.verdict(3, false);  // C still gets echo replies
    primary_dies(g, {1, 2});
    g.advance(2'000 * kMs);
    EXPECT_TRUE(g.actors().empty()) << "claimed against a member that hears the primary";
    g.silence(3);  // C's monitor says nothing more: its "up" ages out
    g.advance(1'000 * kMs);
    EXPECT_TRUE(g.actors().empty()) << "C's last heartbeat still carried a fresh verdict";
    g.advance(1'500 * kMs);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
}

TEST(MembershipDecision, AStaleOwnVerdictIsNoEvidence) {
    Group g = three();
    g.verdict(1, true);
    g.silence(1);
    g.advance(1'500 * kMs);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));  // it claimed at once, while fresh
    Group h = three();
    h.verdict(3, false);
    h.verdict(1, true);
    h.silence(3);
    h.silence(1);
    h.advance(3'000 * kMs);  // C's veto and A's evidence both age out: no claim on old news
    EXPECT_TRUE(h.actors().empty());
}

TEST(MembershipDecision, JoinAMemberThatJoinsLearnsTheEpochAndStaysStandby) {
    Group g;
    g.add(1, 0);
    g.add(2, 1);
    g.view({1, 2}, true);
    primary_dies(g, {1, 2});
    g.add(3, 2);
    g.view({1, 2, 3}, true);
    EXPECT_EQ(g[3].role(), Role::Standby);
    EXPECT_EQ(g[3].epoch(), 1u);
    EXPECT_EQ(g[3].active(), NodeId{1});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
}

TEST(MembershipDecision, FailAStandbyThatLeavesChangesNothing) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    g.view({1, 2}, true);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
    EXPECT_EQ(g[2].epoch(), 1u);
}

TEST(MembershipDecision, SlowMemberNoClaimUntilEveryRankIsKnown) {
    Group g;
    g.add(1, 0);
    g.add(2, 1);
    g[1].on_view({1, {1, 2}, true}, 0);
    g[2].on_view({1, {1, 2}, true}, 0);
    // B is slow: its Hello is not delivered yet, so nobody knows its rank.
    g[2].take_outgoing();
    g[1].on_local_verdict(true, 0);
    for (const Message& m : g[1].take_outgoing()) {
        g[1].on_message(m, 0);
        g[2].on_message(m, 0);
    }
    EXPECT_FALSE(g[1].may_act(0));
    EXPECT_TRUE(g[1].take_outgoing().empty()) << "claimed before B's rank was known";
    // B's Hello arrives: A is best-ranked, and claims.
    const Message hello{.kind = MessageKind::Hello, .from = 2, .priority = 1};
    g[1].on_message(hello, 0);
    g[2].on_message(hello, 0);
    const auto out = g[1].take_outgoing();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, MessageKind::Claim);
    EXPECT_EQ(out[0].epoch, 1u);
}

TEST(MembershipDecision, FailureDuringAJoinConvergesOnOneActive) {
    Group g = three();
    g.add(4, 3);
    g.verdict(1, true);
    // D joins and, before the group settles, B fails.
    for (NodeId n : {1u, 2u, 3u, 4u}) g[n].on_view({10, {1, 2, 3, 4}, true}, 0);
    g.view({1, 3, 4}, true);
    primary_dies(g, {1, 3, 4});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
    for (NodeId n : {1u, 3u, 4u}) EXPECT_EQ(g[n].epoch(), 1u);
}

TEST(MembershipDecision, TwoGroupsOnlyTheQuorateSideActsAndTheMergeKeepsItsChoice) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    ASSERT_EQ(g.actors(), (std::vector<NodeId>{1}));
    // A is cut off: its side is not quorate, the other side is.
    g.view({1}, false);
    g.view({2, 3}, true);
    EXPECT_EQ(g[1].role(), Role::Observer);
    EXPECT_EQ(g.notices(1), (std::vector<Notice::Kind>{Notice::Kind::BecameActive, Notice::Kind::LostQuorum}));
    EXPECT_TRUE(g.actors().empty()) << "succession before A's lease ran out";
    g.advance(400 * kMs);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{2}));  // succession: B, the best-ranked left
    EXPECT_EQ(g[2].epoch(), 2u);
    // The link returns: A learns epoch 2 and stays standby (non-preemptive).
    g.view({1, 2, 3}, true);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{2}));
    EXPECT_EQ(g[1].role(), Role::Standby);
    EXPECT_EQ(g[1].epoch(), 2u);
}

TEST(MembershipDecision, ThreeWayPartitionNobodyIsQuorateNobodyActs) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    g.view({1}, false);
    g.view({2}, false);
    g.view({3}, false);
    EXPECT_TRUE(g.actors().empty());
    primary_dies(g, {2, 3});
    EXPECT_TRUE(g.actors().empty());
}

TEST(MembershipDecision, CoordinatorFailureTheNextRankedTakesOverAtTheNextEpoch) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    // The active backup dies. The others' monitors had been answered by it
    // (echo for the primary's IP), so they hold no fresh "down": succession
    // needs none.
    g.verdict(2, false);
    g.verdict(3, false);
    g.kill(1);
    g.view({2, 3}, true);
    EXPECT_TRUE(g.actors().empty());
    g.advance(400 * kMs);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{2}));
    EXPECT_EQ(g[3].active(), NodeId{2});
    EXPECT_EQ(g[3].epoch(), 2u);
    EXPECT_TRUE(g[2].by_succession());
    EXPECT_EQ(g.notices(3), (std::vector<Notice::Kind>{Notice::Kind::ActiveLeft}));
}

TEST(MembershipDecision, NoSuccessionBeforeAnyTakeover) {
    Group g = three();
    g.view({2, 3}, true);  // A leaves while nobody is active
    EXPECT_TRUE(g.actors().empty());
}

TEST(MembershipDecision, AClaimForAStaleEpochIsIgnoredEverywhere) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    g.inject({.kind = MessageKind::Claim, .from = 3, .epoch = 1});
    g.inject({.kind = MessageKind::Claim, .from = 2, .epoch = 0});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
    for (NodeId n : {1u, 2u, 3u}) {
        EXPECT_EQ(g[n].epoch(), 1u);
        auto k = g.notices(n);
        EXPECT_EQ(std::count(k.begin(), k.end(), Notice::Kind::StaleClaim), 2) << "node " << n;
    }
}

TEST(MembershipDecision, AClaimWhileAMemberIsActiveIsIgnoredEvenAtAHigherEpoch) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    g.inject({.kind = MessageKind::Claim, .from = 3, .epoch = 7});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
    EXPECT_EQ(g[2].epoch(), 1u);
}

TEST(MembershipDecision, LossOfQuorumWhileActiveStopsAtOnce) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    g.view({1, 2, 3}, false);  // e.g. the witness's vote is gone
    EXPECT_TRUE(g.actors().empty());
    for (NodeId n : {1u, 2u, 3u}) EXPECT_EQ(g[n].role(), Role::Observer);
    primary_dies(g, {1, 2, 3});
    EXPECT_TRUE(g.actors().empty());
    g.view({1, 2, 3}, true);  // quorum back: the best-ranked claims the next epoch
    primary_dies(g, {1});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
    EXPECT_EQ(g[3].epoch(), 2u);
}

TEST(MembershipDecision, NonPreemptiveABetterRankedMemberThatReturnsStaysStandby) {
    Group g;
    g.add(2, 1);
    g.add(3, 2);
    g.view({2, 3}, true);
    primary_dies(g, {2, 3});
    ASSERT_EQ(g.actors(), (std::vector<NodeId>{2}));
    g.add(1, 0);  // the most preferred backup comes up
    g.view({1, 2, 3}, true);
    primary_dies(g, {1});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{2}));
    EXPECT_EQ(g[1].role(), Role::Standby);
    EXPECT_EQ(g[1].active(), NodeId{2});
}

TEST(MembershipDecision, TiesInPriorityAreBrokenByNodeId) {
    Group g;
    g.add(7, 5);
    g.add(4, 5);
    g.view({4, 7}, true);
    primary_dies(g, {4, 7});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{4}));
}

TEST(MembershipDecision, MessagesFromOutsideTheViewCountForNothing) {
    Group g = three();
    g.view({1, 2}, true);
    g[1].on_message({.kind = MessageKind::Claim, .from = 3, .epoch = 1}, 0);
    EXPECT_FALSE(g[1].active());
    EXPECT_EQ(g[1].epoch(), 0u);
}

TEST(MembershipDecision, AnActiveMemberWhoseCorosyncStopsStopsActingBeforeItsSuccessorStarts) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    ASSERT_EQ(g.actors(), (std::vector<NodeId>{1}));
    g.advance(200 * kMs);
    ASSERT_EQ(g.actors(), (std::vector<NodeId>{1}));
    // A's Corosync is paused: its heartbeats stop coming back. Its process
    // hears of no view change at all.
    g.freeze(1);
    g.advance(350 * kMs);  // token timeout plus consensus, roughly
    EXPECT_TRUE(g[1].suspended(g.now())) << "A still acts on a lease that is not renewed";
    EXPECT_EQ(g[1].role(), Role::Active);
    g.view({2, 3}, true);
    g.advance(500 * kMs);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{2}));  // and check_one_actor held at every step
    EXPECT_EQ(g[2].epoch(), 2u);
}

TEST(MembershipDecision, SuccessionWaitsForTheDepartedMembersLease) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    g.advance(100 * kMs);
    g.freeze(1);  // the last heartbeat B heard from A is from now
    g.view({2, 3}, true);  // an instant view change: succession must still wait
    g.advance(300 * kMs);
    EXPECT_TRUE(g.actors().empty()) << "B claimed while A's lease could still run";
    g.advance(100 * kMs);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{2}));
}

TEST(MembershipDecision, ALeaseRenewedByHeartbeatsKeepsTheActiveMemberActing) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    g.advance(5'000 * kMs);
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{1}));
    EXPECT_EQ(g[1].epoch(), 1u);
}

TEST(MembershipDecision, AReleasedEpochLeavesNobodyActiveUntilFreshEvidence) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    ASSERT_EQ(g.actors(), (std::vector<NodeId>{1}));
    // The takeover is rolled back (the primary never died) and the monitors hear it again.
    for (NodeId n : {1u, 2u, 3u}) g.verdict(n, false);
    g[1].release(g.now());
    g.pump();
    EXPECT_TRUE(g.actors().empty());
    for (NodeId n : {1u, 2u, 3u}) {
        EXPECT_EQ(g[n].role(), Role::Standby);
        EXPECT_FALSE(g[n].active());
    }
    EXPECT_EQ(g.notices(2), (std::vector<Notice::Kind>{Notice::Kind::Released}));
    // No succession after a release: the member left is no reason to act.
    g.kill(1);
    g.view({2, 3}, true);
    g.advance(1'000 * kMs);
    EXPECT_TRUE(g.actors().empty());
    primary_dies(g, {2, 3});
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{2}));
    EXPECT_EQ(g[3].epoch(), 2u);
}

TEST(MembershipDecision, AJoinerLearnsThatASuccessionIsPending) {
    Group g;
    g.add(1, 0);
    g.add(2, 1);
    g.view({1, 2}, true);
    primary_dies(g, {1, 2});
    g.kill(1);
    g.view({2}, true);  // B alone but quorate (a witness's vote, say); succession pending
    g.add(3, 0);        // a better-ranked member joins during the wait
    g.view({2, 3}, true);
    g.advance(500 * kMs);
    // C is best-ranked and learnt from B's Hello that epoch 1's active left:
    // it succeeds, exactly one of them acts.
    EXPECT_EQ(g.actors(), (std::vector<NodeId>{3}));
    EXPECT_EQ(g[2].epoch(), 2u);
}

TEST(MembershipDecision, FactsAreDeliveredInStreamOrderAndTheTableGoesToJoiners) {
    Group g;
    g.add(1, 0);
    g.add(2, 1);
    g.view({1, 2}, true);
    EXPECT_FALSE(g[1].take_table_wanted());  // first view: nobody was here before
    g[2].take_facts();
    g.inject({.kind = MessageKind::Facts, .from = 1, .facts = "one"});
    g.inject({.kind = MessageKind::Facts, .from = 2, .facts = "two"});
    EXPECT_EQ(g[1].take_facts(), (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(g[2].take_facts(), (std::vector<std::string>{"one", "two"}));
    g.add(3, 2);
    g.view({1, 2, 3}, true);
    EXPECT_TRUE(g[1].take_table_wanted());   // best-ranked of those already here
    EXPECT_FALSE(g[2].take_table_wanted());
    EXPECT_FALSE(g[3].take_table_wanted());  // the joiner itself
}

TEST(MembershipDecision, AMemberWhoseMonitorDisagreesWithTheOthersNeverClaimsAlone) {
    // The best-ranked member's own monitor hears the primary; the others
    // say it is dead. Only the best-ranked may claim, and its own evidence is
    // required: nobody acts.
    Group g = three();
    g.verdict(1, false);
    primary_dies(g, {2, 3});
    g.advance(3'000 * kMs);
    EXPECT_TRUE(g.actors().empty());
}

TEST(MembershipDecision, AClaimSentInAnEarlierViewIsStaleEverywhere) {
    // A member whose Corosync was paused sent its claim in the old view; it
    // is delivered in the next one. Nobody takes it.
    Group g = three();
    const std::uint64_t old_ring = g[1].view().ring_id;
    g.view({1, 2, 3}, true);
    g.inject({.kind = MessageKind::Claim, .from = 1, .epoch = 1, .ring = old_ring});
    EXPECT_TRUE(g.actors().empty());
    for (NodeId n : {1u, 2u, 3u}) {
        EXPECT_EQ(g[n].epoch(), 0u);
        auto k = g.notices(n);
        EXPECT_EQ(std::count(k.begin(), k.end(), Notice::Kind::StaleClaim), 1) << "node " << n;
    }
}

TEST(MembershipDecision, OnlyAHeartbeatSentInTheCurrentViewRenewsTheLease) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    ASSERT_EQ(g.actors(), (std::vector<NodeId>{1}));
    const std::uint64_t ring = g[1].view().ring_id;
    g.freeze(1);
    g.advance(400 * kMs);
    ASSERT_TRUE(g[1].suspended(g.now()));
    // What a paused Corosync delivers late, from an earlier view: no renewal.
    g[1].on_message({.kind = MessageKind::Heartbeat, .from = 1, .sent_at = g.now(), .ring = ring - 1}, g.now());
    EXPECT_TRUE(g[1].suspended(g.now()));
    g[1].on_message({.kind = MessageKind::Heartbeat, .from = 1, .sent_at = g.now(), .ring = ring}, g.now());
    EXPECT_FALSE(g[1].suspended(g.now()));
}

TEST(MembershipDecision, AfterAViewChangeTheActiveMemberHoldsUntilEveryMemberSaidHello) {
    Group g = three();
    primary_dies(g, {1, 2, 3});
    ASSERT_EQ(g.actors(), (std::vector<NodeId>{1}));
    g.add(4, 3);
    for (NodeId n : {1u, 2u, 3u, 4u}) g[n].on_view({99, {1, 2, 3, 4}, true}, g.now());
    EXPECT_FALSE(g[1].may_act(g.now())) << "acted before the joiner's Hello could say a higher epoch exists";
    EXPECT_EQ(g[1].role(), Role::Active);
}

}  // namespace
}  // namespace migware::membership
