#include "monitor/service_probe.hpp"

namespace migware::monitor {

std::string_view name_of(ServiceHealth h) {
    switch (h) {
        case ServiceHealth::Unknown: return "unknown";
        case ServiceHealth::Up: return "up";
        case ServiceHealth::Down: return "down";
    }
    return "unknown";
}

std::optional<ServiceVerdict> ServiceProbe::finished(ProbeResult result, MonoNs now) {
    if (!outstanding_) return std::nullopt;
    const MonoNs took = now - *outstanding_;
    outstanding_.reset();
    switch (result) {
        case ProbeResult::Connected:
            consecutive_refused_ = 0;
            if (health_ != ServiceHealth::Up) {
                health_ = ServiceHealth::Up;
                return ServiceVerdict{health_, "connect() accepted in " +
                                                   std::to_string(took / 1000) + " us"};
            }
            return std::nullopt;
        case ProbeResult::Refused:
            ++refused_;
            // A RST from the primary's own kernel: the host is alive and the
            // service is not (a crashed or stopped daemon).
            if (++consecutive_refused_ >= config_.failures && health_ != ServiceHealth::Down) {
                health_ = ServiceHealth::Down;
                return ServiceVerdict{health_, std::to_string(consecutive_refused_) +
                                                   " consecutive connect()s refused (RST): "
                                                   "the host answers, the service does not"};
            }
            return std::nullopt;
        case ProbeResult::TimedOut:
        case ProbeResult::Error:
            // No answer says nothing about the service; the ICMP monitor owns
            // "host down".
            ++timed_out_;
            consecutive_refused_ = 0;
            return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace migware::monitor
