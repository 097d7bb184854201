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
        migware::Pipeline pipeline({});
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
BENCHMARK(BM_ParseTrack)->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(false);

}  // namespace

BENCHMARK_MAIN();
