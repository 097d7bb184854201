#pragma once
// Forwarding header: the Internet checksum lives in "sniffer/checksum.hpp"
// (one implementation for the parser, rewrite/ and the engine). Kept only so
// that migware/failover.cpp, which includes it and calls
// rewrite::tcp_checksum_ok / ipv4_header_checksum / internet_checksum, keeps
// compiling until its owner includes "sniffer/checksum.hpp" instead. Nothing
// in sniffer/ or rewrite/ includes it. Delete it once migware/ no longer does.

#include "sniffer/checksum.hpp"

namespace migware::rewrite {

using sniffer::checksum_update16;
using sniffer::checksum_update32;
using sniffer::checksum_update_bytes;
using sniffer::fold;
using sniffer::internet_checksum;
using sniffer::ipv4_header_checksum;
using sniffer::ipv4_header_checksum_ok;
using sniffer::kIpProtoTcp;
using sniffer::pseudo_header_sum;
using sniffer::sum_words;
using sniffer::tcp_checksum;
using sniffer::tcp_checksum_ok;

}  // namespace migware::rewrite
