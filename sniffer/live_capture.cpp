#include "sniffer/live_capture.hpp"

#include <pcap/pcap.h>

#include <vector>

namespace migware::sniffer {

struct LiveCapture::Impl {
    pcap_t* handle = nullptr;
    FrameHandler handler = nullptr;
    void* ctx = nullptr;
    ~Impl() {
        if (handle) pcap_close(handle);
    }
};

namespace {

void on_pcap(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
    auto* impl = reinterpret_cast<LiveCapture::Impl*>(user);
    RawFrame f;
    f.bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes), h->caplen);
    f.wire_length = h->len < h->caplen ? h->caplen : h->len;
    f.timestamp_ns = static_cast<std::int64_t>(h->ts.tv_sec) * 1'000'000'000 +
                     static_cast<std::int64_t>(h->ts.tv_usec);  // nano precision requested
    impl->handler(impl->ctx, f);
}

[[noreturn]] void fail(const std::string& iface, const std::string& what, pcap_t* p, int rc) {
    std::string msg = iface + ": " + what + ": ";
    if (rc == PCAP_ERROR_PERM_DENIED) {
        msg += "permission denied (needs CAP_NET_RAW)";
    } else if (rc == PCAP_ERROR_NO_SUCH_DEVICE) {
        msg += "no such interface";
    } else {
        msg += p ? pcap_geterr(p) : "unknown error";
    }
    throw CaptureError(msg);
}

}  // namespace

std::string capture_filter(const std::string& primary_ip, const std::vector<std::uint16_t>& ports) {
    std::string port_expr;
    for (std::size_t i = 0; i < ports.size(); ++i) {
        if (i) port_expr += " or ";
        port_expr += "port " + std::to_string(ports[i]);
    }
    const std::string tcp = "(tcp and host " + primary_ip + (ports.empty() ? "" : " and (" + port_expr + ")") + ")";
    // Echo requests for the primary's IP: answered while migware is the
    // active node (issue 10), and evidence that clients are out there.
    const std::string echo = "(icmp and dst host " + primary_ip + " and icmp[icmptype] == icmp-echo)";
    const std::string both = "(" + tcp + " or " + echo + ")";
    // "vlan" shifts the offsets of everything after it, so it goes last.
    return both + " or (vlan and " + both + ")";
}

std::string arp_capture_filter() { return "arp or (vlan and arp)"; }

LiveCapture::LiveCapture(const LiveCaptureConfig& config) : impl_(std::make_unique<Impl>()) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    pcap_t* p = pcap_create(config.interface.c_str(), errbuf);
    if (!p) throw CaptureError(config.interface + ": " + errbuf);
    impl_->handle = p;
    pcap_set_snaplen(p, config.snaplen);
    pcap_set_promisc(p, 1);
    pcap_set_immediate_mode(p, 1);  // no batching delay: every frame as it arrives
    pcap_set_buffer_size(p, config.buffer_bytes);
    pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    const int rc = pcap_activate(p);
    if (rc < 0) fail(config.interface, "cannot capture", p, rc);
    if (pcap_setdirection(p, PCAP_D_IN) != 0) fail(config.interface, "cannot select direction", p, 0);
    auto link = link_type_from_dlt(pcap_datalink(p));
    if (!link || *link != LinkType::Ethernet)
        throw CaptureError(config.interface + ": not an Ethernet interface");
    link_ = *link;
    if (!config.filter.empty()) {
        bpf_program prog{};
        if (pcap_compile(p, &prog, config.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
            fail(config.interface, "bad capture filter '" + config.filter + "'", p, 0);
        const int set = pcap_setfilter(p, &prog);
        pcap_freecode(&prog);
        if (set != 0) fail(config.interface, "cannot set capture filter", p, 0);
    }
    if (pcap_setnonblock(p, 1, errbuf) != 0) throw CaptureError(config.interface + ": " + errbuf);
    if (pcap_get_selectable_fd(p) < 0) throw CaptureError(config.interface + ": no selectable fd");
}

LiveCapture::~LiveCapture() = default;

int LiveCapture::fd() const { return pcap_get_selectable_fd(impl_->handle); }

int LiveCapture::dispatch(int max_frames, FrameHandler on_frame, void* ctx) {
    impl_->handler = on_frame;
    impl_->ctx = ctx;
    const int n = pcap_dispatch(impl_->handle, max_frames, on_pcap,
                                reinterpret_cast<u_char*>(impl_.get()));
    return n < 0 ? -1 : n;
}

CaptureStats LiveCapture::stats() const {
    pcap_stat s{};
    if (pcap_stats(impl_->handle, &s) != 0) return {};
    return {s.ps_recv, s.ps_drop, s.ps_ifdrop};
}

std::string LiveCapture::error() const { return pcap_geterr(impl_->handle); }

}  // namespace migware::sniffer
