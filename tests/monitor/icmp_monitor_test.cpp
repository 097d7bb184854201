// IcmpMonitor with a fake clock and a fake "network": probes handed out by
// due() are answered (or not) by the test, replies are fed back through
// on_reply(), and tick() runs at next_deadline() the way the daemon's loop
// does. No sockets, no sleeping.

#include "monitor/icmp_monitor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "monitor/clock.hpp"

namespace migware::monitor {
namespace {

constexpr std::uint16_t kEchoId = 0x4d57;
constexpr MonoNs kMs = kMillisecond;

/// The cadence most tests below were written for (20 ms / 60 ms / 4 misses),
/// judged on echo alone. The segment-evidence rule has its own tests at the
/// end; `MonitorConfig{}` (the daemon's defaults) is used there.
MonitorConfig legacy() {
    MonitorConfig c;
    c.interval = 20 * kMs;
    c.timeout = 60 * kMs;
    c.misses = 4;
    c.require_segment_evidence = false;
    return c;
}

std::span<const std::byte> payload_of(const Probe& p) { return p.payload; }

/// Drives one monitor the way the daemon's loop does: wake at
/// next_deadline() (or when a scheduled reply arrives), send what is due,
/// deliver replies, tick.
class Harness {
public:
    explicit Harness(MonitorConfig config = legacy(), std::uint64_t seed = 7)
        : monitor(config, kEchoId, seed) {}

    IcmpMonitor monitor;
    FakeClock clock;
    std::vector<Probe> sent;
    std::vector<Verdict> verdicts;
    std::vector<MonoNs> verdict_times;
    bool alive = true;          // the primary answers echo requests
    bool arp_alive = true;      // ... and ARP requests (the second level)
    std::uint64_t arp_frames = 0;
    MonoNs rtt = 1 * kMs;       // how long a reply takes
    PassiveSignal passive;      // what the tracker would report
    std::optional<MonoNs> last_reply_at;
    bool segment_talks = false;  // other hosts send a frame every loop turn
    std::uint64_t segment_frames = 0;

    /// One loop turn at `now`.
    void turn(MonoNs now) {
        clock.set(now);
        if (segment_talks) monitor.on_segment_frames(++segment_frames);
        while (auto p = monitor.due(now)) {
            sent.push_back(*p);
            if (alive) pending_.push_back({now + rtt, *p});
        }
        if (monitor.arp_probe_due(now)) {
            monitor.arp_probe_sent(now);
            if (arp_alive) arp_pending_.push_back(now + rtt);
        }
        for (auto it = arp_pending_.begin(); it != arp_pending_.end();) {
            if (*it <= now) {
                monitor.on_primary_arp(++arp_frames, now);
                it = arp_pending_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->at <= now) {
                if (monitor.on_reply(it->probe.id, it->probe.sequence, payload_of(it->probe), now))
                    last_reply_at = now;
                it = pending_.erase(it);
            } else {
                ++it;
            }
        }
        if (auto v = monitor.tick(now, passive)) {
            verdicts.push_back(*v);
            verdict_times.push_back(now);
        }
    }

    /// Runs loop turns until `until` (inclusive), waking only when needed.
    void run_until(MonoNs until) {
        for (int guard = 0; guard < 100000; ++guard) {
            MonoNs next = monitor.next_deadline();
            for (const auto& r : pending_) next = std::min(next, r.at);
            for (const MonoNs at : arp_pending_) next = std::min(next, at);
            next = std::max(next, clock.now());
            if (next > until) break;
            turn(next);
        }
        clock.set(until);
    }

