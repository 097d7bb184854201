#pragma once
// The table of TCP connections to the protected server endpoints.
//
// Time comes only from packet timestamps passed in, so replaying a capture
// always gives the same table (libtins' rule).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "sniffer/packet.hpp"
#include "tracker/connection.hpp"

namespace migware::tracker {

struct TableConfig {
    /// Protected server endpoints; empty means every TCP connection is tracked.
    std::vector<Endpoint> servers;
    std::size_t max_connections = 65536;
    /// Unacknowledged client bytes held per connection / in all.
    std::size_t per_connection_buffer_cap = 1u << 20;
    std::size_t global_buffer_cap = 512u << 20;
    /// Closed connections are removed this long after closing (0: kept until evicted).
    std::int64_t closed_linger_ns = 60'000'000'000;
    /// Silent connections are removed after this long (0: never).
    std::int64_t idle_timeout_ns = 0;
    /// How each service's connections are replayed into the backup (issue
    /// 13): `replay_mode` unless `port_modes` names the server's port. Aligned
    /// and full keep request/reply boundaries and digests of the server's
    /// stream, and hold more client bytes (from the current request, or from
    /// the handshake), within the same caps.
    ReplayMode replay_mode = ReplayMode::Push;
    std::vector<std::pair<std::uint16_t, ReplayMode>> port_modes;
    ReplayMode mode_for(std::uint16_t server_port) const {
        for (const auto& [port, mode] : port_modes)
            if (port == server_port) return mode;
        return replay_mode;
    }
};

struct TableCounters {
    std::uint64_t segments = 0;          // TCP segments belonging to tracked connections
    std::uint64_t not_protected = 0;     // TCP segments to/from no protected endpoint
    std::uint64_t unknown_rst = 0;       // RST for no tracked connection: not tracked
    std::uint64_t created = 0;
    std::uint64_t created_partial = 0;   // first seen mid-stream
    std::uint64_t reincarnated = 0;      // 4-tuple reused by a new SYN
    std::uint64_t restored = 0;          // re-created from a snapshot
    std::uint64_t evicted_closed = 0;    // table full: a closed connection made room
    std::uint64_t evicted_idle = 0;      // table full: the least recently seen made room
    std::uint64_t expired_closed = 0;    // removed closed_linger after closing
    std::uint64_t expired_idle = 0;      // removed after idle_timeout of silence
    std::uint64_t buffered_bytes = 0;    // client bytes held now
    std::uint64_t buffer_cap_per_connection = 0;  // segments refused by the per-connection cap
    std::uint64_t buffer_cap_global = 0;          // segments refused by the global cap
    std::uint64_t buffer_gaps = 0;       // client data after bytes the capture missed
    std::uint64_t synack_unseen = 0;     // connections established with their SYN-ACK never captured
    std::uint64_t client_retransmissions = 0;  // client data segments at or below its highest seq
    // Issue 13: replay modes within the caps.
    std::uint64_t replay_full_over_cap = 0;     // full-mode connections over a cap: now aligned
    std::uint64_t replay_request_over_cap = 0;  // requests over a cap: not replayable (push for them)
    std::uint64_t replay_turns = 0;             // requests begun (client turns), aligned and full
    std::uint64_t replay_digested_bytes = 0;    // server bytes digested as they passed
    std::uint64_t replay_digest_gaps = 0;       // server bytes migware missed: that reply unverifiable
    std::uint64_t replay_reordered = 0;         // server segments held ahead of a hole, then digested
};

enum class Direction : std::uint8_t { FromClient, FromServer };

/// What observe() made of one packet.
struct Observation {
    Connection* connection = nullptr;  // null when the packet is not tracked
    Direction direction = Direction::FromClient;
    bool created = false;
    bool client_retransmission = false;  // client data the tracker had already seen
};

class ConnectionTable {
public:
    explicit ConnectionTable(TableConfig config);

    /// Feeds one parsed packet (any kind; non-TCP is ignored). `frame` is the
    /// bytes the packet was parsed from, for the payload copy.
    Observation observe(const sniffer::Packet& packet, std::span<const std::byte> frame,
                        std::int64_t timestamp_ns);

