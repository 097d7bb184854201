#pragma once
// What the control socket's requests mean (CONTROL.md): status, connections,
// counters, events, metrics, answered from the daemon's live objects.
// (Namespace migware, not migware::control, until the daemon that uses it is
// restructured: issue 11 moves the files first.)

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "control/protocol.hpp"
#include "control/server.hpp"
#include "membership/member.hpp"
#include "migware/config.hpp"
#include "migware/counters.hpp"
#include "migware/event_log.hpp"
#include "migware/failover.hpp"
#include "migware/latency.hpp"
#include "monitor/icmp_monitor.hpp"
#include "monitor/service_probe.hpp"
#include "sniffer/live_capture.hpp"

namespace migware {

/// Read-only views of the daemon's parts. Capture statistics come through a
/// function so tests need no live capture.
struct DaemonParts {
    const DaemonConfig& config;
    const FailoverEngine& engine;
    const monitor::IcmpMonitor& monitor;
    const EventRing& events;
    const LatencyRecorder& to_backup_latency;
    const LatencyRecorder& to_client_latency;
    std::function<sniffer::CaptureStats()> capture_stats;
    std::function<ControlCounters()> control_counters;
    std::function<monitor::MonoNs()> now;
    const monitor::ServiceProbe* service = nullptr;  // optional: its counters when set
    const membership::Member* membership = nullptr;  // optional: the group's view when set
};

class DaemonControl final : public ControlHandler {
public:
    explicit DaemonControl(DaemonParts parts) : parts_(std::move(parts)) {}
    ControlReply handle(std::string_view request_line) override;

    using PhaseCounts = std::array<std::uint64_t, 5>;

    control::Json status() const;
    /// One page of the connections in `phase` (all when nullopt) whose client,
    /// server or phase contains `match` (case-insensitive; all when empty).
    control::Json connections(std::optional<Phase> phase, std::string_view match, std::uint64_t offset,
                              std::uint64_t limit) const;
    control::Json counters() const;
    control::Json events(std::uint64_t last) const;
    std::string metrics() const;
    /// One event as it is sent to followers: {"v":1,"event":{...}}.
    static std::string follower_line(const EventRecord& e);
    static control::Json event_json(const EventRecord& e);
    static control::Json fields_json(const Fields& fields);

private:
    PhaseCounts phase_counts() const;
    control::Json membership_json(monitor::MonoNs now) const;

    DaemonParts parts_;
};

}  // namespace migware
