#pragma once
// A large capture held in memory for benchmarks: the committed lab captures,
// cloned with distinct client ports so each copy is its own connection.

#include <string>
#include <vector>

#include "sniffer/packet_source.hpp"

namespace migware::bench {

/// Loads `paths` (Ethernet pcaps) and clones their frames `copies` times,
/// giving each copy's client side a distinct port. Frames keep their order
/// within a copy; copies follow one another, so the table grows to
/// copies x (connections per base capture).
sniffer::MemorySource synthetic_capture(const std::vector<std::string>& paths, int copies);

}  // namespace migware::bench
