#include "control/handler.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "control/metrics.hpp"
#include "migware/report.hpp"
#include "migware/version.hpp"

namespace migware {

namespace {

using control::Json;

constexpr std::uint64_t kDefaultLimit = 100;
constexpr std::uint64_t kMaxLimit = 1000;
constexpr std::size_t kMaxMatch = 256;
constexpr std::string_view kCommands = "(status, connections, counters, events, metrics)";

std::string wall_text(std::int64_t wall_ns) {
    const time_t secs = static_cast<time_t>(wall_ns / 1'000'000'000);
    tm utc{};
    gmtime_r(&secs, &utc);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>((wall_ns / 1'000'000) % 1000));
    return buf;
}

std::int64_t wall_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Json or_null(bool known, Json v) { return known ? std::move(v) : Json(); }

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

/// `needle` is already lower case.
bool contains_folded(std::string_view hay, std::string_view needle) {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                       [](char a, char b) { return lower(a) == b; }) != hay.end();
}

}  // namespace

Json DaemonControl::fields_json(const Fields& fields) {
    Json out = Json::object();
    for (const auto& f : fields)
        std::visit([&](const auto& v) { out[f.key] = v; }, f.value);
    return out;
}

Json DaemonControl::event_json(const EventRecord& e) {
    Json j = Json::object();
    j["seq"] = e.seq;
    j["mono_ns"] = e.mono_ns;
    j["wall"] = wall_text(e.wall_ns);
    j["event"] = e.event;
    j["fields"] = fields_json(e.fields);
    return j;
}

std::string DaemonControl::follower_line(const EventRecord& e) {
    Json j = Json::object();
    j["v"] = 1;
    j["event"] = event_json(e);
    return control::dump(j);
}

DaemonControl::PhaseCounts DaemonControl::phase_counts() const {
    PhaseCounts n{};
    parts_.engine.for_each_connection([&](const ConnectionView& v) { ++n[static_cast<std::size_t>(v.phase)]; });
    return n;
}

Json DaemonControl::status() const {
    const auto& e = parts_.engine;
    const auto& m = parts_.monitor;
    const auto& cfg = parts_.config;
    const auto now = parts_.now();
    const EventRecord* tr = parts_.events.newest("transition");
    Json rtts = Json::array();
    for (auto ns : m.recent_rtts()) rtts.push_back(ns / 1000);
    Json ports = Json::array();
    for (auto p : cfg.ports) ports.push_back(p);
    const std::int64_t since_mono = e.state_since();
    const std::int64_t since_wall = wall_now_ns() - (now - since_mono);
    const auto phases = phase_counts();
    Json phase_obj = Json::object();
    for (std::size_t i = 0; i < phases.size(); ++i) phase_obj[std::string(name_of(static_cast<Phase>(i)))] = phases[i];

    Json primary = Json::object();
    primary["health"] = std::string(monitor::name_of(m.health()));
    primary["consecutive_misses"] = m.consecutive_misses();
    primary["probes_sent"] = m.sent();
    primary["replies"] = m.replies();
    primary["rejected_replies"] = m.rejected_replies();
    primary["late_replies"] = m.late_replies();
    primary["rtt_us"] = std::move(rtts);
    primary["arp_probes"] = m.arp_probes();
    primary["arp_answers"] = m.arp_answers();
    primary["never_answered"] = m.never_answered();

    Json vetoes = Json::object();
    vetoes["primary_tcp"] = m.vetoes(monitor::Veto::PrimaryTcp);
    vetoes["primary_arp"] = m.vetoes(monitor::Veto::PrimaryArp);
    vetoes["carrier"] = m.vetoes(monitor::Veto::Carrier);
    vetoes["no_segment_evidence"] = m.vetoes(monitor::Veto::NoSegmentEvidence);
    Json segment = Json::object();
    segment["evidence_required"] = cfg.monitor.require_segment_evidence;
    segment["carrier"] = or_null(m.carrier_known(), m.carrier_up() ? "up" : "down");
    segment["frames_from_other_hosts"] = e.counters().segment_frames;
    segment["vetoes"] = std::move(vetoes);
    segment["rollbacks"] = e.counters().rollbacks;

    Json recovery = Json::object();
    recovery["twins"] = e.counters().twins;
    recovery["resolved"] = e.twins_resolved();
    recovery["recovered"] = e.counters().recovered;
    recovery["failed"] = e.twins_failed();
    recovery["duration_us"] = or_null(e.recovery_duration() > 0, e.recovery_duration() / 1000);

    Json config = Json::object();
    config["interface"] = cfg.interface;
    config["primary"] = cfg.primary.to_string();
    config["backup"] = cfg.backup.to_string();
    config["ports"] = std::move(ports);
    config["tun"] = cfg.tun_name;
    config["monitor_interval_ms"] = cfg.monitor.interval / monitor::kMillisecond;
    config["monitor_timeout_ms"] = cfg.monitor.timeout / monitor::kMillisecond;
    config["monitor_misses"] = cfg.monitor.misses;
    config["monitor_reference"] = cfg.reference ? Json(cfg.reference->to_string()) : Json();
    config["max_connections"] = cfg.failover.table.max_connections;

    Json st = Json::object();
    st["state"] = std::string(name_of(e.state()));
    st["since_mono_ns"] = since_mono;
    st["since_wall"] = or_null(since_mono != 0, wall_text(since_wall));
    st["seconds_in_state"] = or_null(since_mono != 0, static_cast<double>(now - since_mono) / 1e9);
    st["last_transition"] = tr ? fields_json(tr->fields) : Json();
    st["primary"] = std::move(primary);
    st["segment"] = std::move(segment);
    st["recovery"] = std::move(recovery);
    st["connections"] = std::move(phase_obj);
    st["config"] = std::move(config);
    st["membership"] = membership_json(now);
    st["version"] = kVersion;
    return st;
}

