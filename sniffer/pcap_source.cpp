#include "sniffer/pcap_source.hpp"

#include <pcap/pcap.h>

#include <cerrno>
#include <cstring>

namespace migware::sniffer {

struct PcapFileSource::Impl {
    pcap_t* handle = nullptr;
    ~Impl() {
        if (handle) pcap_close(handle);
    }
};

std::optional<LinkType> link_type_from_dlt(int dlt) {
    switch (dlt) {
        case DLT_EN10MB: return LinkType::Ethernet;
        case DLT_LINUX_SLL: return LinkType::LinuxSll;
#ifdef DLT_LINUX_SLL2
        case DLT_LINUX_SLL2: return LinkType::LinuxSll2;
#endif
        case DLT_RAW:
#ifdef DLT_IPV4
        case DLT_IPV4:
#endif
            return LinkType::RawIp;
        case DLT_NULL:
        case DLT_LOOP:
            return LinkType::Null;
        default:
            return std::nullopt;
    }
}

PcapFileSource::PcapFileSource(const std::string& path) : impl_(std::make_unique<Impl>()) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    impl_->handle =
        pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (!impl_->handle) throw CaptureError(path + ": cannot read capture: " + errbuf);
    const int dlt = pcap_datalink(impl_->handle);
    auto link = link_type_from_dlt(dlt);
    if (!link) {
        const char* name = pcap_datalink_val_to_name(dlt);
        throw CaptureError(path + ": unsupported link type " + std::to_string(dlt) + " (" +
                           (name ? name : "unknown") +
                           "); supported: EN10MB, LINUX_SLL, LINUX_SLL2, RAW, IPV4, NULL, LOOP");
    }
    link_ = *link;
}

PcapFileSource::~PcapFileSource() = default;

ReadStatus PcapFileSource::next(RawFrame& out) {
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_next_ex(impl_->handle, &header, &data);
    if (rc == 1) {
        out.bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data),
                                               header->caplen);
        out.wire_length = header->len < header->caplen ? header->caplen : header->len;
        out.timestamp_ns = static_cast<std::int64_t>(header->ts.tv_sec) * 1'000'000'000 +
                           static_cast<std::int64_t>(header->ts.tv_usec);  // usec field holds ns
        return ReadStatus::Frame;
    }
    if (rc == PCAP_ERROR_BREAK) return ReadStatus::End;
    error_ = pcap_geterr(impl_->handle);
    return ReadStatus::Error;
}

}  // namespace migware::sniffer
