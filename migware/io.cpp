#include "migware/io.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libnet.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/capability.h>
#include <linux/icmp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "rewrite/frames.hpp"

namespace migware {

namespace {

std::string errno_text() { return std::strerror(errno); }

sockaddr_in inet(Ipv4Addr ip) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(ip.value);
    return a;
}

class Socket {
public:
    Socket() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        if (!fd_.valid()) throw IoError("socket: " + errno_text());
    }
    int fd() const { return fd_.get(); }

private:
    UniqueFd fd_;
};

}  // namespace

void require_capabilities() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) != 0) throw IoError("capget: " + errno_text());
    auto has = [&](int cap) { return (data[cap / 32].effective & (1u << (cap % 32))) != 0; };
    std::string missing;
    if (!has(CAP_NET_RAW)) missing += "CAP_NET_RAW (capture, raw injection, ICMP probes)";
    if (!has(CAP_NET_ADMIN)) {
        if (!missing.empty()) missing += " and ";
        missing += "CAP_NET_ADMIN (TUN device and its route)";
    }
    if (!missing.empty())
        throw IoError("missing capability " + missing +
                      "; run as root or grant it: setcap cap_net_raw,cap_net_admin+ep <migware>");
}

void UniqueFd::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

// ---------------------------------------------------------------- TUN

TunDevice::TunDevice(const std::string& name) : name_(name) {
    fd_ = UniqueFd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd_.valid()) throw IoError("/dev/net/tun: " + errno_text());
    ifreq ifr{};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd_.get(), TUNSETIFF, &ifr) != 0) {
        const std::string err = errno_text();
        throw IoError("TUN device '" + name + "': " + err);
    }
    name_ = ifr.ifr_name;
    // No IPv6 on the TUN: its router solicitations would only be noise.
    std::ofstream(std::string("/proc/sys/net/ipv6/conf/") + name_ + "/disable_ipv6") << "1\n";
    Socket s;
    if (::ioctl(s.fd(), SIOCGIFFLAGS, &ifr) != 0) throw IoError(name_ + ": SIOCGIFFLAGS: " + errno_text());
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s.fd(), SIOCSIFFLAGS, &ifr) != 0) throw IoError(name_ + ": cannot bring up: " + errno_text());
}

namespace {

// ioctl(SIOCADDRT / SIOCDELRT) on "ip/32 dev name".
bool host_route(unsigned long request, Ipv4Addr ip, std::string& dev) {
    Socket s;
    rtentry rt{};
    auto dst = inet(ip);
    auto mask = inet(Ipv4Addr{0xffffffffu});
    std::memcpy(&rt.rt_dst, &dst, sizeof dst);
    std::memcpy(&rt.rt_genmask, &mask, sizeof mask);
    rt.rt_flags = RTF_UP | RTF_HOST;
    rt.rt_dev = dev.data();
    return ::ioctl(s.fd(), request, &rt) == 0;
}

}  // namespace

TunDevice::~TunDevice() {
    try {
        for (Ipv4Addr ip : routes_) host_route(SIOCDELRT, ip, name_);
    } catch (...) {
        // closing the device below removes its routes anyway
    }
}

sniffer::MacAddr interface_mac(const std::string& interface) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw IoError(std::string("socket: ") + std::strerror(errno));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, interface.c_str(), IFNAMSIZ - 1);
    const int rc = ::ioctl(fd, SIOCGIFHWADDR, &ifr);
    const int err = errno;
    ::close(fd);
    if (rc != 0) throw IoError("cannot read the MAC address of " + interface + ": " + std::strerror(err));
    if (ifr.ifr_hwaddr.sa_family != 1 /* ARPHRD_ETHER */)
        throw IoError(interface + " is not an Ethernet interface");
    sniffer::MacAddr mac;
    for (std::size_t i = 0; i < 6; ++i) mac.bytes[i] = static_cast<std::uint8_t>(ifr.ifr_hwaddr.sa_data[i]);
    if (mac == sniffer::MacAddr{}) throw IoError(interface + " has no MAC address");
    return mac;
}

void TunDevice::route_host(Ipv4Addr ip) {
    if (!host_route(SIOCADDRT, ip, name_) && errno != EEXIST)
        throw IoError("route " + ip.to_string() + "/32 dev " + name_ + ": " + errno_text());
    routes_.push_back(ip);
}

void TunDevice::unroute_host(Ipv4Addr ip) {
    auto it = std::find(routes_.begin(), routes_.end(), ip);
    if (it == routes_.end()) return;
    routes_.erase(it);
    if (!host_route(SIOCDELRT, ip, name_) && errno != ESRCH)
        throw IoError("delete route " + ip.to_string() + "/32 dev " + name_ + ": " + errno_text());
}

