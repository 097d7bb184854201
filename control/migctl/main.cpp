// migctl: talks to a running migware over its control socket (CONTROL.md).
//
//   migctl [--socket PATH] status  [--json]
//   migctl [--socket PATH] conns   [--state S] [--json]
//   migctl [--socket PATH] events  [--follow] [--last N] [--json]
//   migctl [--socket PATH] metrics [--json]
//   migctl [--socket PATH] top
//
// Exit codes: 0 done, 1 the daemon could not be reached or refused, 2 usage.
// Every error is one line on stderr.

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/client.hpp"
#include "control/migctl/dashboard.hpp"
#include "control/protocol.hpp"
#include "migware/phase.hpp"

namespace migware::migctl {
namespace {

constexpr const char* kUsage =
    "usage: migctl [--socket PATH] COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  status                       state, last transition, primary health, recovery, config\n"
    "  conns [--state S]            connections; S is tracked|recovering|proxied|lost|closed\n"
    "  events [--last N] [--follow] the event log, oldest first; --follow waits for new ones\n"
    "  metrics                      Prometheus text exposition\n"
    "  top                          live full-screen dashboard (q quits, c connections, / filter)\n"
    "\n"
    "options:\n"
    "  --socket PATH   control socket (default $MIGWARE_CONTROL_SOCKET, else "
    "/run/migware/control.sock)\n"
    "  --json          print the raw result objects (one per line for conns and events)\n";

struct UsageError {
    std::string message;
};

struct Args {
    std::string socket = control::default_socket_path();
    std::string command;
    bool json = false;
    bool follow = false;
    std::optional<std::string> state;
    std::uint64_t last = 50;
};

Args parse_args(int argc, char** argv) {
    Args a;
    std::vector<std::string_view> rest;
    for (int i = 1; i < argc; ++i) rest.emplace_back(argv[i]);
    auto value_of = [&](std::size_t& i, std::string_view opt) -> std::string {
        if (i + 1 >= rest.size()) throw UsageError{std::string(opt) + " needs a value"};
        return std::string(rest[++i]);
    };
    for (std::size_t i = 0; i < rest.size(); ++i) {
        const std::string_view s = rest[i];
        if (s == "-h" || s == "--help" || s == "help") {
            a.command = "help";
        } else if (s == "--socket") {
            a.socket = value_of(i, s);
        } else if (s.rfind("--socket=", 0) == 0) {
            a.socket = std::string(s.substr(9));
        } else if (s == "--json") {
            a.json = true;
        } else if (s == "--follow" || s == "-f") {
            a.follow = true;
        } else if (s == "--state") {
            a.state = value_of(i, s);
        } else if (s == "--last" || s == "-n") {
            const std::string v = value_of(i, s);
            char* end = nullptr;
            const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || v[0] == '-' || n > 1'000'000)
                throw UsageError{"--last '" + v + "' is not a count"};
            a.last = n;
        } else if (!s.empty() && s[0] == '-') {
            throw UsageError{"unknown option '" + std::string(s) + "'"};
        } else if (a.command.empty()) {
            a.command = std::string(s);
        } else {
            throw UsageError{"unexpected argument '" + std::string(s) + "'"};
        }
    }
    if (a.command == "connections") a.command = "conns";
    if (a.command.empty()) throw UsageError{"missing COMMAND (status, conns, events, metrics, top)"};
    static const char* kCommands[] = {"help", "status", "conns", "events", "metrics", "top"};
    if (std::find_if(std::begin(kCommands), std::end(kCommands),
                     [&](const char* c) { return a.command == c; }) == std::end(kCommands))
        throw UsageError{"unknown command '" + a.command + "'"};
    if (a.state) {
        if (a.command != "conns") throw UsageError{"--state only applies to conns"};
        if (!migware::phase_from_name(*a.state))
            throw UsageError{"--state '" + *a.state + "' is not one of " + migware::joined(migware::kPhaseNames)};
    }
    if (a.follow && a.command != "events") throw UsageError{"--follow only applies to events"};
    if (a.json && a.command == "top") throw UsageError{"top has no --json"};
    return a;
}

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "migctl: %s\n", message.c_str());
    std::exit(1);
}