    /// A primary that dies now: replies already in flight are lost too.
    void kill() {
        alive = arp_alive = false;
        pending_.clear();
        arp_pending_.clear();
    }
    /// This host's own link dies: the primary's replies and every other
    /// host's frames stop reaching us at once.
    void cut_off() {
        segment_talks = false;
        kill();
    }

private:
    struct Pending {
        MonoNs at;
        Probe probe;
    };
    std::vector<Pending> pending_;
    std::vector<MonoNs> arp_pending_;
};

// ---------------------------------------------------------------- cadence

TEST(IcmpMonitorTest, ProbesAreDueOncePerIntervalWithIncreasingSequence) {
    IcmpMonitor m(legacy(), kEchoId, 1);
    auto p1 = m.due(0);
    ASSERT_TRUE(p1);
    EXPECT_EQ(p1->id, kEchoId);
    EXPECT_EQ(p1->sequence, 1);
    EXPECT_FALSE(m.due(0));
    EXPECT_FALSE(m.due(19 * kMs));
    EXPECT_FALSE(m.due(20 * kMs - 1));
    auto p2 = m.due(20 * kMs);
    ASSERT_TRUE(p2);
    EXPECT_EQ(p2->sequence, 2);
    EXPECT_FALSE(m.due(39 * kMs));
    auto p3 = m.due(40 * kMs);
    ASSERT_TRUE(p3);
    EXPECT_EQ(p3->sequence, 3);
    EXPECT_EQ(m.sent(), 3u);
    // Each probe carries its own random nonce.
    EXPECT_NE(p1->payload, p2->payload);
    EXPECT_NE(p2->payload, p3->payload);
}

TEST(IcmpMonitorTest, NoBurstOfCatchUpProbesAfterAStall) {
    IcmpMonitor m(legacy(), kEchoId, 1);
    ASSERT_TRUE(m.due(0));
    // The loop stalls for 500 ms (25 intervals): exactly one probe, and the
    // cadence restarts from the moment of the stall's end.
    ASSERT_TRUE(m.due(500 * kMs));
    EXPECT_FALSE(m.due(500 * kMs));
    EXPECT_FALSE(m.due(519 * kMs));
    EXPECT_TRUE(m.due(520 * kMs));
    EXPECT_EQ(m.sent(), 3u);
}

TEST(IcmpMonitorTest, ProbeCountOverOneSecondMatchesTheInterval) {
    Harness h;
    h.run_until(1000 * kMs);
    // Probes at 0, 20, ..., 1000 ms.
    EXPECT_EQ(h.monitor.sent(), 51u);
    for (std::size_t i = 1; i < h.sent.size(); ++i)
        EXPECT_EQ(h.sent[i].sequence, static_cast<std::uint16_t>(h.sent[i - 1].sequence + 1));
}

// ---------------------------------------------------------------- replies

TEST(IcmpMonitorTest, CorrectReplySetsUpOnceNotEveryTick) {
    IcmpMonitor m(legacy(), kEchoId, 3);
    auto p = m.due(0);
    ASSERT_TRUE(p);
    EXPECT_EQ(m.health(), Health::Unknown);
    EXPECT_TRUE(m.on_reply(p->id, p->sequence, p->payload, 2 * kMs));
    auto v = m.tick(2 * kMs, {});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->health, Health::Up);
    EXPECT_EQ(v->reason, "echo reply, rtt 2000 us");
    EXPECT_EQ(m.health(), Health::Up);
    EXPECT_EQ(m.replies(), 1u);
    ASSERT_EQ(m.recent_rtts().size(), 1u);
    EXPECT_EQ(m.recent_rtts().back(), 2 * kMs);

