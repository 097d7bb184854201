#pragma once
// What the control socket's requests mean (CONTROL.md): status, connections,
// counters, events, metrics, answered from the daemon's live objects.

#include <functional>
#include <string>

#include "migware/config.hpp"
#include "control/server.hpp"
#include "migware/event_log.hpp"
#include "migware/failover.hpp"
#include "migware/json.hpp"
#include "migware/latency.hpp"
#include "monitor/icmp_monitor.hpp"
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
};

class DaemonControl final : public ControlHandler {
public:
    explicit DaemonControl(DaemonParts parts) : parts_(std::move(parts)) {}
    ControlReply handle(std::string_view request_line) override;

    json::Value status() const;
    json::Value connections(const std::string* phase, std::uint64_t offset, std::uint64_t limit) const;
    json::Value counters() const;
    json::Value events(std::uint64_t last) const;
    std::string metrics() const;
    /// One event as it is sent to followers: {"v":1,"event":{...}}.
    static std::string follower_line(const EventRecord& e);
    static json::Value event_json(const EventRecord& e);

private:
    DaemonParts parts_;
};

}  // namespace migware