control::Client connect_or_die(const std::string& path) {
    control::Client c;
    if (auto err = c.connect(path)) die(*err);
    return c;
}

Json call_or_die(control::Client& c, Json request) {
    auto r = c.call(std::move(request));
    if (!r) die(r.error().message);
    return std::move(r).value();
}

void print_line(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fputc('\n', stdout);
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

// ---- status ------------------------------------------------------------------

void print_status(const Json& st) {
    auto row = [](std::string_view label, const std::string& text) {
        std::string l(label);
        l.resize(13, ' ');
        print_line(l + text);
    };
    std::string state = upper(scalar_text(member(st, "state")));
    if (auto secs = as_double(member(st, "seconds_in_state"))) state += " for " + human_duration(*secs);
    if (const auto* since = as_string(member(st, "since_wall"))) state += " (since " + *since + ")";
    row("state", state);

    const Json& tr = member(st, "last_transition");
    if (tr.is_object()) {
        std::string t = scalar_text(member(tr, "from")) + "->" + scalar_text(member(tr, "to"));
        if (!member(tr, "cause").is_null()) t += " (" + scalar_text(member(tr, "cause")) + ")";
        if (const auto* reason = as_string(member(tr, "reason")); reason && !reason->empty())
            t += ": " + *reason;
        row("last change", t);
    } else {
        row("last change", "none since start");
    }

    const Json& p = member(st, "primary");
    if (p.is_object()) {
        std::string t = scalar_text(member(p, "health"));
        t += ", " + scalar_text(member(p, "replies")) + "/" + scalar_text(member(p, "probes_sent")) + " probes answered";
        if (auto m = as_u64(member(p, "consecutive_misses")); m && *m > 0)
            t += ", " + std::to_string(*m) + " consecutive misses";
        if (auto r = as_u64(member(p, "rejected_replies")); r && *r > 0)
            t += ", " + std::to_string(*r) + " rejected";
        if (auto l = as_u64(member(p, "late_replies")); l && *l > 0) t += ", " + std::to_string(*l) + " late";
        if (auto a = as_u64(member(p, "arp_answers")); a && *a > 0)
            t += ", " + std::to_string(*a) + " ARP answers";
        if (const Json& n = member(p, "never_answered"); n.is_boolean() && n.get<bool>())
            t += "; never answered (echo or ARP): no takeover until it has been seen alive";
        row("primary", t);
        if (const auto* rtts = as_array(member(p, "rtt_us")); rtts && !rtts->empty()) {
            double lo = 1e300, hi = 0, sum = 0;
            std::size_t n = 0;
            for (const auto& v : *rtts) {
                if (auto d = as_double(v)) {
                    lo = std::min(lo, *d);
                    hi = std::max(hi, *d);
                    sum += *d;
                    ++n;
                }
            }
            if (n > 0) {
                char buf[160];
                std::snprintf(buf, sizeof buf, "last %s us, min/avg/max %.0f/%.0f/%.0f us over %zu probes",
                              scalar_text(rtts->back()).c_str(), lo, sum / static_cast<double>(n), hi, n);
                row("rtt", buf);
            }
        }
    }

    const Json& r = member(st, "recovery");
    if (r.is_object() && as_u64(member(r, "twins")).value_or(0) > 0) {
        std::string t = scalar_text(member(r, "resolved")) + "/" + scalar_text(member(r, "twins")) + " resolved, " +
                        scalar_text(member(r, "recovered")) + " recovered, " + scalar_text(member(r, "failed")) + " failed";
        if (auto us = as_double(member(r, "duration_us"))) {
            char buf[48];
            std::snprintf(buf, sizeof buf, " in %.1f ms", *us / 1000.0);
            t += buf;
        }
        row("recovery", t);
    } else {
        row("recovery", "not started");
    }

    const Json& g = member(st, "membership");
    if (g.is_object()) {
        std::string t = scalar_text(member(g, "provider")) + " node " + scalar_text(member(g, "node")) + ": " +
                        scalar_text(member(g, "role")) + ", epoch " + scalar_text(member(g, "epoch"));
        t += member(g, "active").is_null() ? ", nobody active" : ", active node " + scalar_text(member(g, "active"));
        t += member(g, "quorate") == Json(true) ? ", quorate" : ", NOT quorate";
        if (auto v = as_u64(member(g, "expected_votes")); v && *v > 0)
            t += " (" + scalar_text(member(g, "votes")) + " of " + std::to_string(*v) + " votes, " +
                 scalar_text(member(g, "quorum_votes")) + " needed)";
        if (member(g, "suspended") == Json(true)) t += "; SUSPENDED: lease expired, frames withheld";
        if (member(g, "connected") == Json(false)) t += "; not connected to the group layer";
        row("membership", t);
        if (const auto* ms = as_array(member(g, "members"))) {
            bool first = true;
            for (const auto& mm : *ms) {
                std::string line = "#" + scalar_text(member(mm, "rank")) + " node " + scalar_text(member(mm, "node")) +
                                   " priority " + scalar_text(member(mm, "priority")) + " " +
                                   scalar_text(member(mm, "role"));
                if (!member(mm, "verdict").is_null()) line += ", sees the primary " + scalar_text(member(mm, "verdict"));
                if (member(mm, "self") == Json(true)) line += " (this node)";
                row(first ? "members" : "", line);
                first = false;
            }
        }
    }

    const Json& cn = member(st, "connections");  // optional extra: counts by phase
    if (cn.is_object()) {
        std::string t;
        for (std::string_view ph : migware::kPhaseNames)
            t += std::string(t.empty() ? "" : "  ") + std::string(ph) + " " + scalar_text(member(cn, ph));
        row("connections", t);
    }

    const Json& c = member(st, "config");
    if (c.is_object()) {
        std::string ports;
        if (const auto* a = as_array(member(c, "ports")))
            for (const auto& v : *a) ports += (ports.empty() ? "" : ",") + scalar_text(v);
        row("config", "interface " + scalar_text(member(c, "interface")) + ", primary " +
                          scalar_text(member(c, "primary")) + ", backup " + scalar_text(member(c, "backup")) +
                          ", ports " + (ports.empty() ? "-" : ports) + ", tun " + scalar_text(member(c, "tun")));
        row("", "monitor every " + scalar_text(member(c, "monitor_interval_ms")) + " ms, timeout " +
                    scalar_text(member(c, "monitor_timeout_ms")) + " ms, down after " +
                    scalar_text(member(c, "monitor_misses")) + " misses; max " +
                    scalar_text(member(c, "max_connections")) + " connections");
    }
    if (!member(st, "version").is_null()) row("version", scalar_text(member(st, "version")));
}

// ---- conns -------------------------------------------------------------------

void print_conns_table(const std::vector<Json>& items, std::uint64_t total) {
    struct Col {
        const char* title;
        const char* key;
        bool right;
    };
    static const Col kCols[] = {
        {"CLIENT", "client", false},          {"SERVER", "server", false},
        {"PHASE", "phase", false},            {"STATE", "state", false},
        {"TWIN", "twin_port", true},          {"TO_BACKUP", "to_backup_packets", true},
        {"BYTES", "to_backup_bytes", true},   {"TO_CLIENT", "to_client_packets", true},
        {"BYTES", "to_client_bytes", true},   {"REASON", "reason", false},
    };
    constexpr std::size_t kN = std::size(kCols);
    std::vector<std::array<std::string, kN>> rows;
    rows.reserve(items.size());
    std::array<std::size_t, kN> width{};
    for (std::size_t i = 0; i < kN; ++i) width[i] = std::string_view(kCols[i].title).size();
    for (const auto& it : items) {
        std::array<std::string, kN> r;
        for (std::size_t i = 0; i < kN; ++i) {
            r[i] = scalar_text(member(it, kCols[i].key));
            width[i] = std::max(width[i], r[i].size());
        }
        rows.push_back(std::move(r));
    }
    auto emit = [&](const std::array<std::string, kN>& r) {
        std::string line;
        for (std::size_t i = 0; i < kN; ++i) {
            const std::size_t pad = width[i] - std::min(width[i], r[i].size());
            if (i > 0) line += "  ";
            if (kCols[i].right) line += std::string(pad, ' ') + r[i];
            else if (i + 1 < kN) line += r[i] + std::string(pad, ' ');
            else line += r[i];
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        print_line(line);
    };
    std::array<std::string, kN> head;
    for (std::size_t i = 0; i < kN; ++i) head[i] = kCols[i].title;
    emit(head);
    for (const auto& r : rows) emit(r);
    std::printf("%zu of %llu connections\n", items.size(), static_cast<unsigned long long>(total));
}

int cmd_conns(control::Client& c, const Args& a) {
    std::vector<Json> items;
    std::uint64_t total = 0;
    constexpr std::uint64_t kPage = 1000;  // the protocol's cap
    for (std::uint64_t offset = 0;;) {
        Json req = Json({{"cmd", "connections"}, {"offset", offset}, {"limit", kPage}});
        if (a.state) req["state"] = *a.state;
        const Json page = call_or_die(c, std::move(req));
        total = as_u64(member(page, "total")).value_or(0);
        const auto* got = as_array(member(page, "items"));
        if (got == nullptr) die("daemon reply to connections has no items array");
        for (const auto& it : *got) {
            if (a.json) print_line(dump(it));
            else items.push_back(it);
        }
        offset += got->size();
        // Stop at the end, or if the table shrank under us.
        if (got->empty() || offset >= total) break;
    }
    if (!a.json) print_conns_table(items, total);
    return 0;
}

// ---- events ------------------------------------------------------------------

int cmd_events(control::Client& c, const Args& a) {
    Json req = Json({{"cmd", "events"}, {"last", a.last}});
    if (a.follow) req["follow"] = true;
    const Json r = call_or_die(c, std::move(req));
    const auto* evs = as_array(member(r, "events"));
    if (evs == nullptr) die("daemon reply to events has no events array");
    for (const auto& e : *evs) print_line(a.json ? dump(e) : event_line(e, true));
    std::fflush(stdout);
    if (!a.follow) return 0;
    for (;;) {
        auto m = c.read_message(-1);
        if (!m) die(m.error().message);
        const Json& e = member((*m), "event");
        if (!e.is_object()) continue;  // not an event line: nothing for us
        print_line(a.json ? dump(e) : event_line(e, true));
        std::fflush(stdout);
    }
}

int run(const Args& a) {
    if (a.command == "help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (a.command == "top") return run_dashboard(a.socket);
    control::Client c = connect_or_die(a.socket);
    if (a.command == "status") {
        const Json r = call_or_die(c, Json({{"cmd", "status"}}));
        if (a.json) print_line(dump(r));
        else print_status(r);
        return 0;
    }
    if (a.command == "conns") return cmd_conns(c, a);
    if (a.command == "events") return cmd_events(c, a);
    // metrics
    const Json r = call_or_die(c, Json({{"cmd", "metrics"}}));
    if (a.json) {
        print_line(dump(r));
    } else {
        const auto* text = as_string(member(r, "text"));
        if (text == nullptr) die("daemon reply to metrics has no text");
        std::fwrite(text->data(), 1, text->size(), stdout);
        if (!text->empty() && text->back() != '\n') std::fputc('\n', stdout);
    }
    return 0;
}

}  // namespace
}  // namespace migware::migctl

int main(int argc, char** argv) {
    using namespace migware::migctl;
    Args args;
    try {
        args = parse_args(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "migctl: %s (migctl --help)\n", e.message.c_str());
        return 2;
    }
    const int rc = run(args);
    if (std::fflush(stdout) != 0) {
        std::perror("migctl: stdout");
        return 1;
    }
    return rc;
}