    // More good replies: still up, no new verdict.
    for (int i = 1; i <= 5; ++i) {
        const MonoNs at = i * 20 * kMs;
        auto q = m.due(at);
        ASSERT_TRUE(q);
        EXPECT_TRUE(m.on_reply(q->id, q->sequence, q->payload, at + kMs));
        EXPECT_FALSE(m.tick(at + kMs, {}));
        EXPECT_FALSE(m.tick(at + 2 * kMs, {}));
    }
    EXPECT_EQ(m.health(), Health::Up);
    EXPECT_EQ(m.replies(), 6u);
}

TEST(IcmpMonitorTest, ReplyTwiceCountsOnce) {
    IcmpMonitor m(legacy(), kEchoId, 3);
    auto p = m.due(0);
    ASSERT_TRUE(p);
    EXPECT_TRUE(m.on_reply(p->id, p->sequence, p->payload, kMs));
    EXPECT_FALSE(m.on_reply(p->id, p->sequence, p->payload, kMs));
    EXPECT_EQ(m.replies(), 1u);
    // The second copy (a mirror port delivers two) is a duplicate, not a forgery.
    EXPECT_EQ(m.duplicate_replies(), 1u);
    EXPECT_EQ(m.rejected_replies(), 0u);
}

struct BadReply {
    const char* name;
    // Mutates a correct reply into a bad one.
    void (*spoil)(std::uint16_t& id, std::uint16_t& seq, std::vector<std::byte>& payload);
};

class IcmpMonitorBadReplyTest : public ::testing::TestWithParam<BadReply> {};

TEST_P(IcmpMonitorBadReplyTest, IsRejectedCountedAndDoesNotKeepThePrimaryUp) {
    IcmpMonitor m(legacy(), kEchoId, 11);
    // Healthy first.
    auto p0 = m.due(0);
    ASSERT_TRUE(p0);
    ASSERT_TRUE(m.on_reply(p0->id, p0->sequence, p0->payload, kMs));
    const auto up = m.tick(kMs, {});
    ASSERT_TRUE(up);
    ASSERT_EQ(up->health, Health::Up);

    // The primary dies; every probe is "answered" by a bad reply.
    std::vector<Verdict> verdicts;
    std::uint64_t bad = 0;
    for (MonoNs now = 20 * kMs; now <= 400 * kMs; now += kMs) {
        if (auto p = m.due(now)) {
            std::uint16_t id = p->id, seq = p->sequence;
            std::vector<std::byte> payload(p->payload.begin(), p->payload.end());
            GetParam().spoil(id, seq, payload);
            EXPECT_FALSE(m.on_reply(id, seq, payload, now + kMs)) << GetParam().name;
            ++bad;
        }
        if (auto v = m.tick(now, {})) verdicts.push_back(*v);
    }
    EXPECT_EQ(m.rejected_replies(), bad);
    EXPECT_EQ(m.replies(), 1u);
    EXPECT_EQ(m.late_replies(), 0u);
    ASSERT_EQ(verdicts.size(), 1u);
    EXPECT_EQ(verdicts[0].health, Health::Down);
    EXPECT_EQ(m.health(), Health::Down);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, IcmpMonitorBadReplyTest,
    ::testing::Values(
        BadReply{"wrong_id",
                 [](std::uint16_t& id, std::uint16_t&, std::vector<std::byte>&) { id ^= 1; }},
        BadReply{"unknown_sequence",
                 [](std::uint16_t&, std::uint16_t& seq, std::vector<std::byte>&) {
                     seq = static_cast<std::uint16_t>(seq + 1000);
                 }},
        BadReply{"wrong_nonce",
                 [](std::uint16_t&, std::uint16_t&, std::vector<std::byte>& payload) {
                     payload[kNonceBytes - 1] ^= std::byte{0x80};
                 }},
        BadReply{"short_payload",
                 [](std::uint16_t&, std::uint16_t&, std::vector<std::byte>& payload) {
                     payload.resize(kNonceBytes - 1);
                 }},
        BadReply{"empty_payload",
                 [](std::uint16_t&, std::uint16_t&, std::vector<std::byte>& payload) {
                     payload.clear();
                 }}),
    [](const ::testing::TestParamInfo<BadReply>& param_info) {
        return std::string(param_info.param.name);
    });

TEST(IcmpMonitorTest, ReplyWithTrailingBytesAfterTheNonceIsAccepted) {
    // Echo replies carry back whatever payload was sent; a longer payload
    // (padding) still proves the nonce.
    IcmpMonitor m(legacy(), kEchoId, 5);
    auto p = m.due(0);
    ASSERT_TRUE(p);
    std::vector<std::byte> payload(p->payload.begin(), p->payload.end());
    payload.resize(kNonceBytes + 8, std::byte{0xaa});
    EXPECT_TRUE(m.on_reply(p->id, p->sequence, payload, kMs));
    EXPECT_EQ(m.rejected_replies(), 0u);
}

TEST(IcmpMonitorTest, BadReplyDoesNotConsumeTheProbe) {
    // A forged reply with the right sequence but the wrong nonce must not
    // prevent the genuine reply from counting.
    IcmpMonitor m(legacy(), kEchoId, 5);
    auto p = m.due(0);
    ASSERT_TRUE(p);
    auto forged = p->payload;
    forged[0] ^= std::byte{1};
    EXPECT_FALSE(m.on_reply(p->id, p->sequence, forged, kMs));
    EXPECT_TRUE(m.on_reply(p->id, p->sequence, p->payload, 2 * kMs));
    EXPECT_EQ(m.rejected_replies(), 1u);
    EXPECT_EQ(m.replies(), 1u);
}

// ---------------------------------------------------------------- misses

TEST(IcmpMonitorTest, ConsecutiveMissesGiveOneDownVerdictNamingTheCount) {
    IcmpMonitor m(legacy(), kEchoId, 9);  // 20 ms / 60 ms / 4
    auto p0 = m.due(0);
    ASSERT_TRUE(p0);
    ASSERT_TRUE(m.on_reply(p0->id, p0->sequence, p0->payload, kMs));
    ASSERT_TRUE(m.tick(kMs, {}));

    // Nothing answers from here on. Probes at 20, 40, 60, 80 time out at
    // 80, 100, 120, 140 ms.
    std::vector<std::pair<MonoNs, Verdict>> verdicts;
    for (MonoNs now = 2 * kMs; now <= 1000 * kMs; now += kMs) {
        (void)m.due(now);
        if (auto v = m.tick(now, {})) verdicts.emplace_back(now, *v);
        if (now == 79 * kMs) {
            EXPECT_EQ(m.consecutive_misses(), 0);
        }
        if (now == 80 * kMs) {
            EXPECT_EQ(m.consecutive_misses(), 1);
        }
        if (now == 100 * kMs) {
            EXPECT_EQ(m.consecutive_misses(), 2);
        }
        if (now == 120 * kMs) {
            EXPECT_EQ(m.consecutive_misses(), 3);
        }
        if (now == 139 * kMs) {
            EXPECT_EQ(m.health(), Health::Up);
        }
    }
    ASSERT_EQ(verdicts.size(), 1u);
    EXPECT_EQ(verdicts[0].first, 140 * kMs);
    EXPECT_EQ(verdicts[0].second.health, Health::Down);
    EXPECT_EQ(verdicts[0].second.reason.rfind("4 consecutive echo probes unanswered", 0), 0u)
        << verdicts[0].second.reason;
    // 140 ms - the first missed probe's send time (20 ms).
    EXPECT_NE(verdicts[0].second.reason.find("(120 ms since the first)"), std::string::npos)
        << verdicts[0].second.reason;
    EXPECT_NE(verdicts[0].second.reason.find("no TCP seen from the primary"), std::string::npos)
        << verdicts[0].second.reason;
    EXPECT_EQ(m.health(), Health::Down);
    EXPECT_GT(m.consecutive_misses(), 4);  // kept counting after the verdict
}

TEST(IcmpMonitorTest, MissesMustBeConsecutive) {
    IcmpMonitor m(legacy(), kEchoId, 9);  // 4 misses
    std::vector<Verdict> verdicts;
    int lost = 0;
    for (MonoNs now = 0; now <= 600 * kMs; now += kMs) {
        if (auto p = m.due(now)) {
            // Three probes out of every four are lost, forever.
            if (p->sequence % 4 == 0) {
                EXPECT_TRUE(m.on_reply(p->id, p->sequence, p->payload, now));
            } else {
                ++lost;
            }
        }
        if (auto v = m.tick(now, {})) verdicts.push_back(*v);
    }
    EXPECT_GT(lost, 20);
    for (const auto& v : verdicts) EXPECT_NE(v.health, Health::Down) << v.reason;
    EXPECT_NE(m.health(), Health::Down);
    EXPECT_LT(m.consecutive_misses(), 4);
}

TEST(IcmpMonitorTest, LateReplyResetsMissesAndCountsAsLate) {
    IcmpMonitor m(legacy(), kEchoId, 13);
    auto p = m.due(0);
    ASSERT_TRUE(p);
    EXPECT_FALSE(m.tick(60 * kMs, {}));  // timed out: one miss
    EXPECT_EQ(m.consecutive_misses(), 1);
    EXPECT_EQ(m.late_replies(), 0u);
    EXPECT_TRUE(m.on_reply(p->id, p->sequence, p->payload, 70 * kMs));
    EXPECT_EQ(m.late_replies(), 1u);
    EXPECT_EQ(m.replies(), 1u);
    EXPECT_EQ(m.consecutive_misses(), 0);
    ASSERT_EQ(m.recent_rtts().size(), 1u);
    EXPECT_EQ(m.recent_rtts().back(), 70 * kMs);
    auto v = m.tick(70 * kMs, {});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->health, Health::Up);
}

