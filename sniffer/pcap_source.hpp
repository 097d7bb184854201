#pragma once
// Offline capture files (pcap and pcapng) through libpcap. Only this module
// and the live capture include <pcap.h>.

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "sniffer/packet_source.hpp"

namespace migware::sniffer {

/// Thrown at open time: unreadable file, unknown format, unsupported link type.
class CaptureError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class PcapFileSource final : public PacketSource {
public:
    /// Throws CaptureError with one clear line on failure.
    explicit PcapFileSource(const std::string& path);
    ~PcapFileSource() override;
    PcapFileSource(const PcapFileSource&) = delete;
    PcapFileSource& operator=(const PcapFileSource&) = delete;

    LinkType link() const override { return link_; }
    ReadStatus next(RawFrame& out) override;
    std::string error() const override { return error_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    LinkType link_ = LinkType::Ethernet;
    std::string error_;
};

/// Maps a libpcap DLT_* value to the parser's framing; nullopt if unsupported.
std::optional<LinkType> link_type_from_dlt(int dlt);

}  // namespace migware::sniffer
