#pragma once
// The one list of migware's counters and gauges. It drives the control
// socket's `counters` (JSON) and `metrics` (Prometheus text), the daemon's
// shutdown line and the dashboard's names: a counter is named, explained and
// read in one place.
//
// An entry reads its value either through a pointer to a FailoverCounters
// field or through a getter over the daemon's parts (CounterSources). A
// labelled family (malformed packets by reason, unrecovered connections by
// reason, connections by phase) is one entry with a label.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace migware {

struct FailoverCounters;
class FailoverEngine;
class LatencyRecorder;
namespace monitor {
class IcmpMonitor;
class ServiceProbe;
}  // namespace monitor
namespace sniffer {
struct CaptureStats;
}  // namespace sniffer

/// The control socket's own counts (control/server.hpp keeps them).
struct ControlCounters {
    std::uint64_t accepted = 0;
    std::uint64_t refused_peer = 0;       // SO_PEERCRED check failed
    std::uint64_t requests = 0;
    std::uint64_t slow_disconnects = 0;   // output buffer full
    std::uint64_t oversize_requests = 0;  // line over the limit
    std::uint64_t active = 0;
    std::uint64_t followers = 0;
};

namespace counters {

/// What a value is read from. An entry whose source is absent (a pcap replay
/// has no live capture, no monitor, no control socket) is left out.
struct Sources {
    const FailoverEngine* engine = nullptr;  // required
    const monitor::IcmpMonitor* monitor = nullptr;
    const sniffer::CaptureStats* capture = nullptr;
    const ControlCounters* control = nullptr;
    const monitor::ServiceProbe* service = nullptr;
    const LatencyRecorder* to_backup_latency = nullptr;
    const LatencyRecorder* to_client_latency = nullptr;
    /// Connections by Phase (FailoverEngine), counted once by the caller:
    /// counting walks the whole table.
    const std::uint64_t* phase_counts = nullptr;
};

enum class Source : std::uint8_t { Engine, Monitor, Capture, Control, Service, Latency, Phases };
enum class Kind : std::uint8_t { Counter, Gauge };
/// Base units, as Prometheus wants them; Nanoseconds only for JSON-only entries.
enum class Unit : std::uint8_t { None, Bytes, Nanoseconds };

using Reader = std::uint64_t (*)(const Sources&);
using LabelledReader = std::uint64_t (*)(const Sources&, std::size_t);
using LabelName = std::string_view (*)(std::size_t);

struct Descriptor {
    /// The `counters` JSON key and the shutdown line's key. The metric is
    /// migware_<name>_total for a counter, migware_<name> for a gauge.
    std::string_view name;
    std::string_view help;
    Kind kind = Kind::Counter;
    Unit unit = Unit::None;
    Source source = Source::Engine;
    std::uint64_t FailoverCounters::*field = nullptr;  // or:
    Reader read = nullptr;
    // A labelled family: JSON keys <name>_<label value>; in Prometheus one
    // family migware_<metric> with the label (metric empty: one family per
    // value, migware_<name>_<label value>[_total]).
    std::string_view label = {};
    std::size_t label_count = 0;
    LabelName label_value = nullptr;
    LabelledReader read_at = nullptr;
    std::string_view metric = {};
    bool in_json = true;      // counters JSON and the shutdown line
    bool in_metrics = true;   // Prometheus text
};

/// Every entry, in the order replies list them.
std::span<const Descriptor> table();
/// The entry named `name` (a labelled family by its name), or nullptr.
const Descriptor* find(std::string_view name);

bool available(const Descriptor& d, const Sources& s);
/// A scalar entry's value (label_count == 0).
std::uint64_t value(const Descriptor& d, const Sources& s);
/// A labelled entry's value for label index i.
std::uint64_t value(const Descriptor& d, const Sources& s, std::size_t i);

/// Calls visit(key, value) for every JSON key, in table order.
template <class F>
void for_each_json(const Sources& s, F&& visit) {
    for (const Descriptor& d : table()) {
        if (!d.in_json || !available(d, s)) continue;
        if (d.label_count == 0) {
            visit(std::string(d.name), value(d, s));
            continue;
        }
        for (std::size_t i = 0; i < d.label_count; ++i)
            visit(std::string(d.name) + "_" + std::string(d.label_value(i)), value(d, s, i));
    }
}


// Names the dashboard reads (the table uses the same constants): the
// capture, the proxy both ways, and its added latency (JSON only:
// Prometheus has the histogram).
inline constexpr std::string_view kPcapReceived = "pcap_received", kCapturedBytes = "captured_bytes",
                                  kKernelDrops = "kernel_drops", kInterfaceDrops = "interface_drops",
                                  kMalformed = "malformed";
inline constexpr std::string_view kToBackupPackets = "to_backup_packets", kToBackupBytes = "to_backup_bytes",
                                  kToClientPackets = "to_client_packets", kToClientBytes = "to_client_bytes";
inline constexpr std::string_view kLatencyToBackupP50 = "proxy_latency_to_backup_p50_ns",
                                  kLatencyToBackupP99 = "proxy_latency_to_backup_p99_ns",
                                  kLatencyToClientP50 = "proxy_latency_to_client_p50_ns",
                                  kLatencyToClientP99 = "proxy_latency_to_client_p99_ns";

}  // namespace counters
}  // namespace migware