TEST(IcmpMonitorTest, LateReplyAfterThreeMissesRestartsTheStreak) {
    IcmpMonitor m(legacy(), kEchoId, 13);
    std::vector<Probe> probes;
    std::vector<std::pair<MonoNs, Verdict>> verdicts;
    for (MonoNs now = 0; now <= 118 * kMs; now += kMs) {
        if (auto p = m.due(now)) probes.push_back(*p);
        if (auto v = m.tick(now, {})) verdicts.emplace_back(now, *v);
    }
    // Probes at 0, 20, 40 timed out at 60, 80, 100 ms: three misses.
    EXPECT_EQ(m.consecutive_misses(), 3);
    EXPECT_TRUE(verdicts.empty());
    // The reply to the very first probe finally arrives, just before the
    // fourth miss (probe 60 at 120 ms) would have made it Down.
    EXPECT_TRUE(m.on_reply(probes[0].id, probes[0].sequence, probes[0].payload, 119 * kMs));
    EXPECT_EQ(m.late_replies(), 1u);
    EXPECT_EQ(m.consecutive_misses(), 0);
    for (MonoNs now = 119 * kMs; now <= 300 * kMs; now += kMs) {
        (void)m.due(now);
        if (auto v = m.tick(now, {})) verdicts.emplace_back(now, *v);
    }
    // Up at 119, then four fresh misses: probes 60, 80, 100, 120 time out
    // at 120, 140, 160, 180 ms.
    ASSERT_EQ(verdicts.size(), 2u);
    EXPECT_EQ(verdicts[0].first, 119 * kMs);
    EXPECT_EQ(verdicts[0].second.health, Health::Up);
    EXPECT_EQ(verdicts[1].first, 180 * kMs);
    EXPECT_EQ(verdicts[1].second.health, Health::Down);
}

// ---------------------------------------------------------------- passive signal

/// Four misses with probes at 0, 20, 40, 60 (first miss sent at 0), ticked
/// until 120 ms, with the given passive signal.
/// The primary answered ARP long before the test's window: a primary never
/// seen alive (echo or ARP) is never judged Down.
void seen_alive(IcmpMonitor& m) {
    m.on_primary_arp(1, -1000 * kMs);
    const auto v = m.tick(-1000 * kMs, {});
    ASSERT_TRUE(v && v->health == Health::Up);
}

std::vector<Verdict> four_misses(IcmpMonitor& m, const PassiveSignal& passive) {
    seen_alive(m);
    std::vector<Verdict> out;
    for (MonoNs now = 0; now <= 120 * kMs; now += kMs) {
        (void)m.due(now);
        if (auto v = m.tick(now, passive)) out.push_back(*v);
    }
    return out;
}

TEST(IcmpMonitorTest, PassiveSignalVetoesDownWhenThePrimarySentTcpAfterTheFirstMiss) {
    IcmpMonitor m(legacy(), kEchoId, 17);
    const PassiveSignal alive{50 * kMs, 0};  // after the first missed probe (sent at 0)
    const auto verdicts = four_misses(m, alive);
    EXPECT_TRUE(verdicts.empty());
    EXPECT_GE(m.consecutive_misses(), 4);
    EXPECT_NE(m.health(), Health::Down);
    EXPECT_GE(m.vetoes(), 1u);
}

TEST(IcmpMonitorTest, PassiveSignalDoesNotVetoWhenThePrimaryWasSilentSinceTheFirstMiss) {
    {
        IcmpMonitor m(legacy(), kEchoId, 17);
        // No TCP from the primary seen at all.
        const PassiveSignal silent{std::nullopt, 0};
        const auto verdicts = four_misses(m, silent);
        ASSERT_EQ(verdicts.size(), 1u);
        EXPECT_EQ(verdicts[0].health, Health::Down);
        EXPECT_EQ(m.vetoes(), 0u);
    }
    {
        // Probes start at 100 ms; the primary's last TCP was at 90 ms.
        IcmpMonitor m(legacy(), kEchoId, 17);
        seen_alive(m);
        const PassiveSignal silent{90 * kMs, 12};
        std::vector<Verdict> verdicts;
        for (MonoNs now = 100 * kMs; now <= 220 * kMs; now += kMs) {
            (void)m.due(now);
            if (auto v = m.tick(now, silent)) verdicts.push_back(*v);
        }
        ASSERT_EQ(verdicts.size(), 1u);
        EXPECT_EQ(verdicts[0].health, Health::Down);
        EXPECT_EQ(m.vetoes(), 0u);
        EXPECT_NE(verdicts[0].reason.find("passive: primary silent for 130 ms, 12 client "
                                          "retransmissions since"),
                  std::string::npos)
            << verdicts[0].reason;
    }
}

