#include "membership/member.hpp"

#include <gtest/gtest.h>

namespace migware::membership {
namespace {

constexpr MonoNs kMs = monitor::kMillisecond;

Member standalone() {
    return Member(Config{.priority = 0, .lease = 0}, std::make_unique<StandaloneProvider>(1));
}

TEST(MembershipStandalone, AGroupOfOneIsQuorateAndStandbyUntilItsMonitorSaysDown) {
    Member m = standalone();
    m.tick(0);
    EXPECT_TRUE(m.core().quorate());
    EXPECT_EQ(m.core().role(), Role::Standby);
    EXPECT_FALSE(m.may_act(0));
    m.on_local_verdict(false, 10 * kMs);
    m.tick(10 * kMs);
    EXPECT_FALSE(m.may_act(10 * kMs));
}

TEST(MembershipStandalone, ADownVerdictMakesItActiveInTheSameTurnWithoutALease) {
    Member m = standalone();
    m.tick(0);
    m.on_local_verdict(true, 5 * kMs);
    m.tick(5 * kMs);
    EXPECT_TRUE(m.may_act(5 * kMs));
    EXPECT_EQ(m.core().epoch(), 1u);
    // No lease in a group of one: hours later it still acts.
    m.tick(3'600'000 * kMs);
    EXPECT_TRUE(m.may_act(3'600'000 * kMs));
    const auto notices = m.take_notices();
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_EQ(notices[0].kind, Notice::Kind::BecameActive);
}

TEST(MembershipStandalone, ReleaseAfterARollbackThenANewFailureIsTheNextEpoch) {
    Member m = standalone();
    m.tick(0);
    m.on_local_verdict(true, 1 * kMs);
    m.tick(1 * kMs);
    ASSERT_TRUE(m.may_act(1 * kMs));
    m.on_local_verdict(false, 2 * kMs);
    m.release(2 * kMs);
    m.tick(2 * kMs);
    EXPECT_FALSE(m.may_act(2 * kMs));
    EXPECT_EQ(m.core().role(), Role::Standby);
    m.on_local_verdict(true, 3 * kMs);
    m.tick(3 * kMs);
    EXPECT_TRUE(m.may_act(3 * kMs));
    EXPECT_EQ(m.core().epoch(), 2u);
}

}  // namespace
}  // namespace migware::membership
