// migware: transparent TCP failover appliance.
//
//   migware --interface IF --primary IP --backup IP --port PORT [...]   the daemon
//   migware replay FILE [--json] [--server IP:PORT ...]                run the pipeline over a capture
//   migware replay FILE --failover-at T --primary IP --backup IP --port PORT [...]
//                                                                      run the engine over a capture

#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "migware/config.hpp"
#include "migware/daemon.hpp"
#include "migware/engine_replay.hpp"
#include "migware/io.hpp"
#include "migware/pipeline.hpp"
#include "migware/report.hpp"
#include "migware/version.hpp"
#include "sniffer/pcap_source.hpp"

namespace po = boost::program_options;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;  // unreadable or unsupported input
constexpr int kExitUsage = 2;    // bad command line

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void print_top_help(std::ostream& out) {
    out << "usage: migware --interface IF --primary IP --backup IP --port PORT [--port PORT...] [--config FILE]\n"
           "       migware replay FILE [options]    run parser and tracker over a pcap/pcapng capture\n"
           "       migware replay FILE --failover-at T --primary IP --backup IP --port PORT [...]\n"
           "                                         run the failover engine over a capture\n"
           "       migware replay --help             replay's options\n"
           "       migware replay --failover-at 0 --help   the engine replay's options\n"
           "       migware --version\n\n";
}

bool wants_engine_replay(const std::vector<std::string>& args) {
    for (const auto& a : args)
        if (a == "--failover-at" || a.rfind("--failover-at=", 0) == 0) return true;
    return false;
}

std::optional<migware::sniffer::MacAddr> parse_mac(const std::string& text) {
    migware::sniffer::MacAddr mac;
    if (text.size() != 17) return std::nullopt;
    for (std::size_t i = 0; i < 6; ++i) {
        unsigned v = 0;
        for (std::size_t j = 0; j < 2; ++j) {
            const char c = text[i * 3 + j];
            const int d = c >= '0' && c <= '9' ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
            if (d < 0) return std::nullopt;
            v = v * 16 + static_cast<unsigned>(d);
        }
        if (i < 5 && text[i * 3 + 2] != ':') return std::nullopt;
        mac.bytes[i] = static_cast<std::uint8_t>(v);
    }
    return mac;
}

