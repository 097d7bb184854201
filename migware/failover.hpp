#pragma once
// The failover engine: Normal (track) -> Recovery (twin handshakes into the
// backup's stack) -> Proxy (translate both directions), DESIGN.md §2-3.
//
// No I/O of its own: packets leave through the injected BackupLink (IP
// packets into the backup's stack: a TUN device in the daemon) and
// ClientLink (Ethernet frames on the wire: libnet in the daemon); time is
// passed in. The daemon owns the fds and the loop; tests use fakes.

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "migware/event_log.hpp"
#include "migware/phase.hpp"
#include "migware/pipeline.hpp"
#include "migware/state_machine.hpp"
#include "migware/twin_table.hpp"
#include "monitor/clock.hpp"
#include "monitor/icmp_monitor.hpp"
#include "rewrite/frame_rewrite.hpp"
#include "rewrite/translation.hpp"

namespace migware {

using monitor::MonoNs;
using sniffer::Endpoint;
using sniffer::Ipv4Addr;

/// IP packets into the backup's own TCP/IP stack.
class BackupLink {
public:
    virtual ~BackupLink() = default;
    virtual bool send_to_backup(std::span<const std::byte> ip_packet) = 0;
};

/// Ethernet frames onto the client-facing wire.
class ClientLink {
public:
    virtual ~ClientLink() = default;
    /// False when the frame did not go out: refused, or withheld (below).
    virtual bool send_to_client(std::span<const std::byte> frame) = 0;
    /// True while the link withholds every frame on purpose (membership: this
    /// member may not act now); a false send is then not an error.
    virtual bool withholding() const { return false; }
};

struct FailoverConfig {
    Ipv4Addr primary;
    Ipv4Addr backup;
    std::vector<std::uint16_t> ports;  // service ports on the primary (same on the backup)
    tracker::TableConfig table;
    MonoNs syn_rto = 100 * monitor::kMillisecond;  // first twin SYN retransmission, then doubled
    int syn_tries = 5;                              // SYNs per twin before giving up
    // Twin SYNs in flight at once. Measured (BENCHMARKS.md): 1024 overflows the
    // receive backlog (net.core.netdev_max_backlog, 1000) and costs SYN
    // retransmissions; 32-128 recover 2000 connections fastest.
    std::size_t max_concurrent_syns = 64;
    // Twin SYNs per second (0: no limit). A gentler takeover for a backup
    // that is also busy with its own work.
    double max_syn_rate = 0;
    std::size_t queue_frames_per_twin = 512;        // client frames held while a twin is opening
    MonoNs close_linger = 5'000 * monitor::kMillisecond;  // mapping kept after close
    // Gratuitous ARP at takeover and answers to ARP for the primary's IP, both
    // with the backup's own MAC (backup_mac), so that the clients' frames stop
    // reaching the primary's kernel (DESIGN-NOTES.md "The primary returns").
    bool answer_arp = true;
    // This host's MAC on the capture interface: the source of every frame
    // migware sends, and how its own frames are told apart when a mirror port
    // copies them back. All zero: unknown (pcap replays, some unit tests).
    sniffer::MacAddr backup_mac;
    // Recover connections whose handshake was never seen (neither on the wire
    // nor in a snapshot) with inferred and assumed options (DESIGN-NOTES.md).
    bool recover_midstream = true;
    // Aligned and full replay (issue 13): the backup's reply bytes the client
    // already has are absorbed; a backup that makes no progress toward K for
    // this long has diverged (its reply is shorter, or it never answers).
    MonoNs replay_stall = 2'000 * monitor::kMillisecond;
    // New connections once the primary answers again while migware proxies:
    // false (default) keeps taking them to the backup (no automatic fail-back);
    // true leaves them to the primary. Existing twins stay with the backup.
    bool new_connections_to_returning_primary = false;
    // Fencing (issue 5): when the primary is heard again while migware
    // proxies, end its stale sockets with a RST at their exact receive point,
    // learnt by probing each with an already-acknowledged byte.
    bool fence_returning_primary = true;
    // Between probes of one stale socket. Above Linux's per-socket limit on
    // answers to out-of-window segments (net.ipv4.tcp_invalid_ratelimit,
    // 500 ms): a push-only socket (nothing sent, so no ACK field is "old
    // but acceptable") answers a probe with a rate-limited challenge ACK.
    MonoNs fence_interval = 600 * monitor::kMillisecond;
    int fence_tries = 5;                                  // probes before giving up on one
    std::size_t fence_burst = 512;                        // probes per timer call at most
    // While proxying, answer ICMP echo requests for the primary's IP (issue 10):
    // a service address that stops answering ping is a visible difference.
    bool answer_echo = true;
    // Drop captured TCP segments whose checksum fails (issue 11): on a hub or
    // a mirror port a bad checksum means corruption, and such a segment must
    // neither teach the tracker (its bytes would be replayed into the backup)
    // nor be proxied. The daemon captures received frames, whose checksums
    // are complete; pcap replays of a sender's own capture (partial checksums
    // under offload) leave this off.
    bool verify_tcp_checksums = false;
};

struct FailoverCounters {
    std::uint64_t twins = 0;
    std::uint64_t recovered = 0;
    std::uint64_t twins_inferred = 0;       // options inferred: handshake never seen
    std::uint64_t twins_restored = 0;       // handshake facts from the snapshot
    std::array<std::uint64_t, static_cast<std::size_t>(Unrecovered::kCount)> unrecovered{};
    std::uint64_t syn_sent = 0;
    std::uint64_t syn_retransmitted = 0;
    std::uint64_t replayed_bytes = 0;       // unacknowledged client bytes handed to the backup
    std::uint64_t replay_incomplete = 0;    // twins whose held bytes did not cover [A, end)
    // Issue 13: aligned and full replay.
    std::uint64_t replay_aligned = 0;       // twins started at the current request, reply aligned
    std::uint64_t replay_full = 0;          // twins fed every client byte since the handshake
    std::uint64_t replay_full_as_aligned = 0;  // full wanted, aligned done (reason in replay_fallback)
    std::array<std::uint64_t, static_cast<std::size_t>(tracker::ReplayFallback::kCount)> replay_fallback{};
    std::uint64_t replay_as_push = 0;       // aligned or full wanted, push done
    std::uint64_t replay_absorbed_bytes = 0;  // backup bytes the client already had: digested, not sent
    std::uint64_t replay_verified = 0;      // twins whose regenerated bytes matched the primary's
    std::uint64_t replay_diverged = 0;      // ... that did not: client and twin reset
    std::uint64_t replay_client_resets = 0; // RSTs sent to clients (diverged, reply lost)
    std::uint64_t reset_answers = 0;        // ... of them, answers at the ACK of a reset client's segment
    std::uint64_t replayed_fins = 0;        // closing connections: the client's FIN handed over
    std::uint64_t queued_frames = 0;        // client frames held during Recovery
    std::uint64_t queue_overflow = 0;       // ... dropped because a twin's queue was full
    std::uint64_t to_backup = 0;            // client packets translated into the backup
    std::uint64_t to_client = 0;            // backup packets translated onto the wire
    std::uint64_t to_backup_bytes = 0;
    std::uint64_t to_client_bytes = 0;
    std::uint64_t send_errors = 0;          // a link refused a packet
    std::uint64_t frames_withheld = 0;      // frames for the wire held back while this member may not act
    std::uint64_t rewrite_errors = 0;       // a frame the rewriter refused
    std::uint64_t backup_unknown = 0;       // backup packets for no twin
    std::uint64_t backup_not_tcp = 0;       // non-TCP from the backup's stack toward the primary
    std::uint64_t client_unrecovered = 0;   // client packets of connections not carried over
    std::uint64_t new_connections = 0;           // SYNs after failover, carried to the backup
    std::uint64_t new_connections_unserved = 0;  // ... that could not be (primary's MAC unknown)
    std::uint64_t new_connections_to_primary = 0;  // left to a returning primary (policy)
    std::uint64_t primary_packets_in_proxy = 0;  // the primary talking again
    std::uint64_t arp_replies = 0;
    std::uint64_t gratuitous_arps = 0;
    std::uint64_t arp_reasserted = 0;       // the primary claimed its IP again: re-announced
    std::uint64_t primary_fed = 0;          // unsolicited ARP replies to the primary (clients' MACs)
    std::uint64_t own_frames = 0;           // this host's frames, copied back by a mirror port
    std::uint64_t fence_rounds = 0;         // times the primary was heard and fencing began
    std::uint64_t fence_probes = 0;         // already-acknowledged bytes sent to stale sockets
    std::uint64_t fence_resets = 0;         // RSTs sent at a stale socket's exact rcv_nxt
    std::uint64_t fenced = 0;               // stale sockets confirmed gone
    std::uint64_t fence_gave_up = 0;        // stale sockets that never answered a probe
    std::uint64_t stale_segments = 0;       // segments from the primary's stale sockets
    std::uint64_t primary_resets_seen = 0;  // RSTs from the primary sent to a client's MAC
    std::uint64_t primary_resets_caught = 0;  // ... sent to ours instead (its entry fed by the fence)
    std::uint64_t relayed_to_primary = 0;   // client frames relayed to a returning primary (policy)
    std::uint64_t closed = 0;
    std::uint64_t closed_acks_dropped = 0;  // bare client ACKs after a complete close
    // Issue 10: telling a dead primary from a living one.
    std::uint64_t segment_frames = 0;       // frames from hosts other than the primary and us
    std::uint64_t segment_arp_probes = 0;   // ARP requests to known neighbours (evidence wanted)
    std::uint64_t primary_arp_probes = 0;   // ARP requests to the primary (echo unanswered)
    std::uint64_t primary_arp_frames = 0;   // ARP frames from the primary (its MAC, its IP): alive
    std::uint64_t echo_answered = 0;        // echo requests for the primary's IP answered in Proxy
    std::uint64_t rollbacks = 0;            // takeovers of a primary that never died, undone
    std::uint64_t rollback_twins_reset = 0; // twins closed inside the backup's stack by a rollback
    std::uint64_t stood_down = 0;           // takeovers given up because another member acts (issue 12)
    std::uint64_t progress_after_fence = 0; // a primary's progress seen after fence RSTs: no rollback
    std::uint64_t client_beyond_hole = 0;   // client segments past what migware saw, before settling: not proxied
    std::uint64_t takeovers_settled = 0;    // takeovers past their rollback window
    std::uint64_t life_after_settled = 0;   // proof of life after a takeover settled: fenced, not rolled back
    std::uint64_t rollback_unconfirmed = 0; // client ACKs of unseen server bytes amid capture loss: no rollback
    std::uint64_t tcp_bad_checksum = 0;     // captured segments whose TCP checksum failed: dropped
    // Issue 11: connections known only from the snapshot with no segment since
    // the restart, at the takeover: gone before the failure, not lost at it
    // (the tracker's expired_idle / expired_closed are the others).
    std::uint64_t gone_before_failure = 0;
};


struct ConnectionView {
    const tracker::Connection* connection = nullptr;
    Phase phase = Phase::Tracked;
    std::optional<Unrecovered> reason;  // for Lost
    std::optional<TwinView> twin;
};

class FailoverEngine {
public:
    FailoverEngine(FailoverConfig config, BackupLink& backup, ClientLink& client, EventSink& log);

