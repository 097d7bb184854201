#pragma once
// The per-packet path shared by live capture and pcap replay:
// frame -> parser -> tracker. Owns the counters for both stages.

#include <cstdint>

#include "sniffer/packet_source.hpp"
#include "sniffer/parser.hpp"
#include "tracker/connection_table.hpp"

namespace migware {

class Pipeline {
public:
    explicit Pipeline(tracker::TableConfig config) : table_(std::move(config)) {}

    /// Parses and tracks one frame. Returns the tracker's view of it (no
    /// connection when the frame was dropped or is not tracked).
    tracker::Observation on_frame(const sniffer::RawFrame& frame, sniffer::LinkType link) {
        if (!parse(frame, link)) return {};
        return track(frame);
    }

    /// The parse half alone: the decoded packet, or null when it was dropped
    /// (and counted).
    const sniffer::Packet* parse(const sniffer::RawFrame& frame, sniffer::LinkType link) {
        auto dropped = sniffer::parse(frame.bytes, frame.wire_length, link, packet_);
        if (dropped) {
            parse_counters_.record(*dropped);
            return nullptr;
        }
        parse_counters_.record(packet_);
        return &packet_;
    }

    /// The track half, for the packet parse() just returned.
    tracker::Observation track(const sniffer::RawFrame& frame) { return track(frame, frame.timestamp_ns); }
    /// The same, at `now` on the caller's clock (the daemon's monotonic one)
    /// instead of the capture's timestamp.
    tracker::Observation track(const sniffer::RawFrame& frame, std::int64_t now) {
        return table_.observe(packet_, frame.bytes, now);
    }

    /// The last successfully parsed packet (valid until the next on_frame).
    const sniffer::Packet& last_packet() const { return packet_; }
    const sniffer::ParseCounters& parse_counters() const { return parse_counters_; }
    const tracker::ConnectionTable& table() const { return table_; }
    tracker::ConnectionTable& table() { return table_; }

private:
    sniffer::Packet packet_;
    sniffer::ParseCounters parse_counters_;
    tracker::ConnectionTable table_;
};

/// Runs every frame of `source` through `pipeline`. Returns false on a read
/// error (reason in source.error()); what was read before it is kept.
bool run_to_end(sniffer::PacketSource& source, Pipeline& pipeline);

}  // namespace migware
