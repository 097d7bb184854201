#include "migware/host_sockets.hpp"

#include <gtest/gtest.h>

namespace migware {
namespace {

// /proc/net/tcp as this kernel prints it (x86-64): 198.18.0.2 is 0200 12C6.
constexpr const char* kTable =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 020012C6:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"   // LISTEN
    "   1: 020012C6:1B58 010012C6:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n"   // twin q=40000
    "   2: 020012C6:1B58 010012C6:9C41 08 00000000:00000000 00:00000000 00000000     0        0 3 1\n"   // CLOSE_WAIT q=40001
    "   3: 020012C6:1B58 0A0012C6:9C42 01 00000000:00000000 00:00000000 00000000     0        0 4 1\n"   // a direct client
    "   4: 020012C6:1B59 010012C6:9C43 01 00000000:00000000 00:00000000 00000000     0        0 5 1\n"   // another service port
    "   5: 030012C6:1B58 010012C6:9C44 01 00000000:00000000 00:00000000 00000000     0        0 6 1\n"   // another local IP
    "   6: garbage line\n"
    "   7: 020012C6:1B58 010012C6:9C40 01\n";  // the same q again (short line: still read)

TEST(HostSockets, TheTwinPortsOfSocketsTowardThePrimaryOnTheServicePorts) {
    const auto primary = *sniffer::Ipv4Addr::parse("198.18.0.1");
    const auto backup = *sniffer::Ipv4Addr::parse("198.18.0.2");
    EXPECT_EQ(twin_ports_in_use(kTable, primary, backup, {7000}), (std::vector<std::uint16_t>{40000, 40001}));
    EXPECT_EQ(twin_ports_in_use(kTable, primary, backup, {7000, 7001}),
              (std::vector<std::uint16_t>{40000, 40001, 40003}));
    EXPECT_TRUE(twin_ports_in_use(kTable, primary, backup, {80}).empty());
    EXPECT_TRUE(twin_ports_in_use("", primary, backup, {7000}).empty());
    EXPECT_TRUE(twin_ports_in_use("header only\n", primary, backup, {7000}).empty());
}

}  // namespace
}  // namespace migware
