#include "tracker/connection_table.hpp"

#include <algorithm>

namespace migware::tracker {

using sniffer::Packet;
using sniffer::PacketKind;
namespace tf = sniffer::tcp_flag;

namespace {

void keep_max(Seen<SeqNum>& field, SeqNum value) {
    field = field ? SeqNum::max(*field, value) : value;
}

void keep_max_ts(Seen<std::uint32_t>& field, std::uint32_t value) {
    // RFC 7323 §5.3: timestamps compare in serial order, like sequence numbers.
    if (!field || SeqNum{*field}.before(SeqNum{value})) field = value;
}

}  // namespace

ConnectionTable::ConnectionTable(TableConfig config) : config_(std::move(config)) {
    if (config_.max_connections == 0) config_.max_connections = 1;
    index_.reserve(std::min<std::size_t>(config_.max_connections, 4096));
}

bool ConnectionTable::is_protected(const Endpoint& e) const {
    if (config_.servers.empty()) return true;
    return std::find(config_.servers.begin(), config_.servers.end(), e) != config_.servers.end();
}

Observation ConnectionTable::observe(const Packet& p, std::span<const std::byte> frame,
                                     std::int64_t now_ns) {
    if (p.kind != PacketKind::Tcp) return {};
    const Endpoint src{p.ip.src, p.tcp.src_port};
    const Endpoint dst{p.ip.dst, p.tcp.dst_port};
    const bool syn = p.tcp.has(tf::kSyn);
    const bool ack = p.tcp.has(tf::kAck);

    Observation obs;
    std::uint32_t slot = kNil;
    if (auto it = index_.find(pair_key(src, dst)); it != index_.end()) {
        slot = it->second;
        Connection& c = slots_[slot];
        obs.direction = c.key.client == src ? Direction::FromClient : Direction::FromServer;
        // RFC 9293 §3.6.1: a new SYN may reuse the 4-tuple of a connection
        // that is closed (or in TIME-WAIT); that is a new connection.
        if (obs.direction == Direction::FromClient && syn && !ack &&
            (c.state == TcpState::Closed || c.state == TcpState::Closing) &&
            !(c.client_isn && *c.client_isn == p.tcp.seq)) {
            unlink(list_of(c), slot);
            reset_for_new_syn(c);
            c.first_seen_ns = now_ns;
            link_tail(open_, slot);
            ++counters_.reincarnated;
        }
    } else {
        if (p.tcp.has(tf::kRst)) {
            // A RST alone carries nothing to recover; tracking it would only
            // let forged resets fill the table.
            ++counters_.unknown_rst;
            return {};
        }
        FourTuple key;
        if (!config_.servers.empty()) {
            if (is_protected(dst)) {
                key = {src, dst};
            } else if (is_protected(src)) {
                key = {dst, src};
            } else {
                ++counters_.not_protected;
                return {};
            }
        } else if (syn) {
            key = ack ? FourTuple{dst, src} : FourTuple{src, dst};
        } else {
            // Mid-stream with no configured server: the lower port is the
            // service (ephemeral ports are high); on a tie, the destination.
            key = src.port < dst.port ? FourTuple{dst, src} : FourTuple{src, dst};
        }
        slot = create(key, now_ns);
        Connection& c = slots_[slot];
        c.partial = !(syn && !ack && key.client == src);
        c.state = syn ? TcpState::Handshake : TcpState::Established;
        obs.direction = key.client == src ? Direction::FromClient : Direction::FromServer;
        obs.created = true;
        ++counters_.created;
        if (c.partial) ++counters_.created_partial;
    }

    Connection& c = slots_[slot];
    ++counters_.segments;
    unlink(list_of(c), slot);
    c.last_seen_ns = now_ns;
    if (obs.direction == Direction::FromClient) {
        obs.client_retransmission = on_client_segment(c, p, frame);
        if (obs.client_retransmission) ++counters_.client_retransmissions;
    } else {
        on_server_segment(c, p, frame);
    }
    update_state(c, now_ns);
    link_tail(list_of(c), slot);
    obs.connection = &c;
    return obs;
}

bool ConnectionTable::on_client_segment(Connection& c, const Packet& p,
                                        std::span<const std::byte> frame) {
    const auto& t = p.tcp;
    const auto& o = t.options;
    if (p.has_ethernet) {
        c.client_mac = p.eth.src;
        if (!c.server_mac_from_server) c.server_mac = p.eth.dst;
        c.vlan = p.eth.vlan;
    }
    const bool syn = t.has(tf::kSyn);
    if (syn && !t.has(tf::kAck)) {
        c.client_isn = t.seq;
        c.client_mss = o.mss;
        c.client_wscale_offered = o.wscale;
        c.client_sack_offered = o.sack_permitted;
        c.client_ts_offered = o.has_timestamps;
        c.partial = false;
        if (!c.unacked_base_set) {
            c.unacked_base = t.seq + 1u;
            c.unacked_base_set = true;
            // Full replay needs every byte from here on.
            if (c.replay) c.replay->full_held = c.replay_mode == ReplayMode::Full;
        }
    }
    if (o.has_timestamps) keep_max_ts(c.client_tsval_high, o.tsval);
    if (t.has(tf::kAck)) {
        keep_max(c.client_ack_high, t.ack);
        if (c.replay) prune_marks(c);
    }
    const SeqNum data_start = t.seq + (syn ? 1u : 0u);
    const SeqNum data_end = data_start + p.payload_length;
    // RFC 9293 §3.10.7.4: data wholly at or below what was already sent is a
    // retransmission; the monitor's passive signal counts these.
    const bool retransmission = p.payload_length > 0 && c.client_data_end &&
                                data_end.before_or_eq(*c.client_data_end);
    keep_max(c.client_seq_next, data_end + (t.has(tf::kFin) ? 1u : 0u));
    if (p.payload_length > 0 && c.replay &&
        (!c.client_data_end || data_end.after(*c.client_data_end))) {
        // New client bytes. After the server spoke (or first of all), they
        // begin a new request: a turn in the conversation.
        const SeqNum fresh = c.client_data_end && c.client_data_end->after(data_start) ? *c.client_data_end
                                                                                      : data_start;
        if (!c.replay->q0 || c.replay->server_spoke_last) begin_turn(c, fresh);
    }
    if (p.payload_length > 0) {
        keep_max(c.client_data_end, data_end);
        buffer_client_data(c, p, frame);
    } else if (!c.client_data_end) {
        c.client_data_end = data_start;
    }
    if (t.has(tf::kFin)) c.client_fin_seq = data_end;
    if (t.has(tf::kRst)) c.rst_seen = true;
    c.client_window = t.window;
    return retransmission;
}

void ConnectionTable::on_server_segment(Connection& c, const Packet& p, std::span<const std::byte> frame) {
    const auto& t = p.tcp;
    const auto& o = t.options;
    if (p.has_ethernet) {
        c.server_mac = p.eth.src;
        c.server_mac_from_server = true;
    }
    const bool syn = t.has(tf::kSyn);
    if (syn && t.has(tf::kAck)) {
        ++generation_;
        c.server_isn = t.seq;
        c.server_mss = o.mss;
        c.server_wscale_offered = o.wscale;
        c.server_sack_offered = o.sack_permitted;
        c.server_ts_offered = o.has_timestamps;
        if (c.replay) {
            // The server's stream starts here: its digest from the first byte.
            c.replay->server_data_end = t.seq + 1u;
            c.replay->digest_end = t.seq + 1u;
            c.replay->h_full = kDigestBasis;
            c.replay->full_ok = true;
        }
    }
    if (o.has_timestamps) keep_max_ts(c.server_tsval_high, o.tsval);
    if (t.has(tf::kAck)) {
        keep_max(c.server_ack_high, t.ack);
        trim_acked(c);
    }
    const SeqNum data_end = t.seq + (syn ? 1u : 0u) + p.payload_length;
    keep_max(c.server_seq_next, data_end + (t.has(tf::kFin) ? 1u : 0u));
    if (t.has(tf::kFin)) c.server_fin_seq = data_end;
    if (t.has(tf::kRst)) c.rst_seen = true;
    c.server_window = t.window;
    if (p.payload_length > 0 && c.replay) digest_server_data(c, p, frame);
    if (p.payload_length > c.max_server_payload)
        c.max_server_payload = static_cast<std::uint16_t>(std::min<std::uint32_t>(p.payload_length, 0xffff));
}

void ConnectionTable::buffer_client_data(Connection& c, const Packet& p,
                                         std::span<const std::byte> frame) {
    const SeqNum start = p.tcp.seq + (p.tcp.has(tf::kSyn) ? 1u : 0u);
    const SeqNum end = start + p.payload_length;
    if (!c.unacked_base_set) {
        c.unacked_base = start;
        c.unacked_base_set = true;
    }
    const SeqNum held_end = c.unacked_base + static_cast<std::uint32_t>(c.unacked.size());
    if (end.before_or_eq(held_end)) return;  // a retransmission of bytes held or acked
    if (start.after(held_end)) {
        // The capture missed bytes in between. Only an empty ring can restart
        // at this segment; the hole heals once the server acknowledges past it.
        const bool hole_acked = c.server_ack_high && c.server_ack_high->after_or_eq(start);
        if (!c.unacked.empty()) {
            ++counters_.buffer_gaps;
            return;
        }
        if (!hole_acked) ++counters_.buffer_gaps;
        c.unacked_base = start;
    }
    const SeqNum from = SeqNum::max(start, c.unacked_base + static_cast<std::uint32_t>(c.unacked.size()));
    const std::uint32_t skip = (from - start).value;
    if (skip >= p.payload_captured) return;  // the capture cut off the new bytes
    const std::uint32_t add = p.payload_captured - skip;
    // Over a cap, a replay mode first gives up what it holds beyond A.
    while (c.unacked.size() + add > config_.per_connection_buffer_cap ||
           counters_.buffered_bytes + add > config_.global_buffer_cap) {
        if (relieve(c)) continue;
        if (c.unacked.size() + add > config_.per_connection_buffer_cap) {
            ++counters_.buffer_cap_per_connection;
        } else {
            ++counters_.buffer_cap_global;
        }
        c.buffer_overflowed = true;
        return;
    }
    c.unacked.push_back(frame.subspan(std::size_t{p.layout.payload} + skip, add));
    counters_.buffered_bytes += add;
}

void ConnectionTable::trim_acked(Connection& c) {
    if (!c.server_ack_high || !c.unacked_base_set) return;
    SeqNum a = *c.server_ack_high;
    if (const ReplayTrack* r = c.replay.get()) {
        if (c.replay_mode == ReplayMode::Full && r->full_held) return;  // every byte since the handshake
        // Aligned: from the current request on, acknowledged or not.
        if (r->turn_held && r->q0 && r->q0->before(a)) a = *r->q0;
    }
    if (!a.after(c.unacked_base)) return;
    const std::size_t drop = std::min<std::size_t>((a - c.unacked_base).value, c.unacked.size());
    c.unacked.pop_front(drop);
    counters_.buffered_bytes -= drop;
    c.unacked_base = a;
    if (c.unacked.empty()) c.buffer_overflowed = false;
}

void ConnectionTable::begin_turn(Connection& c, SeqNum q0) {
    ReplayTrack& r = *c.replay;
    ++counters_.replay_turns;
    r.q0 = q0;
    r.turn_held = true;
    r.server_spoke_last = false;
    // The reply will begin where the server's stream ends now. Known only
    // from its segments (or, picked up after a restart, from the client's
    // ACK: the client asks again once it has the whole reply).
    r.r0 = r.server_data_end ? r.server_data_end : c.client_ack_high;
    r.marks.clear();
    r.marks_head = 0;
    if (c.replay_mode != ReplayMode::Full) {
        // Aligned: only this turn's checkpoints can matter. (Full keeps the
        // session's, spaced over the whole stream, however short each reply.)
        r.checkpoints.clear();
        r.checkpoint_every = ReplayTrack::kCheckpointEvery;
        r.since_checkpoint = 0;
    }
    if (r.r0) {
        if (!r.digest_end || *r.digest_end != *r.r0) {
            // Server bytes migware never saw (or none yet): the digest
            // restarts here, and the one from the stream's start is lost.
            r.full_ok = false;
            r.digest_end = *r.r0;
            forget_early(c);
            r.checkpoints.clear();
            r.since_checkpoint = 0;
        }
        r.h_turn = kDigestBasis;
        r.turn_ok = true;
        r.marks.push_back({*r.r0, r.h_turn, r.h_full});
    } else {
        r.turn_ok = false;
    }
    trim_acked(c);
}

void ConnectionTable::digest_server_data(Connection& c, const Packet& p, std::span<const std::byte> frame) {
    ReplayTrack& r = *c.replay;
    const SeqNum start = p.tcp.seq + (p.tcp.has(tf::kSyn) ? 1u : 0u);
    const SeqNum end = start + p.payload_length;
    if (!r.server_data_end || end.after(*r.server_data_end)) {
        r.server_data_end = end;
        r.server_spoke_last = true;  // new data: the reply (or a banner) is under way
    }
    if (!r.digest_end || (!r.turn_ok && !r.full_ok)) return;
    if (end.before_or_eq(*r.digest_end)) return;  // digested already (a retransmission)
    if (p.payload_captured < p.payload_length) {
        // A snaplen cut: bytes migware will never see.
        r.turn_ok = r.full_ok = false;
        forget_early(c);
        ++counters_.replay_digest_gaps;
        return;
    }
    const auto bytes = frame.subspan(p.layout.payload, p.payload_length);
    if (start.after(*r.digest_end)) {
        // Ahead of a hole. Usually a reordering by microseconds: held until
        // the missing bytes arrive. Beyond the bounds, bytes the capture lost:
        // this reply, and the stream since its start, cannot be checked.
        const bool room = r.early.size() < ReplayTrack::kMaxEarlySegments &&
                          r.early_bytes + bytes.size() <= ReplayTrack::kMaxEarlyBytes;
        if (!room) {
            r.turn_ok = r.full_ok = false;
            forget_early(c);
            ++counters_.replay_digest_gaps;
            return;
        }
        auto at = std::find_if(r.early.begin(), r.early.end(),
                               [&](const ReplayTrack::Early& e) { return start.before_or_eq(e.start); });
        if (at != r.early.end() && at->start == start && at->bytes.size() >= bytes.size()) return;  // held
        r.early.insert(at, ReplayTrack::Early{start, {bytes.begin(), bytes.end()}});
        r.early_bytes += bytes.size();
        ++counters_.replay_reordered;
        return;
    }
    digest_in_order(c, start, bytes);
    // The hole may be filled: what was held follows, in order.
    while (!r.early.empty() && !r.early.front().start.after(*r.digest_end)) {
        ReplayTrack::Early e = std::move(r.early.front());
        r.early.erase(r.early.begin());
        r.early_bytes -= e.bytes.size();
        if ((e.start + static_cast<std::uint32_t>(e.bytes.size())).after(*r.digest_end))
            digest_in_order(c, e.start, e.bytes);
    }
}

void ConnectionTable::digest_in_order(Connection& c, SeqNum start, std::span<const std::byte> bytes) {
    ReplayTrack& r = *c.replay;
    const SeqNum end = start + static_cast<std::uint32_t>(bytes.size());
    const auto fresh = bytes.subspan((*r.digest_end - start).value);
    if (r.turn_ok) r.h_turn = digest_update(r.h_turn, fresh);
    if (r.full_ok) r.h_full = digest_update(r.h_full, fresh);
    counters_.replay_digested_bytes += fresh.size();
    r.digest_end = end;
    if (r.live_marks() < ReplayTrack::kMaxMarks) r.marks.push_back({end, r.h_turn, r.h_full});
    r.since_checkpoint += static_cast<std::uint32_t>(fresh.size());
    if (r.since_checkpoint >= r.checkpoint_every) {
        r.checkpoints.push_back({end, r.h_turn, r.h_full});
        r.since_checkpoint = 0;
        if (r.checkpoints.size() > ReplayTrack::kMaxCheckpoints) {
            std::size_t kept = 0;
            for (std::size_t i = 1; i < r.checkpoints.size(); i += 2) r.checkpoints[kept++] = r.checkpoints[i];
            r.checkpoints.resize(kept);
            r.checkpoint_every *= 2;
        }
    }
}

void ConnectionTable::init_replay(Connection& c) const {
    c.replay_mode = config_.mode_for(c.key.server.port.value);
    if (c.replay_mode != ReplayMode::Push) c.replay = std::make_unique<ReplayTrack>();
}

void ConnectionTable::forget_early(Connection& c) {
    std::vector<ReplayTrack::Early>().swap(c.replay->early);
    c.replay->early_bytes = 0;
}

void ConnectionTable::prune_marks(Connection& c) {
    ReplayTrack& r = *c.replay;
    if (!c.client_ack_high || r.live_marks() < 2) return;
    // Keep the latest mark the client has acknowledged, and every later one.
    while (r.live_marks() >= 2 && r.marks[r.marks_head + 1].end.before_or_eq(*c.client_ack_high)) ++r.marks_head;
    if (r.marks_head > 64 && std::size_t{r.marks_head} * 2 > r.marks.size()) {
        r.marks.erase(r.marks.begin(), r.marks.begin() + r.marks_head);
        r.marks_head = 0;
    }
}

bool ConnectionTable::relieve(Connection& c) {
    if (!c.replay) return false;
    ReplayTrack& r = *c.replay;
    if (c.replay_mode == ReplayMode::Full) {
        // Over its cap, a full-replay connection keeps aligned replay.
        c.replay_mode = ReplayMode::Aligned;
        r.full_held = false;
        ++counters_.replay_full_over_cap;
        trim_acked(c);
        return true;
    }
    if (r.turn_held) {
        // A request too large to hold: its unacknowledged bytes only, as push.
        r.turn_held = false;
        ++counters_.replay_request_over_cap;
        trim_acked(c);
        return true;
    }
    return false;
}

void ConnectionTable::update_state(Connection& c, std::int64_t now_ns) {
    if (c.state == TcpState::Closed) return;
    const bool client_fin_acked =
        c.client_fin_seq && c.server_ack_high && c.server_ack_high->after(*c.client_fin_seq);
    const bool server_fin_acked =
        c.server_fin_seq && c.client_ack_high && c.client_ack_high->after(*c.server_fin_seq);
    if (c.rst_seen || (client_fin_acked && server_fin_acked)) {
        ++generation_;
        c.state = TcpState::Closed;
        c.closed_at_ns = now_ns;
        counters_.buffered_bytes -= c.unacked.size();
        c.unacked.clear();
        c.replay.reset();  // nothing left to replay
        return;
    }
    if (c.client_fin_seq || c.server_fin_seq) {
        c.state = TcpState::Closing;
        return;
    }
    // RFC 9293 §3.5: the client's ACK of the server's SYN completes the handshake.
    if (c.state == TcpState::Handshake && c.server_isn && c.client_ack_high &&
        c.client_ack_high->after(*c.server_isn)) {
        c.state = TcpState::Established;
    }
    // The SYN-ACK lost by the capture: data flowing shows the handshake done
    // (a client sends bytes only once it has the SYN-ACK, a server only once
    // it has the client's ACK). Established, with the server's ISN unseen:
    // recovered as a connection picked up mid-stream (options inferred), not
    // left out as still opening while its client waits for bytes.
    if (c.state == TcpState::Handshake && !c.server_isn &&
        ((c.client_isn && c.client_data_end && c.client_data_end->after(*c.client_isn + 1u)) ||
         c.max_server_payload > 0)) {
        c.state = TcpState::Established;
        ++counters_.synack_unseen;
    }
}

void ConnectionTable::reset_for_new_syn(Connection& c) {
    const FourTuple key = c.key;
    const std::uint64_t id = c.id;
    counters_.buffered_bytes -= c.unacked.size();
    const std::uint32_t prev = c.prev, next = c.next;
    c = Connection{};
    c.key = key;
    c.id = id;
    init_replay(c);
    c.prev = prev;
    c.next = next;
}

bool ConnectionTable::restore(const HandshakeFacts& f, std::int64_t now_ns) {
    if (const auto it = index_.find(pair_key(f.key.client, f.key.server)); it != index_.end()) {
        // Known already. Picked up mid-stream (its handshake never seen
        // here), the facts complete it: another member saw the handshake.
        Connection& c = slots_[it->second];
        if (c.handshake_seen() || c.key != f.key || c.state == TcpState::Closed) return false;
        apply_facts(c, f);
        ++counters_.restored;
        ++generation_;
        return true;
    }
    const std::uint32_t slot = create(f.key, now_ns);
    Connection& c = slots_[slot];
    unlink(open_, slot);
    c.state = TcpState::Established;
    apply_facts(c, f);
    link_tail(open_, slot);
    ++counters_.restored;
    ++generation_;
    return true;
}

void ConnectionTable::apply_facts(Connection& c, const HandshakeFacts& f) {
    c.restored = true;
    c.client_isn = f.client_isn;
    c.server_isn = f.server_isn;
    c.client_mss = f.client_mss;
    c.server_mss = f.server_mss;
    c.client_wscale_offered = f.client_wscale;
    c.server_wscale_offered = f.server_wscale;
    c.client_sack_offered = f.client_sack;
    c.server_sack_offered = f.server_sack;
    c.client_ts_offered = f.client_ts;
    c.server_ts_offered = f.server_ts;
    c.client_mac = f.client_mac;
    c.server_mac = f.server_mac;
    c.server_mac_from_server = true;
    c.vlan = f.vlan;
}

std::uint32_t ConnectionTable::create(const FourTuple& key, std::int64_t now_ns) {
    if (index_.size() >= config_.max_connections) make_room();
    std::uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
        slots_[slot] = Connection{};
    } else {
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    if (order_.size() < slots_.size()) order_.resize(slots_.size());
    order_[slot] = {created_.tail, kNil};
    if (created_.tail != kNil) {
        order_[created_.tail].next = slot;
    } else {
        created_.head = slot;
    }
    created_.tail = slot;
    Connection& c = slots_[slot];
    c.key = key;
    c.id = next_id_++;
    init_replay(c);
    c.first_seen_ns = now_ns;
    c.last_seen_ns = now_ns;
    c.prev = c.next = kNil;
    index_.emplace(pair_key(key.client, key.server), slot);
    link_tail(open_, slot);
    return slot;
}

void ConnectionTable::remove(std::uint32_t slot) {
    ++generation_;
    const Links o = order_[slot];
    (o.prev != kNil ? order_[o.prev].next : created_.head) = o.next;
    (o.next != kNil ? order_[o.next].prev : created_.tail) = o.prev;
    order_[slot] = {};
    Connection& c = slots_[slot];
    unlink(list_of(c), slot);
    index_.erase(pair_key(c.key.client, c.key.server));
    counters_.buffered_bytes -= c.unacked.size();
    c.unacked.clear();
    c.replay.reset();
    free_.push_back(slot);
}

bool ConnectionTable::make_room() {
    if (closed_.head != kNil) {
        remove(closed_.head);
        ++counters_.evicted_closed;
        return true;
    }
    if (open_.head != kNil) {
        remove(open_.head);
        ++counters_.evicted_idle;
        return true;
    }
    return false;
}

void ConnectionTable::expire(std::int64_t now_ns) {
    if (config_.idle_timeout_ns > 0) {
        while (open_.head != kNil &&
               now_ns - slots_[open_.head].last_seen_ns > config_.idle_timeout_ns) {
            remove(open_.head);
            ++counters_.expired_idle;
        }
    }
    if (config_.closed_linger_ns > 0) {
        while (closed_.head != kNil &&
               now_ns - slots_[closed_.head].last_seen_ns > config_.closed_linger_ns) {
            remove(closed_.head);
            ++counters_.expired_closed;
        }
    }
}

const Connection* ConnectionTable::find(const FourTuple& key) const {
    auto it = index_.find(pair_key(key.client, key.server));
    if (it == index_.end()) return nullptr;
    const Connection& c = slots_[it->second];
    return c.key == key ? &c : nullptr;
}

void ConnectionTable::link_tail(List& list, std::uint32_t slot) {
    Connection& c = slots_[slot];
    c.prev = list.tail;
    c.next = kNil;
    if (list.tail != kNil) {
        slots_[list.tail].next = slot;
    } else {
        list.head = slot;
    }
    list.tail = slot;
}

void ConnectionTable::unlink(List& list, std::uint32_t slot) {
    Connection& c = slots_[slot];
    if (c.prev != kNil) {
        slots_[c.prev].next = c.next;
    } else {
        list.head = c.next;
    }
    if (c.next != kNil) {
        slots_[c.next].prev = c.prev;
    } else {
        list.tail = c.prev;
    }
    c.prev = c.next = kNil;
}

}  // namespace migware::tracker
