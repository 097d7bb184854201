#include "control/handler.hpp"

#include <cstdio>
#include <ctime>
#include <map>

#include "migware/report.hpp"

namespace migware {

namespace {

using json::Value;

constexpr std::uint64_t kDefaultLimit = 100;
constexpr std::uint64_t kMaxLimit = 1000;
constexpr const char* kVersion = "0.1.0";

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

Value error_reply(const Value* id, const std::string& message) {
    Value v = Value::object({{"v", 1}});
    v.set("id", id ? *id : Value());
    v.set("ok", false);
    v.set("error", message);
    return v;
}

Value ok_reply(const Value* id, Value result) {
    Value v = Value::object({{"v", 1}});
    v.set("id", id ? *id : Value());
    v.set("ok", true);
    v.set("result", std::move(result));
    return v;
}

std::optional<std::uint64_t> uint_arg(const Value& req, std::string_view key, std::uint64_t dflt,
                                      std::string& error) {
    const Value* v = req.find(key);
    if (!v) return dflt;
    auto n = v->as_u64();
    if (!n) {
        error = "'" + std::string(key) + "' must be a non-negative integer";
        return std::nullopt;
    }
    return *n;
}

/// Counter name -> value, in a stable order; shared by `counters` and `metrics`.
std::vector<std::pair<std::string, std::uint64_t>> counter_list(const DaemonParts& p) {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    auto add = [&](std::string k, std::uint64_t v) { out.emplace_back(std::move(k), v); };
    const auto& pc = p.engine.pipeline().parse_counters();
    const auto& tc = p.engine.pipeline().table().counters();
    const auto& fc = p.engine.counters();
    const auto cs = p.capture_stats();
    add("frames_captured", pc.frames);
    add("captured_bytes", pc.bytes);
    add("pcap_received", cs.received);
    add("kernel_drops", cs.dropped_kernel);
    add("interface_drops", cs.dropped_interface);
    add("tcp_segments", pc.kind(sniffer::PacketKind::Tcp));
    add("arp_frames", pc.kind(sniffer::PacketKind::Arp));
    add("malformed", pc.malformed());
    for (std::size_t r = 0; r < sniffer::kDropReasonCount; ++r)
        add("malformed_" + std::string(sniffer::name_of(static_cast<sniffer::DropReason>(r))),
            pc.dropped[r]);
    add("to_backup_packets", fc.to_backup);
    add("to_backup_bytes", fc.to_backup_bytes);
    add("to_client_packets", fc.to_client);
    add("to_client_bytes", fc.to_client_bytes);
    add("twins", fc.twins);
    add("recovered", fc.recovered);
    for (std::size_t u = 0; u < fc.unrecovered.size(); ++u)
        add("unrecovered_" + std::string(name_of(static_cast<Unrecovered>(u))), fc.unrecovered[u]);
    add("syn_sent", fc.syn_sent);
    add("syn_retransmitted", fc.syn_retransmitted);
    add("replayed_bytes", fc.replayed_bytes);
    add("replay_incomplete", fc.replay_incomplete);
    add("replayed_unanswered", fc.replayed_unanswered);
    add("replayed_fins", fc.replayed_fins);
    add("queued_frames", fc.queued_frames);
    add("queue_overflow", fc.queue_overflow);
    add("send_errors", fc.send_errors);
    add("rewrite_errors", fc.rewrite_errors);
    add("backup_unknown", fc.backup_unknown);
    add("client_unrecovered", fc.client_unrecovered);
    add("new_connections_unserved", fc.new_connections_unserved);
    add("primary_packets_in_proxy", fc.primary_packets_in_proxy);
    add("arp_replies", fc.arp_replies);
    add("gratuitous_arps", fc.gratuitous_arps);
    add("new_connections", fc.new_connections);
    add("new_connections_to_primary", fc.new_connections_to_primary);
    add("relayed_to_primary", fc.relayed_to_primary);
    add("arp_reasserted", fc.arp_reasserted);
    add("own_frames", fc.own_frames);
    add("fence_rounds", fc.fence_rounds);
    add("fence_probes", fc.fence_probes);
    add("fence_resets", fc.fence_resets);
    add("fenced", fc.fenced);
    add("fence_gave_up", fc.fence_gave_up);
    add("stale_unfenced", p.engine.stale_unfenced());
    add("stale_segments", fc.stale_segments);
    add("primary_fed", fc.primary_fed);
    add("primary_resets_seen", fc.primary_resets_seen);
    add("primary_resets_caught", fc.primary_resets_caught);
    add("closed_acks_dropped", fc.closed_acks_dropped);
    add("connections", p.engine.pipeline().table().size());
    add("connections_created", tc.created);
    add("connections_partial", tc.created_partial);
    add("evicted_closed", tc.evicted_closed);
    add("evicted_idle", tc.evicted_idle);
    add("expired_closed", tc.expired_closed);
    add("expired_idle", tc.expired_idle);
    add("buffered_bytes", tc.buffered_bytes);
    add("buffer_refused_per_connection", tc.buffer_cap_per_connection);
    add("buffer_refused_global", tc.buffer_cap_global);
    add("capture_gaps", tc.buffer_gaps);
    add("client_retransmissions", tc.client_retransmissions);
    add("probes_sent", p.monitor.sent());
    add("probe_replies", p.monitor.replies());
    add("probe_rejected", p.monitor.rejected_replies());
    add("probe_late", p.monitor.late_replies());
    add("probe_duplicates", p.monitor.duplicate_replies());
    add("monitor_vetoes", p.monitor.vetoes());
    for (std::size_t v = 0; v < monitor::kVetoCount; ++v) {
        const auto veto = static_cast<monitor::Veto>(v);
        add("monitor_vetoes_" + std::string(monitor::name_of(veto)), p.monitor.vetoes(veto));
    }
    add("carrier_up", p.monitor.carrier_up() ? 1 : 0);
    add("carrier_losses", p.monitor.carrier_losses());
    add("segment_frames", fc.segment_frames);
    add("segment_probes", p.monitor.segment_probes());
    add("segment_arp_probes", fc.segment_arp_probes);
    add("echo_answered", fc.echo_answered);
    add("rollbacks", fc.rollbacks);
    add("rollback_twins_reset", fc.rollback_twins_reset);
    add("progress_after_fence", fc.progress_after_fence);
    add("client_beyond_hole", fc.client_beyond_hole);
    add("tcp_bad_checksum", fc.tcp_bad_checksum);
    const auto cc = p.control_counters();
    add("control_accepted", cc.accepted);
    add("control_refused", cc.refused_peer);
    add("control_requests", cc.requests);
    add("control_slow_disconnects", cc.slow_disconnects);
    add("control_oversize_requests", cc.oversize_requests);
    add("control_clients", cc.active);
    return out;
}

std::array<std::uint64_t, 5> phase_counts(const FailoverEngine& e) {
    std::array<std::uint64_t, 5> n{};
    e.for_each_connection([&](const ConnectionView& v) { ++n[static_cast<std::size_t>(v.phase)]; });
    return n;
}

}  // namespace

Value DaemonControl::event_json(const EventRecord& e) {
    Value fields = Value::object();
    for (auto& [k, v] : parse_logfmt(e.fields)) fields.set(k, v);
    return Value::object({{"seq", e.seq},
                          {"mono_ns", e.mono_ns},
                          {"wall", wall_text(e.wall_ns)},
                          {"event", e.event},
                          {"fields", std::move(fields)}});
}

std::string DaemonControl::follower_line(const EventRecord& e) {
    return json::dump(Value::object({{"v", 1}, {"event", event_json(e)}}));
}

Value DaemonControl::status() const {
    const auto& e = parts_.engine;
    const auto& m = parts_.monitor;
    const auto& cfg = parts_.config;
    const auto now = parts_.now();
    Value last = Value();
    for (const auto& ev : parts_.events.last(parts_.events.next_seq())) {
        if (ev.event != "transition") continue;
        Value t = Value::object();
        for (auto& [k, v] : parse_logfmt(ev.fields)) t.set(k, v);
        last = std::move(t);
    }
    Value rtts = Value::array();
    for (auto ns : m.recent_rtts()) rtts.push_back(ns / 1000);
    Value ports = Value::array();
    for (auto p : cfg.ports) ports.push_back(p);
    const std::int64_t since_mono = e.state_since();
    const std::int64_t since_wall = wall_now_ns() - (now - since_mono);
    const auto phases = phase_counts(e);
    Value phase_obj = Value::object();
    for (std::size_t i = 0; i < phases.size(); ++i)
        phase_obj.set(std::string(name_of(static_cast<Phase>(i))), phases[i]);
    return Value::object({
        {"state", std::string(name_of(e.state()))},
        {"since_mono_ns", since_mono},
        {"since_wall", since_mono == 0 ? Value() : Value(wall_text(since_wall))},
        {"seconds_in_state", since_mono == 0 ? Value() : Value(static_cast<double>(now - since_mono) / 1e9)},
        {"last_transition", std::move(last)},
        {"primary", Value::object({{"health", std::string(monitor::name_of(m.health()))},
                                   {"consecutive_misses", m.consecutive_misses()},
                                   {"probes_sent", m.sent()},
                                   {"replies", m.replies()},
                                   {"rejected_replies", m.rejected_replies()},
                                   {"late_replies", m.late_replies()},
                                   {"rtt_us", std::move(rtts)}})},
        {"segment", Value::object({{"evidence_required", cfg.monitor.require_segment_evidence},
                                   {"carrier", !m.carrier_known() ? Value() : Value(std::string(m.carrier_up() ? "up" : "down"))},
                                   {"frames_from_other_hosts", e.counters().segment_frames},
                                   {"vetoes", Value::object({
                                        {"primary_tcp", m.vetoes(monitor::Veto::PrimaryTcp)},
                                        {"carrier", m.vetoes(monitor::Veto::Carrier)},
                                        {"no_segment_evidence", m.vetoes(monitor::Veto::NoSegmentEvidence)}})},
                                   {"rollbacks", e.counters().rollbacks}})},
        {"recovery", Value::object({{"twins", e.counters().twins},
                                    {"resolved", e.twins_resolved()},
                                    {"recovered", e.counters().recovered},
                                    {"failed", e.twins_failed()},
                                    {"duration_us", e.recovery_duration() > 0
                                                        ? Value(e.recovery_duration() / 1000)
                                                        : Value()}})},
        {"connections", std::move(phase_obj)},
        {"config", Value::object({{"interface", cfg.interface},
                                  {"primary", cfg.primary.to_string()},
                                  {"backup", cfg.backup.to_string()},
                                  {"ports", std::move(ports)},
                                  {"tun", cfg.tun_name},
                                  {"monitor_interval_ms", cfg.monitor.interval / monitor::kMillisecond},
                                  {"monitor_timeout_ms", cfg.monitor.timeout / monitor::kMillisecond},
                                  {"monitor_misses", cfg.monitor.misses},
                                  {"monitor_reference", cfg.reference ? Value(cfg.reference->to_string()) : Value()},
                                  {"max_connections", cfg.failover.table.max_connections}})},
        {"version", kVersion},
    });
}

Value DaemonControl::connections(const std::string* phase, std::uint64_t offset, std::uint64_t limit) const {
    Value items = Value::array();
    std::uint64_t total = 0;
    parts_.engine.for_each_connection([&](const ConnectionView& v) {
        if (phase && name_of(v.phase) != *phase) return;
        if (total++ < offset || total > offset + limit) return;
        auto parsed = json::parse(connection_json(*v.connection));
        Value item = parsed ? std::move(*parsed) : Value::object();
        item.set("phase", std::string(name_of(v.phase)));
        item.set("reason", v.reason ? Value(std::string(name_of(*v.reason))) : Value());
        if (v.twin) {
            item.set("twin_port", v.twin->twin_port);
            item.set("to_backup_packets", v.twin->to_backup_packets);
            item.set("to_client_packets", v.twin->to_client_packets);
            item.set("to_backup_bytes", v.twin->to_backup_bytes);
            item.set("to_client_bytes", v.twin->to_client_bytes);
        } else {
            for (const char* k : {"twin_port", "to_backup_packets", "to_client_packets",
                                  "to_backup_bytes", "to_client_bytes"})
                item.set(k, Value());
        }
        items.push_back(std::move(item));
    });
    return Value::object({{"total", total}, {"offset", offset}, {"items", std::move(items)}});
}

Value DaemonControl::counters() const {
    Value out = Value::object();
    for (auto& [k, v] : counter_list(parts_)) out.set(k, v);
    const auto phases = phase_counts(parts_.engine);
    for (std::size_t i = 0; i < phases.size(); ++i)
        out.set("phase_" + std::string(name_of(static_cast<Phase>(i))), phases[i]);
    out.set("proxy_latency_to_backup_p50_ns", parts_.to_backup_latency.quantile(0.5));
    out.set("proxy_latency_to_backup_p99_ns", parts_.to_backup_latency.quantile(0.99));
    out.set("proxy_latency_to_client_p50_ns", parts_.to_client_latency.quantile(0.5));
    out.set("proxy_latency_to_client_p99_ns", parts_.to_client_latency.quantile(0.99));
    return out;
}

Value DaemonControl::events(std::uint64_t last) const {
    Value arr = Value::array();
    for (const auto& e : parts_.events.last(static_cast<std::size_t>(last))) arr.push_back(event_json(e));
    return Value::object({{"events", std::move(arr)}});
}

std::string DaemonControl::metrics() const {
    // Prometheus text exposition format 0.0.4. Reasons become labels of one
    // family rather than one family each.
    std::string out;
    auto family = [&](const std::string& name, const char* type, const std::string& help) {
        out += "# HELP migware_" + name + " " + help + "\n# TYPE migware_" + name + " " + type + "\n";
    };
    auto sample = [&](const std::string& name, const std::string& labels, auto value) {
        out += "migware_" + name + (labels.empty() ? "" : "{" + labels + "}") + " " +
               std::to_string(value) + "\n";
    };
    const auto& e = parts_.engine;
    family("state", "gauge", "1 for the current state of the failover state machine");
    for (auto s : {State::Normal, State::Recovery, State::Proxy})
        sample("state", "state=\"" + std::string(name_of(s)) + "\"", e.state() == s ? 1 : 0);
    family("primary_up", "gauge", "1 when the monitor's last verdict is that the primary answers");
    sample("primary_up", "", parts_.monitor.health() == monitor::Health::Up ? 1 : 0);
    family("connections", "gauge", "connections known to the tracker, by failover phase");
    const auto phases = phase_counts(e);
    for (std::size_t i = 0; i < phases.size(); ++i)
        sample("connections", "phase=\"" + std::string(name_of(static_cast<Phase>(i))) + "\"", phases[i]);

    std::map<std::string, std::vector<std::pair<std::string, std::uint64_t>>> labelled;
    for (auto& [k, v] : counter_list(parts_)) {
        if (k.rfind("malformed_", 0) == 0) {
            labelled["malformed_packets_total"].emplace_back("reason=\"" + k.substr(10) + "\"", v);
        } else if (k.rfind("unrecovered_", 0) == 0) {
            labelled["unrecovered_connections_total"].emplace_back("reason=\"" + k.substr(12) + "\"", v);
        } else if (k == "connections" || k == "malformed") {
            continue;  // carried by the labelled families above and below
        } else if (k == "buffered_bytes" || k == "control_clients" || k == "stale_unfenced" ||
                   k == "carrier_up") {
            family(k, "gauge", k == "buffered_bytes"    ? "unacknowledged client bytes held"
                               : k == "stale_unfenced" ? "stale sockets on the primary not yet confirmed gone"
                               : k == "carrier_up"     ? "1 while the capture interface has carrier"
                                                       : "connected control clients");
            sample(k, "", v);
        } else {
            family(k + "_total", "counter", "count of " + k);
            sample(k + "_total", "", v);
        }
    }
    family("malformed_packets_total", "counter", "captured frames dropped as malformed, by reason");
    for (auto& [l, v] : labelled["malformed_packets_total"]) sample("malformed_packets_total", l, v);
    family("unrecovered_connections_total", "counter", "connections not carried over, by reason");
    for (auto& [l, v] : labelled["unrecovered_connections_total"])
        sample("unrecovered_connections_total", l, v);
    family("proxy_latency_seconds", "summary", "time from a packet's arrival to its rewritten copy leaving, by direction");
    for (auto [dir, rec] : {std::pair{"to_backup", &parts_.to_backup_latency},
                            std::pair{"to_client", &parts_.to_client_latency}}) {
        for (double q : {0.5, 0.99}) {
            char line[160];
            std::snprintf(line, sizeof line, "migware_proxy_latency_seconds{direction=\"%s\",quantile=\"%g\"} %.9f\n",
                          dir, q, static_cast<double>(rec->quantile(q)) / 1e9);
            out += line;
        }
        char line[160];
        std::snprintf(line, sizeof line, "migware_proxy_latency_seconds_sum{direction=\"%s\"} %.9f\n", dir,
                      static_cast<double>(rec->sum()) / 1e9);
        out += line;
        out += "migware_proxy_latency_seconds_count{direction=\"" + std::string(dir) + "\"} " +
               std::to_string(rec->count()) + "\n";
    }
    return out;
}

ControlReply DaemonControl::handle(std::string_view line) {
    auto parsed = json::parse(line);
    if (!parsed) return {json::dump(error_reply(nullptr, "malformed request: " + parsed.error().message())), false};
    const Value& req = *parsed;
    if (!req.is_object()) return {json::dump(error_reply(nullptr, "a request is a JSON object")), false};
    const Value* id = req.find("id");
    const Value* v = req.find("v");
    if (!v || v->as_u64() != 1u) {
        const std::string got = v ? json::dump(*v) : "none";
        return {json::dump(error_reply(id, "unsupported protocol version " + got + " (this daemon speaks 1)")), false};
    }
    const Value* cmd_v = req.find("cmd");
    const std::string* cmd = cmd_v ? cmd_v->as_string() : nullptr;
    if (!cmd) return {json::dump(error_reply(id, "missing \"cmd\" (status, connections, counters, events, metrics)")), false};
    std::string err;
    if (*cmd == "status") return {json::dump(ok_reply(id, status())), false};
    if (*cmd == "counters") return {json::dump(ok_reply(id, counters())), false};
    if (*cmd == "metrics") return {json::dump(ok_reply(id, Value::object({{"text", metrics()}}))), false};
    if (*cmd == "connections") {
        const std::string* phase = nullptr;
        if (const Value* s = req.find("state")) {
            phase = s->as_string();
            static const std::array<std::string_view, 5> kPhases{"tracked", "recovering", "proxied", "lost", "closed"};
            if (!phase || std::find(kPhases.begin(), kPhases.end(), *phase) == kPhases.end())
                return {json::dump(error_reply(id, "'state' must be one of tracked, recovering, proxied, lost, closed")), false};
        }
        auto offset = uint_arg(req, "offset", 0, err);
        auto limit = uint_arg(req, "limit", kDefaultLimit, err);
        if (!offset || !limit) return {json::dump(error_reply(id, err)), false};
        return {json::dump(ok_reply(id, connections(phase, *offset, std::min(*limit, kMaxLimit)))), false};
    }
    if (*cmd == "events") {
        auto last = uint_arg(req, "last", 50, err);
        if (!last) return {json::dump(error_reply(id, err)), false};
        bool follow = false;
        if (const Value* f = req.find("follow")) {
            auto b = f->as_bool();
            if (!b) return {json::dump(error_reply(id, "'follow' must be true or false")), false};
            follow = *b;
        }
        return {json::dump(ok_reply(id, events(*last))), follow};
    }
    return {json::dump(error_reply(id, "unknown cmd '" + *cmd + "' (status, connections, counters, events, metrics)")), false};
}

}  // namespace migware
