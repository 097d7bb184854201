#pragma once
// Failure detection for the primary: ICMP echo probes on a fixed cadence,
// with a passive confirmation from the tracker.
//
// Pure logic: the caller sends the probes it is handed and feeds back the
// echo replies it reads; no I/O and no clock reads happen here.

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <span>
#include <string>

#include "monitor/clock.hpp"

namespace migware::monitor {

struct MonitorConfig {
    MonoNs interval = 20 * kMillisecond;  ///< one probe per interval
    MonoNs timeout = 60 * kMillisecond;   ///< a probe unanswered this long is a miss
    int misses = 4;                       ///< consecutive misses before "down"
};

enum class Health : std::uint8_t { Unknown, Up, Down };
std::string_view name_of(Health h);

inline constexpr std::size_t kNonceBytes = 16;

/// One echo request to send: id, sequence and the payload that carries the nonce.
struct Probe {
    std::uint16_t id = 0;
    std::uint16_t sequence = 0;
    std::array<std::byte, kNonceBytes> payload{};
};

/// A change of verdict, with the evidence, for the log.
struct Verdict {
    Health health = Health::Unknown;
    std::string reason;
};

/// Passive evidence from the tracker (DESIGN: can confirm, never trigger).
struct PassiveSignal {
    std::optional<MonoNs> last_primary_packet;  ///< last TCP segment seen from the primary
    std::uint64_t client_retransmissions = 0;   ///< since that packet
};

class IcmpMonitor {
public:
    IcmpMonitor(MonitorConfig config, std::uint16_t echo_id, std::uint64_t seed);

    /// The next probe to send if one is due at `now` (at most one per call).
    std::optional<Probe> due(MonoNs now);
    /// Feeds an echo reply's fields. Returns false (and counts it) when the id,
    /// sequence or nonce do not match an outstanding probe.
    bool on_reply(std::uint16_t id, std::uint16_t sequence, std::span<const std::byte> payload,
                  MonoNs now);
    /// Ages outstanding probes; returns a verdict when health changes.
    std::optional<Verdict> tick(MonoNs now, const PassiveSignal& passive);

    /// When the next probe or timeout needs attention.
    MonoNs next_deadline() const;

    Health health() const { return health_; }
    int consecutive_misses() const { return misses_; }
    std::uint64_t sent() const { return sent_; }
    std::uint64_t replies() const { return replies_; }
    std::uint64_t rejected_replies() const { return rejected_; }
    std::uint64_t late_replies() const { return late_; }
    /// Second copies of replies already counted (mirror ports deliver two).
    std::uint64_t duplicate_replies() const { return duplicates_; }
    /// Times the passive signal overruled the echo count.
    std::uint64_t vetoes() const { return vetoed_; }
    /// Round-trip times of the most recent replies, newest last.
    const std::deque<MonoNs>& recent_rtts() const { return rtts_; }
    const MonitorConfig& config() const { return config_; }

private:
    struct Outstanding {
        std::uint16_t sequence;
        MonoNs sent_at;
        std::array<std::byte, kNonceBytes> nonce;
        bool timed_out;
    };

    MonitorConfig config_;
    std::uint16_t id_;
    std::mt19937_64 rng_;
    std::uint16_t next_seq_ = 1;
    MonoNs next_send_ = 0;
    std::deque<Outstanding> outstanding_;  // oldest first
    Health health_ = Health::Unknown;
    int misses_ = 0;
    std::optional<MonoNs> first_miss_sent_at_;
    std::deque<MonoNs> recent_misses_;  // send times of the last `misses` missed probes
    std::deque<std::uint16_t> answered_;  // sequences recently answered
    std::uint64_t duplicates_ = 0;
    std::uint64_t sent_ = 0, replies_ = 0, rejected_ = 0, late_ = 0, vetoed_ = 0;
    std::deque<MonoNs> rtts_;
    bool alive_since_last_tick_ = false;
};

}  // namespace migware::monitor
