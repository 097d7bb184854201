#pragma once
// Interchangeable packet sources (glb-director's pattern): the same parser and
// tracker run on a live interface, a pcap file or frames held in memory.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sniffer/packet.hpp"

namespace migware::sniffer {

/// One captured frame. `bytes` stays valid until the next call to next().
struct RawFrame {
    std::span<const std::byte> bytes;
    std::uint32_t wire_length = 0;
    std::int64_t timestamp_ns = 0;  // capture time, ns since the epoch
};

enum class ReadStatus { Frame, End, Error };

class PacketSource {
public:
    virtual ~PacketSource() = default;
    virtual LinkType link() const = 0;
    virtual ReadStatus next(RawFrame& out) = 0;
    /// The reason for the last ReadStatus::Error, one line.
    virtual std::string error() const = 0;
};

/// Frames held in memory (tests, benchmarks).
class MemorySource final : public PacketSource {
public:
    struct Frame {
        std::vector<std::byte> bytes;
        std::uint32_t wire_length = 0;
        std::int64_t timestamp_ns = 0;
    };
    MemorySource(LinkType link, std::vector<Frame> frames)
        : link_(link), frames_(std::move(frames)) {}
    LinkType link() const override { return link_; }
    ReadStatus next(RawFrame& out) override {
        if (pos_ == frames_.size()) return ReadStatus::End;
        const Frame& f = frames_[pos_++];
        out = RawFrame{f.bytes, f.wire_length, f.timestamp_ns};
        return ReadStatus::Frame;
    }
    std::string error() const override { return {}; }
    void rewind() { pos_ = 0; }
    const std::vector<Frame>& frames() const { return frames_; }

private:
    LinkType link_;
    std::vector<Frame> frames_;
    std::size_t pos_ = 0;
};

}  // namespace migware::sniffer