    /// The capture lost `frames` frames (the kernel's drop counter rose),
    /// noticed at `notice_wall_ns` on the capture's clock (that of the frames'
    /// time stamps). Until a frame stamped after it arrives, any connection
    /// may have lost frames after its last one; then, those whose last frame
    /// came before. Such a connection's reply is not known complete at a
    /// takeover (aligned and full ports: reset, not pushed).
    void capture_lost(std::uint64_t frames, std::int64_t notice_wall_ns, MonoNs now);
    /// Every captured frame, in every state.
    void on_capture(const sniffer::RawFrame& frame, sniffer::LinkType link, MonoNs now);
    /// Membership (issue 12): a member that holds a takeover it may not act
    /// on only keeps its table current (the successor's frames move every
    /// connection on), and judges nothing: no proxying, no proof of life.
    void track_only(const sniffer::RawFrame& frame, sniffer::LinkType link, MonoNs now);
    /// Every IP packet the backup's stack sent toward the primary's IP.
    void on_backup_packet(std::span<const std::byte> ip_packet, MonoNs now);
    /// Retransmissions, pacing, linger expiry. Call at next_deadline().
    void on_timer(MonoNs now);
    MonoNs next_deadline() const;

    /// Re-creates connections from a snapshot; returns how many were new.
    std::size_t restore(const std::vector<tracker::HandshakeFacts>& facts, MonoNs now);
    /// Handshake facts of every open connection, for the snapshot.
    std::vector<tracker::HandshakeFacts> handshake_facts() const;

