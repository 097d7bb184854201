// Packets per second for parse, and parse + track, over a large capture held
// in memory, on one core. Figures go to BENCHMARKS.md.

#include <benchmark/benchmark.h>

#include "migware/pipeline.hpp"
#include "tests/bench/synthetic_capture.hpp"

namespace {

using migware::sniffer::MemorySource;

const MemorySource& capture() {
    static const MemorySource source = migware::bench::synthetic_capture(
        {MIGWARE_SOURCE_DIR "/pcaps/push.pcap", MIGWARE_SOURCE_DIR "/pcaps/reqresp.pcap",
         MIGWARE_SOURCE_DIR "/pcaps/two_services.pcap"},
        2000);
    return source;
}

void BM_Parse(benchmark::State& state) {
    const auto& frames = capture().frames();
    migware::sniffer::Packet packet;
    for (auto _ : state) {
        for (const auto& f : frames) {
            auto r = migware::sniffer::parse(f.bytes, f.wire_length,
                                             migware::sniffer::LinkType::Ethernet, packet);
            benchmark::DoNotOptimize(r);
            benchmark::DoNotOptimize(packet);
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * frames.size()));
}
BENCHMARK(BM_Parse)->Unit(benchmark::kMillisecond);

void BM_ParseTrack(benchmark::State& state) {
    const auto& frames = capture().frames();
    std::size_t connections = 0;
    for (auto _ : state) {
        migware::tracker::TableConfig config;
        config.replay_mode = static_cast<migware::tracker::ReplayMode>(state.range(0));
        migware::Pipeline pipeline(config);
        for (const auto& f : frames)
            pipeline.on_frame({f.bytes, f.wire_length, f.timestamp_ns},
                              migware::sniffer::LinkType::Ethernet);
        connections = pipeline.table().size();
        state.PauseTiming();  // tearing down the table is not per-packet work
        { migware::Pipeline discard = std::move(pipeline); }
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * frames.size()));
    state.counters["frames"] = static_cast<double>(frames.size());
    state.counters["connections"] = static_cast<double>(connections);
}
// Arg: the replay mode (0 push, 1 aligned, 2 full; issue 13), side by side.
BENCHMARK(BM_ParseTrack)->Unit(benchmark::kMillisecond)->Arg(0)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(false);

}  // namespace

BENCHMARK_MAIN();
