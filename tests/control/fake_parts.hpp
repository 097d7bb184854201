#pragma once
// A DaemonControl over a real FailoverEngine with links that only count: the
// control handler's tests, the metrics-by-state check (promtool) and the
// control fuzz target share it. A lab capture (pcaps/reqresp.pcap: one
// connection still open at its end) is replayed into the engine; then the
// primary is declared down (Recovery: the twin's SYN waits for the backup),
// and timers run until the twin gives up (Proxy).

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "control/handler.hpp"
#include "migware/failover.hpp"
#include "migware/latency.hpp"
#include "sniffer/pcap_source.hpp"

namespace migware::testing {

class CountingBackup final : public BackupLink {
public:
    bool send_to_backup(std::span<const std::byte>) override {
        ++sent;
        return true;
    }
    std::size_t sent = 0;
};

class CountingClient final : public ClientLink {
public:
    bool send_to_client(std::span<const std::byte>) override {
        ++sent;
        return true;
    }
    std::size_t sent = 0;
};

inline DaemonConfig fake_config() {
    DaemonConfig cfg;
    cfg.interface = "eth0";
    cfg.primary = *Ipv4Addr::parse("198.18.0.1");
    cfg.backup = *Ipv4Addr::parse("198.18.0.2");
    cfg.ports = {7000};
    cfg.failover.primary = cfg.primary;
    cfg.failover.backup = cfg.backup;
    cfg.failover.ports = cfg.ports;
    cfg.failover.table.servers = {{cfg.primary, sniffer::Port{7000}}};
    return cfg;
}

struct FakeDaemon {
    FakeDaemon()
        : cfg(fake_config()),
          engine(cfg.failover, backup, client, log),
          mon(cfg.monitor, 0x1234, 42),
          member(membership::Config{.lease = 0}, std::make_unique<membership::StandaloneProvider>()),
          control({cfg, engine, mon, log, to_backup, to_client,
                   [] { return sniffer::CaptureStats{10, 1, 0}; },
                   [] { return ControlCounters{1, 0, 3, 0, 0, 1, 0}; }, [this] { return now; }, nullptr,
                   &member}) {
        engine.started(now);
        member.tick(now);
    }

    /// Replays a capture into the engine at its own timestamps; returns the frame count.
    std::size_t replay(const std::string& path) {
        sniffer::PcapFileSource src(path);
        sniffer::RawFrame f;
        std::size_t n = 0;
        while (src.next(f) == sniffer::ReadStatus::Frame) {
            now = std::max(now, f.timestamp_ns);
            engine.on_capture(f, src.link(), now);
            ++n;
        }
        return n;
    }

    /// `n` established connections from 198.18.x.y clients, as a restart
    /// snapshot would bring them (no capture needed).
    std::size_t restore_connections(std::size_t n) {
        std::vector<tracker::HandshakeFacts> facts;
        facts.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            tracker::HandshakeFacts f;
            f.key.client = {Ipv4Addr{0xc6120000u + 10 + static_cast<std::uint32_t>(i / 20000)},
                            sniffer::Port{static_cast<std::uint16_t>(40000 + i % 20000)}};
            f.key.server = {cfg.primary, sniffer::Port{7000}};
            f.client_isn = sniffer::SeqNum{static_cast<std::uint32_t>(1000 + i)};
            f.server_isn = sniffer::SeqNum{static_cast<std::uint32_t>(900000 + i)};
            f.client_mss = 1460;
            f.server_mss = 1460;
            facts.push_back(f);
        }
        return engine.restore(facts, now);
    }

    void primary_down() {
        // As the daemon does: the group (of one) decides, then the engine acts.
        member.on_local_verdict(true, now);
        member.tick(now);
        engine.primary_down(now, "test: the primary is gone");
    }

    /// Runs timers until the state leaves Recovery or `limit` ns have passed.
    void run_timers(MonoNs limit) {
        const MonoNs end = now + limit;
        while (engine.state() == State::Recovery && now < end) {
            now = std::min(end, std::max(now + 1, engine.next_deadline()));
            engine.on_timer(now);
        }
    }

    CountingBackup backup;
    CountingClient client;
    EventRing log{1024, false};
    DaemonConfig cfg;
    FailoverEngine engine;
    monitor::IcmpMonitor mon;
    LatencyRecorder to_backup, to_client;
    MonoNs now = 1'000'000'000;
    membership::Member member;
    DaemonControl control;
};

}  // namespace migware::testing