    /// Marks the start of Normal (the daemon's start-up), for "since when".
    void started(MonoNs now) {
        if (state_ == State::Normal) state_since_ = now;
    }

    /// The monitor's verdicts. `busy_ports`: ports q of sockets this host
    /// already holds toward the primary's IP (a killed migware's twins), never
    /// given to a new twin.
    void primary_down(MonoNs now, const std::string& reason, const std::vector<std::uint16_t>& busy_ports = {});
    void primary_up(MonoNs now, const std::string& reason);
    /// Any sign of the primary on the wire after the takeover (an echo reply,
    /// an ARP or TCP frame from it): begins fencing its stale sockets.
    void primary_heard(MonoNs now, const std::string& what);
    /// Membership (issue 12): another member acts for the primary's IP now.
    /// Every twin closed inside this host, nothing sent on the wire (no ARP:
    /// the clients belong to the member that acts), tracking resumes.
    void stand_down(MonoNs now, const std::string& reason);
    /// Stale sockets on the primary not yet confirmed gone.
    std::size_t stale_unfenced() const;
    /// The monitor wants evidence that the segment is alive: ask the most
    /// recently heard neighbours with unicast ARP requests from this host's
    /// own address (harmless: they learn nothing false). Their answers count
    /// in segment_frames.
    void probe_segment(MonoNs now);
    /// The monitor's second level: an ARP request for the primary's IP, from
    /// this host's own address, unicast to the primary's MAC (broadcast while
    /// it is unknown). Its answer counts in primary_arp_frames.
    void probe_primary_arp();

