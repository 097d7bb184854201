#pragma once
// Sockets this host already holds toward the primary's IP (issue 12). A
// migware killed while active leaves its twins' sockets in the replica
// service: local (backup, service port), remote (primary, q). A later
// takeover on this host must not give a new twin one of those q: its SYN
// would meet an established socket and never get a SYN-ACK.

#include <cstdint>
#include <string_view>
#include <vector>

#include "sniffer/net_types.hpp"

namespace migware {

/// From the text of /proc/net/tcp (this network namespace's IPv4 TCP
/// sockets): the remote ports q of every socket, in any state but LISTEN,
/// whose local address is (backup, one of `service_ports`) and remote address
/// is the primary's. Lines it cannot read are skipped.
std::vector<std::uint16_t> twin_ports_in_use(std::string_view proc_net_tcp, sniffer::Ipv4Addr primary,
                                             sniffer::Ipv4Addr backup,
                                             const std::vector<std::uint16_t>& service_ports);

}  // namespace migware
