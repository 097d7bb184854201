#pragma once
// The daemon's configuration: command line and INI-style file, one set of
// keys (Boost.Program_options). Validation errors are one clear line.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "migware/event_log.hpp"
#include "migware/failover.hpp"
#include "monitor/icmp_monitor.hpp"
#include "monitor/service_probe.hpp"

namespace migware {

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct DaemonConfig {
    std::string interface = "eth0";
    Ipv4Addr primary;
    Ipv4Addr backup;
    std::vector<std::uint16_t> ports;
    std::string tun_name = "mw0";
    monitor::MonitorConfig monitor;
    // Segment evidence (issue 10): a host on the segment that answers echo
    // (a gateway, a witness). Optional: its replies count as evidence.
    std::optional<Ipv4Addr> reference;
    bool neighbour_probe = true;  // ARP to recently heard hosts when evidence is wanted
    bool service_probe = false;  // TCP probe of the first --port beside ICMP
    monitor::ServiceProbeConfig probe;
    FailoverConfig failover;      // primary/backup/ports copied in by parse
    bool check_only = false;      // --check-config
    int capture_buffer_mb = 128;  // BENCHMARKS.md "Capture": 32 dropped frames on a busy machine
    int capture_batch = 256;  // frames per pcap_dispatch: bounds one loop turn (ARP is read between)
    std::string control_socket = "/run/migware/control.sock";  // empty: no control socket
    std::string control_group;                                  // empty: the daemon's group
    std::string state_file = "/var/lib/migware/snapshot";      // empty: no restart snapshot
    // Membership (issue 12): who may act for the primary's IP.
    enum class Membership : std::uint8_t { Standalone, Corosync };
    Membership membership = Membership::Standalone;
    std::uint32_t membership_priority = 0;  // 0 is the most preferred
    std::string membership_group = "migware";
    int membership_lease_ms = 300;          // corosync only: an active member's lease
    Fields summary;               // what was configured (the start event's fields)
    // Settings that work but may not do what was meant (a replay mode that
    // does not fit the buffer caps, a deprecated key): --check-config prints
    // them, the daemon logs them at start.
    std::vector<std::string> warnings;
};

/// Parses argv (without the program name). Returns nullopt after printing
/// --help. Throws ConfigError with one line on any problem.
std::optional<DaemonConfig> parse_daemon_config(const std::vector<std::string>& args);

}  // namespace migware