    State state() const { return state_; }
    MonoNs state_since() const { return state_since_; }
    const Pipeline& pipeline() const { return pipeline_; }
    const FailoverCounters& counters() const { return counters_; }
    monitor::PassiveSignal passive_signal() const;
    std::size_t twins_in(TwinPhase phase) const;
    /// Visits every tracked connection with its failover phase, in creation order.
    template <typename F>
    void for_each_connection(F&& visit) const {
        pipeline_.table().for_each([&](const tracker::Connection& c) { visit(view_of(c)); });
    }
    ConnectionView view_of(const tracker::Connection& c) const;
    /// Twins that have an outcome (up, closed after being up, or failed).
    std::size_t twins_resolved() const { return counters_.recovered + twins_failed_; }
    std::size_t twins_failed() const { return twins_failed_; }
    /// Recovery's duration once every twin is resolved (0 until then).
    MonoNs recovery_duration() const {
        return recovery_done_ != 0 ? recovery_done_ - recovery_started_ : 0;
    }

private:
    // A host on the segment: (IP, MAC, VLAN).
    struct Neighbour {
        Ipv4Addr ip;
        sniffer::MacAddr mac;
        std::optional<std::uint16_t> vlan;
        bool operator==(const Neighbour&) const = default;
    };

    // failover.cpp: the core.
    void transition(Event event, MonoNs now, const std::string& reason);
    /// Moves the twin's phase by next_phase(); false (unchanged) when `e` does not apply.
    bool advance(Twin& t, TwinEvent e);
    bool send_backup(std::span<const std::byte> packet);
    bool send_client(std::span<const std::byte> frame);
    static bool tcp_checksum_ok(const sniffer::RawFrame& frame, const sniffer::Packet& p);
    bool is_service(const Endpoint& e) const;
    std::uint16_t next_ip_id() { return ip_id_++; }
    /// The MAC migware sends from: this host's, or the primary's when this
    /// host's is unknown (pcap replays, some unit tests).
    const sniffer::MacAddr& our_mac() const { return has_own_mac_ ? config_.backup_mac : primary_mac_; }
    bool have_a_mac() const { return has_own_mac_ || primary_mac_known_; }

