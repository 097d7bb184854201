// migware: transparent TCP failover appliance.
//
//   migware --interface IF --primary IP --backup IP --port PORT [...]   the daemon
//   migware replay FILE [--json] [--server IP:PORT ...]                run the pipeline over a capture

#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "migware/config.hpp"
#include "migware/daemon.hpp"
#include "migware/io.hpp"
#include "migware/pipeline.hpp"
#include "migware/report.hpp"
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
           "       migware replay --help             replay's options\n"
           "       migware --version\n\n";
}

int run_replay(const std::vector<std::string>& args) {
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
            std::cout << "migware 0.1.0\n";
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
        if (config->check_only) {
            std::cout << "configuration ok: " << config->summary << '\n';
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
