#pragma once
// Forwarding header, kept only so that migware/failover.cpp (which includes
// it and calls rewrite::load_be32 / store_*) keeps compiling until its owner
// moves it to "sniffer/wire.hpp". Nothing in sniffer/ or rewrite/ includes
// it. Delete it once migware/ no longer does.

#include "sniffer/wire.hpp"

namespace migware::rewrite {

using sniffer::wire::fits;
using sniffer::wire::load_be16;
using sniffer::wire::load_be32;
using sniffer::wire::load_u8;
using sniffer::wire::store_be16;
using sniffer::wire::store_be32;
using sniffer::wire::store_u8;

}  // namespace migware::rewrite
