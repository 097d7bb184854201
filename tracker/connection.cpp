#include "tracker/connection.hpp"

#include <algorithm>

namespace migware::tracker {

std::string_view name_of(TcpState s) {
    switch (s) {
        case TcpState::Handshake: return "handshake";
        case TcpState::Established: return "established";
        case TcpState::Closing: return "closing";
        case TcpState::Closed: return "closed";
    }
    return "unknown";
}

std::uint8_t Connection::client_wscale() const {
    return wscale_in_use() ? std::min<std::uint8_t>(*client_wscale_offered, 14) : 0;
}

std::uint8_t Connection::server_wscale() const {
    return wscale_in_use() ? std::min<std::uint8_t>(*server_wscale_offered, 14) : 0;
}

namespace {

// Data bytes acknowledged between isn+1 and ack_high, not counting a FIN the
// ack covers (a FIN occupies one sequence number but carries no byte).
std::optional<std::uint32_t> bytes_acked(const Seen<SeqNum>& isn, const Seen<SeqNum>& ack_high,
                                         const Seen<SeqNum>& fin_seq) {
    if (!isn || !ack_high) return std::nullopt;
    const SeqNum first = *isn + 1u;
    if (ack_high->before(first)) return 0;
    std::uint32_t n = (*ack_high - first).value;
    if (fin_seq && ack_high->after(*fin_seq) && n > 0) --n;
    return n;
}

}  // namespace

std::optional<HandshakeFacts> Connection::handshake_facts() const {
    if (!client_isn || !server_isn) return std::nullopt;
    return HandshakeFacts{key,
                          *client_isn,
                          *server_isn,
                          client_mss,
                          server_mss,
                          client_wscale_offered,
                          server_wscale_offered,
                          client_sack_offered,
                          server_sack_offered,
                          client_ts_offered,
                          server_ts_offered,
                          client_mac,
                          server_mac,
                          vlan};
}

std::optional<std::uint32_t> Connection::client_bytes_acked() const {
    return bytes_acked(client_isn, server_ack_high, client_fin_seq);
}

std::optional<std::uint32_t> Connection::server_bytes_acked() const {
    return bytes_acked(server_isn, client_ack_high, server_fin_seq);
}

std::uint32_t Connection::unacked_in_flight() const {
    if (!server_ack_high || !client_data_end) return 0;
    if (client_data_end->before_or_eq(*server_ack_high)) return 0;
    return (*client_data_end - *server_ack_high).value;
}

bool Connection::can_replay_unacked() const {
    if (!server_ack_high) return false;
    const std::uint32_t pending = unacked_in_flight();
    if (pending == 0) return true;
    // The ring may start before A (TableConfig::keep_unanswered); it must
    // reach back to A and run up to the last byte sent.
    return unacked_base_set && unacked_base.before_or_eq(*server_ack_high) &&
           unacked.size() >= pending && unacked_base + static_cast<std::uint32_t>(unacked.size()) == *client_data_end;
}

std::optional<SeqNum> Connection::unanswered_start() const {
    if (!server_ack_high || !unacked_base_set || !client_data_end) return std::nullopt;
    std::optional<SeqNum> b = answered_up_to;
    if (!b && client_isn) b = *client_isn + 1u;
    if (!b || b->after(*server_ack_high)) return std::nullopt;
    if (unacked_base != *b) return std::nullopt;
    if ((*client_data_end - *b).value != unacked.size()) return std::nullopt;
    return b;
}

}  // namespace migware::tracker
