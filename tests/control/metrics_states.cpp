// Writes the real handler's `metrics` text in each state to DIR/{normal,
// recovery,proxy}.prom, for tests/control/metrics_promtool.sh to give to
// `promtool check metrics`. The engine is real (tests/control/fake_parts.hpp):
// a lab capture replayed, the primary declared down, the twin left to give up.

#include <cstdio>
#include <fstream>
#include <string>

#include "control/protocol.hpp"
#include "tests/control/fake_parts.hpp"

namespace {

bool write_state(migware::testing::FakeDaemon& d, const std::string& dir, migware::State want, const char* name) {
    if (d.engine.state() != want) {
        std::fprintf(stderr, "metrics_states: expected state %s, engine is in %s\n", name,
                     std::string(migware::name_of(d.engine.state())).c_str());
        return false;
    }
    const auto reply = migware::control::parse(d.control.handle(R"({"v":1,"cmd":"metrics"})").line);
    const auto* text = reply ? migware::control::as_string(
                                   migware::control::member(migware::control::member(*reply, "result"), "text"))
                             : nullptr;
    if (text == nullptr) {
        std::fprintf(stderr, "metrics_states: no metrics text in %s\n", name);
        return false;
    }
    std::ofstream(dir + "/" + name + ".prom") << *text;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: metrics_states CAPTURE DIR\n");
        return 2;
    }
    migware::testing::FakeDaemon d;
    d.replay(argv[1]);
    const std::string dir = argv[2];
    if (!write_state(d, dir, migware::State::Normal, "normal")) return 1;
    d.primary_down();
    if (!write_state(d, dir, migware::State::Recovery, "recovery")) return 1;
    d.run_timers(60'000'000'000);
    for (std::int64_t ns : {4'000, 12'000, 30'000, 700'000, 30'000'000}) d.to_backup.record(ns);
    for (std::int64_t ns : {6'000, 9'000}) d.to_client.record(ns);
    if (!write_state(d, dir, migware::State::Proxy, "proxy")) return 1;
    return 0;
}
