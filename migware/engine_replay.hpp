#pragma once
// `migware replay FILE --failover-at T`: the real FailoverEngine over a
// capture, on packet time (issue 11 item 6).
//
// The clock is the capture: `now` is each frame's pcap timestamp (ns since the
// epoch; never earlier than the previous event, so a capture whose timestamps
// step back cannot run the engine's time backwards). The engine's timers are
// fired in order between frames, and after the last frame until nothing is
// due, at most `drain` of packet time past the end. The failure is given, not
// detected: primary_down(T) is called at T and the monitor plays no part.
//
// What the engine would send goes to vector links that stamp every packet
// with the packet-time `now`; nothing touches a kernel. The engine is used
// only through its public API (constructor, on_capture, on_backup_packet,
// on_timer, next_deadline, primary_down, counters, state, for_each_connection).

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "migware/failover.hpp"
#include "sniffer/packet_source.hpp"

namespace migware {

/// When the primary fails: seconds after the first packet of the client-side
/// capture ("2.5"), or an absolute pcap timestamp in seconds since the epoch
/// ("@1764630000.123456789"). Nanosecond precision in both forms.
struct FailoverInstant {
    bool absolute = false;
    std::int64_t ns = 0;
    /// nullopt unless `text` is [@]DIGITS[.DIGITS], at most 9 fraction digits.
    static std::optional<FailoverInstant> parse(std::string_view text);
};

struct EngineReplayOptions {
    FailoverConfig engine;            // primary, backup, ports, MAC, table... as the daemon has it
    FailoverInstant failover_at;
    MonoNs drain = 10'000 * monitor::kMillisecond;  // timers fired this long past the last packet
    // Feed the engine only what the daemon's captures would have given it:
    // its two BPF filters (sniffer::capture_filter and arp_capture_filter)
    // and, when engine.backup_mac is set, inbound frames only (the daemon
    // captures with PCAP_D_IN, so frames sent from this host's MAC are never
    // seen; a capture of the whole segment, such as the lab's br0, has them).
    bool daemon_filter = true;
};

/// One packet a link was asked to send, stamped with packet time.
struct SentPacket {
    MonoNs at = 0;
    std::vector<std::byte> bytes;
};

/// One event the engine logged.
struct LoggedEvent {
    MonoNs at = 0;
    std::string event;
    std::string fields;  // logfmt
};

/// The replay's own accounting of its inputs (not the engine's counters).
struct ReplayInputCounters {
    std::uint64_t frames = 0;            // frames read from the client-side capture
    std::uint64_t fed = 0;               // ... handed to on_capture
    std::uint64_t skipped_outbound = 0;  // ... sent from engine.backup_mac (daemon: PCAP_D_IN)
    std::uint64_t skipped_filter = 0;    // ... outside the daemon's capture filters
    std::uint64_t backup_frames = 0;     // packets read from the backup-side capture
    std::uint64_t backup_fed = 0;        // ... handed to on_backup_packet (IPv4 to the primary)
    std::uint64_t backup_skipped = 0;    // ... not IPv4 toward the primary's IP (e.g. our writes)
    std::uint64_t time_steps_back = 0;   // timestamps earlier than the event before (clamped)
    std::uint64_t timer_calls = 0;       // on_timer calls
};

struct EngineReplayResult {
    bool ok = true;                  // false: a read error, or the engine's timers never advanced
    std::string error;               // one line when !ok
    MonoNs first_packet = 0;         // pcap time of the first client-side frame (0: none)
    MonoNs failover_at = 0;          // packet time primary_down was called at
    bool failed_over = false;        // primary_down was called (always, unless !ok early)
    MonoNs end = 0;                  // packet time of the last event handled
    std::vector<SentPacket> to_client;  // Ethernet frames for the wire
    std::vector<SentPacket> to_backup;  // IPv4 packets into the backup's stack
    std::vector<LoggedEvent> events;
    ReplayInputCounters input;
    State final_state = State::Normal;
    MonoNs final_state_since = 0;
    std::vector<std::string> connection_lines;  // one per tracked connection, creation order
    std::vector<std::string> counter_lines;     // "name=value", stable order
};

/// Runs the engine over `capture` (what the backup's capture interface saw)
/// and, if given, `backup_capture` (IP packets the backup's stack sent toward
/// the primary's IP), interleaved by time. At equal times: due timers, then
/// the client-side frame, then the backup-side packet, then the failover.
EngineReplayResult run_engine_replay(sniffer::PacketSource& capture,
                                     sniffer::PacketSource* backup_capture,
                                     const EngineReplayOptions& options);

/// Writes a classic pcap file (nanosecond timestamps, little-endian, so the
/// bytes are the same on every host). `linktype` is a LINKTYPE_* value.
/// Throws std::runtime_error with one line if the file cannot be written.
inline constexpr std::uint32_t kLinktypeEthernet = 1;
inline constexpr std::uint32_t kLinktypeRaw = 101;
void write_pcap(const std::string& path, std::uint32_t linktype, const std::vector<SentPacket>& packets);
/// The same bytes, into a string (tests).
std::string pcap_bytes(std::uint32_t linktype, const std::vector<SentPacket>& packets);

/// The stable text report, one line each:
///   replay ...              the inputs and the replay's own counters
///   transition t=+S ...     every state change, with the engine's fields
///   frame n=N to=client|backup t=+S len=L fnv=H <decode>   (only if list_frames)
///   connection n=N ...      every tracked connection and its failover phase
///   state final=... since=+S
///   counter name=value      every engine counter
/// Times are seconds after the first client-side frame, 9 decimals.
void print_engine_replay(std::ostream& out, const EngineReplayResult& r, bool list_frames);

}  // namespace migware
