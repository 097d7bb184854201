#pragma once
// What the tracker knows about one client<->server TCP connection: everything
// recovery needs to build the twin handshake and the translation offsets
// (DESIGN.md §3), and nothing more.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include <vector>

#include "sniffer/net_types.hpp"
#include "tracker/byte_ring.hpp"
#include "tracker/stream_digest.hpp"

namespace migware::tracker {

using sniffer::Endpoint;
using sniffer::MacAddr;
using sniffer::SeqNum;

enum class TcpState : std::uint8_t { Handshake, Established, Closing, Closed };
std::string_view name_of(TcpState s);

/// A connection's identity, with roles: client is the side that opened it.
struct FourTuple {
    Endpoint client;
    Endpoint server;
    constexpr auto operator<=>(const FourTuple&) const = default;
};

/// A value the tracker may or may not have seen yet. Smaller than
/// std::optional for the 32-bit fields packed in Connection.
template <typename T>
using Seen = std::optional<T>;

/// How recovery hands a connection to the backup (issue 13, DESIGN.md §6b).
/// The mode is a property of the service: migware cannot tell a push stream
/// from a request the server has not answered yet, so the operator says.
enum class ReplayMode : std::uint8_t {
    Push,     // the twin starts at A: exact for client-push services (sensor collectors)
    Aligned,  // the twin starts at the current request (Q0), its reply aligned to R0
    Full,     // every client byte since the handshake is replayed (stateful sessions)
};
std::string_view name_of(ReplayMode m);
std::optional<ReplayMode> parse_replay_mode(std::string_view text);

/// Why a connection could not be replayed in its mode (recovery falls back
/// to the next weaker one: full -> aligned -> push).
enum class ReplayFallback : std::uint8_t {
    NoTurn,        // no request seen since the handshake (or since a restart)
    TurnNotHeld,   // the current request did not fit the buffer caps
    Pipelined,     // the client asked again before it had the whole reply (K before R0)
    DigestBroken,  // migware missed server bytes of the reply (capture loss, snaplen)
    NoMark,        // the client's ACK is not at a segment end migware saw
    NotFromStart,  // full: the first client bytes are not held (mid-stream, restored, over cap)
    kCount,
};
std::string_view name_of(ReplayFallback f);

/// Whether push is exact for a connection on an aligned or full port that
/// could not be replayed: only when the current turn's reply is known
/// complete (seen whole and acknowledged) or the connection was idle.
/// Anything else would leave the client waiting for bytes nobody sends, or
/// hand the backup half a request: such a connection is reset instead.
enum class PushRisk : std::uint8_t {
    None,               // exact: nothing of the conversation is missing
    ReplyInFlight,      // the client had not acknowledged every server byte sent
    ReplyNotSeenWhole,  // server bytes migware did not see (capture loss, snaplen)
    RequestUnanswered,  // a request the primary took and never answered, not held for the backup
};
struct PushCheck {
    PushRisk risk = PushRisk::None;
    std::string_view detail;  // one phrase for the log
};

/// The running digests of the server's stream up to one point of it.
struct DigestMark {
    SeqNum end;              // one past the last server byte covered
    std::uint64_t turn = 0;  // digest of [r0, end)
    std::uint64_t full = 0;  // digest of [server ISN + 1, end)
};

/// Request/reply boundaries (turns in the conversation, no protocol
/// knowledge) and digests of the server's stream: what aligned and full
/// recovery need. Allocated only for aligned and full connections, so that
/// push connections stay as small as before.
struct ReplayTrack {
    static constexpr std::size_t kMaxMarks = 16384;  // unacknowledged server segments remembered
    // Server segments that arrived ahead of a hole (a hub or a switch may
    // reorder by microseconds), held until the hole fills.
    static constexpr std::size_t kMaxEarlySegments = 64;
    static constexpr std::size_t kMaxEarlyBytes = 256u << 10;
    struct Early {
        SeqNum start;
        std::vector<std::byte> bytes;
    };
    bool full_held = false;       // the ring holds every client byte since the handshake
    Seen<SeqNum> q0;              // where the client's current request began
    Seen<SeqNum> r0;              // where the server's reply to it begins
    bool turn_held = false;       // the ring holds [q0, client_data_end)
    bool server_spoke_last = false;  // the newest data came from the server
    Seen<SeqNum> server_data_end;    // one past the server's highest data byte (no SYN/FIN)
    Seen<SeqNum> digest_end;      // server bytes digested, in order, up to here
    std::uint64_t h_turn = kDigestBasis;
    std::uint64_t h_full = kDigestBasis;
    bool turn_ok = false;         // h_turn covers [r0, digest_end) exactly
    bool full_ok = false;         // h_full covers [server ISN + 1, digest_end) exactly
    // Marks at the end of each server segment the client has not yet
    // acknowledged, plus the latest one it has (marks[marks_head]).
    std::vector<DigestMark> marks;
    std::uint32_t marks_head = 0;
    std::vector<Early> early;  // by start, not overlapping digest_end
    std::size_t early_bytes = 0;
    // Checkpoints of the digests every `checkpoint_every` bytes of the
    // server's stream, kept (unlike marks) after the client acknowledged
    // them: recovery compares the backup's bytes at each, so a reply that
    // differs early is reset early, not after megabytes. Thinned (every other
    // one dropped, the spacing doubled) beyond kMaxCheckpoints.
    static constexpr std::uint32_t kCheckpointEvery = 64u << 10;
    static constexpr std::size_t kMaxCheckpoints = 1024;
    std::vector<DigestMark> checkpoints;
    std::uint32_t checkpoint_every = kCheckpointEvery;
    std::uint32_t since_checkpoint = 0;
    std::size_t live_marks() const { return marks.size() - marks_head; }
};

/// Where a replayed twin starts and what its backup output must match.
struct ReplayPlan {
    ReplayMode mode = ReplayMode::Aligned;
    SeqNum client_from;   // the twin's first data byte (its SYN is one before)
    SeqNum server_from;   // the backup's first byte is aligned to it (D2 = ISNb + 1 - it)
    SeqNum until;         // K: the backup's bytes before it are absorbed, not forwarded
    std::uint64_t digest = kDigestBasis;  // of the primary's bytes [server_from, until)
    /// Digests of the primary's bytes [server_from, end) at points inside
    /// (server_from, until), in order: compared as the backup regenerates.
    std::vector<std::pair<SeqNum, std::uint64_t>> checkpoints;
};

/// What only the handshake shows: persisted so a restarted migware can still
/// recover connections opened before it started (tracker/snapshot).
struct HandshakeFacts {
    FourTuple key;
    SeqNum client_isn;
    SeqNum server_isn;
    std::optional<std::uint16_t> client_mss;
    std::optional<std::uint16_t> server_mss;
    std::optional<std::uint8_t> client_wscale;
    std::optional<std::uint8_t> server_wscale;
    bool client_sack = false;
    bool server_sack = false;
    bool client_ts = false;
    bool server_ts = false;
    MacAddr client_mac;
    MacAddr server_mac;
    std::optional<std::uint16_t> vlan;
    bool operator==(const HandshakeFacts&) const = default;
};

struct Connection {
    FourTuple key;
    std::uint64_t id = 0;  // creation order, for stable listings

