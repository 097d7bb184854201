#pragma once
// Failure detection for the primary: ICMP echo probes on a fixed cadence,
// with a passive confirmation from the tracker.
//
// Pure logic: the caller sends the probes it is handed and feeds back the
// echo replies it reads; no I/O and no clock reads happen here.

#include <array>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>

#include "monitor/clock.hpp"

namespace migware::monitor {

struct MonitorConfig {
    MonoNs interval = 10 * kMillisecond;  ///< one probe per interval (echo, and ARP while echo is missed)
    MonoNs timeout = 40 * kMillisecond;   ///< a probe unanswered this long is a miss
    int misses = 4;                       ///< consecutive misses before "down"
    /// Down also needs proof that this host still hears the segment (DESIGN.md
    /// §6a): carrier up throughout the silence, and a frame from another host
    /// between the first and the last missed probe. Off: echo silence alone.
    bool require_segment_evidence = true;
    /// The second level: while echo probes go unanswered, ask the primary
    /// itself with unicast ARP requests (one per interval). A kernel that
    /// answers ARP is alive whatever its firewall does with ICMP: Down then
    /// needs echo silence and ARP silence.
    bool arp_probe = true;
};

/// Why a Down verdict was withheld.
enum class Veto : std::uint8_t {
    PrimaryTcp,         ///< the primary sent TCP during the silence: it is alive
    PrimaryArp,         ///< the primary answered ARP during the silence: alive, ICMP filtered
    Carrier,            ///< this host's own link was down during the silence
    NoSegmentEvidence,  ///< nobody else was heard during the silence: maybe our link is dead
    kCount,
};
inline constexpr std::size_t kVetoCount = static_cast<std::size_t>(Veto::kCount);
std::string_view name_of(Veto v);

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

/// A withheld Down, for the log: once per silence and reason.
struct VetoNotice {
    Veto reason = Veto::kCount;
    std::string detail;
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
    /// The second level. `total` counts every ARP frame captured so far from
    /// the primary (answers to arp_probe_due()'s requests, its own requests);
    /// its growth is evidence of life at `now`.
    void on_primary_arp(std::uint64_t total, MonoNs now);
    /// True when an ARP request to the primary is due: an echo probe is
    /// overdue or missed, and none was sent this interval.
    bool arp_probe_due(MonoNs now) const;
    void arp_probe_sent(MonoNs now) {
        last_arp_probe_ = now;
        ++arp_probes_;
    }
    std::uint64_t arp_probes() const { return arp_probes_; }
    std::uint64_t arp_answers() const { return arp_answers_; }
    /// The primary has answered neither echo nor ARP since the start: it is
    /// never judged Down (a host that filters both cannot be told from a
    /// dead one), and the daemon says so once.
    bool never_answered() const { return !ever_alive_; }
    /// True once, when the primary has been silent on both levels for a
    /// Down's worth of probes without ever having answered.
    bool take_never_answered_notice();
    /// Ages outstanding probes; returns a verdict when health changes.
    std::optional<Verdict> tick(MonoNs now, const PassiveSignal& passive);

    /// Segment evidence. `total` counts every frame captured so far from a
    /// host other than the primary and this one (clients, ARP, a reference
    /// host's echo replies); only its growth between missed probes matters.
    void on_segment_frames(std::uint64_t total) { segment_frames_ = total; }
    /// The capture interface's carrier (netlink). Unknown until first called.
    void on_carrier(bool up, MonoNs now);
    bool carrier_known() const { return carrier_known_; }
    bool carrier_up() const { return carrier_up_; }
    std::uint64_t carrier_losses() const { return carrier_downs_; }
    /// True when a probe has gone unanswered for an interval with no frame
    /// from another host since it was sent: time to ask the segment (ARP to
    /// known neighbours, echo to a reference host) so that evidence arrives
    /// while the probes are still being missed. Rate-limited.
    bool segment_probe_due(MonoNs now) const;
    void segment_probe_sent(MonoNs now) {
        last_segment_probe_ = now;
        ++segment_probes_;
    }
    std::uint64_t segment_probes() const { return segment_probes_; }
    /// The veto to log, if a new one happened since the last call.
    std::optional<VetoNotice> take_veto_notice();
    std::uint64_t vetoes(Veto v) const { return vetoes_by_reason_[static_cast<std::size_t>(v)]; }