// `migware replay FILE --failover-at T ...`: the engine over a capture
// (migware/engine_replay.hpp). The engine's configuration comes from the
// daemon's own options, parsed by parse_daemon_config: every argument that is
// not one of the options below goes there.
int run_engine_replay_cli(const std::vector<std::string>& args) {
    std::string file, failover_at, backup_capture, out_client, out_backup, backup_mac;
    double drain_s = 10;
    bool verify = true;
    bool daemon_filter = true;
    po::options_description opts(
        "migware replay FILE --failover-at T [options] --primary IP --backup IP --port PORT [daemon options]");
    opts.add_options()
        ("help,h", "show this help")
        ("failover-at", po::value<std::string>(&failover_at),
         "when the primary fails: seconds after the capture's first packet (2.5), or an absolute "
         "pcap timestamp (@1764630000.123456789)")
        ("backup-capture", po::value<std::string>(&backup_capture),
         "capture of the backup's side (e.g. tcpdump on migware's TUN device, link type RAW or "
         "Ethernet): its IPv4 packets toward the primary's IP are fed to the engine at their times")
        ("out-client", po::value<std::string>(&out_client),
         "write the frames the engine sent toward the clients here (pcap, Ethernet)")
        ("out-backup", po::value<std::string>(&out_backup),
         "write the packets the engine sent into the backup's stack here (pcap, LINKTYPE_RAW)")
        ("drain", po::value<double>(&drain_s)->default_value(drain_s),
         "after the last packet, fire the engine's timers due within this many seconds of packet time")
        ("backup-mac", po::value<std::string>(&backup_mac),
         "this backup's MAC on the capture interface (aa:bb:cc:dd:ee:ff); the daemon reads it "
         "from the interface. Default: unknown, as in the daemon's unit tests")
        ("verify-tcp-checksums", po::value<bool>(&verify)->default_value(verify),
         "drop captured TCP segments whose checksum fails, as the daemon does (false for a "
         "sender-side capture with offloaded checksums)")
        ("daemon-filter", po::value<bool>(&daemon_filter)->default_value(daemon_filter),
         "feed only frames the daemon's capture would take: its BPF filters, and with "
         "--backup-mac inbound frames only")
        ("list-frames", "one line per frame sent (time, length, hash, decode)");
    const auto print_help = [&] {
        std::cout << opts << "\nEvery other option is the daemon's (migware --help), e.g. "
                             "--primary, --backup, --port, --recovery.*, --tracker.*.\n";
    };

    // The capture comes first, so that the daemon's options (whose values may
    // look like anything) need no second description here.
    if (args.empty() || args[0].empty() || args[0][0] == '-') {
        const bool help = std::find(args.begin(), args.end(), "--help") != args.end() ||
                          std::find(args.begin(), args.end(), "-h") != args.end();
        if (help) {
            print_help();
            return kExitOk;
        }
        throw UsageError("replay --failover-at: the capture FILE comes first (migware replay FILE --failover-at T ...)");
    }
    file = args[0];
    std::vector<std::string> mine, daemon_args;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        const po::option_description* d = nullptr;
        if (a.rfind("--", 0) == 0) d = opts.find_nothrow(a.substr(2, a.find('=') - 2), false);
        else if (a == "-h") d = opts.find_nothrow("help", false);
        if (!d) {
            daemon_args.push_back(a);
            continue;
        }
        mine.push_back(a);
        if (a.find('=') == std::string::npos && d->semantic()->max_tokens() > 0 && i + 1 < args.size())
            mine.push_back(args[++i]);
    }
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(mine).options(opts).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(std::string("replay: ") + e.what());
    }
    if (vm.count("help")) {
        print_help();
        return kExitOk;
    }
    const auto at = migware::FailoverInstant::parse(failover_at);
    if (!at)
        throw UsageError("replay: --failover-at '" + failover_at +
                         "' is not seconds (2.5) or @epoch-seconds (@1764630000.123456789)");
    if (!(drain_s >= 0 && drain_s <= 3600)) throw UsageError("replay: --drain must be 0..3600 seconds");
    std::optional<migware::DaemonConfig> config;
    try {
        config = migware::parse_daemon_config(daemon_args);
    } catch (const migware::ConfigError& e) {
        throw UsageError(std::string("replay: ") + e.what());
    }
    if (!config) return kExitOk;  // the daemon's --help

    migware::EngineReplayOptions options;
    options.engine = config->failover;
    options.engine.verify_tcp_checksums = verify;
    if (!backup_mac.empty()) {
        auto mac = parse_mac(backup_mac);
        if (!mac) throw UsageError("replay: --backup-mac '" + backup_mac + "' is not aa:bb:cc:dd:ee:ff");
        options.engine.backup_mac = *mac;
    }
    options.failover_at = *at;
    options.drain = static_cast<migware::MonoNs>(drain_s * 1e9);
    options.daemon_filter = daemon_filter;

    migware::sniffer::PcapFileSource source(file);  // throws CaptureError
    std::unique_ptr<migware::sniffer::PcapFileSource> backup_source;
    if (!backup_capture.empty()) backup_source = std::make_unique<migware::sniffer::PcapFileSource>(backup_capture);
    const auto result = migware::run_engine_replay(source, backup_source.get(), options);
    if (!out_client.empty()) migware::write_pcap(out_client, migware::kLinktypeEthernet, result.to_client);
    if (!out_backup.empty()) migware::write_pcap(out_backup, migware::kLinktypeRaw, result.to_backup);
    migware::print_engine_replay(std::cout, result, vm.count("list-frames") > 0);
    std::cout.flush();
    if (!result.ok) {
        std::cerr << "migware: " << file << ": " << result.error << '\n';
        return kExitRuntime;
    }
    return kExitOk;
}

