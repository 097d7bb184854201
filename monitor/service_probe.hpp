#pragma once
// A TCP probe of the primary's service port, beside the ICMP monitor, so that
// "host up, service down" is told apart from "host down" (issue 5).
//
// Pure logic, like IcmpMonitor: the daemon opens the non-blocking connect()s
// it is told to and reports how each ended.

#include <cstdint>
#include <optional>
#include <string>

#include "monitor/clock.hpp"

namespace migware::monitor {

struct ServiceProbeConfig {
    MonoNs interval = 200 * kMillisecond;  ///< one connect() per interval
    MonoNs timeout = 500 * kMillisecond;   ///< no answer this long: unreachable
    int failures = 2;                      ///< consecutive refusals before "service down"
};

enum class ProbeResult : std::uint8_t { Connected, Refused, TimedOut, Error };
enum class ServiceHealth : std::uint8_t { Unknown, Up, Down };
std::string_view name_of(ServiceHealth h);

struct ServiceVerdict {
    ServiceHealth health;
    std::string reason;
};

class ServiceProbe {
public:
    explicit ServiceProbe(ServiceProbeConfig config) : config_(config) {}

    /// True when a new probe should start now (at most one outstanding).
    bool due(MonoNs now) const { return !outstanding_ && now >= next_; }
    void started(MonoNs now) {
        outstanding_ = now;
        next_ = now + config_.interval;
        ++sent_;
    }
    /// How the outstanding probe ended. Refused means a RST came back: the
    /// host is up and nothing listens. Returns a verdict when health changes.
    std::optional<ServiceVerdict> finished(ProbeResult result, MonoNs now);
    /// The deadline by which the outstanding probe times out.
    std::optional<MonoNs> timeout_at() const {
        return outstanding_ ? std::optional<MonoNs>(*outstanding_ + config_.timeout) : std::nullopt;
    }
    MonoNs next_deadline() const { return outstanding_ ? *outstanding_ + config_.timeout : next_; }

    ServiceHealth health() const { return health_; }
    std::uint64_t sent() const { return sent_; }
    std::uint64_t refused() const { return refused_; }
    std::uint64_t timed_out() const { return timed_out_; }

private:
    ServiceProbeConfig config_;
    MonoNs next_ = 0;
    std::optional<MonoNs> outstanding_;
    ServiceHealth health_ = ServiceHealth::Unknown;
    int consecutive_refused_ = 0;
    std::uint64_t sent_ = 0, refused_ = 0, timed_out_ = 0;
};

}  // namespace migware::monitor
