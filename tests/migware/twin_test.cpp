#include "migware/twin.hpp"
#include "migware/twin_table.hpp"

#include <gtest/gtest.h>

#include <array>

namespace migware {
namespace {

constexpr std::array kPhases{TwinPhase::Waiting, TwinPhase::SynSent, TwinPhase::Up, TwinPhase::Closed,
                             TwinPhase::Failed};
constexpr std::array kEvents{TwinEvent::SynSent, TwinEvent::Established, TwinEvent::Failed,
                             TwinEvent::Closed};

std::optional<TwinPhase> expected(TwinPhase from, TwinEvent e) {
    using P = TwinPhase;
    using E = TwinEvent;
    if (from == P::Waiting && e == E::SynSent) return P::SynSent;
    if (from == P::SynSent && e == E::Established) return P::Up;
    if ((from == P::Waiting || from == P::SynSent) && e == E::Failed) return P::Failed;
    if (from == P::Up && e == E::Closed) return P::Closed;
    return std::nullopt;
}

TEST(TwinPhase, EveryPhaseAndEventPairMovesOnlyAlongTheLifecycle) {
    int moves = 0;
    for (TwinPhase from : kPhases) {
        for (TwinEvent e : kEvents) {
            SCOPED_TRACE(std::string(name_of(from)) + " + " + std::string(name_of(e)));
            EXPECT_EQ(next_phase(from, e), expected(from, e));
            if (next_phase(from, e)) ++moves;
        }
    }
    EXPECT_EQ(moves, 5);
}

TEST(TwinPhase, FailedAndClosedAreTerminal) {
    for (TwinEvent e : kEvents) {
        EXPECT_FALSE(next_phase(TwinPhase::Failed, e));
        EXPECT_FALSE(next_phase(TwinPhase::Closed, e));
    }
}

Twin twin_for(std::uint16_t client_port, std::uint16_t q, bool direct) {
    Twin t;
    t.key = {{sniffer::Ipv4Addr{0xc6120001}, sniffer::Port{client_port}},
             {sniffer::Ipv4Addr{0xc6120002}, sniffer::Port{80}}};
    t.twin_src = {sniffer::Ipv4Addr{0xc6120002}, sniffer::Port{q}};
    t.direct = direct;
    t.phase = TwinPhase::Up;
    return t;
}

TEST(TwinTable, PortsAreTheClientsUnlessTaken) {
    TwinTable table;
    EXPECT_EQ(table.free_port(5000), 5000);
    table.add(twin_for(5000, 5000, false), false);
    EXPECT_EQ(table.free_port(5000), 5001);
    EXPECT_EQ(table.free_port(0), 1);  // never port 0
    ASSERT_NE(table.by_port(5000), nullptr);
    EXPECT_EQ(table.by_port(5001), nullptr);
}

TEST(TwinTable, ClosedTwinsLingerThenTheirMappingGoesAndDirectSlotsAreReused) {
    TwinTable table;
    const auto a = table.add(twin_for(1000, 1000, true), true);
    const auto b = table.add(twin_for(2000, 2000, false), true);
    ASSERT_TRUE(a.appended && b.appended);
    table[a.index].phase = TwinPhase::Closed;
    table[b.index].phase = TwinPhase::Closed;
    table.linger(a.index, 100);
    table.linger(b.index, 150);
    EXPECT_EQ(table.next_release(1000), 1100);
    table.release_expired(1099, 1000);
    EXPECT_NE(table.find(table[a.index].key), nullptr);
    table.release_expired(1100, 1000);
    EXPECT_EQ(table.find(table[a.index].key), nullptr);
    EXPECT_EQ(table.by_port(1000), nullptr);
    EXPECT_NE(table.find(table[b.index].key), nullptr);
    EXPECT_EQ(table.next_release(1000), 1150);
    table.release_expired(1150, 1000);
    EXPECT_FALSE(table.next_release(1000));
    // The direct twin's slot is reused; the recovered one's is kept for the record.
    const auto c = table.add(twin_for(3000, 3000, true), true);
    EXPECT_FALSE(c.appended);
    EXPECT_EQ(c.index, a.index);
    const auto d = table.add(twin_for(4000, 4000, true), true);
    EXPECT_TRUE(d.appended);
    EXPECT_EQ(table.size(), 3u);
}

TEST(TwinTable, UnlinkDropsBothIndexes) {
    TwinTable table;
    const Twin t = twin_for(1000, 1234, true);
    table.add(t, false);
    table.unlink(t.key);
    EXPECT_EQ(table.find(t.key), nullptr);
    EXPECT_EQ(table.by_port(1234), nullptr);
    EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace migware