TEST(IcmpMonitorTest, TcpExactlyAtTheFirstMissedProbeDoesNotVeto) {
    // Only TCP *after* the first unanswered probe proves life.
    IcmpMonitor m(legacy(), kEchoId, 17);
    const auto verdicts = four_misses(m, PassiveSignal{0, 3});
    ASSERT_EQ(verdicts.size(), 1u);
    EXPECT_EQ(verdicts[0].health, Health::Down);
}

TEST(IcmpMonitorTest, PassiveSignalCanConfirmButNeverTrigger) {
    // Replies keep arriving; the tracker claims the primary has been silent
    // forever with thousands of client retransmissions. Still up.
    Harness h;
    h.passive = PassiveSignal{std::nullopt, 5000};
    h.run_until(2000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 1u);
    EXPECT_EQ(h.verdicts[0].health, Health::Up);
    EXPECT_EQ(h.monitor.health(), Health::Up);
    EXPECT_EQ(h.monitor.consecutive_misses(), 0);
    // And a silent-primary signal older than everything is no better.
    h.passive = PassiveSignal{-1'000'000 * kMs, 99999};
    h.run_until(4000 * kMs);
    EXPECT_EQ(h.verdicts.size(), 1u);
    EXPECT_EQ(h.monitor.health(), Health::Up);
}

TEST(IcmpMonitorTest, VetoedPrimaryThatThenDiesIsEventuallyDeclaredDown) {
    // BUG (reported): echo replies are lost (ICMP filtered or rate-limited)
    // while the primary keeps sending TCP, so the passive signal vetoes Down:
    // correct. Then the primary really dies and its TCP stops. Its
    // last_primary_packet is still later than the first missed probe of the
    // streak, which never ends because no echo reply ever resets it, so
    // tick() vetoes forever and the death is never detected.
    Harness h;
    h.alive = false;  // echo replies never arrive; ARP is answered
    for (MonoNs t = 0; t <= 1000 * kMs; t += 10 * kMs) {
        h.passive = PassiveSignal{t, 0};  // TCP from the primary every 10 ms
        h.run_until(t);
    }
    ASSERT_EQ(h.verdicts.size(), 1u);
    EXPECT_EQ(h.verdicts[0].health, Health::Up);  // from ARP
    EXPECT_GT(h.monitor.vetoes(), 0u);
    // The primary dies at 1000 ms: no more TCP, clients retransmit, no ARP.
    h.arp_alive = false;
    h.passive = PassiveSignal{1000 * kMs, 40};
    h.run_until(5000 * kMs);
    ASSERT_FALSE(h.verdicts.empty()) << "a dead primary was never declared down ("
                                     << h.monitor.vetoes() << " vetoes)";
    EXPECT_EQ(h.verdicts.back().health, Health::Down);
}

// ---------------------------------------------------------------- timing

TEST(IcmpMonitorTest, DetectionWithDefaultsIsUnder200msAfterTheLastReply) {
    Harness h;  // defaults: 20 ms / 60 ms / 4
    h.rtt = 300'000;  // 0.3 ms
    h.run_until(1000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 1u);
    ASSERT_EQ(h.monitor.health(), Health::Up);
    ASSERT_TRUE(h.last_reply_at);
    const MonoNs last_reply = *h.last_reply_at;
    h.kill();
    h.run_until(3000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 2u);
    EXPECT_EQ(h.verdicts[1].health, Health::Down);
    const MonoNs detection = h.verdict_times[1] - last_reply;
    EXPECT_LT(detection, 200 * kMs) << detection / 1000 << " us";
    // Not absurdly early either: at least (misses - 1) intervals + timeout.
    EXPECT_GE(detection, 3 * 20 * kMs + 60 * kMs - kMs);
}

TEST(IcmpMonitorTest, NextDeadlineIsTheEarlierOfNextProbeAndNextTimeout) {
    MonitorConfig cfg = legacy();
    cfg.interval = 20 * kMs;
    cfg.timeout = 15 * kMs;
    IcmpMonitor m(cfg, kEchoId, 21);
    EXPECT_EQ(m.next_deadline(), 0);  // a probe is due at once
    auto p = m.due(0);
    ASSERT_TRUE(p);
    EXPECT_EQ(m.next_deadline(), 15 * kMs);  // the probe's timeout comes first
    EXPECT_FALSE(m.tick(15 * kMs, {}));
    EXPECT_EQ(m.consecutive_misses(), 1);
    EXPECT_EQ(m.next_deadline(), 20 * kMs);  // timed-out probes need no attention
    ASSERT_TRUE(m.due(20 * kMs));
    EXPECT_EQ(m.next_deadline(), 35 * kMs);

    // Timeout longer than the interval: the next probe comes first.
    IcmpMonitor d(legacy(), kEchoId, 21);  // 20 / 60
    ASSERT_TRUE(d.due(0));
    EXPECT_EQ(d.next_deadline(), 20 * kMs);
    ASSERT_TRUE(d.due(20 * kMs));
    ASSERT_TRUE(d.due(40 * kMs));
    EXPECT_EQ(d.next_deadline(), 60 * kMs);
    ASSERT_TRUE(d.due(60 * kMs));
    // Probe 0 times out at 60 but has not been ticked yet: still 60.
    EXPECT_EQ(d.next_deadline(), 60 * kMs);
    (void)d.tick(60 * kMs, {});
    EXPECT_EQ(d.next_deadline(), 80 * kMs);
    // A reply removes its probe from the deadline set.
    IcmpMonitor r(cfg, kEchoId, 21);  // 20 / 15
    auto q = r.due(0);
    ASSERT_TRUE(q);
    ASSERT_TRUE(r.on_reply(q->id, q->sequence, q->payload, kMs));
    EXPECT_EQ(r.next_deadline(), 20 * kMs);
}

