#pragma once
// A twin: the connection migware opens into the backup's stack for one
// client connection of the primary's (DESIGN.md §3), and everything the
// engine keeps about it. Its state is grouped by the part of the engine that
// owns it: recovery (the twin handshake), proxy (translation), close, and the
// fence of the primary's stale socket. The phase moves only through
// next_phase(), a pure function.

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "monitor/clock.hpp"
#include "rewrite/frame_rewrite.hpp"
#include "rewrite/translation.hpp"
#include "tracker/connection.hpp"

namespace migware {

enum class TwinPhase : std::uint8_t { Waiting, SynSent, Up, Closed, Failed };
std::string_view name_of(TwinPhase p);

/// What moves a twin from one phase to the next.
enum class TwinEvent : std::uint8_t {
    SynSent,         // its first SYN left (pacing reached it)
    Established,     // the backup's SYN-ACK was accepted
    Failed,          // no SYN-ACK after every try, or the backup refused
    Closed,          // both FINs passed, or a RST
};
std::string_view name_of(TwinEvent e);

/// The phase after `e`, or nullopt when `e` does not apply in `from` (the
/// caller ignores it). Connections opened after the failover start Up.
std::optional<TwinPhase> next_phase(TwinPhase from, TwinEvent e);

/// Why a tracked connection was not carried over.
enum class Unrecovered : std::uint8_t {
    HandshakeIncomplete,  // still opening when the primary died: the client retries its SYN
    HandshakeUnseen,      // first seen mid-stream: options and ISNs unknown
    Closing,              // a FIN was already exchanged
    NoSynAck,             // the backup never answered the twin SYN
    BackupRefused,        // the backup answered RST (no listener?)
    ReplyLost,            // aligned/full could not replay it, and reply bytes were in flight: reset
    ReplyNotSeenWhole,    // ... and migware did not see its reply whole (capture loss): reset
    RequestUnanswered,    // ... and the primary took a request it never answered: reset
    kCount,
};
std::string_view name_of(Unrecovered u);

/// Traffic through one twin (the control socket's view).
struct TwinView {
    std::uint16_t twin_port = 0;
    std::uint64_t to_backup_packets = 0;
    std::uint64_t to_client_packets = 0;
    std::uint64_t to_backup_bytes = 0;
    std::uint64_t to_client_bytes = 0;
    /// Issue 13: how it was replayed, and where the absorbed overlap stands.
    std::string_view replay = "push";  // push, aligned, full
    std::string_view overlap = "none";  // none, absorbing, verified, diverged
};

/// The primary's stale socket for a recovered connection, should it return.
enum class FenceState : std::uint8_t { None, Probing, Reset, Done, GaveUp };

struct Twin {
    tracker::FourTuple key;  // client <-> primary
    sniffer::Endpoint twin_src;  // IPp:q as the backup sees it
    sniffer::Endpoint backup;    // IPb:s
    std::optional<std::uint16_t> vlan;
    TwinPhase phase = TwinPhase::Waiting;
    bool direct = false;    // opened after failover: the client's own handshake, NAT only
    bool inferred = false;  // mid-stream pickup: options inferred, windows assumed
    bool released = false;  // mapping gone, slot free for reuse
    TwinView stats;

    /// The twin handshake and what it hands over (recovery.cpp).
    struct Recovery {
        rewrite::ObservedConnection observed;
        sniffer::SeqNum syn_seq;
        sniffer::SeqNum isn_b;
        std::uint16_t client_window = 0;  // the client's raw window at the takeover
        int syn_tries = 0;
        monitor::MonoNs deadline = 0;     // the next SYN retransmission
        Unrecovered failure = Unrecovered::kCount;  // set when phase == Failed
        std::vector<std::byte> unacked;               // client bytes [A, A + size) to replay
        std::vector<std::vector<std::byte>> queued;   // client frames waiting for the twin
        std::optional<sniffer::SeqNum> closing_fin;   // the client's FIN to hand over (closing)
    } recovery;

    /// Translation, and what the proxy has seen pass (proxy.cpp, rollback.cpp).
    struct Proxy {
        rewrite::Offsets offsets;
        rewrite::AddressMap map;
        sniffer::TsVal backup_tsval;  // latest TSval from the backup on this twin
        // Telling a primary that never died (issue 10): every client byte
        // migware has seen, contiguously, from the takeover on. A primary
        // that acknowledges past it received client bytes migware never saw:
        // the clients kept talking to it behind our back.
        sniffer::SeqNum client_contig;
        // The server's side: the highest byte the primary had sent by the
        // takeover, and the end of what the backup has sent the client since
        // (client space). A client ACK beyond both acknowledges bytes only a
        // living primary can have sent it.
        sniffer::SeqNum server_high;
        sniffer::SeqNum to_client_end;
        // What the backup's socket has received, to close it on a rollback.
        sniffer::SeqNum to_backup_end;
        std::optional<sniffer::SeqNum> backup_ack;
    } proxy;

    /// Aligned and full replay (issue 13, replay.cpp): the backup's bytes in
    /// [from, until) (client space) regenerate what the client already has.
    /// They are digested and acknowledged by migware, never forwarded; the
    /// digest must equal the primary's before anything from `until` on is.
    struct Replay {
        tracker::ReplayMode mode = tracker::ReplayMode::Push;
        bool absorbing = false;
        bool diverged = false;       // reset: nothing of it passes either way any more
        sniffer::SeqNum from;        // R0 (aligned) or the server's first byte (full)
        sniffer::SeqNum until;       // K
        sniffer::SeqNum digested;    // the backup's bytes digested up to here (client space)
        std::uint64_t digest = 0;    // of the backup's bytes [from, digested)
        std::uint64_t expected = 0;  // of the primary's bytes [from, until)
        std::vector<std::pair<sniffer::SeqNum, std::uint64_t>> checkpoints;  // (end, digest) inside
        std::size_t next_checkpoint = 0;
        monitor::MonoNs stall_at = 0;  // no progress by then: diverged
    } replay;

    /// The close, as both FINs pass through the proxy.
    struct Close {
        bool client_fin = false;
        bool backup_fin = false;
        bool final_ack_passed = false;  // the client's ACK of the backup's FIN went through
        sniffer::SeqNum client_fin_seq;
        sniffer::SeqNum backup_fin_seq;
        monitor::MonoNs closed_at = 0;
    } close;

    /// The primary's stale socket (recovered twins only; fence.cpp).
    struct Fence {
        FenceState state = FenceState::None;
        std::uint8_t tries = 0;
        monitor::MonoNs due = 0;         // its one pending fence action
        sniffer::SeqNum primary_rcv;     // the primary's last ACK: its receive point at the pull
        sniffer::SeqNum primary_una;     // the client's last ACK before the takeover
        std::uint32_t client_tsval = 0;  // the client's latest TSval (for the primary's PAWS)
        std::optional<sniffer::SeqNum> learnt_rcv;  // heard during the hold: reset it after
    } fence;
};

}  // namespace migware
