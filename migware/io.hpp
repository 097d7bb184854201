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

/// Owns one file descriptor: closed when destroyed, movable, not copyable.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = o.release();
        }
        return *this;
    }
    ~UniqueFd() { reset(); }
    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    void reset() noexcept;

private:
    int release() noexcept {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    int fd_ = -1;
};

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

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }
    void route_host(Ipv4Addr ip);
    /// Removes a route route_host() added (a rolled-back takeover).
    void unroute_host(Ipv4Addr ip);
    /// Reads one packet; returns its size, 0 when nothing is waiting.
    std::size_t read(std::span<std::byte> buf);
    bool send_to_backup(std::span<const std::byte> ip_packet) override;
    std::uint64_t write_errors() const { return write_errors_; }

private:
    UniqueFd fd_;
    std::string name_;
    std::vector<Ipv4Addr> routes_;
    std::uint64_t write_errors_ = 0;
};

/// Frames onto the wire through libnet (LIBNET_LINK_ADV).
class LinkInjector final : public ClientLink {
public:
    explicit LinkInjector(const std::string& interface);
    ~LinkInjector() override;
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
    int fd() const { return fd_.get(); }
    bool send_probe(Ipv4Addr to, const monitor::Probe& probe);
    /// Reads one datagram (IP header included); 0 when nothing is waiting.
    std::size_t read(std::span<std::byte> buf);

private:
    UniqueFd fd_;
};

/// The capture interface's carrier, from rtnetlink link notifications
/// (RTMGRP_LINK): a backup whose own cable is out must not read the silence
/// as a dead primary (issue 10). Readable when a notification is waiting.
class LinkWatch {
public:
    explicit LinkWatch(const std::string& interface);
    int fd() const { return fd_.get(); }
    /// Drains the notifications; true when the carrier state may have changed.
    bool drain();
    /// Up and running with carrier (IFF_UP and IFF_RUNNING, SIOCGIFFLAGS).
    bool carrier_up() const;

private:
    UniqueFd fd_;
    std::string interface_;
};

/// One non-blocking TCP connect() to the primary's service, bound to the
/// capture interface (so it reaches the real primary even while its /32 is
/// routed into the TUN device). Closed with RST (SO_LINGER 0): no TIME_WAIT.
class ServiceConnect {
public:
    /// Starts the connect; throws IoError on set-up failure.
    ServiceConnect(const std::string& interface, Ipv4Addr ip, std::uint16_t port);
    int fd() const { return fd_.get(); }
    /// After the fd turned writable: how the connect ended.
    monitor::ProbeResult result() const;

private:
    UniqueFd fd_;
    bool immediate_ = false;  // connect() completed at once
};

}  // namespace migware