TEST(IcmpMonitorTest, WakingOnlyAtNextDeadlineMissesNoTimeout) {
    // The loop sleeps until next_deadline() exactly: every miss is counted at
    // its own deadline, never later.
    Harness h;
    h.run_until(1 * kMs);  // the probe at 0 answered at 1 ms: Up
    h.kill();
    h.run_until(300 * kMs);
    ASSERT_EQ(h.verdicts.size(), 2u);
    // Probes at 20, 40, 60, 80 missed: the fourth times out at 140 ms.
    EXPECT_EQ(h.verdict_times[1], 140 * kMs);
}

TEST(IcmpMonitorTest, ConfigIsSanitised) {
    MonitorConfig bad;
    bad.interval = 0;
    bad.timeout = -5;
    bad.misses = 0;
    IcmpMonitor m(bad, kEchoId, 1);
    EXPECT_EQ(m.config().interval, kMillisecond);
    EXPECT_EQ(m.config().timeout, kMillisecond);
    EXPECT_EQ(m.config().misses, 2);  // evidence lies between two missed probes
    bad.require_segment_evidence = false;
    IcmpMonitor e(bad, kEchoId, 1);
    EXPECT_EQ(e.config().misses, 1);
}

// ---------------------------------------------------------------- segment evidence (issue 10)

TEST(IcmpMonitorTest, DefaultsDeclareADeadPrimaryWellUnder100msOnALiveSegment) {
    Harness h(MonitorConfig{});
    h.segment_talks = true;  // clients keep sending
    h.monitor.on_carrier(true, 0);
    h.run_until(1000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 1u);  // Up
    const MonoNs last_reply = *h.last_reply_at;
    h.kill();
    h.run_until(2000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 2u);
    EXPECT_EQ(h.verdicts[1].health, Health::Down);
    const MonoNs detection = h.verdict_times[1] - last_reply;
    // (misses - 1) intervals + the timeout after the first unanswered probe,
    // which leaves at most one interval after the last reply.
    EXPECT_GE(detection, 3 * 10 * kMs + 40 * kMs - kMs) << detection / 1000 << " us";
    EXPECT_LE(detection, 4 * 10 * kMs + 40 * kMs) << detection / 1000 << " us";
    EXPECT_NE(h.verdicts[1].reason.find("frames from other hosts during the silence, carrier up "
                                        "throughout"),
              std::string::npos)
        << h.verdicts[1].reason;
    EXPECT_EQ(h.monitor.vetoes(), 0u);
}

TEST(IcmpMonitorTest, SilenceWithNobodyElseHeardIsVetoedOnceAndWaitsForEvidence) {
    // Our own link died without a carrier change (a dead switch behind a
    // media converter): the primary and everybody else go quiet at once.
    Harness h(MonitorConfig{});
    h.segment_talks = true;
    h.run_until(500 * kMs);
    h.cut_off();
    h.run_until(3000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 1u) << "no Down without evidence";
    EXPECT_EQ(h.monitor.vetoes(Veto::NoSegmentEvidence), 1u) << "once per silence, not per tick";
    auto notice = h.monitor.take_veto_notice();
    ASSERT_TRUE(notice);
    EXPECT_EQ(notice->reason, Veto::NoSegmentEvidence);
    EXPECT_NE(notice->detail.find("no frame from any other host"), std::string::npos) << notice->detail;
    EXPECT_FALSE(h.monitor.take_veto_notice());
    // A client frame arrives (a retransmission into the silence): the next
    // missed probe after it settles it.
    h.monitor.on_segment_frames(++h.segment_frames);
    const MonoNs evidence_at = 3000 * kMs;
    h.run_until(4000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 2u);
    EXPECT_EQ(h.verdicts[1].health, Health::Down);
    EXPECT_LE(h.verdict_times[1] - evidence_at, 10 * kMs + 40 * kMs + kMs);
}

