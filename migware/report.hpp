#pragma once
// Renders the tracker's table for people (aligned text) and for programs
// (one JSON object per line; keys fixed by `migware replay --json`).

#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "migware/pipeline.hpp"

namespace migware {

/// One connection as `migware replay --json` prints it, keys in that order; the
/// control socket's `connections` items start from it.
nlohmann::ordered_json connection_json(const tracker::Connection& c);
std::string summary_json(const Pipeline& p);

void print_json(std::ostream& out, const Pipeline& p);
void print_table(std::ostream& out, const Pipeline& p);
void print_counters(std::ostream& out, const Pipeline& p);

}  // namespace migware
