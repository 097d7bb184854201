#include "control/metrics.hpp"

#include <charconv>
#include <string_view>

#include "migware/latency.hpp"

namespace migware::control {

namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::string_view value) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.append(" ").append(value).append("\n");
}

std::string seconds_text(double seconds) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, seconds, std::chars_format::fixed);
    return std::string(buf, r.ptr);
}

std::string label(std::string_view key, std::string_view value) {
    // Label values here are fixed names (reasons, phases, states): no escaping needed.
    return std::string(key) + "=\"" + std::string(value) + "\"";
}

void latency_histogram(std::string& out, const counters::Sources& s) {
    if (s.to_backup_latency == nullptr || s.to_client_latency == nullptr) return;
    constexpr std::string_view kName = "migware_proxy_latency_seconds";
    family(out, kName, "histogram",
           "time from a proxied packet's arrival to its rewritten copy leaving, by direction");
    for (auto [dir, rec] : {std::pair{"to_backup", s.to_backup_latency}, std::pair{"to_client", s.to_client_latency}}) {
        const std::string d = label("direction", dir);
        const auto& bounds = LatencyRecorder::kBucketBounds;
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
            const std::string le = i < bounds.size() ? seconds_text(static_cast<double>(bounds[i]) / 1e9) : "+Inf";
            sample(out, std::string(kName) + "_bucket", d + "," + label("le", le),
                   std::to_string(rec->cumulative(i)));
        }
        sample(out, std::string(kName) + "_sum", d, seconds_text(static_cast<double>(rec->sum()) / 1e9));
        sample(out, std::string(kName) + "_count", d, std::to_string(rec->count()));
    }
}

}  // namespace

std::string prometheus_text(const counters::Sources& s) {
    using counters::Kind;
    std::string out;
    out.reserve(16 << 10);
    for (const counters::Descriptor& d : counters::table()) {
        if (!d.in_metrics || !counters::available(d, s)) continue;
        const bool is_counter = d.kind == Kind::Counter;
        const std::string_view type = is_counter ? "counter" : "gauge";
        const std::string suffix = is_counter ? "_total" : "";
        if (d.label_count == 0) {
            const std::string name = "migware_" + std::string(d.name) + suffix;
            family(out, name, type, d.help);
            sample(out, name, "", std::to_string(counters::value(d, s)));
        } else if (!d.metric.empty()) {
            const std::string name = "migware_" + std::string(d.metric);
            family(out, name, type, d.help);
            for (std::size_t i = 0; i < d.label_count; ++i)
                sample(out, name, label(d.label, d.label_value(i)), std::to_string(counters::value(d, s, i)));
        } else {
            for (std::size_t i = 0; i < d.label_count; ++i) {
                const std::string v(d.label_value(i));
                const std::string name = "migware_" + std::string(d.name) + "_" + v + suffix;
                family(out, name, type, std::string(d.help) + ": " + v);
                sample(out, name, "", std::to_string(counters::value(d, s, i)));
            }
        }
    }
    latency_histogram(out, s);
    return out;
}

std::string membership_text(const membership::Member& m, monitor::MonoNs now) {
    using membership::Role;
    const auto& core = m.core();
    const auto st = m.provider().status();
    std::string out;
    family(out, "migware_membership_role", "gauge", "this member's role in the group (1 for the current one)");
    for (Role r : {Role::Observer, Role::Standby, Role::Active})
        sample(out, "migware_membership_role", label("role", membership::name_of(r)), core.role() == r ? "1" : "0");
    family(out, "migware_membership_epoch", "gauge", "the highest takeover epoch this member knows");
    sample(out, "migware_membership_epoch", "", std::to_string(core.epoch()));
    family(out, "migware_membership_members", "gauge", "members of the group's current view");
    sample(out, "migware_membership_members", "", std::to_string(core.view().members.size()));
    family(out, "migware_membership_quorate", "gauge", "1 while the view is quorate");
    sample(out, "migware_membership_quorate", "", core.quorate() ? "1" : "0");
    family(out, "migware_membership_may_act", "gauge",
           "1 while this member may send frames for the primary's IP (active, within its lease)");
    sample(out, "migware_membership_may_act", "", m.may_act(now) ? "1" : "0");
    family(out, "migware_membership_connected", "gauge", "1 while connected to the group layer");
    sample(out, "migware_membership_connected", "", st.connected ? "1" : "0");
    family(out, "migware_membership_votes", "gauge", "votequorum: total votes, expected votes, votes needed");
    sample(out, "migware_membership_votes", label("kind", "total"), std::to_string(st.votes));
    sample(out, "migware_membership_votes", label("kind", "expected"), std::to_string(st.expected_votes));
    sample(out, "migware_membership_votes", label("kind", "quorum"), std::to_string(st.quorum_votes));
    family(out, "migware_membership_messages_total", "counter", "group messages by outcome");
    sample(out, "migware_membership_messages_total", label("outcome", "sent"), std::to_string(st.sent));
    sample(out, "migware_membership_messages_total", label("outcome", "delivered"), std::to_string(st.delivered));
    sample(out, "migware_membership_messages_total", label("outcome", "refused"), std::to_string(st.refused));
    sample(out, "migware_membership_messages_total", label("outcome", "dropped"), std::to_string(st.send_dropped));
    return out;
}

}  // namespace migware::control
