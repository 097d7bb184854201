#pragma once
// What the tracker knows about one client<->server TCP connection: everything
// recovery needs to build the twin handshake and the translation offsets
// (DESIGN.md §3), and nothing more.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>

#include "sniffer/net_types.hpp"
#include "tracker/byte_ring.hpp"

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
    // B: client_data_end when the server last sent data. Client bytes after it
    // have not been answered (request/response). Unset until the server sends.
    Seen<SeqNum> answered_up_to;
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
    // replay into the backup. Trimmed as A advances.
    SeqNum unacked_base;
    bool unacked_base_set = false;
    bool buffer_overflowed = false;  // a cap refused bytes still unacknowledged
    ByteRing unacked;

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
    /// Where the client's unanswered bytes start: B (or the first data byte
    /// when the server never sent any), if the ring still holds everything
    /// from there to client_data_end and B is not after A.
    std::optional<SeqNum> unanswered_start() const;
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
