#include "migware/config.hpp"

#include "membership/decision.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>

namespace migware {

namespace po = boost::program_options;

namespace {

Ipv4Addr parse_ip(const std::string& what, const std::string& text) {
    auto ip = Ipv4Addr::parse(text);
    if (!ip) throw ConfigError(what + " '" + text + "' is not an IPv4 address (a.b.c.d)");
    return *ip;
}

}  // namespace

std::optional<DaemonConfig> parse_daemon_config(const std::vector<std::string>& args) {
    DaemonConfig cfg;
    std::string primary, backup, config_file;
    std::vector<int> ports;
    int interval_ms = 10, timeout_ms = 40, misses = 4;
    std::string reference;
    int syn_rto_ms = 100, linger_ms = 5000;
    // Idle expiry: 3 h. A push sensor that reports every few minutes, or any
    // socket with TCP keepalive (Linux: first probe after 7200 s, then 9 every
    // 75 s), is heard well within it; a connection silent for longer is most
    // likely gone, and until then the table's LRU eviction bounds the memory.
    double idle_timeout_s = 3 * 3600, closed_linger_s = 60;
    int probe_interval_ms = 200;
    std::string new_conn_policy = "backup";
    std::string membership = "standalone";
    long long priority = 0;
    std::string replay_mode = "push";
    std::vector<std::string> port_modes;
    bool replay_unanswered = false;
    int replay_stall_ms = 2000;

    po::options_description general("migware: transparent TCP failover (runs on the backup server)");
    general.add_options()
        ("help,h", "show this help")
        ("config", po::value<std::string>(&config_file), "INI-style file with the same keys (command line wins)")
        ("check-config", "validate the configuration, print it, and exit");
    po::options_description keys("Configuration (also valid as `key = value` in --config)");
    keys.add_options()
        ("interface", po::value<std::string>(&cfg.interface)->default_value("eth0"),
         "interface on the hub / mirror port that sees client<->primary traffic")
        ("primary", po::value<std::string>(&primary), "primary server's IPv4 address (required)")
        ("backup", po::value<std::string>(&backup), "this backup server's IPv4 address (required)")
        ("port", po::value<std::vector<int>>(&ports)->composing(),
         "protected TCP service port on the primary, served by the same port here (repeatable; required)")
        ("tun", po::value<std::string>(&cfg.tun_name)->default_value("mw0"),
         "TUN device carrying twin traffic into this host's stack")
        ("monitor.interval-ms", po::value<int>(&interval_ms)->default_value(interval_ms),
         "ICMP echo probe interval")
        ("monitor.timeout-ms", po::value<int>(&timeout_ms)->default_value(timeout_ms),
         "a probe unanswered this long is a miss")
        ("monitor.misses", po::value<int>(&misses)->default_value(misses),
         "consecutive misses before the primary is declared down")
        ("monitor.segment-evidence",
         po::value<bool>(&cfg.monitor.require_segment_evidence)->default_value(true),
         "declare the primary down only with proof that this host still hears the segment: "
         "carrier up throughout the silence and a frame from another host during it "
         "(false: echo silence alone, which takes a dead link of our own for a dead primary)")
        ("monitor.arp-probe", po::value<bool>(&cfg.monitor.arp_probe)->default_value(true),
         "the second level: while echo goes unanswered, ask the primary itself with unicast ARP "
         "requests from this host's address (one per interval); a primary that answers ARP is alive "
         "whatever its firewall does with ICMP, so Down needs echo and ARP silence")
        ("monitor.reference", po::value<std::string>(&reference),
         "an address on the segment that answers echo (a gateway, a witness): its replies during "
         "the primary's silence count as evidence; useful where clients are off-link or idle")
        ("monitor.neighbour-probe", po::value<bool>(&cfg.neighbour_probe)->default_value(true),
         "when evidence is wanted, ask the most recently heard hosts with unicast ARP requests "
         "from this host's own address")
        ("monitor.service-probe", po::value<bool>(&cfg.service_probe)->default_value(false),
         "also connect() to the primary's service port: tells 'host up, service down' apart "
         "(the service sees these connections, closed at once with RST)")
        ("monitor.service-probe-interval-ms", po::value<int>(&probe_interval_ms)->default_value(200),
         "TCP probe interval")
        ("monitor.service-probe-failures", po::value<int>(&cfg.probe.failures)->default_value(2),
         "consecutive refused connect()s before the service is declared down")
        ("recovery.syn-rto-ms", po::value<int>(&syn_rto_ms)->default_value(syn_rto_ms),
         "first twin SYN retransmission timeout (doubles per try)")
        ("recovery.syn-tries", po::value<int>(&cfg.failover.syn_tries)->default_value(cfg.failover.syn_tries),
         "twin SYNs per connection before it is declared unrecoverable")
        ("recovery.concurrency", po::value<std::size_t>(&cfg.failover.max_concurrent_syns)->default_value(cfg.failover.max_concurrent_syns),
         "twin handshakes in flight at once")
        ("recovery.max-syn-rate", po::value<double>(&cfg.failover.max_syn_rate)->default_value(0),
         "twin SYNs per second (0: no limit)")
        ("proxy.close-linger-ms", po::value<int>(&linger_ms)->default_value(linger_ms),
         "how long a closed connection's mapping stays for its last ACKs")
        ("tracker.max-connections", po::value<std::size_t>(&cfg.failover.table.max_connections)->default_value(cfg.failover.table.max_connections),
         "connection table size")
        ("tracker.buffer-cap", po::value<std::size_t>(&cfg.failover.table.per_connection_buffer_cap)->default_value(cfg.failover.table.per_connection_buffer_cap),
         "unacknowledged client bytes held per connection")
        ("tracker.idle-timeout-s", po::value<double>(&idle_timeout_s)->default_value(idle_timeout_s),
         "a connection silent this long leaves the table (0: never); above Linux's keepalive "
         "cycle (7200 s + 9 x 75 s), so a quiet connection that is still alive stays")
        ("tracker.closed-linger-s", po::value<double>(&closed_linger_s)->default_value(closed_linger_s),
         "a closed connection leaves the table this long after its close")
        ("tracker.global-buffer-cap", po::value<std::size_t>(&cfg.failover.table.global_buffer_cap)->default_value(cfg.failover.table.global_buffer_cap),
         "unacknowledged client bytes held in all")
        ("control.socket", po::value<std::string>(&cfg.control_socket)->default_value(cfg.control_socket),
         "control socket for migctl (CONTROL.md); empty disables it")
        ("control.group", po::value<std::string>(&cfg.control_group)->default_value(""),
         "group allowed to use the control socket (mode 0660); default: the daemon's group")
        ("state-file", po::value<std::string>(&cfg.state_file)->default_value(cfg.state_file),
         "restart snapshot of handshake facts (ISNs, options); empty disables it")
        ("recovery.mode", po::value<std::string>(&replay_mode)->default_value(replay_mode),
         "how a connection is handed to the backup (README \"What a user can expect\"): 'push' "
         "(the twin starts at the client's first unacknowledged byte: client-push services such as "
         "sensor collectors), 'aligned' (request/response: the current request is replayed and the "
         "backup's reply aligned with the primary's, the overlap checked byte for byte by digest), "
         "'full' (deterministic stateful sessions: every client byte since the handshake replayed)")
        ("recovery.port-mode", po::value<std::vector<std::string>>(&port_modes)->composing(),
         "PORT=MODE: the mode for one service port, over recovery.mode (repeatable)")
        ("recovery.replay-stall-ms", po::value<int>(&replay_stall_ms)->default_value(replay_stall_ms),
         "aligned/full: a backup that regenerates nothing of what the client has for this long has "
         "diverged (its connection is reset)")
        ("recovery.replay-unanswered", po::value<bool>(&replay_unanswered)->default_value(false),
         "deprecated: true is recovery.mode aligned")
        ("recovery.new-connections-when-primary-returns",
         po::value<std::string>(&new_conn_policy)->default_value("backup"),
         "backup: new connections stay with the backup (no automatic fail-back); "
         "primary: once the primary answers again, new connections are left to it")
        ("recovery.fence-returning-primary",
         po::value<bool>(&cfg.failover.fence_returning_primary)->default_value(true),
         "when the primary is heard again while proxying, end its stale sockets with a RST "
         "at their exact receive point")
        ("tracker.recover-midstream", po::value<bool>(&cfg.failover.recover_midstream)->default_value(true),
         "recover connections whose handshake was never seen, with inferred options")
        ("capture.buffer-mb", po::value<int>(&cfg.capture_buffer_mb)->default_value(cfg.capture_buffer_mb),
         "kernel capture ring, MiB (1-4096): absorbs bursts the daemon cannot keep up with")
        ("capture.batch", po::value<int>(&cfg.capture_batch)->default_value(cfg.capture_batch),
         "frames read per capture call (1-65536); ARP is read between calls")
        ("membership", po::value<std::string>(&membership)->default_value("standalone"),
         "who decides that this backup may act for the primary: 'standalone' (this backup alone) or "
         "'corosync' (a CPG group of backups with votequorum; several backups, a witness)")
        ("membership.priority", po::value<long long>(&priority)->default_value(0),
         "this backup's rank among the group's (0 is the most preferred; ties: the lower node id)")
        ("membership.group", po::value<std::string>(&cfg.membership_group)->default_value(cfg.membership_group),
         "the CPG group name (every backup protecting this primary uses the same)")
        ("membership.lease-ms", po::value<int>(&cfg.membership_lease_ms)->default_value(cfg.membership_lease_ms),
         "corosync: an active backup injects only while its own heartbeat came back through the group "
         "within this time; a successor waits for it to run out");
    po::options_description all;
    all.add(general).add(keys);

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(all).run(), vm);
        if (vm.count("help")) {
            std::cout << general << '\n' << keys << '\n';
            return std::nullopt;
        }
        if (vm.count("config")) {
            std::ifstream in(vm["config"].as<std::string>());
            if (!in) throw ConfigError("--config: cannot read '" + vm["config"].as<std::string>() + "'");
            po::store(po::parse_config_file(in, keys), vm);
        }
        po::notify(vm);
    } catch (const po::error& e) {
        throw ConfigError(e.what());
    }
    cfg.check_only = vm.count("check-config") > 0;
    if (primary.empty()) throw ConfigError("--primary is required (the primary server's IPv4 address)");
    if (backup.empty()) throw ConfigError("--backup is required (this server's IPv4 address)");
    if (ports.empty()) throw ConfigError("--port is required (the protected TCP service port)");
    cfg.primary = parse_ip("--primary", primary);
    cfg.backup = parse_ip("--backup", backup);
    if (cfg.primary == cfg.backup) throw ConfigError("--primary and --backup are the same address " + primary);
    std::set<int> seen;
    for (int p : ports) {
        if (p < 1 || p > 65535) throw ConfigError("--port " + std::to_string(p) + " is not a TCP port (1-65535)");
        if (seen.insert(p).second) cfg.ports.push_back(static_cast<std::uint16_t>(p));
    }
    if (interval_ms < 1 || timeout_ms < 1 || misses < 1)
        throw ConfigError("monitor.interval-ms, monitor.timeout-ms and monitor.misses must be at least 1");
    if (cfg.monitor.require_segment_evidence && misses < 2)
        throw ConfigError("monitor.misses must be at least 2 with monitor.segment-evidence (evidence "
                          "is a frame heard between two missed probes)");
    if (!reference.empty()) {
        cfg.reference = parse_ip("--monitor.reference", reference);
        if (*cfg.reference == cfg.primary || *cfg.reference == cfg.backup)
            throw ConfigError("--monitor.reference must be a third host, not the primary or this backup");
    }
    if (syn_rto_ms < 1 || cfg.failover.syn_tries < 1 || cfg.failover.max_concurrent_syns < 1)
        throw ConfigError("recovery.syn-rto-ms, recovery.syn-tries and recovery.concurrency must be at least 1");
    if (cfg.capture_buffer_mb < 1 || cfg.capture_buffer_mb > 4096)
        throw ConfigError("capture.buffer-mb must be between 1 and 4096");
    if (cfg.capture_batch < 1 || cfg.capture_batch > 65536) throw ConfigError("capture.batch must be between 1 and 65536");
    if (cfg.failover.max_syn_rate < 0) throw ConfigError("recovery.max-syn-rate must not be negative");
    if (cfg.failover.table.max_connections < 1) throw ConfigError("tracker.max-connections must be at least 1");
    if (cfg.tun_name.empty() || cfg.tun_name.size() > 15) throw ConfigError("--tun must be 1 to 15 characters");
    if (probe_interval_ms < 1 || cfg.probe.failures < 1)
        throw ConfigError("monitor.service-probe-interval-ms and monitor.service-probe-failures must be at least 1");
    cfg.probe.interval = probe_interval_ms * monitor::kMillisecond;
    cfg.probe.timeout = std::max<monitor::MonoNs>(cfg.probe.interval * 2, 200 * monitor::kMillisecond);
    cfg.monitor.interval = interval_ms * monitor::kMillisecond;
    cfg.monitor.timeout = timeout_ms * monitor::kMillisecond;
    cfg.monitor.misses = misses;
    cfg.failover.primary = cfg.primary;
    cfg.failover.backup = cfg.backup;
    cfg.failover.ports = cfg.ports;
    cfg.failover.syn_rto = syn_rto_ms * monitor::kMillisecond;
    cfg.failover.close_linger = linger_ms * monitor::kMillisecond;
    cfg.failover.table.servers.clear();
    for (auto p : cfg.ports) cfg.failover.table.servers.push_back({cfg.primary, sniffer::Port{p}});
    if (!(idle_timeout_s >= 0) || !(closed_linger_s >= 0) || idle_timeout_s > 1e7 || closed_linger_s > 1e7)
        throw ConfigError("tracker.idle-timeout-s and tracker.closed-linger-s must be between 0 and 1e7");
    cfg.failover.table.idle_timeout_ns = static_cast<std::int64_t>(idle_timeout_s * 1e9);
    cfg.failover.table.closed_linger_ns = static_cast<std::int64_t>(closed_linger_s * 1e9);
    const auto mode = tracker::parse_replay_mode(replay_mode);
    if (!mode) throw ConfigError("recovery.mode must be 'push', 'aligned' or 'full', not '" + replay_mode + "'");
    cfg.failover.table.replay_mode = *mode;
    if (replay_unanswered) {
        cfg.warnings.push_back("recovery.replay-unanswered is deprecated: it now means recovery.mode aligned");
        if (vm["recovery.mode"].defaulted()) cfg.failover.table.replay_mode = tracker::ReplayMode::Aligned;
    }
    for (const std::string& pm : port_modes) {
        const auto eq = pm.find('=');
        const std::string port_text = pm.substr(0, eq);
        const auto m = eq == std::string::npos ? std::nullopt : tracker::parse_replay_mode(pm.substr(eq + 1));
        int port = 0;
        try {
            std::size_t used = 0;
            port = std::stoi(port_text, &used);
            if (used != port_text.size()) port = 0;
        } catch (const std::exception&) {
            port = 0;
        }
        if (!m || port < 1 || port > 65535)
            throw ConfigError("recovery.port-mode '" + pm + "' is not PORT=push|aligned|full");
        if (std::find(cfg.ports.begin(), cfg.ports.end(), port) == cfg.ports.end())
            throw ConfigError("recovery.port-mode '" + pm + "' names a port that is not a --port");
        cfg.failover.table.port_modes.emplace_back(static_cast<std::uint16_t>(port), *m);
    }
    if (replay_stall_ms < 10 || replay_stall_ms > 600'000)
        throw ConfigError("recovery.replay-stall-ms must be between 10 and 600000");
    cfg.failover.replay_stall = replay_stall_ms * monitor::kMillisecond;
    std::string mode_list;
    for (auto p : cfg.ports) {
        const tracker::ReplayMode m = cfg.failover.table.mode_for(p);
        mode_list += (mode_list.empty() ? "" : ",") + std::to_string(p) + "=" + std::string(tracker::name_of(m));
        const std::size_t cap = cfg.failover.table.per_connection_buffer_cap;
        const std::string port = "port " + std::to_string(p);
        if (m == tracker::ReplayMode::Full) {
            if (cap < (64u << 10))
                cfg.warnings.push_back(port + ": full replay holds every client byte since the handshake, but "
                                       "tracker.buffer-cap is " + std::to_string(cap) +
                                       " bytes: sessions longer than that fall back to aligned");
            if (cfg.failover.table.max_connections * cap > cfg.failover.table.global_buffer_cap)
                cfg.warnings.push_back(port + ": full replay: tracker.max-connections x tracker.buffer-cap (" +
                                       std::to_string(cfg.failover.table.max_connections) + " x " +
                                       std::to_string(cap) + ") exceeds tracker.global-buffer-cap (" +
                                       std::to_string(cfg.failover.table.global_buffer_cap) +
                                       "): with many long sessions some fall back to aligned");
        } else if (m == tracker::ReplayMode::Aligned && cap < (16u << 10)) {
            cfg.warnings.push_back(port + ": aligned replay holds the current request, but tracker.buffer-cap is " +
                                   std::to_string(cap) + " bytes: larger requests are not replayed (push for them)");
        }
    }
    if (new_conn_policy != "backup" && new_conn_policy != "primary")
        throw ConfigError("recovery.new-connections-when-primary-returns must be 'backup' or 'primary'");
    cfg.failover.new_connections_to_returning_primary = new_conn_policy == "primary";
    if (membership == "standalone") {
        cfg.membership = DaemonConfig::Membership::Standalone;
    } else if (membership == "corosync") {
        cfg.membership = DaemonConfig::Membership::Corosync;
    } else {
        throw ConfigError("membership must be 'standalone' or 'corosync', not '" + membership + "'");
    }
    if (priority < 0 || priority > 1'000'000)
        throw ConfigError("membership.priority must be between 0 and 1000000");
    cfg.membership_priority = static_cast<std::uint32_t>(priority);
    if (cfg.membership_group.empty() || cfg.membership_group.size() > 127)
        throw ConfigError("membership.group must be 1 to 127 characters");
    // At least four heartbeats: a lease that one or two lost heartbeats end
    // makes the gate flap under ordinary loss.
    const int heartbeat_ms = static_cast<int>(membership::Config{}.heartbeat_every / monitor::kMillisecond);
    if (cfg.membership_lease_ms < 4 * heartbeat_ms || cfg.membership_lease_ms > 10'000)
        throw ConfigError("membership.lease-ms must be between " + std::to_string(4 * heartbeat_ms) +
                          " (four heartbeats of " + std::to_string(heartbeat_ms) + " ms) and 10000");
    std::string port_list;
    for (auto p : cfg.ports) port_list += (port_list.empty() ? "" : ",") + std::to_string(p);
    cfg.summary = Fields{{"interface", cfg.interface},
                         {"primary", primary},
                         {"backup", backup},
                         {"ports", port_list},
                         {"tun", cfg.tun_name},
                         {"monitor", std::to_string(interval_ms) + "ms/" + std::to_string(timeout_ms) +
                                         "ms/" + std::to_string(misses)},
                         {"segment_evidence", cfg.monitor.require_segment_evidence ? "on" : "off"},
                         {"arp_probe", cfg.monitor.arp_probe ? "on" : "off"}};
    if (cfg.reference) cfg.summary.push_back({"reference", cfg.reference->to_string()});
    cfg.summary.push_back({"max_connections", cfg.failover.table.max_connections});
    cfg.summary.push_back({"replay", mode_list});
    cfg.summary.push_back({"membership", membership});
    if (cfg.membership == DaemonConfig::Membership::Corosync) {
        cfg.summary.push_back({"membership_priority", std::uint64_t{cfg.membership_priority}});
        cfg.summary.push_back({"membership_group", cfg.membership_group});
    }
    return cfg;
}

}  // namespace migware
