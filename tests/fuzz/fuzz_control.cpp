// libFuzzer target: one control request line (CONTROL.md) into the daemon's
// request handler, the way ControlServer hands it over (cut at the first
// newline, a trailing CR dropped, empty and over-long lines never reach it).
// The handler answers from a real FailoverEngine with counting links
// (tests/control/fake_parts.hpp), one per state: the input's first byte picks
// Normal, Recovery or Proxy, so status/connections/counters/metrics run over
// twins in every phase.
//
// Every reply must be one line of JSON: an object with "v":1 and a boolean
// "ok"; anything else aborts.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "control/protocol.hpp"
#include "tests/control/fake_parts.hpp"

namespace {

using migware::testing::FakeDaemon;

std::unique_ptr<FakeDaemon> make(int state) {
    auto d = std::make_unique<FakeDaemon>();
    d->restore_connections(40);
    for (std::int64_t ns : {3'000, 12'000, 400'000}) d->to_backup.record(ns);
    d->log.emit(d->now, "fuzz", migware::Fields{{"s", std::string("a \"b\"\n")}, {"d", 0.5}, {"b", true}});
    if (state >= 1) d->primary_down();                  // Recovery: 40 twin SYNs waiting
    if (state >= 2) d->run_timers(60'000'000'000);      // Proxy: every twin gave up
    return d;
}

FakeDaemon& daemon_in(int state) {
    static std::unique_ptr<FakeDaemon> daemons[3] = {make(0), make(1), make(2)};
    return *daemons[state];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    FakeDaemon& d = daemon_in(data[0] % 3);
    std::string_view line(reinterpret_cast<const char*>(data + 1), size - 1);
    if (const auto nl = line.find('\n'); nl != std::string_view::npos) line = line.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.size() > (64u << 10)) return 0;  // ControlServer's framing

    const migware::ControlReply reply = d.control.handle(line);
    if (reply.line.find('\n') != std::string::npos) std::abort();
    const auto parsed = migware::control::parse(reply.line);
    if (!parsed || !parsed->is_object()) std::abort();
    if (migware::control::member(*parsed, "v") != 1) std::abort();
    if (!migware::control::member(*parsed, "ok").is_boolean()) std::abort();
    return 0;
}