    MacAddr client_mac;  // source MAC of client frames (a router's, if off-link)
    MacAddr server_mac;  // source MAC of server frames (until one is seen: client frames' dst)
    bool server_mac_from_server = false;
    std::optional<std::uint16_t> vlan;  // 802.1Q TCI the client's frames carried

    TcpState state = TcpState::Handshake;
    bool partial = false;  // first seen mid-stream: no client SYN observed
    bool rst_seen = false;

    // Handshake facts (RFC 9293 §3.4, RFC 7323, RFC 2018).
    Seen<SeqNum> client_isn;
    Seen<SeqNum> server_isn;
    Seen<std::uint16_t> client_mss;
    Seen<std::uint16_t> server_mss;
    Seen<std::uint8_t> client_wscale_offered;
    Seen<std::uint8_t> server_wscale_offered;
    bool client_sack_offered = false;
    bool server_sack_offered = false;
    bool client_ts_offered = false;
    bool server_ts_offered = false;

    // Acknowledgement points: A (DESIGN.md §3) is server_ack_high, K is client_ack_high.
    Seen<SeqNum> server_ack_high;  // A: first client byte the server has not acked
    Seen<SeqNum> client_ack_high;  // K: next server byte the client expects
    Seen<SeqNum> client_seq_next;  // one past the highest client sequence sent (SYN/FIN count)
    Seen<SeqNum> server_seq_next;
    Seen<SeqNum> client_data_end;  // one past the highest client data byte (no SYN/FIN)
    Seen<SeqNum> client_fin_seq;   // sequence number the client's FIN occupies
    Seen<SeqNum> server_fin_seq;
    Seen<std::uint32_t> client_tsval_high;  // RFC 7323 TSval, serial order
    Seen<std::uint32_t> server_tsval_high;
    std::uint16_t client_window = 0;  // last raw window field from each side
    std::uint16_t server_window = 0;
    std::uint16_t max_server_payload = 0;  // largest segment the client accepted (MSS guess)
    bool restored = false;  // handshake facts came from a snapshot, not the wire
    /// Known only from the snapshot: no segment of it seen since the restart.
    bool silent_since_restore() const { return restored && !client_seq_next && !server_seq_next; }