    // recovery.cpp: twins opened into the backup's stack.
    void start_recovery(MonoNs now);
    void pump_syns(MonoNs now);
    void send_syn(Twin& t, MonoNs now);
    void twin_established(Twin& t, const sniffer::Packet& synack, MonoNs now);
    void fail_twin(Twin& t, Unrecovered why, MonoNs now);
    std::uint8_t assumed_client_view_shift(const Twin& t) const;
    void check_resolved(MonoNs now);
    /// Client frames held while the twin opened (or absorbed), in order.
    void flush_queued(Twin& t, MonoNs now);
    void log_unrecoverable(MonoNs now, const tracker::FourTuple& key, Unrecovered why,
                           int syn_tries);
    void recovery_timer(MonoNs now);
    MonoNs recovery_deadline() const;

    /// The capture lost frames after `c`'s last captured one.
    bool capture_lost_after(const tracker::Connection& c) const;
    /// The capture lost frames in the takeover's window (from kLossWindow
    /// before it to `now`): a client's ACK of unseen server bytes proves
    /// nothing then.
    bool capture_lost_near_takeover(MonoNs now) const;

    // replay.cpp: aligned and full replay, the absorbed overlap (issue 13).
    /// Sets up `t` to start at the plan's request, or counts why it cannot.
    /// A reason when the connection must be reset instead: it could not be
    /// replayed, and push would not hand it over exactly (a reply in flight
    /// or not seen whole, a request not held), which push cannot repair.
    std::optional<Unrecovered> plan_replay(Twin& t, const tracker::Connection& c, MonoNs now);
    /// A RST to the client at its exact receive point, no earlier than
    /// kFenceClassify after the takeover (a primary that never died shows it
    /// by then, and a rollback cancels it).
    /// `client_next`: the client's next sequence number as migware saw it
    /// (the ACK field of the probe that follows the RST).
    void reset_client_later(const tracker::FourTuple& key, sniffer::SeqNum seq, sniffer::SeqNum client_next,
                            const sniffer::MacAddr& client_mac, std::optional<std::uint16_t> vlan, MonoNs now);
    void send_client_resets(MonoNs now);
    void send_client_reset(const tracker::FourTuple& key, sniffer::SeqNum seq, const sniffer::MacAddr& client_mac,
                           std::optional<std::uint16_t> vlan);
    /// A client segment of a connection migware reset: answered with a RST
    /// at its ACK number (its exact receive point); true when it was one.
    bool answer_reset_client(const sniffer::Packet& p);
    /// A backup packet while `t` absorbs; true when it was consumed here.
    bool absorb_backup_packet(Twin& t, std::span<const std::byte> ip_packet, const sniffer::Packet& p,
                              MonoNs now);
    void start_absorbing(Twin& t, MonoNs now);
    void send_absorb_ack(Twin& t);
    void replay_verified(Twin& t, MonoNs now);
    void replay_diverged(Twin& t, MonoNs now, std::string_view why);
    void replay_timer(MonoNs now);
    MonoNs replay_deadline() const;

    // proxy.cpp: both directions translated, new connections, the close.
    void on_client_segment(const sniffer::RawFrame& frame, const sniffer::Packet& p, MonoNs now);
    Twin* twin_for_client(const sniffer::Packet& p);
    Twin* open_direct_twin(const sniffer::Packet& p, MonoNs now);
    void proxy_client_frame(Twin& t, const sniffer::RawFrame& frame, const sniffer::Packet& p,
                            MonoNs now);
    void proxy_backup_packet(Twin& t, std::span<const std::byte> ip_packet,
                             const sniffer::Packet& p, MonoNs now);
    void note_close(Twin& t, MonoNs now);

