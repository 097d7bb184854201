#include "monitor/service_probe.hpp"

#include <gtest/gtest.h>

namespace migware::monitor {
namespace {

constexpr MonoNs kMs = kMillisecond;

TEST(ServiceProbe, OneProbeAtATimeOnItsInterval) {
    ServiceProbe p({200 * kMs, 500 * kMs, 2});
    EXPECT_TRUE(p.due(0));
    p.started(0);
    EXPECT_FALSE(p.due(300 * kMs));  // still outstanding
    EXPECT_EQ(p.timeout_at(), 500 * kMs);
    p.finished(ProbeResult::Connected, 10 * kMs);
    EXPECT_FALSE(p.due(199 * kMs));
    EXPECT_TRUE(p.due(200 * kMs));
    EXPECT_EQ(p.sent(), 1u);
}

TEST(ServiceProbe, RefusedTwiceMeansServiceDownOnce) {
    ServiceProbe p({200 * kMs, 500 * kMs, 2});
    p.started(0);
    auto v = p.finished(ProbeResult::Connected, 1 * kMs);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->health, ServiceHealth::Up);
    p.started(200 * kMs);
    EXPECT_FALSE(p.finished(ProbeResult::Refused, 201 * kMs));  // one refusal is not enough
    p.started(400 * kMs);
    v = p.finished(ProbeResult::Refused, 401 * kMs);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->health, ServiceHealth::Down);
    EXPECT_NE(v->reason.find("2 consecutive"), std::string::npos);
    p.started(600 * kMs);
    EXPECT_FALSE(p.finished(ProbeResult::Refused, 601 * kMs));  // said once, not again
    EXPECT_EQ(p.refused(), 3u);
}

TEST(ServiceProbe, TimeoutsSayNothingAboutTheServiceAndBreakARefusalStreak) {
    ServiceProbe p({200 * kMs, 500 * kMs, 2});
    p.started(0);
    EXPECT_FALSE(p.finished(ProbeResult::Refused, 1 * kMs));
    p.started(200 * kMs);
    EXPECT_FALSE(p.finished(ProbeResult::TimedOut, 700 * kMs));  // host down is ICMP's call
    p.started(900 * kMs);
    EXPECT_FALSE(p.finished(ProbeResult::Refused, 901 * kMs));  // streak restarted
    EXPECT_EQ(p.health(), ServiceHealth::Unknown);
    EXPECT_EQ(p.timed_out(), 1u);
}

TEST(ServiceProbe, ComingBackIsReported) {
    ServiceProbe p({200 * kMs, 500 * kMs, 1});
    p.started(0);
    ASSERT_EQ(p.finished(ProbeResult::Refused, 1 * kMs)->health, ServiceHealth::Down);
    p.started(200 * kMs);
    auto v = p.finished(ProbeResult::Connected, 201 * kMs);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->health, ServiceHealth::Up);
}

}  // namespace
}  // namespace migware::monitor