    std::int64_t first_seen_ns = 0;
    std::int64_t last_seen_ns = 0;
    std::int64_t closed_at_ns = 0;

    // Client bytes in [unacked_base, unacked_base + unacked.size()) held for
    // replay into the backup. Trimmed as A advances (push), as a new request
    // begins (aligned), never (full).
    SeqNum unacked_base;
    bool unacked_base_set = false;
    bool buffer_overflowed = false;  // a cap refused bytes still unacknowledged
    ByteRing unacked;
    // Issue 13: the replay mode in effect (a full session over its cap falls
    // back to aligned), and its state: null for push, and once closed.
    ReplayMode replay_mode = ReplayMode::Push;
    std::unique_ptr<ReplayTrack> replay;

    // Intrusive list links (table-internal): LRU for open, FIFO for closed.
    std::uint32_t prev = 0;
    std::uint32_t next = 0;

    /// The facts to persist; nullopt until both SYN and SYN-ACK were seen.
    std::optional<HandshakeFacts> handshake_facts() const;

    /// Each option is "in use" only when both SYN and SYN-ACK offered it.
    bool handshake_seen() const { return client_isn.has_value() && server_isn.has_value(); }
    bool sack_in_use() const { return client_sack_offered && server_sack_offered; }
    bool timestamps_in_use() const { return client_ts_offered && server_ts_offered; }
    bool wscale_in_use() const {
        return client_wscale_offered.has_value() && server_wscale_offered.has_value();
    }
    /// Shift in effect; RFC 7323 §2.3 caps it at 14.
    std::uint8_t client_wscale() const;
    std::uint8_t server_wscale() const;

    /// Client data bytes the server acknowledged (FIN excluded); nullopt if unknown.
    std::optional<std::uint32_t> client_bytes_acked() const;
    std::optional<std::uint32_t> server_bytes_acked() const;

    /// Bytes in [A, client_data_end): sent, seen, not yet acknowledged.
    std::uint32_t unacked_in_flight() const;
    /// True when the ring holds exactly [A, client_data_end): recovery can
    /// hand the backup every byte the primary never acknowledged.
    bool can_replay_unacked() const;
    /// True when the ring holds exactly [from, client_data_end).
    bool holds_from(SeqNum from) const;
    /// How to replay this connection in `mode` (aligned or full), or why it
    /// cannot be (then `why` is set).
    std::optional<ReplayPlan> replay_plan(ReplayMode mode, ReplayFallback& why) const;
    /// When no plan can be made: whether push (the twin at A, the backup's
    /// bytes forwarded as they come) would still hand the connection over
    /// exactly, or why not. `capture_lost_after_last_frame`: the capture lost
    /// frames after this connection's last captured one, so its reply may
    /// have gone on unseen.
    PushCheck push_check(bool capture_lost_after_last_frame) const;
};

}  // namespace migware::tracker

template <>
struct std::hash<migware::tracker::FourTuple> {
    std::size_t operator()(const migware::tracker::FourTuple& t) const noexcept {
        std::uint64_t a = (std::uint64_t{t.client.ip.value} << 16) | t.client.port.value;
        std::uint64_t b = (std::uint64_t{t.server.ip.value} << 16) | t.server.port.value;
        std::uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x7f4a7c159e3779b9ull + (a << 6));
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ull;
        return static_cast<std::size_t>(h ^ (h >> 32));
    }
};