    // fence.cpp: the returning primary's stale sockets.
    void on_primary_frame(const sniffer::RawFrame& frame, const sniffer::Packet& p, MonoNs now);
    void start_fence_round(MonoNs now, const std::string& reason);
    void send_fence_probe(Twin& t);
    void send_fence_reset(Twin& t, sniffer::SeqNum seq, MonoNs now);
    void fence_timer(MonoNs now);
    void finish_fence(Twin& t, FenceState how, MonoNs now);
    void set_fence(Twin& t, FenceState f);
    void schedule_fence(std::uint32_t twin, MonoNs at);
    void feed_primary(MonoNs now, std::optional<Ipv4Addr> only);

    // rollback.cpp: a primary that never died.
    void note_client_seen(Twin& t, const sniffer::Packet& p);
    /// The primary is alive: roll back, unless the fence already reset some of
    /// its sockets (then counted). True when rolled back (twins_ is cleared).
    bool proof_of_life(MonoNs now, const std::string& evidence, const sniffer::RawFrame& frame);
    void roll_back(MonoNs now, const std::string& evidence);
    struct TwinsClosed {
        std::size_t reset = 0, carried = 0, direct = 0;
    };
    /// Closes every live twin inside this host (RST into the backup's stack only).
    TwinsClosed close_every_twin();
    /// After a rollback or a stand-down: no twin, no fence, no relay left.
    void forget_takeover(MonoNs now);
    /// No rollback of this takeover any more (kSettleHeard).
    void settle(MonoNs now, std::string_view why);
    /// A client frame after the takeover: the settle clock.
    void heard_client(MonoNs now);
    void reset_twin_in_backup(Twin& t);

    // relay.cpp: the fail-back policy's relayed connections.
    bool relay_to_primary(const sniffer::RawFrame& frame, const sniffer::Packet& p, MonoNs now);
    bool forward_frame(const sniffer::RawFrame& frame, const sniffer::MacAddr& dst);
    void expire_relays(MonoNs now);

    // arp_defence.cpp: speaking for the primary's IP.
    void on_arp(const sniffer::Packet& p, MonoNs now);
    void answer_arp(const sniffer::Packet& p);
    void answer_echo(const sniffer::RawFrame& frame, const sniffer::Packet& p);
    void send_arp(std::uint16_t op, const sniffer::MacAddr& eth_dst, const sniffer::MacAddr& target_mac,
                  Ipv4Addr target_ip, std::optional<std::uint16_t> vlan);
    void send_arp_from(std::uint16_t op, const sniffer::MacAddr& eth_dst,
                       const sniffer::MacAddr& sender_mac, Ipv4Addr sender_ip,
                       const sniffer::MacAddr& target_mac, Ipv4Addr target_ip,
                       std::optional<std::uint16_t> vlan);
    void announce_takeover(MonoNs now);
    /// Gratuitous ARP for the primary's IP, claiming `sender`'s MAC, on every
    /// VLAN the clients used; returns how many were sent.
    std::size_t announce(const sniffer::MacAddr& sender);
    void point_clients_at_primary();
    void note_peer(const Neighbour& n);

    FailoverConfig config_;
    BackupLink& backup_;
    ClientLink& client_;
    EventSink& log_;
    Pipeline pipeline_;
    bool has_own_mac_;  // config_.backup_mac is set
    State state_ = State::Normal;
    FailoverCounters at_takeover_;  // the counters when the current takeover began
    std::optional<MonoNs> heard_since_;  // the first client frame after the takeover
    bool settled_ = false;               // past the rollback window
    MonoNs state_since_ = 0;
    MonoNs recovery_started_ = 0;
    MonoNs recovery_done_ = 0;

    TwinTable twins_;
    std::size_t next_waiting_ = 0;            // twins_[i] for i < this have had a SYN
    std::size_t syns_in_flight_ = 0;

