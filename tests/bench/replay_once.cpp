// One pass of parse + track over the synthetic capture, for
// `valgrind --tool=callgrind --toggle-collect=migware::bench::run_pass*`:
// instruction counts are stable on a noisy machine, seconds are not.

#include <cstdio>

#include "migware/pipeline.hpp"
#include "tests/bench/synthetic_capture.hpp"

namespace migware::bench {

__attribute__((noinline)) std::size_t run_pass(const sniffer::MemorySource& source,
                                               Pipeline& pipeline) {
    for (const auto& f : source.frames())
        pipeline.on_frame({f.bytes, f.wire_length, f.timestamp_ns}, sniffer::LinkType::Ethernet);
    return pipeline.table().size();
}

}  // namespace migware::bench

int main(int argc, char** argv) {
    const int copies = argc > 1 ? std::atoi(argv[1]) : 200;
    // Issue 13: the replay mode of every connection (push, aligned, full).
    migware::tracker::TableConfig config;
    if (argc > 2) {
        const auto mode = migware::tracker::parse_replay_mode(argv[2]);
        if (!mode) {
            std::fprintf(stderr, "replay_once: mode must be push, aligned or full\n");
            return 2;
        }
        config.replay_mode = *mode;
    }
    auto source = migware::bench::synthetic_capture(
        {MIGWARE_SOURCE_DIR "/pcaps/push.pcap", MIGWARE_SOURCE_DIR "/pcaps/reqresp.pcap",
         MIGWARE_SOURCE_DIR "/pcaps/two_services.pcap"},
        copies);
    migware::Pipeline pipeline(config);
    const std::size_t connections = migware::bench::run_pass(source, pipeline);
    std::printf("frames %zu connections %zu\n", source.frames().size(), connections);
    return 0;
}
