#pragma once
// `migctl top`: the full-screen live view of a running daemon (ncurses), and
// the text helpers migctl's one-shot commands share with it, so an event
// reads the same in `migctl events` and on the dashboard.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "control/protocol.hpp"

namespace migware::migctl {

// migctl reads replies through the protocol's non-throwing accessors.
using control::Json;
using control::as_array;
using control::as_bool;
using control::as_double;
using control::as_object;
using control::as_string;
using control::as_u64;
using control::dump;
using control::member;

/// Runs the dashboard until `q` (or SIGINT/SIGTERM). Returns the exit code;
/// a failure before the screen opens is one line on stderr.
int run_dashboard(const std::string& socket_path);

/// "#17 transition normal->recovery cause=primary_down reason=\"...\"", prefixed
/// by the wall time: the whole timestamp, or only the time of day.
std::string event_line(const Json& event, bool full_timestamp);

/// 4.2s, 3m12s, 2h03m, 3d04h.
std::string human_duration(double seconds);
/// 999, 1.2k, 3.4M, 5.6G (SI, for rates and counts).
std::string human_count(double v);
/// 512B, 1.2KiB, 3.4MiB (binary, for byte amounts).
std::string human_bytes(double v);
/// A JSON number or string for display; "-" when absent or null.
std::string scalar_text(const Json& v);

/// The first counter present among `names` (counters may be renamed between
/// daemon versions; CONTROL.md lets fields be added, never removed).
std::optional<std::uint64_t> counter(const Json& counters,
                                     std::initializer_list<std::string_view> names);

}  // namespace migware::migctl