    /// When the next probe or timeout needs attention.
    MonoNs next_deadline() const;

    Health health() const { return health_; }
    /// After a takeover was rolled back (the primary never died): forget the
    /// Down verdict, so that a later real failure is declared afresh.
    void rearm() {
        health_ = Health::Unknown;
        current_veto_.reset();
    }
    int consecutive_misses() const { return misses_; }
    std::uint64_t sent() const { return sent_; }
    std::uint64_t replies() const { return replies_; }
    std::uint64_t rejected_replies() const { return rejected_; }
    std::uint64_t late_replies() const { return late_; }
    /// Second copies of replies already counted (mirror ports deliver two).
    std::uint64_t duplicate_replies() const { return duplicates_; }
    /// Silences whose Down verdict was withheld, all reasons.
    std::uint64_t vetoes() const;
    /// Round-trip times of the most recent replies, newest last.
    const std::deque<MonoNs>& recent_rtts() const { return rtts_; }
    const MonitorConfig& config() const { return config_; }

private:
    struct Outstanding {
        std::uint16_t sequence;
        MonoNs sent_at;
        std::array<std::byte, kNonceBytes> nonce;
        bool timed_out;
        std::uint64_t segment_frames;  // counters as they stood when it was sent
        std::uint64_t carrier_downs;
        bool carrier_up;               // ... and the carrier (a probe into a dead link proves nothing)
    };
    struct Miss {
        MonoNs sent_at;
        std::uint64_t segment_frames;
        std::uint64_t carrier_downs;
        bool carrier_up;
    };
    std::optional<Veto> veto_for(const PassiveSignal& passive) const;
    void note_veto(Veto v, MonoNs now, const PassiveSignal& passive);

    MonitorConfig config_;
    std::uint16_t id_;
    std::mt19937_64 rng_;
    std::uint16_t next_seq_ = 1;
    MonoNs next_send_ = 0;
    std::deque<Outstanding> outstanding_;  // oldest first
    Health health_ = Health::Unknown;
    int misses_ = 0;
    std::optional<MonoNs> first_miss_sent_at_;
    std::deque<Miss> recent_misses_;  // the last `misses` missed probes, oldest first
    std::deque<std::uint16_t> answered_;  // sequences recently answered
    std::uint64_t duplicates_ = 0;
    std::uint64_t sent_ = 0, replies_ = 0, rejected_ = 0, late_ = 0;
    std::array<std::uint64_t, kVetoCount> vetoes_by_reason_{};
    std::optional<Veto> current_veto_;  // this silence's, reset by a reply
    std::optional<VetoNotice> notice_;
    std::uint64_t segment_frames_ = 0;
    bool carrier_known_ = false;
    bool carrier_up_ = true;
    std::uint64_t carrier_downs_ = 0;
    MonoNs last_segment_probe_ = std::numeric_limits<MonoNs>::min() / 2;  // never
    std::uint64_t segment_probes_ = 0;
    std::deque<MonoNs> rtts_;
    bool alive_since_last_tick_ = false;
    // The second level: ARP.
    std::uint64_t primary_arp_frames_ = 0;
    std::optional<MonoNs> last_primary_arp_;
    MonoNs last_arp_probe_ = std::numeric_limits<MonoNs>::min() / 2;  // never
    std::uint64_t arp_probes_ = 0, arp_answers_ = 0;
    bool arp_since_last_tick_ = false;
    bool ever_alive_ = false;  // an echo reply or an ARP frame from the primary, ever
    bool never_answered_noticed_ = false;
    bool never_answered_notice_ = false;
};

}  // namespace migware::monitor