    /// Re-creates a connection from persisted handshake facts (a restart, or
    /// another member of the group): established; acknowledgement points and
    /// timestamps are picked up from the traffic that follows. A connection
    /// already known but picked up mid-stream (no handshake seen here) gets
    /// the facts; any other known one is left as it is. True if it learnt.
    bool restore(const HandshakeFacts& facts, std::int64_t now_ns);

    /// Bumped whenever the set of connections with known handshake facts may
    /// have changed (a snapshot is due).
    std::uint64_t generation() const { return generation_; }

    /// Removes connections past their linger/idle deadlines.
    void expire(std::int64_t now_ns);

    const Connection* find(const FourTuple& key) const;
    std::size_t size() const { return index_.size(); }
    const TableCounters& counters() const { return counters_; }
    const TableConfig& config() const { return config_; }
    bool is_protected(const Endpoint& e) const;

    /// Visits every connection, in creation order: a walk of an intrusive
    /// list, no copy and no sort (the control socket pages through it while
    /// the packet thread waits).
    template <typename F>
    void for_each(F&& visit) const {
        for (std::uint32_t s = created_.head; s != kNil; s = order_[s].next) visit(slots_[s]);
    }

private:
    struct List {
        std::uint32_t head = kNil;
        std::uint32_t tail = kNil;
    };
    static constexpr std::uint32_t kNil = 0xffffffffu;

    /// Key with endpoints in canonical order: one lookup serves both directions.
    struct PairKey {
        Endpoint lo;
        Endpoint hi;
        bool operator==(const PairKey&) const = default;
    };
    struct PairKeyHash {
        std::size_t operator()(const PairKey& k) const noexcept {
            return std::hash<FourTuple>{}(FourTuple{k.lo, k.hi});
        }
    };
    static PairKey pair_key(const Endpoint& a, const Endpoint& b) {
        return a < b ? PairKey{a, b} : PairKey{b, a};
    }

    std::uint32_t create(const FourTuple& key, std::int64_t now_ns);
    void remove(std::uint32_t slot);
    bool make_room();
    void link_tail(List& list, std::uint32_t slot);
    void unlink(List& list, std::uint32_t slot);
    List& list_of(const Connection& c) { return c.state == TcpState::Closed ? closed_ : open_; }

    /// Returns true when the segment's data had been seen before.
    bool on_client_segment(Connection& c, const sniffer::Packet& p,
                           std::span<const std::byte> frame);
    void on_server_segment(Connection& c, const sniffer::Packet& p, std::span<const std::byte> frame);
    void buffer_client_data(Connection& c, const sniffer::Packet& p,
                            std::span<const std::byte> frame);
    void trim_acked(Connection& c);
    // Issue 13: turns and digests (aligned and full modes).
    void begin_turn(Connection& c, SeqNum q0);
    void digest_server_data(Connection& c, const sniffer::Packet& p, std::span<const std::byte> frame);
    /// Digests server bytes [start, start + bytes.size()) from digest_end on
    /// (the part before it was digested already), and marks their end.
    void digest_in_order(Connection& c, SeqNum start, std::span<const std::byte> bytes);
    static void forget_early(Connection& c);
    /// The port's replay mode, and its state unless push.
    void init_replay(Connection& c) const;
    static void prune_marks(Connection& c);
    /// A cap refused bytes: full falls back to aligned, a request over the
    /// cap is not replayable. True when the ring shrank (try again).
    bool relieve(Connection& c);
    void update_state(Connection& c, std::int64_t now_ns);
    void reset_for_new_syn(Connection& c);

    TableConfig config_;
    std::vector<Connection> slots_;
    std::vector<std::uint32_t> free_;
    std::unordered_map<PairKey, std::uint32_t, PairKeyHash> index_;
    static void apply_facts(Connection& c, const HandshakeFacts& f);
    List open_;    // least recently seen first
    List closed_;  // earliest closed first
    std::uint64_t next_id_ = 1;
    // Creation order, by slot (parallel to slots_): what for_each walks.
    struct Links {
        std::uint32_t prev = kNil;
        std::uint32_t next = kNil;
    };
    std::vector<Links> order_;
    List created_;
    std::uint64_t generation_ = 0;
    TableCounters counters_;
};

}  // namespace migware::tracker