    sniffer::MacAddr primary_mac_;
    bool primary_mac_known_ = false;
    std::optional<std::uint16_t> primary_vlan_;  // the 802.1Q tag of the primary's frames
    std::optional<MonoNs> last_primary_packet_;
    std::uint64_t retransmissions_since_primary_ = 0;
    bool primary_talking_logged_ = false;
    bool primary_back_ = false;  // the monitor said Up again after the takeover
    std::uint16_t ip_id_ = 1;
    MonoNs next_expiry_ = 0;  // the table's next expiry sweep (Normal)

    // Fencing the returning primary: its stale sockets, by client <-> primary.
    std::unordered_map<tracker::FourTuple, std::uint32_t> stale_;
    // (due, twin), earliest first.
    using FenceItem = std::pair<MonoNs, std::uint32_t>;
    std::priority_queue<FenceItem, std::vector<FenceItem>, std::greater<>> fence_queue_;
    bool fence_round_open_ = false;
    std::size_t fence_pending_ = 0;    // stale sockets probing or reset, not yet resolved
    MonoNs fence_round_started_ = 0;
    MonoNs next_fence_round_ = 0;      // another round no earlier than this
    MonoNs fence_hold_until_ = 0;      // no probe or RST before this (the primary's ARP settling)
    MonoNs fence_reset_from_ = 0;      // no RST before this: time to see a primary that never died
    double reassert_tokens_ = 64;      // gratuitous ARPs against the primary's claims
    MonoNs reassert_at_ = 0;
    // The clients' (IP, MAC) as the primary knew them, fed back to it when it
    // returns so that it has no reason to ARP for them.
    std::vector<Neighbour> neighbours_;
    // The hosts most recently heard on the segment (clients, ARP senders):
    // whom to ask when the monitor wants evidence that the segment is alive.
    static constexpr std::size_t kRecentPeers = 4;
    std::array<Neighbour, kRecentPeers> recent_peers_{};
    std::size_t recent_peers_n_ = 0;
    std::size_t resets_logged_ = 0;
    // New connections relayed to a returning primary (policy): last frame seen,
    // and whether the client has sent FIN or RST.
    struct Relay {
        MonoNs last = 0;
        bool closing = false;
        sniffer::MacAddr client_mac;  // the client's frames came from it
    };
    std::unordered_map<tracker::FourTuple, Relay> relayed_;
    MonoNs next_relay_sweep_ = 0;

    // Capture loss: the newest loss noticed (capture clock), until a frame
    // stamped after it shows it lies behind; then since when (engine clock)
    // every frame came after it.
    std::optional<std::int64_t> loss_pending_wall_;
    std::optional<MonoNs> loss_behind_since_;
    std::optional<MonoNs> loss_warned_at_;
    std::optional<MonoNs> last_loss_at_;  // engine clock of the newest loss notice
    std::uint64_t loss_total_ = 0;  // frames lost, as reported (the metrics read the capture's own counters)

    std::unordered_map<tracker::FourTuple, Unrecovered> lost_;  // skipped at recovery start
    std::size_t twins_failed_ = 0;
    std::size_t absorbing_ = 0;  // twins absorbing the backup's regenerated bytes
    std::size_t replay_logged_ = 0;
    std::size_t fallback_logged_ = 0;
    struct ClientReset {
        tracker::FourTuple key;
        sniffer::SeqNum seq;
        sniffer::SeqNum client_next;
        sniffer::MacAddr client_mac;
        std::optional<std::uint16_t> vlan;
        MonoNs due = 0;
    };
    std::vector<ClientReset> client_resets_;  // due in order (one due time per takeover)
    // Connections whose client migware reset: their later segments (a
    // duplicate ACK, a retransmission) are answered with a RST at their ACK.
    struct ResetClient {
        sniffer::MacAddr client_mac;
        std::optional<std::uint16_t> vlan;
        int answers = 0;  // left: a client that ignores RSTs is not answered for ever
    };
    std::unordered_map<tracker::FourTuple, ResetClient> reset_clients_;
    double syn_tokens_ = 0;
    MonoNs syn_tokens_at_ = 0;
    std::size_t unrecoverable_logged_ = 0;

    FailoverCounters counters_;
    std::vector<std::byte> scratch_;  // one frame being rewritten (no per-packet allocation)
};

}  // namespace migware
