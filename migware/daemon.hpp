#pragma once
// The live daemon: one epoll loop over the capture fd, the TUN fd, the ICMP
// socket, a timerfd and a signalfd. It owns the real I/O and hands packets
// and verdicts to the FailoverEngine, which owns the logic.

#include "migware/config.hpp"

namespace migware {

/// Runs until SIGINT/SIGTERM. Returns the process exit code. Throws
/// IoError / CaptureError at start-up with one clear line.
int run_daemon(const DaemonConfig& config);

}  // namespace migware