int run_replay(const std::vector<std::string>& args) {
    if (wants_engine_replay(args)) return run_engine_replay_cli(args);
    std::string file;
    std::vector<std::string> servers;
    migware::tracker::TableConfig config;
    // Replay keeps every connection it saw, closed ones included, unless told otherwise.
    config.closed_linger_ns = 0;
    po::options_description opts("migware replay FILE [options]");
    opts.add_options()
        ("help,h", "show this help")
        ("json", "one JSON object per connection per line, then a summary line")
        ("server", po::value<std::vector<std::string>>(&servers)->composing(),
         "protected server endpoint IP:PORT (repeatable); default: track every TCP connection")
        ("max-connections", po::value<std::size_t>(&config.max_connections)->default_value(config.max_connections),
         "connection table size; when full, closed then least recently seen connections are evicted")
        ("buffer-cap", po::value<std::size_t>(&config.per_connection_buffer_cap)->default_value(config.per_connection_buffer_cap),
         "unacknowledged client bytes held per connection")
        ("global-buffer-cap", po::value<std::size_t>(&config.global_buffer_cap)->default_value(config.global_buffer_cap),
         "unacknowledged client bytes held in all")
        ("counters", "print parser and tracker counters after the table (text mode)");
    po::options_description hidden;
    hidden.add_options()("file", po::value<std::string>(&file));
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("file", 1);

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(std::string("replay: ") + e.what());
    }
    if (vm.count("help")) {
        std::cout << opts;
        return kExitOk;
    }
    if (file.empty()) throw UsageError("replay: missing capture FILE");
    for (const auto& s : servers) {
        auto ep = migware::sniffer::Endpoint::parse(s);
        if (!ep) throw UsageError("replay: --server '" + s + "' is not IP:PORT (e.g. 198.18.0.1:7000)");
        config.servers.push_back(*ep);
    }
    if (config.max_connections == 0) throw UsageError("replay: --max-connections must be at least 1");

    migware::sniffer::PcapFileSource source(file);  // throws CaptureError
    migware::Pipeline pipeline(config);
    const bool read_ok = migware::run_to_end(source, pipeline);
    if (vm.count("json")) {
        migware::print_json(std::cout, pipeline);
    } else {
        migware::print_table(std::cout, pipeline);
        std::cout << '\n';
        migware::print_counters(std::cout, pipeline);
    }
    std::cout.flush();
    if (!read_ok) {
        std::cerr << "migware: " << file << ": read error after "
                  << pipeline.parse_counters().frames << " packets: " << source.error() << '\n';
        return kExitRuntime;
    }
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.empty()) {
            print_top_help(std::cerr);
            return kExitUsage;
        }
        if (args[0] == "--version") {
            std::cout << "migware " << migware::kVersion << "\n";
            return kExitOk;
        }
        if (args[0] == "replay") return run_replay({args.begin() + 1, args.end()});
        if (args[0].rfind("-", 0) != 0) throw UsageError("unknown command '" + args[0] + "' (try: migware --help)");
        if (args[0] == "--help" || args[0] == "-h") print_top_help(std::cout);
        std::optional<migware::DaemonConfig> config;
        try {
            config = migware::parse_daemon_config(args);
        } catch (const migware::ConfigError& e) {
            throw UsageError(e.what());
        }
        if (!config) return kExitOk;  // --help
        for (const auto& w : config->warnings) std::cerr << "migware: warning: " << w << '\n';
        if (config->check_only) {
            std::cout << "configuration ok: " << to_logfmt(config->summary) << '\n';
            return kExitOk;
        }
        return migware::run_daemon(*config);
    } catch (const UsageError& e) {
        std::cerr << "migware: " << e.what() << '\n';
        return kExitUsage;
    } catch (const migware::sniffer::CaptureError& e) {
        std::cerr << "migware: " << e.what() << '\n';
        return kExitRuntime;
    } catch (const std::exception& e) {
        std::cerr << "migware: " << e.what() << '\n';
        return kExitRuntime;
    }
}