std::size_t TunDevice::read(std::span<std::byte> buf) {
    const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

bool TunDevice::send_to_backup(std::span<const std::byte> ip_packet) {
    const ssize_t n = ::write(fd_.get(), ip_packet.data(), ip_packet.size());
    if (n != static_cast<ssize_t>(ip_packet.size())) {
        ++write_errors_;
        return false;
    }
    return true;
}

// ---------------------------------------------------------------- libnet

struct LinkInjector::Impl {
    libnet_t* l = nullptr;
    ~Impl() {
        if (l) libnet_destroy(l);
    }
};

LinkInjector::LinkInjector(const std::string& interface) : impl_(std::make_unique<Impl>()) {
    char errbuf[LIBNET_ERRBUF_SIZE] = {};
    impl_->l = libnet_init(LIBNET_LINK_ADV, interface.c_str(), errbuf);
    if (!impl_->l) throw IoError("libnet on " + interface + ": " + errbuf);
}

LinkInjector::~LinkInjector() = default;

bool LinkInjector::send_to_client(std::span<const std::byte> frame) {
    const int n = libnet_adv_write_link(
        impl_->l, reinterpret_cast<const std::uint8_t*>(frame.data()),
        static_cast<std::uint32_t>(frame.size()));
    return n == static_cast<int>(frame.size());
}

// ---------------------------------------------------------------- ICMP

// ---------------------------------------------------------------- carrier

LinkWatch::LinkWatch(const std::string& interface) : interface_(interface) {
    fd_ = UniqueFd(::socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd_.valid()) throw IoError("netlink socket: " + errno_text());
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK;
    if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        const std::string err = errno_text();
        throw IoError("netlink bind (link notifications): " + err);
    }
}

bool LinkWatch::drain() {
    // The messages themselves are not parsed: any link notification (or an
    // overrun, ENOBUFS) means "read the flags again", which is exact and
    // cannot be fooled by a message for another interface.
    std::array<std::byte, 8192> buf{};
    bool any = false;
    for (int i = 0; i < 64; ++i) {
        const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
        if (n > 0 || (n < 0 && errno == ENOBUFS)) {
            any = true;
            continue;
        }
        break;
    }
    return any;
}

bool LinkWatch::carrier_up() const {
    Socket s;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, interface_.c_str(), IFNAMSIZ - 1);
    if (::ioctl(s.fd(), SIOCGIFFLAGS, &ifr) != 0) return false;
    return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
}

IcmpSocket::IcmpSocket(const std::string& interface) {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP));
    if (!fd_.valid()) throw IoError("ICMP socket: " + errno_text() + " (needs CAP_NET_RAW)");
    if (::setsockopt(fd_.get(), SOL_SOCKET, SO_BINDTODEVICE, interface.c_str(),
                     static_cast<socklen_t>(interface.size())) != 0)
        throw IoError("ICMP socket on " + interface + ": " + errno_text());
    // Only echo replies reach us (raw ICMP sockets see every ICMP message).
    icmp_filter filter{};
    filter.data = ~(1u << ICMP_ECHOREPLY);
    ::setsockopt(fd_.get(), SOL_RAW, ICMP_FILTER, &filter, sizeof filter);
}

bool IcmpSocket::send_probe(Ipv4Addr to, const monitor::Probe& probe) {
    std::array<std::byte, rewrite::kIcmpEchoHeader + monitor::kNonceBytes> pkt{};
    const std::size_t len = rewrite::build_icmp_echo(
        pkt, {rewrite::IcmpEchoType::Request, probe.id, probe.sequence, probe.payload});
    const sockaddr_in dst = inet(to);
    return len > 0 && ::sendto(fd_.get(), pkt.data(), len, 0, reinterpret_cast<const sockaddr*>(&dst),
                               sizeof dst) == static_cast<ssize_t>(len);
}

std::size_t IcmpSocket::read(std::span<std::byte> buf) {
    const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

// ---------------------------------------------------------------- TCP probe

ServiceConnect::ServiceConnect(const std::string& interface, Ipv4Addr ip, std::uint16_t port) {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_.valid()) throw IoError("service probe socket: " + errno_text());
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_BINDTODEVICE, interface.c_str(),
                 static_cast<socklen_t>(interface.size()));
    linger lg{1, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    sockaddr_in dst = inet(ip);
    dst.sin_port = htons(port);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) {
        immediate_ = true;
    } else if (errno != EINPROGRESS) {
        const std::string err = errno_text();
        throw IoError("service probe connect: " + err);
    }
}

monitor::ProbeResult ServiceConnect::result() const {
    if (immediate_) return monitor::ProbeResult::Connected;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return monitor::ProbeResult::Error;
    if (err == 0) return monitor::ProbeResult::Connected;
    if (err == ECONNREFUSED) return monitor::ProbeResult::Refused;
    return monitor::ProbeResult::Error;
}

}  // namespace migware
