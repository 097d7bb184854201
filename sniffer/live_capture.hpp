#pragma once
// Live capture from an interface through libpcap: promiscuous, immediate
// mode, a large kernel buffer, incoming frames only (migware's own injected
// frames must not be read back as traffic), a BPF filter from the config,
// and a non-blocking selectable fd for the daemon's epoll loop.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sniffer/packet_source.hpp"
#include "sniffer/pcap_source.hpp"

namespace migware::sniffer {

struct LiveCaptureConfig {
    std::string interface;
    std::string filter;                  // BPF program text; empty: everything
    int buffer_bytes = 32 << 20;         // kernel ring: absorbs bursts while we recover
    int snaplen = 65535;
};

struct CaptureStats {
    std::uint64_t received = 0;          // ps_recv
    std::uint64_t dropped_kernel = 0;    // ps_drop: buffer overflow
    std::uint64_t dropped_interface = 0; // ps_ifdrop
};

class LiveCapture {
public:
    /// Throws CaptureError with one clear line (unknown interface, missing
    /// CAP_NET_RAW, bad filter).
    explicit LiveCapture(const LiveCaptureConfig& config);
    ~LiveCapture();
    LiveCapture(const LiveCapture&) = delete;
    LiveCapture& operator=(const LiveCapture&) = delete;

    int fd() const;
    LinkType link() const { return link_; }

    /// Hands up to `max_frames` waiting frames to `on_frame`; never blocks.
    /// Returns the number handled, or -1 on a capture error (see error()).
    using FrameHandler = void (*)(void* ctx, const RawFrame& frame);
    int dispatch(int max_frames, FrameHandler on_frame, void* ctx);

    CaptureStats stats() const;
    std::string error() const;

    struct Impl;  // public so the libpcap callback can reach it; defined in the .cpp

private:
    std::unique_ptr<Impl> impl_;
    LinkType link_ = LinkType::Ethernet;
};

/// The BPF filter for protected TCP ports on the primary and echo requests to
/// it, with and without one 802.1Q tag.
std::string capture_filter(const std::string& primary_ip, const std::vector<std::uint16_t>& ports);
/// ARP, tagged or not. A second capture handle of its own, read before every
/// batch of the TCP capture: under load an ARP claim must not wait behind
/// thousands of queued TCP frames (DESIGN-NOTES.md "The primary returns").
std::string arp_capture_filter();

}  // namespace migware::sniffer