TEST(IcmpMonitorTest, CarrierLossVetoesAndAFlapNeverTurnsIntoDown) {
    // The backup's own cable is pulled for 1.5 s, the primary stays healthy.
    Harness h(MonitorConfig{});
    h.segment_talks = true;
    h.monitor.on_carrier(true, 0);
    h.run_until(500 * kMs);
    h.monitor.on_carrier(false, 500 * kMs);
    h.cut_off();  // replies lost on our dead link
    h.run_until(2000 * kMs);
    EXPECT_EQ(h.monitor.vetoes(Veto::Carrier), 1u);
    EXPECT_EQ(h.monitor.vetoes(Veto::NoSegmentEvidence), 0u);
    // Cable back: the first frames arrive before the next probe's answer.
    h.monitor.on_carrier(true, 2000 * kMs);
    h.monitor.on_segment_frames(h.segment_frames += 50);
    EXPECT_FALSE(h.monitor.tick(2000 * kMs, h.passive)) << "frames after the link came back prove nothing";
    h.alive = true;
    h.segment_talks = true;
    h.run_until(4000 * kMs);
    for (const auto& v : h.verdicts) EXPECT_NE(v.health, Health::Down) << v.reason;
    EXPECT_EQ(h.monitor.carrier_losses(), 1u);
}

TEST(IcmpMonitorTest, ALinkThatComesBackWithoutCarrierChangeIsSettledByTheNextProbe) {
    // No carrier information (tc drop on our port): our link is dead for 1 s,
    // then a burst of other hosts' frames arrives before any new probe left.
    Harness h(MonitorConfig{});
    h.segment_talks = true;
    h.run_until(500 * kMs);
    h.cut_off();
    h.run_until(1500 * kMs);
    h.monitor.on_segment_frames(h.segment_frames += 200);
    EXPECT_FALSE(h.monitor.tick(1500 * kMs, h.passive));
    h.alive = true;  // the primary answers the next probe
    h.segment_talks = true;
    h.run_until(3000 * kMs);
    for (const auto& v : h.verdicts) EXPECT_NE(v.health, Health::Down) << v.reason;
}

TEST(IcmpMonitorTest, ARealFailureAfterACarrierFlapIsDeclaredOnceFreshProbesMiss) {
    Harness h(MonitorConfig{});
    h.segment_talks = true;
    h.monitor.on_carrier(true, 0);
    h.run_until(500 * kMs);
    h.monitor.on_carrier(false, 500 * kMs);
    h.cut_off();
    h.run_until(1000 * kMs);
    // The cable comes back at 1000 ms, but the primary died meanwhile.
    h.monitor.on_carrier(true, 1000 * kMs);
    h.segment_talks = true;
    h.run_until(2000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 2u);
    EXPECT_EQ(h.verdicts[1].health, Health::Down);
    // Four probes sent after the carrier returned, the last timing out.
    EXPECT_GE(h.verdict_times[1], 1000 * kMs + 3 * 10 * kMs + 40 * kMs);
    EXPECT_LE(h.verdict_times[1], 1000 * kMs + 4 * 10 * kMs + 40 * kMs);
}

TEST(IcmpMonitorTest, PrimaryTcpVetoIsCountedOncePerSilenceAndByReason) {
    Harness h(MonitorConfig{});
    h.segment_talks = true;
    h.alive = false;
    for (MonoNs t = 0; t <= 1000 * kMs; t += 5 * kMs) {
        h.passive = PassiveSignal{t, 0};
        h.run_until(t);
    }
    for (const auto& v : h.verdicts) EXPECT_NE(v.health, Health::Down) << v.reason;
    EXPECT_EQ(h.monitor.vetoes(Veto::PrimaryTcp), 1u);
    EXPECT_EQ(h.monitor.vetoes(), 1u);
    auto notice = h.monitor.take_veto_notice();
    ASSERT_TRUE(notice);
    EXPECT_EQ(notice->reason, Veto::PrimaryTcp);
}

TEST(IcmpMonitorTest, SegmentProbeIsDueWhenAProbeIsOverdueAndNobodyWasHeard) {
    IcmpMonitor m(MonitorConfig{}, kEchoId, 3);
    m.on_segment_frames(10);
    auto p = m.due(0);
    ASSERT_TRUE(p);
    EXPECT_FALSE(m.segment_probe_due(5 * kMs)) << "not overdue yet";
    EXPECT_TRUE(m.segment_probe_due(10 * kMs));
    m.segment_probe_sent(10 * kMs);
    EXPECT_FALSE(m.segment_probe_due(20 * kMs)) << "rate-limited";
    EXPECT_TRUE(m.segment_probe_due(35 * kMs));
    // Somebody talked since the probe left: no need to ask.
    m.on_segment_frames(11);
    EXPECT_FALSE(m.segment_probe_due(40 * kMs));
    EXPECT_EQ(m.segment_probes(), 1u);
    // A reply clears the question.
    IcmpMonitor r(MonitorConfig{}, kEchoId, 3);
    auto q = r.due(0);
    ASSERT_TRUE(r.on_reply(q->id, q->sequence, q->payload, kMs));
    EXPECT_FALSE(r.segment_probe_due(30 * kMs));
    // Once Down is declared there is nothing left to prove: no more questions
    // (the proxy must not chatter ARP at its neighbours every 25 ms).
    Harness d(MonitorConfig{});
    d.segment_talks = true;
    d.run_until(200 * kMs);
    d.kill();
    d.run_until(600 * kMs);
    ASSERT_EQ(d.monitor.health(), Health::Down);
    // The segment goes quiet while the probes keep missing: the window moves
    // past the last frame heard, which before Down would be a question.
    d.segment_talks = false;
    d.run_until(900 * kMs);
    EXPECT_FALSE(d.monitor.segment_probe_due(900 * kMs));
    // A quiet silence that is still undecided does ask.
    Harness w(MonitorConfig{});
    w.segment_talks = true;
    w.run_until(200 * kMs);
    w.cut_off();
    w.run_until(600 * kMs);
    ASSERT_NE(w.monitor.health(), Health::Down);
    EXPECT_TRUE(w.monitor.segment_probe_due(600 * kMs));
    // Evidence off: never.
    MonitorConfig off;
    off.require_segment_evidence = false;
    IcmpMonitor o(off, kEchoId, 3);
    ASSERT_TRUE(o.due(0));
    EXPECT_FALSE(o.segment_probe_due(30 * kMs));
}

