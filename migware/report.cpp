#include "migware/report.hpp"

#include <cstdio>
#include <ostream>
#include <sstream>

namespace migware {
namespace {

using tracker::Connection;

using Json = nlohmann::ordered_json;

template <typename T>
Json num_or_null(const std::optional<T>& v) {
    return v ? Json(*v) : Json();
}

Json seq_or_null(const std::optional<sniffer::SeqNum>& v) { return v ? Json(v->raw()) : Json(); }

Json bool_or_null(bool known, bool value) { return known ? Json(value) : Json(); }

std::string text(const std::optional<std::uint32_t>& v) { return v ? std::to_string(*v) : "-"; }

}  // namespace

Json connection_json(const Connection& c) {
    const bool hs = c.handshake_seen();
    const bool ws = hs && c.wscale_in_use();
    Json j = Json::object();
    j["client"] = c.key.client.to_string();
    j["server"] = c.key.server.to_string();
    j["state"] = std::string(tracker::name_of(c.state));
    j["client_isn"] = seq_or_null(c.client_isn);
    j["server_isn"] = seq_or_null(c.server_isn);
    j["mss"] = num_or_null(c.client_mss);
    j["client_wscale"] = ws ? Json(c.client_wscale()) : Json();
    j["server_wscale"] = ws ? Json(c.server_wscale()) : Json();
    j["sack"] = bool_or_null(hs, c.sack_in_use());
    j["timestamps"] = bool_or_null(hs, c.timestamps_in_use());
    j["partial"] = c.partial;
    j["client_bytes_acked"] = num_or_null(c.client_bytes_acked());
    j["server_bytes_acked"] = num_or_null(c.server_bytes_acked());
    return j;
}

std::string summary_json(const Pipeline& p) {
    const auto& pc = p.parse_counters();
    std::ostringstream s;
    s << "{\"summary\":true,\"packets\":" << pc.frames
      << ",\"tcp\":" << pc.kind(sniffer::PacketKind::Tcp) << ",\"malformed\":" << pc.malformed()
      << ",\"connections\":" << p.table().size() << "}";
    return s.str();
}

void print_json(std::ostream& out, const Pipeline& p) {
    p.table().for_each([&](const Connection& c) { out << connection_json(c).dump() << '\n'; });
    out << summary_json(p) << '\n';
}

void print_table(std::ostream& out, const Pipeline& p) {
    char line[256];
    std::snprintf(line, sizeof line, "%-21s %-21s %-11s %10s %10s %5s %5s %4s %2s %10s %10s %s\n",
                  "CLIENT", "SERVER", "STATE", "CLIENT_ISN", "SERVER_ISN", "MSS", "WS", "SACK",
                  "TS", "C_ACKED", "S_ACKED", "NOTES");
    out << line;
    p.table().for_each([&](const Connection& c) {
        const bool hs = c.handshake_seen();
        std::string ws = hs && c.wscale_in_use()
                             ? std::to_string(c.client_wscale()) + "/" + std::to_string(c.server_wscale())
                             : "-";
        std::string notes;
        if (c.partial) notes += "partial ";
        if (c.rst_seen) notes += "rst ";
        if (c.unacked_in_flight() > 0)
            notes += "unacked=" + std::to_string(c.unacked_in_flight()) +
                     (c.can_replay_unacked() ? " " : "(incomplete) ");
        std::snprintf(line, sizeof line, "%-21s %-21s %-11s %10s %10s %5s %5s %4s %2s %10s %10s %s\n",
                      c.key.client.to_string().c_str(), c.key.server.to_string().c_str(),
                      std::string(tracker::name_of(c.state)).c_str(),
                      c.client_isn ? std::to_string(c.client_isn->raw()).c_str() : "-",
                      c.server_isn ? std::to_string(c.server_isn->raw()).c_str() : "-",
                      c.client_mss ? std::to_string(*c.client_mss).c_str() : "-", ws.c_str(),
                      hs ? (c.sack_in_use() ? "yes" : "no") : "-",
                      hs ? (c.timestamps_in_use() ? "on" : "no") : "-",
                      text(c.client_bytes_acked()).c_str(), text(c.server_bytes_acked()).c_str(),
                      notes.c_str());
        out << line;
    });
}

void print_counters(std::ostream& out, const Pipeline& p) {
    const auto& pc = p.parse_counters();
    const auto& tc = p.table().counters();
    out << "packets " << pc.frames << "  connections " << p.table().size() << "\n";
    out << "decoded:";
    for (std::size_t k = 0; k < pc.by_kind.size(); ++k)
        out << ' ' << sniffer::name_of(static_cast<sniffer::PacketKind>(k)) << '=' << pc.by_kind[k];
    out << "  ipv4_fragments=" << pc.fragments << " ipv4_options=" << pc.ipv4_with_options
        << " cut_by_snaplen=" << pc.truncated_by_capture << "\n";
    out << "malformed " << pc.malformed() << ":";
    for (std::size_t r = 0; r < sniffer::kDropReasonCount; ++r)
        if (pc.dropped[r] > 0)
            out << ' ' << sniffer::name_of(static_cast<sniffer::DropReason>(r)) << '=' << pc.dropped[r];
    out << "\n";
    out << "tracker: segments=" << tc.segments << " not_protected=" << tc.not_protected
        << " unknown_rst=" << tc.unknown_rst << " created=" << tc.created
        << " partial=" << tc.created_partial << " reincarnated=" << tc.reincarnated << "\n";
    out << "evictions: closed=" << tc.evicted_closed << " idle=" << tc.evicted_idle
        << " expired_closed=" << tc.expired_closed << " expired_idle=" << tc.expired_idle << "\n";
    out << "buffer: held_bytes=" << tc.buffered_bytes
        << " refused_per_connection_cap=" << tc.buffer_cap_per_connection
        << " refused_global_cap=" << tc.buffer_cap_global << " capture_gaps=" << tc.buffer_gaps
        << "\n";
}

}  // namespace migware
