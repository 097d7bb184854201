#pragma once
// The daemon's kernel boundary: the TUN device into this host's stack, the
// link-layer injector (libnet) toward the clients, and the ICMP socket for
// the monitor. Only this module includes <libnet.h>.

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "migware/failover.hpp"
#include "monitor/icmp_monitor.hpp"
#include "monitor/service_probe.hpp"

namespace migware {

struct IoError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Fails with one line naming the missing capability (CAP_NET_RAW, CAP_NET_ADMIN).
void require_capabilities();

/// The interface's Ethernet address (SIOCGIFHWADDR). Throws IoError when it
/// has none (not Ethernet) or cannot be read.
sniffer::MacAddr interface_mac(const std::string& interface);

/// A TUN device (IFF_TUN | IFF_NO_PI) this process owns; it vanishes when
/// closed. route_host() routes one address into it; the destructor removes
/// the routes it added.
class TunDevice final : public BackupLink {
public:
    explicit TunDevice(const std::string& name);
    ~TunDevice() override;
    TunDevice(const TunDevice&) = delete;
    TunDevice& operator=(const TunDevice&) = delete;

    int fd() const { return fd_; }
    const std::string& name() const { return name_; }
    void route_host(Ipv4Addr ip);
    /// Removes a route route_host() added (a rolled-back takeover).
    void unroute_host(Ipv4Addr ip);
    /// Reads one packet; returns its size, 0 when nothing is waiting.
    std::size_t read(std::span<std::byte> buf);
    bool send_to_backup(std::span<const std::byte> ip_packet) override;
    std::uint64_t write_errors() const { return write_errors_; }

private:
    int fd_ = -1;
    std::string name_;
    std::vector<Ipv4Addr> routes_;
    std::uint64_t write_errors_ = 0;
};

/// Frames onto the wire through libnet (LIBNET_LINK_ADV).
class LinkInjector final : public ClientLink {
public:
    explicit LinkInjector(const std::string& interface);
    ~LinkInjector() override;
    LinkInjector(const LinkInjector&) = delete;
    LinkInjector& operator=(const LinkInjector&) = delete;
    bool send_to_client(std::span<const std::byte> frame) override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Raw ICMP socket bound to the capture interface: echo requests to the
/// primary leave on the wire even after the primary's /32 is routed into the
/// TUN device, so the monitor keeps watching the real primary in Proxy.
class IcmpSocket {
public:
    explicit IcmpSocket(const std::string& interface);
    ~IcmpSocket();
    IcmpSocket(const IcmpSocket&) = delete;
    IcmpSocket& operator=(const IcmpSocket&) = delete;
    int fd() const { return fd_; }
    bool send_probe(Ipv4Addr to, const monitor::Probe& probe);
    /// Reads one datagram (IP header included); 0 when nothing is waiting.
    std::size_t read(std::span<std::byte> buf);

private:
    int fd_ = -1;
};

/// The capture interface's carrier, from rtnetlink link notifications
/// (RTMGRP_LINK): a backup whose own cable is out must not read the silence
/// as a dead primary (issue 10). Readable when a notification is waiting.
class LinkWatch {
public:
    explicit LinkWatch(const std::string& interface);
    ~LinkWatch();
    LinkWatch(const LinkWatch&) = delete;
    LinkWatch& operator=(const LinkWatch&) = delete;
    int fd() const { return fd_; }
    /// Drains the notifications; true when the carrier state may have changed.
    bool drain();
    /// Up and running with carrier (IFF_UP and IFF_RUNNING, SIOCGIFFLAGS).
    bool carrier_up() const;

private:
    int fd_ = -1;
    std::string interface_;
};

/// One non-blocking TCP connect() to the primary's service, bound to the
/// capture interface (so it reaches the real primary even while its /32 is
/// routed into the TUN device). Closed with RST (SO_LINGER 0): no TIME_WAIT.
class ServiceConnect {
public:
    /// Starts the connect; throws IoError on set-up failure.
    ServiceConnect(const std::string& interface, Ipv4Addr ip, std::uint16_t port);
    ~ServiceConnect();
    ServiceConnect(const ServiceConnect&) = delete;
    ServiceConnect& operator=(const ServiceConnect&) = delete;
    int fd() const { return fd_; }
    /// After the fd turned writable: how the connect ended.
    monitor::ProbeResult result() const;

private:
    int fd_ = -1;
    bool immediate_ = false;  // connect() completed at once
};

}  // namespace migware
