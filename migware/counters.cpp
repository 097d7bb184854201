#include "migware/counters.hpp"

#include <array>

#include "migware/failover.hpp"
#include "migware/latency.hpp"
#include "monitor/icmp_monitor.hpp"
#include "monitor/service_probe.hpp"
#include "sniffer/live_capture.hpp"

namespace migware::counters {

namespace {

using S = const Sources&;
using FC = FailoverCounters;

constexpr std::size_t kStates = 3;
constexpr std::size_t kPhases = 5;
constexpr std::array<std::string_view, 4> kCaptureLossReasons{"kernel", "interface", "client_stream_hole",
                                                              "server_stream_hole"};

const sniffer::ParseCounters& parse(S s) { return s.engine->pipeline().parse_counters(); }
const tracker::TableCounters& table_counters(S s) { return s.engine->pipeline().table().counters(); }

constexpr Descriptor engine(std::string_view name, std::uint64_t FC::*field, std::string_view help,
                            Unit unit = Unit::None) {
    return {.name = name, .help = help, .unit = unit, .source = Source::Engine, .field = field};
}
constexpr Descriptor counter(std::string_view name, Source source, Reader read, std::string_view help,
                             Unit unit = Unit::None) {
    return {.name = name, .help = help, .unit = unit, .source = source, .read = read};
}
constexpr Descriptor gauge(std::string_view name, Source source, Reader read, std::string_view help,
                           Unit unit = Unit::None) {
    return {.name = name, .help = help, .kind = Kind::Gauge, .unit = unit, .source = source, .read = read};
}

/// A labelled family: one value per label value.
constexpr Descriptor family(std::string_view name, Source source, std::string_view label, std::size_t count,
                            LabelName value, LabelledReader read, std::string_view help,
                            std::string_view metric = {}, Kind kind = Kind::Counter) {
    return {.name = name, .help = help, .kind = kind, .source = source, .label = label,
            .label_count = count, .label_value = value, .read_at = read, .metric = metric};
}
constexpr Descriptor metrics_only(Descriptor d) {
    d.in_json = false;
    return d;
}
constexpr Descriptor json_only(Descriptor d) {
    d.in_metrics = false;
    return d;
}

std::uint64_t b(bool v) { return v ? 1 : 0; }

const Descriptor kTable[] = {
    // ---- the state machine (Prometheus only: status carries them as text)
    metrics_only(family(
        "state", Source::Engine, "state", kStates, [](std::size_t i) { return name_of(static_cast<State>(i)); },
        [](S s, std::size_t i) { return b(static_cast<std::size_t>(s.engine->state()) == i); },
        "1 for the current state of the failover state machine", "state", Kind::Gauge)),
    metrics_only(gauge("primary_up", Source::Monitor, [](S s) { return b(s.monitor->health() == monitor::Health::Up); },
                       "1 when the monitor's last verdict is that the primary answers")),
    // ---- capture and parsing
    counter("frames_captured", Source::Engine, [](S s) { return parse(s).frames; },
            "captured frames handed to migware"),
    counter(kCapturedBytes, Source::Engine, [](S s) { return parse(s).bytes; },
            "bytes of the captured frames", Unit::Bytes),
    counter(kPcapReceived, Source::Capture, [](S s) { return s.capture->received; },
            "frames the kernel's capture received (pcap ps_recv)"),
    counter(kKernelDrops, Source::Capture, [](S s) { return s.capture->dropped_kernel; },
            "frames the kernel dropped for want of capture buffer (pcap ps_drop)"),
    counter(kInterfaceDrops, Source::Capture, [](S s) { return s.capture->dropped_interface; },
            "frames the interface dropped (pcap ps_ifdrop)"),
    // One family for every sign of capture loss, by where it shows: the
    // kernel's and the interface's counters, and holes the tracker found in
    // a stream (client data past bytes never captured; on aligned and full
    // ports, server bytes never captured).
    metrics_only(family(
        "capture_loss", Source::Capture, "reason", kCaptureLossReasons.size(),
        [](std::size_t i) { return kCaptureLossReasons[i]; },
        [](S s, std::size_t i) -> std::uint64_t {
            switch (i) {
                case 0: return s.capture->dropped_kernel;
                case 1: return s.capture->dropped_interface;
                case 2: return table_counters(s).buffer_gaps;
                default: return table_counters(s).replay_digest_gaps;
            }
        },
        "signs that the capture lost frames, by where they show: a reply in flight at a failure "
        "whose frames were lost is reset, not replayed",
        "capture_loss_total")),
    counter("tcp_segments", Source::Engine, [](S s) { return parse(s).kind(sniffer::PacketKind::Tcp); },
            "captured TCP segments"),
    counter("arp_frames", Source::Engine, [](S s) { return parse(s).kind(sniffer::PacketKind::Arp); },
            "captured ARP frames"),
    json_only(counter(kMalformed, Source::Engine, [](S s) { return parse(s).malformed(); },
                      "captured frames dropped as malformed, all reasons")),
    family("malformed", Source::Engine, "reason", sniffer::kDropReasonCount,
           [](std::size_t i) { return sniffer::name_of(static_cast<sniffer::DropReason>(i)); },
           [](S s, std::size_t i) { return parse(s).dropped[i]; },
           "captured frames dropped as malformed, by reason", "malformed_packets_total"),
    engine("tcp_bad_checksum", &FC::tcp_bad_checksum,
           "captured TCP segments whose checksum failed: dropped, neither tracked nor proxied"),
    // ---- proxying
    engine(kToBackupPackets, &FC::to_backup, "client packets translated into the backup"),
    engine(kToBackupBytes, &FC::to_backup_bytes, "bytes of the client packets translated into the backup",
           Unit::Bytes),
    engine(kToClientPackets, &FC::to_client, "backup packets translated onto the wire"),
    engine(kToClientBytes, &FC::to_client_bytes, "bytes of the backup packets translated onto the wire",
           Unit::Bytes),
    // ---- recovery
    engine("twins", &FC::twins, "twin connections opened into the backup"),
    engine("recovered", &FC::recovered, "connections carried over to the backup"),
    engine("gone_before_failure", &FC::gone_before_failure,
           "connections known only from the snapshot, silent since the restart, at the takeover: "
           "gone before the failure, not lost at it (expired_idle and expired_closed are the others)"),
    engine("twins_inferred", &FC::twins_inferred, "twins whose options were inferred (handshake never seen)"),
    engine("twins_restored", &FC::twins_restored, "twins whose handshake facts came from the snapshot"),
    family("unrecovered", Source::Engine, "reason", static_cast<std::size_t>(Unrecovered::kCount),
           [](std::size_t i) { return name_of(static_cast<Unrecovered>(i)); },
           [](S s, std::size_t i) { return s.engine->counters().unrecovered[i]; },
           "connections not carried over, by reason", "unrecovered_connections_total"),
    // twin handshakes, and what they handed over
    engine("syn_sent", &FC::syn_sent, "twin SYNs sent into the backup"),
    engine("syn_retransmitted", &FC::syn_retransmitted, "twin SYNs sent again"),
    engine("replayed_bytes", &FC::replayed_bytes, "unacknowledged client bytes handed to the backup",
           Unit::Bytes),
    engine("replay_incomplete", &FC::replay_incomplete, "twins whose held bytes did not cover what was unacknowledged"),
    // aligned and full replay (issue 13)
    engine("replay_aligned", &FC::replay_aligned,
           "twins started at the client's current request, the backup's reply aligned with the primary's"),
    engine("replay_full", &FC::replay_full, "twins fed every client byte since the handshake"),
    engine("replay_full_as_aligned", &FC::replay_full_as_aligned,
           "full replay wanted, aligned done (the reason is in replay_fallback)"),
    engine("replay_as_push", &FC::replay_as_push,
           "aligned or full replay wanted, push done (the reason is in replay_fallback)"),
    family("replay_fallback", Source::Engine, "reason", static_cast<std::size_t>(tracker::ReplayFallback::kCount),
           [](std::size_t i) { return tracker::name_of(static_cast<tracker::ReplayFallback>(i)); },
           [](S s, std::size_t i) { return s.engine->counters().replay_fallback[i]; },
           "steps down from the configured replay mode at a takeover, by reason", "replay_fallback_total"),
    engine("replay_absorbed_bytes", &FC::replay_absorbed_bytes,
           "backup bytes the client already had: digested and acknowledged by migware, not forwarded",
           Unit::Bytes),
    engine("replay_verified", &FC::replay_verified,
           "replayed twins whose regenerated bytes matched the primary's (digest)"),
    engine("replay_diverged", &FC::replay_diverged,
           "replayed twins whose regenerated bytes differed from the primary's: client and twin reset"),
    engine("replay_client_resets", &FC::replay_client_resets,
           "RSTs sent to clients at their exact receive point: replies that diverged or were lost in flight"),
    engine("reset_answers", &FC::reset_answers,
           "of those, RSTs answering a reset client's segment at its ACK number (it held more than migware saw)"),
    engine("replayed_fins", &FC::replayed_fins, "closing connections whose client FIN was handed over"),
    // ---- proxying: held, refused, new
    engine("queued_frames", &FC::queued_frames, "client frames held during Recovery"),
    engine("queue_overflow", &FC::queue_overflow, "client frames dropped because a twin's queue was full"),
    engine("send_errors", &FC::send_errors, "packets a link refused"),
    engine("frames_withheld", &FC::frames_withheld,
           "frames for the wire held back while this member may not act (membership): not sent, not errors"),
    engine("rewrite_errors", &FC::rewrite_errors, "frames the rewriter refused"),
    engine("backup_unknown", &FC::backup_unknown, "backup packets for no twin"),
    engine("backup_not_tcp", &FC::backup_not_tcp, "non-TCP packets from the backup's stack toward the primary"),
    // client packets of what was not carried over, and connections opened since
    engine("client_unrecovered", &FC::client_unrecovered, "client packets of connections not carried over"),
    engine("new_connections", &FC::new_connections, "SYNs after the failover, carried to the backup"),
    engine("new_connections_unserved", &FC::new_connections_unserved,
           "SYNs after the failover that could not be carried (primary's MAC unknown)"),
    engine("new_connections_to_primary", &FC::new_connections_to_primary,
           "new connections left to a returning primary (policy)"),
    // speaking for the primary's IP
    engine("primary_packets_in_proxy", &FC::primary_packets_in_proxy, "packets from the primary while proxying"),
    engine("arp_replies", &FC::arp_replies, "ARP replies sent for the primary's IP"),
    engine("gratuitous_arps", &FC::gratuitous_arps, "gratuitous ARPs sent for the primary's IP"),
    engine("closed", &FC::closed, "twins closed"),
    // ---- a returning primary
    engine("relayed_to_primary", &FC::relayed_to_primary, "client frames relayed to a returning primary (policy)"),
    engine("arp_reasserted", &FC::arp_reasserted, "times the primary claimed its IP again and was answered"),
    engine("own_frames", &FC::own_frames, "this host's own frames, copied back by a mirror port"),
    // the fence of its stale sockets
    engine("fence_rounds", &FC::fence_rounds, "times the primary was heard and fencing began"),
    engine("fence_probes", &FC::fence_probes, "already-acknowledged bytes sent to stale sockets"),
    engine("fence_resets", &FC::fence_resets, "RSTs sent at a stale socket's exact rcv_nxt"),
    engine("fenced", &FC::fenced, "stale sockets confirmed gone"),
    engine("fence_gave_up", &FC::fence_gave_up, "stale sockets that never answered a probe"),
    gauge("stale_unfenced", Source::Engine, [](S s) { return static_cast<std::uint64_t>(s.engine->stale_unfenced()); },
          "stale sockets on the primary not yet confirmed gone"),
    // what the primary sends meanwhile
    engine("stale_segments", &FC::stale_segments, "segments from the primary's stale sockets"),
    engine("primary_fed", &FC::primary_fed, "unsolicited ARP replies to the primary with the clients' MACs"),
    engine("primary_resets_seen", &FC::primary_resets_seen, "RSTs from the primary sent to a client's MAC"),
    engine("primary_resets_caught", &FC::primary_resets_caught, "RSTs from the primary sent to this host's MAC instead"),
    engine("closed_acks_dropped", &FC::closed_acks_dropped, "bare client ACKs after a complete close, dropped"),
    // ---- the connection table
    // Prometheus: migware_connections{phase}, whose sum this is.
    json_only(gauge("connections", Source::Engine,
                    [](S s) { return static_cast<std::uint64_t>(s.engine->pipeline().table().size()); },
                    "connections known to the tracker")),
    family("phase", Source::Phases, "phase", kPhases, [](std::size_t i) { return name_of(static_cast<Phase>(i)); },
           [](S s, std::size_t i) { return s.phase_counts[i]; },
           "connections known to the tracker, by failover phase", "connections", Kind::Gauge),
    counter("connections_created", Source::Engine, [](S s) { return table_counters(s).created; },
            "connections the tracker created"),
    counter("connections_partial", Source::Engine, [](S s) { return table_counters(s).created_partial; },
            "connections first seen mid-stream"),
    // gone before the failure: evicted (table full) or expired
    counter("evicted_closed", Source::Engine, [](S s) { return table_counters(s).evicted_closed; },
            "closed connections removed to make room (table full)"),
    counter("evicted_idle", Source::Engine, [](S s) { return table_counters(s).evicted_idle; },
            "least recently seen connections removed to make room (table full)"),
    counter("expired_closed", Source::Engine, [](S s) { return table_counters(s).expired_closed; },
            "connections removed after their closed linger"),
    counter("expired_idle", Source::Engine, [](S s) { return table_counters(s).expired_idle; },
            "connections removed after the idle timeout"),
    // held client bytes
    gauge("buffered_bytes", Source::Engine, [](S s) { return table_counters(s).buffered_bytes; },
          "unacknowledged client bytes held", Unit::Bytes),
    counter("buffer_refused_per_connection", Source::Engine,
            [](S s) { return table_counters(s).buffer_cap_per_connection; },
            "client segments not held: the per-connection buffer cap"),
    counter("buffer_refused_global", Source::Engine, [](S s) { return table_counters(s).buffer_cap_global; },
            "client segments not held: the global buffer cap"),
    counter("replay_turns", Source::Engine, [](S s) { return table_counters(s).replay_turns; },
            "requests begun (client turns) on aligned and full connections"),
    counter("replay_digested_bytes", Source::Engine, [](S s) { return table_counters(s).replay_digested_bytes; },
            "server bytes digested as they passed (aligned and full)", Unit::Bytes),
    counter("replay_digest_gaps", Source::Engine, [](S s) { return table_counters(s).replay_digest_gaps; },
            "server bytes migware missed: that reply cannot be checked, so not replayed"),
    counter("replay_reordered", Source::Engine, [](S s) { return table_counters(s).replay_reordered; },
            "server segments that arrived ahead of a hole, held and digested once it filled"),
    counter("replay_full_over_cap", Source::Engine, [](S s) { return table_counters(s).replay_full_over_cap; },
            "full-replay connections over a buffer cap: aligned from then on"),
    counter("replay_request_over_cap", Source::Engine,
            [](S s) { return table_counters(s).replay_request_over_cap; },
            "requests over a buffer cap: not replayable (push for them)"),
    counter("synack_unseen", Source::Engine, [](S s) { return table_counters(s).synack_unseen; },
            "connections whose data showed them established though the capture never had their SYN-ACK "
            "(recovered with inferred options)"),
    counter("capture_gaps", Source::Engine, [](S s) { return table_counters(s).buffer_gaps; },
            "client data after bytes the capture missed"),
    counter("client_retransmissions", Source::Engine, [](S s) { return table_counters(s).client_retransmissions; },
            "client data segments at or below its highest sequence number"),
    // ---- the monitor
    counter("probes_sent", Source::Monitor, [](S s) { return s.monitor->sent(); }, "echo probes sent to the primary"),
    counter("probe_replies", Source::Monitor, [](S s) { return s.monitor->replies(); }, "echo replies from the primary"),
    counter("arp_probes", Source::Monitor, [](S s) { return s.monitor->arp_probes(); },
            "ARP requests to the primary while its echo went unanswered (the second level)"),
    engine("primary_arp_frames", &FC::primary_arp_frames,
           "ARP frames from the primary (its IP and MAC): alive, whatever it does with ICMP"),
    metrics_only(gauge("primary_never_answered", Source::Monitor,
                       [](S s) { return b(s.monitor->never_answered()); },
                       "1 while the primary has answered neither echo nor ARP since the start: never "
                       "judged down, no takeover")),
    counter("probe_rejected", Source::Monitor, [](S s) { return s.monitor->rejected_replies(); },
            "echo replies refused (wrong id, sequence or payload)"),
    counter("probe_late", Source::Monitor, [](S s) { return s.monitor->late_replies(); },
            "echo replies after their timeout"),
    counter("probe_duplicates", Source::Monitor, [](S s) { return s.monitor->duplicate_replies(); },
            "echo replies seen twice"),
    // silences not taken for a dead primary (issue 10)
    counter("monitor_vetoes", Source::Monitor, [](S s) { return s.monitor->vetoes(); },
            "silences whose Down verdict was withheld, all reasons"),
    family("monitor_vetoes", Source::Monitor, "reason", monitor::kVetoCount,
           [](std::size_t i) { return monitor::name_of(static_cast<monitor::Veto>(i)); },
           [](S s, std::size_t i) { return s.monitor->vetoes(static_cast<monitor::Veto>(i)); },
           "silences whose Down verdict was withheld for this reason"),
    gauge("carrier_up", Source::Monitor, [](S s) { return b(s.monitor->carrier_up()); },
          "1 while the capture interface has carrier"),
    counter("carrier_losses", Source::Monitor, [](S s) { return s.monitor->carrier_losses(); },
            "times the capture interface lost carrier"),
    // evidence that the segment is alive
    engine("segment_frames", &FC::segment_frames, "frames from hosts other than the primary and this one"),
    counter("segment_probes", Source::Monitor, [](S s) { return s.monitor->segment_probes(); },
            "times the monitor asked the segment for evidence"),
    engine("segment_arp_probes", &FC::segment_arp_probes, "ARP requests to known neighbours for evidence"),
    engine("echo_answered", &FC::echo_answered, "echo requests for the primary's IP answered in Proxy"),
    // a primary that never died
    engine("rollbacks", &FC::rollbacks, "takeovers of a primary that never died, undone"),
    engine("rollback_twins_reset", &FC::rollback_twins_reset, "twins closed inside the backup's stack by a rollback"),
    engine("stood_down", &FC::stood_down, "takeovers given up because another member of the group acts (membership)"),
    engine("progress_after_fence", &FC::progress_after_fence, "a primary's progress seen after fence RSTs: no rollback"),
    engine("takeovers_settled", &FC::takeovers_settled,
           "takeovers past their rollback window (client frames heard 500 ms with no proof of life, or the "
           "fence acted): no rollback from then on"),
    engine("life_after_settled", &FC::life_after_settled,
           "signs of a living primary after the takeover settled: fenced as a returning primary, not rolled back"),
    engine("rollback_unconfirmed", &FC::rollback_unconfirmed,
           "client ACKs of server bytes migware never saw while the capture lost frames: no rollback on them"),
    engine("client_beyond_hole", &FC::client_beyond_hole,
           "client segments starting past what migware saw, before the takeover settled: not proxied"),
    // the service probe
    counter("service_probes", Source::Service, [](S s) { return s.service->sent(); },
            "TCP connects to the primary's service"),
    counter("service_probes_refused", Source::Service, [](S s) { return s.service->refused(); },
            "TCP connects to the primary's service refused"),
    // ---- the control socket
    counter("control_accepted", Source::Control, [](S s) { return s.control->accepted; },
            "control connections accepted"),
    counter("control_refused", Source::Control, [](S s) { return s.control->refused_peer; },
            "control connections refused (peer credentials, too many clients)"),
    counter("control_requests", Source::Control, [](S s) { return s.control->requests; }, "control requests"),
    // clients cut off
    counter("control_slow_disconnects", Source::Control, [](S s) { return s.control->slow_disconnects; },
            "control clients cut off for not reading their replies"),
    counter("control_oversize_requests", Source::Control, [](S s) { return s.control->oversize_requests; },
            "control request lines over the length limit"),
    gauge("control_clients", Source::Control, [](S s) { return s.control->active; }, "connected control clients"),
    // ---- latency percentiles: JSON only; Prometheus gets the histogram
    // migware_proxy_latency_seconds{direction} (control/metrics.cpp).
    json_only(gauge(kLatencyToBackupP50, Source::Latency,
                    [](S s) { return static_cast<std::uint64_t>(s.to_backup_latency->quantile(0.5)); },
                    "median client->backup processing time, recent packets", Unit::Nanoseconds)),
    json_only(gauge(kLatencyToBackupP99, Source::Latency,
                    [](S s) { return static_cast<std::uint64_t>(s.to_backup_latency->quantile(0.99)); },
                    "p99 client->backup processing time, recent packets", Unit::Nanoseconds)),
    json_only(gauge(kLatencyToClientP50, Source::Latency,
                    [](S s) { return static_cast<std::uint64_t>(s.to_client_latency->quantile(0.5)); },
                    "median backup->client processing time, recent packets", Unit::Nanoseconds)),
    json_only(gauge(kLatencyToClientP99, Source::Latency,
                    [](S s) { return static_cast<std::uint64_t>(s.to_client_latency->quantile(0.99)); },
                    "p99 backup->client processing time, recent packets", Unit::Nanoseconds)),
};

}  // namespace

std::span<const Descriptor> table() { return kTable; }

const Descriptor* find(std::string_view name) {
    for (const Descriptor& d : kTable)
        if (d.name == name) return &d;
    return nullptr;
}

bool available(const Descriptor& d, const Sources& s) {
    if (s.engine == nullptr) return false;
    switch (d.source) {
        case Source::Engine: return true;
        case Source::Monitor: return s.monitor != nullptr;
        case Source::Capture: return s.capture != nullptr;
        case Source::Control: return s.control != nullptr;
        case Source::Service: return s.service != nullptr;
        case Source::Latency: return s.to_backup_latency != nullptr && s.to_client_latency != nullptr;
        case Source::Phases: return s.phase_counts != nullptr;
    }
    return false;
}

std::uint64_t value(const Descriptor& d, const Sources& s) {
    if (d.field != nullptr) return s.engine->counters().*d.field;
    return d.read != nullptr ? d.read(s) : 0;
}

std::uint64_t value(const Descriptor& d, const Sources& s, std::size_t i) {
    return d.read_at != nullptr && i < d.label_count ? d.read_at(s, i) : 0;
}

}  // namespace migware::counters
