#pragma once
// A connection's phase as the control socket, the log and the dashboard show
// it. Header-only, so that migctl (which links no engine) names phases from
// the same list as the daemon.

#include <cstdint>

#include "migware/names.hpp"

namespace migware {

/// What the control socket shows for one connection.
enum class Phase : std::uint8_t { Tracked, Recovering, Proxied, Lost, Closed };
inline constexpr std::array<std::string_view, 5> kPhaseNames{"tracked", "recovering", "proxied", "lost",
                                                             "closed"};
static_assert(kPhaseNames.size() == static_cast<std::size_t>(Phase::Closed) + 1);
constexpr std::string_view name_of(Phase p) { return enum_name(kPhaseNames, p); }
constexpr std::optional<Phase> phase_from_name(std::string_view s) {
    return enum_from_name<Phase>(kPhaseNames, s);
}

}  // namespace migware
