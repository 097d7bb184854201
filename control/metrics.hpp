#pragma once
// The `metrics` reply: Prometheus text exposition format 0.0.4, from the one
// counter table (migware/counters.hpp) plus the proxy latency histogram.
// Names are migware_<name>, counters end in _total, units are base units
// (bytes, seconds), every family has # HELP and # TYPE before its samples.

#include <string>

#include "membership/member.hpp"
#include "migware/counters.hpp"

namespace migware::control {

std::string prometheus_text(const counters::Sources& sources);
/// The group's view (issue 12): role, epoch, members, quorum, messages.
std::string membership_text(const membership::Member& member, monitor::MonoNs now);

}  // namespace migware::control