TEST(IcmpMonitorTest, EvidenceOffDeclaresDownOnEchoSilenceAlone) {
    MonitorConfig off;
    off.require_segment_evidence = false;
    Harness h(off);
    h.run_until(300 * kMs);
    h.kill();
    h.run_until(1000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 2u);
    EXPECT_EQ(h.verdicts[1].health, Health::Down);
}


// ---------------------------------------------------------------- the second level: ARP

TEST(IcmpMonitorTest, AnIcmpSilentPrimaryThatAnswersArpIsNeverDownUntilItDies) {
    Harness h(MonitorConfig{});
    h.segment_talks = true;
    h.monitor.on_carrier(true, 0);
    h.alive = false;  // icmp_echo_ignore_all: echo never answered, ARP is
    h.run_until(2000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 1u);
    EXPECT_EQ(h.verdicts[0].health, Health::Up);
    EXPECT_NE(h.verdicts[0].reason.find("ARP"), std::string::npos) << h.verdicts[0].reason;
    EXPECT_EQ(h.monitor.vetoes(Veto::PrimaryArp), 1u);  // once per silence
    EXPECT_FALSE(h.monitor.never_answered());
    const MonoNs died = h.clock.now();
    h.kill();
    h.run_until(3000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 2u);
    EXPECT_EQ(h.verdicts[1].health, Health::Down);
    // As fast as echo alone: the ARP probes ran beside the echo probes.
    EXPECT_LE(h.verdict_times[1] - died, 4 * 10 * kMs + 40 * kMs);
}

TEST(IcmpMonitorTest, EchoFilteredAfterAnsweringIsKeptUpByArp) {
    Harness h(MonitorConfig{});
    h.segment_talks = true;
    h.monitor.on_carrier(true, 0);
    h.run_until(500 * kMs);
    ASSERT_EQ(h.verdicts.size(), 1u);
    EXPECT_EQ(h.monitor.arp_probes(), 0u) << "no ARP while echo is answered";
    h.alive = false;  // a firewall rule now drops echo
    h.run_until(3000 * kMs);
    EXPECT_EQ(h.verdicts.size(), 1u) << h.verdicts.back().reason;
    EXPECT_EQ(h.monitor.health(), Health::Up);
    EXPECT_EQ(h.monitor.vetoes(Veto::PrimaryArp), 1u);
    // Paced like the echo probes: one per 10 ms interval, never a flood.
    EXPECT_GE(h.monitor.arp_probes(), 240u);
    EXPECT_LE(h.monitor.arp_probes(), 251u);
    auto notice = h.monitor.take_veto_notice();
    ASSERT_TRUE(notice);
    EXPECT_EQ(notice->reason, Veto::PrimaryArp);
    EXPECT_NE(notice->detail.find("answered ARP"), std::string::npos) << notice->detail;
}

TEST(IcmpMonitorTest, APrimaryThatNeverAnsweredIsUnknownNeverDown) {
    Harness h(MonitorConfig{});
    h.segment_talks = true;
    h.monitor.on_carrier(true, 0);
    h.kill();  // filters echo and ARP, or was dead before migware started
    h.run_until(5000 * kMs);
    EXPECT_TRUE(h.verdicts.empty());
    EXPECT_EQ(h.monitor.health(), Health::Unknown);
    EXPECT_TRUE(h.monitor.never_answered());
    EXPECT_TRUE(h.monitor.take_never_answered_notice());
    EXPECT_FALSE(h.monitor.take_never_answered_notice()) << "said once";
    EXPECT_GT(h.monitor.arp_probes(), 0u);
    // Once it answers, it is judged as any primary: its death is a Down.
    h.alive = h.arp_alive = true;
    h.run_until(6000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 1u);
    EXPECT_EQ(h.verdicts[0].health, Health::Up);
    h.kill();
    h.run_until(7000 * kMs);
    ASSERT_EQ(h.verdicts.size(), 2u);
    EXPECT_EQ(h.verdicts[1].health, Health::Down);
}

TEST(IcmpMonitorTest, ArpProbingOffJudgesOnEchoAsBefore) {
    MonitorConfig c;
    c.arp_probe = false;
    Harness h(c);
    h.segment_talks = true;
    h.monitor.on_carrier(true, 0);
    h.run_until(500 * kMs);
    h.alive = false;  // echo filtered, ARP would answer but is never asked
    h.run_until(1000 * kMs);
    EXPECT_EQ(h.monitor.arp_probes(), 0u);
    ASSERT_EQ(h.verdicts.size(), 2u);
    EXPECT_EQ(h.verdicts[1].health, Health::Down);
}

}  // namespace
}  // namespace migware::monitor