Json DaemonControl::membership_json(monitor::MonoNs now) const {
    if (!parts_.membership) return Json();
    const auto& m = *parts_.membership;
    const auto& core = m.core();
    const auto ps = m.provider().status();
    Json members = Json::array();
    std::vector<std::pair<std::pair<std::uint32_t, membership::NodeId>, Json>> ranked;
    for (const auto& mv : core.members()) {
        Json j = Json::object();
        j["node"] = mv.node;
        j["priority"] = mv.priority ? Json(*mv.priority) : Json();
        j["role"] = core.active() == mv.node ? "active" : core.quorate() ? "standby" : "observer";
        j["self"] = mv.node == m.self();
        j["verdict"] = mv.primary_down ? Json(*mv.primary_down ? "down" : "up") : Json();
        j["heard_ms_ago"] = mv.heard_at > 0 ? Json((now - mv.heard_at) / monitor::kMillisecond) : Json();
        ranked.push_back({{mv.priority.value_or(UINT32_MAX), mv.node}, std::move(j)});
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::uint64_t rank = 0;
    for (auto& [key, j] : ranked) {
        j["rank"] = rank++;
        members.push_back(std::move(j));
    }
    Json out = Json::object();
    out["provider"] = ps.name;
    out["node"] = m.self();
    out["priority"] = core.config().priority;
    out["role"] = std::string(membership::name_of(core.role()));
    out["epoch"] = core.epoch();
    out["active"] = core.active() ? Json(*core.active()) : Json();
    out["may_act"] = m.may_act(now);
    out["suspended"] = core.suspended(now);
    out["quorate"] = core.quorate();
    out["connected"] = ps.connected;
    out["ring"] = core.view().ring_id;
    out["votes"] = ps.votes;
    out["expected_votes"] = ps.expected_votes;
    out["quorum_votes"] = ps.quorum_votes;
    out["members"] = std::move(members);
    return out;
}

Json DaemonControl::connections(std::optional<Phase> phase, std::string_view match, std::uint64_t offset,
                                std::uint64_t limit) const {
    std::string needle(match);
    for (auto& c : needle) c = lower(c);
    Json items = Json::array();
    std::uint64_t total = 0;
    parts_.engine.for_each_connection([&](const ConnectionView& v) {
        if (phase && v.phase != *phase) return;
        if (!needle.empty() && !contains_folded(name_of(v.phase), needle) &&
            !contains_folded(v.connection->key.client.to_string(), needle) &&
            !contains_folded(v.connection->key.server.to_string(), needle))
            return;
        if (total++ < offset || total > offset + limit) return;
        Json item = connection_json(*v.connection);
        item["phase"] = std::string(name_of(v.phase));
        item["reason"] = v.reason ? Json(std::string(name_of(*v.reason))) : Json();
        const bool twin = v.twin.has_value();
        item["twin_port"] = or_null(twin, twin ? v.twin->twin_port : 0);
        item["to_backup_packets"] = or_null(twin, twin ? v.twin->to_backup_packets : 0);
        item["to_client_packets"] = or_null(twin, twin ? v.twin->to_client_packets : 0);
        item["to_backup_bytes"] = or_null(twin, twin ? v.twin->to_backup_bytes : 0);
        item["to_client_bytes"] = or_null(twin, twin ? v.twin->to_client_bytes : 0);
        // Issue 13: the replay mode in effect, the client bytes held for it,
        // and (twins) how the connection was replayed and its overlap.
        item["replay_mode"] = std::string(tracker::name_of(v.connection->replay_mode));
        item["held_bytes"] = static_cast<std::uint64_t>(v.connection->unacked.size());
        item["replay"] = twin ? Json(std::string(v.twin->replay)) : Json();
        item["overlap"] = twin ? Json(std::string(v.twin->overlap)) : Json();
        items.push_back(std::move(item));
    });
    Json out = Json::object();
    out["total"] = total;
    out["offset"] = offset;
    if (!match.empty()) out["match"] = std::string(match);
    out["items"] = std::move(items);
    return out;
}

Json DaemonControl::counters() const {
    const auto capture = parts_.capture_stats();
    const auto control = parts_.control_counters();
    const auto phases = phase_counts();
    const counters::Sources s{&parts_.engine, &parts_.monitor, &capture, &control, parts_.service,
                              &parts_.to_backup_latency, &parts_.to_client_latency, phases.data()};
    Json out = Json::object();
    counters::for_each_json(s, [&](const std::string& k, std::uint64_t v) { out[k] = v; });
    return out;
}

Json DaemonControl::events(std::uint64_t last) const {
    Json arr = Json::array();
    for (const auto& e : parts_.events.last(static_cast<std::size_t>(last))) arr.push_back(event_json(e));
    Json out = Json::object();
    out["events"] = std::move(arr);
    return out;
}

std::string DaemonControl::metrics() const {
    const auto capture = parts_.capture_stats();
    const auto control = parts_.control_counters();
    const auto phases = phase_counts();
    const counters::Sources s{&parts_.engine, &parts_.monitor, &capture, &control, parts_.service,
                              &parts_.to_backup_latency, &parts_.to_client_latency, phases.data()};
    std::string text = control::prometheus_text(s);
    if (parts_.membership) text += control::membership_text(*parts_.membership, parts_.now());
    return text;
}

ControlReply DaemonControl::handle(std::string_view line) {
    auto parsed = control::parse_request(line);
    if (!parsed) return {parsed.error(), false};
    const control::Request& req = *parsed;
    const Json& id = req.id;
    const Json& body = req.body;
    std::string err;
    if (req.cmd == "status") return {control::ok_reply(id, status()), false};
    if (req.cmd == "counters") return {control::ok_reply(id, counters()), false};
    if (req.cmd == "metrics") {
        Json r = Json::object();
        r["text"] = metrics();
        return {control::ok_reply(id, std::move(r)), false};
    }
    if (req.cmd == "connections") {
        std::optional<Phase> phase;
        if (control::has(body, "state")) {
            const std::string* name = control::as_string(control::member(body, "state"));
            phase = name ? phase_from_name(*name) : std::nullopt;
            if (!phase)
                return {control::error_reply(id, "'state' must be one of " + joined(kPhaseNames)), false};
        }
        std::string_view match;
        if (control::has(body, "match")) {
            const std::string* m = control::as_string(control::member(body, "match"));
            if (!m || m->size() > kMaxMatch)
                return {control::error_reply(id, "'match' must be a string of at most 256 bytes"), false};
            match = *m;
        }
        auto offset = control::uint_arg(body, "offset", 0, err);
        auto limit = offset ? control::uint_arg(body, "limit", kDefaultLimit, err) : std::nullopt;
        if (!offset || !limit) return {control::error_reply(id, err), false};
        return {control::ok_reply(id, connections(phase, match, *offset, std::min(*limit, kMaxLimit))), false};
    }
    if (req.cmd == "events") {
        auto last = control::uint_arg(body, "last", 50, err);
        if (!last) return {control::error_reply(id, err), false};
        bool follow = false;
        if (control::has(body, "follow")) {
            auto b = control::as_bool(control::member(body, "follow"));
            if (!b) return {control::error_reply(id, "'follow' must be true or false"), false};
            follow = *b;
        }
        return {control::ok_reply(id, events(*last)), follow};
    }
    return {control::error_reply(id, "unknown cmd '" + req.cmd + "' " + std::string(kCommands)), false};
}

}  // namespace migware
