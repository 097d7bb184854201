#include "migware/daemon.hpp"

#include <grp.h>
#include <net/if.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "control/handler.hpp"
#include "control/server.hpp"
#include "migware/counters.hpp"
#include "migware/io.hpp"
#include "migware/latency.hpp"
#include "migware/snapshot.hpp"
#include "sniffer/live_capture.hpp"

namespace migware {

namespace {

constexpr int kCaptureBatch = 256;   // frames per pcap_dispatch: bounds one loop turn
constexpr int kTunBatch = 256;
constexpr MonoNs kStatsEvery = 1'000 * monitor::kMillisecond;
constexpr MonoNs kSnapshotEvery = 250 * monitor::kMillisecond;  // at most; only when changed

/// Loads the restart snapshot into the engine. A missing file is normal (first
/// start); a damaged one is refused with one line and migware carries on,
/// picking connections up mid-stream.
void load_snapshot(const DaemonConfig& cfg, FailoverEngine& engine, EventSink& log, MonoNs now) {
    if (cfg.state_file.empty()) return;
    bool exists = false;
    std::string error;
    const std::string text = read_snapshot_file(cfg.state_file, exists, error);
    if (!exists) {
        log.emit(now, "snapshot", "file=" + logfmt_value(cfg.state_file) + " result=none");
        return;
    }
    auto parsed = error.empty() ? parse_snapshot(text) : SnapshotParse{{}, error};
    if (!parsed.error.empty()) {
        log.emit(now, "snapshot_refused",
                 "file=" + logfmt_value(cfg.state_file) + " reason=" + logfmt_value(parsed.error) +
                     " action=\"ignored; connections are picked up mid-stream\"");
        return;
    }
    const std::size_t n = engine.restore(parsed.facts, now);
    log.emit(now, "snapshot", "file=" + logfmt_value(cfg.state_file) + " result=loaded connections=" +
                                  std::to_string(n));
}

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

struct CaptureCtx {
    FailoverEngine* engine;
    sniffer::LinkType link;
    const monitor::Clock* clock;
    LatencyRecorder* latency;
};

void on_frame(void* ctx, const sniffer::RawFrame& frame) {
    auto* c = static_cast<CaptureCtx*>(ctx);
    const MonoNs t0 = c->clock->now();
    const auto before = c->engine->counters().to_backup;
    c->engine->on_capture(frame, c->link, t0);
    // Processing time of a proxied packet: capture handed it to us -> its
    // rewritten copy written into the backup's stack.
    if (c->engine->counters().to_backup != before) c->latency->record(c->clock->now() - t0);
}

void on_event(void* ctx, const EventRecord& e) {
    static_cast<ControlServer*>(ctx)->publish(DaemonControl::follower_line(e));
}

std::optional<gid_t> lookup_group(const std::string& name) {
    if (name.empty()) return std::nullopt;
    if (const group* g = ::getgrnam(name.c_str())) return g->gr_gid;
    throw IoError("control.group '" + name + "': no such group");
}

void add_fd(int epfd, int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        throw IoError(std::string("epoll_ctl: ") + std::strerror(errno));
}

}  // namespace

int run_daemon(const DaemonConfig& cfg) {
    if (::if_nametoindex(cfg.interface.c_str()) == 0)
        throw IoError("unknown interface '" + cfg.interface + "'");
    require_capabilities();

    EventRing log;
    monitor::SystemClock clock;
    const std::optional<gid_t> control_gid = lookup_group(cfg.control_group);
    sniffer::LiveCapture capture({cfg.interface,
                                  sniffer::capture_filter(cfg.primary.to_string(), cfg.ports),
                                  cfg.capture_buffer_mb << 20, 65535});
    sniffer::LiveCapture arp_capture({cfg.interface, sniffer::arp_capture_filter(), 1 << 20, 128});
    TunDevice tun(cfg.tun_name);
    LinkInjector injector(cfg.interface);
    IcmpSocket icmp(cfg.interface);
    LinkWatch link_watch(cfg.interface);
    FailoverConfig failover_cfg = cfg.failover;
    failover_cfg.backup_mac = interface_mac(cfg.interface);
    failover_cfg.verify_tcp_checksums = true;  // received frames: complete checksums
    FailoverEngine engine(failover_cfg, tun, injector, log);
    std::random_device rd;
    const auto echo_id = static_cast<std::uint16_t>(::getpid() ^ rd());
    monitor::IcmpMonitor mon(cfg.monitor, echo_id, (std::uint64_t{rd()} << 32) | rd());
    // The reference host's echo replies are segment evidence, nothing more:
    // its own health is never judged, so only due() and on_reply() are used.
    std::optional<monitor::IcmpMonitor> ref_mon;
    if (cfg.reference)
        ref_mon.emplace(monitor::MonitorConfig{25 * monitor::kMillisecond, 1000 * monitor::kMillisecond,
                                               1 << 20, false},
                        static_cast<std::uint16_t>(echo_id ^ 0x5a5a), (std::uint64_t{rd()} << 32) | rd());
    std::uint64_t reference_replies = 0;
    bool carrier = link_watch.carrier_up();
    mon.on_carrier(carrier, clock.now());

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) throw IoError("sigprocmask failed");
    Fd sigfd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    Fd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (sigfd.get() < 0 || timer.get() < 0 || ep.get() < 0)
        throw IoError(std::string("event loop set-up: ") + std::strerror(errno));
    add_fd(ep.get(), capture.fd());
    add_fd(ep.get(), arp_capture.fd());
    add_fd(ep.get(), tun.fd());
    add_fd(ep.get(), icmp.fd());
    add_fd(ep.get(), link_watch.fd());
    add_fd(ep.get(), sigfd.get());
    add_fd(ep.get(), timer.get());

    LatencyRecorder to_backup_latency, to_client_latency;
    std::unique_ptr<ControlServer> control;
    DaemonControl control_handler({cfg, engine, mon, log, to_backup_latency, to_client_latency,
                                   [&] { return capture.stats(); },
                                   [&] { return control ? control->counters() : ControlCounters{}; },
                                   [&] { return clock.now(); }});
    if (!cfg.control_socket.empty()) {
        const auto slash = cfg.control_socket.rfind('/');
        if (slash != std::string::npos && slash > 0)
            ::mkdir(cfg.control_socket.substr(0, slash).c_str(), 0755);  // e.g. /run/migware
        control = std::make_unique<ControlServer>(
            ControlOptions{cfg.control_socket, control_gid}, control_handler);
        add_fd(ep.get(), control->fd());
        log.set_listener(on_event, control.get());
    }

    if (!cfg.state_file.empty()) {
        const auto slash = cfg.state_file.rfind('/');
        if (slash != std::string::npos && slash > 0)
            ::mkdir(cfg.state_file.substr(0, slash).c_str(), 0750);  // e.g. /var/lib/migware
    }
    load_snapshot(cfg, engine, log, clock.now());
    std::uint64_t snapshot_generation = engine.pipeline().table().generation();
    MonoNs next_snapshot = clock.now() + kSnapshotEvery;
    bool snapshot_error_logged = false;
    engine.started(clock.now());
    log.emit(clock.now(), "start",
             "state=normal " + cfg.summary +
                 (control ? " control=" + cfg.control_socket : std::string(" control=off")));
    CaptureCtx ctx{&engine, capture.link(), &clock, &to_backup_latency};
    CaptureCtx arp_ctx{&engine, arp_capture.link(), &clock, &to_backup_latency};
    // ARP first, and again between TCP batches (see arp_capture_filter).
    auto drain_arp = [&] {
        for (int b = 0; b < 4 && arp_capture.dispatch(64, on_frame, &arp_ctx) == 64; ++b) {
        }
    };
    std::vector<std::byte> buf(65536);
    monitor::ServiceProbe service(cfg.probe);
    std::unique_ptr<ServiceConnect> tcp_probe;
    bool tcp_probe_ready = false;
    std::uint64_t last_drops = 0;
    std::uint64_t last_errors[3] = {0, 0, 0};
    MonoNs next_capture_error_log = 0;
    MonoNs next_stats = clock.now() + kStatsEvery;
    bool running = true;
    while (running) {
        const MonoNs now0 = clock.now();
        const State state_before = engine.state();
        const MonoNs deadline = std::min({mon.next_deadline(), engine.next_deadline(), next_stats,
                                          cfg.state_file.empty() ? next_stats : next_snapshot,
                                          cfg.service_probe ? service.next_deadline() : next_stats});
        itimerspec its{};
        const MonoNs at = std::max(deadline, now0 + 1);
        its.it_value.tv_sec = at / 1'000'000'000;
        its.it_value.tv_nsec = at % 1'000'000'000;
        ::timerfd_settime(timer.get(), TFD_TIMER_ABSTIME, &its, nullptr);

        epoll_event events[8];
        const int n = ::epoll_wait(ep.get(), events, 8, -1);
        if (n < 0 && errno != EINTR) throw IoError(std::string("epoll_wait: ") + std::strerror(errno));
        // Echo replies first: a loaded loop must not mistake its own delay
        // for a dead primary.
        for (std::size_t r = 0; r < 64; ++r) {
            const std::size_t len = icmp.read(buf);
            if (len == 0) break;
            sniffer::Packet p;
            if (!sniffer::parse(std::span(buf.data(), len), static_cast<std::uint32_t>(len),
                                sniffer::LinkType::RawIp, p) &&
                p.kind == sniffer::PacketKind::IcmpEcho && p.icmp.type == 0 &&
                p.ip.src == cfg.primary) {
                mon.on_reply(p.icmp.id, p.icmp.sequence,
                             std::span(buf.data() + p.layout.payload, p.payload_captured),
                             clock.now());
                // The first echo reply after the takeover, not the monitor's
                // verdict a few probes later: fencing must beat the primary's
                // stale sockets to the clients.
                if (engine.state() != State::Normal) engine.primary_heard(clock.now(), "echo reply");
            } else if (ref_mon && p.kind == sniffer::PacketKind::IcmpEcho && p.icmp.type == 0 &&
                       p.ip.src == *cfg.reference &&
                       ref_mon->on_reply(p.icmp.id, p.icmp.sequence,
                                         std::span(buf.data() + p.layout.payload, p.payload_captured),
                                         clock.now())) {
                ++reference_replies;
            }
        }
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == arp_capture.fd()) {
                drain_arp();
            } else if (fd == capture.fd()) {
                for (int b = 0; b < 8; ++b) {
                    drain_arp();
                    const int got = capture.dispatch(kCaptureBatch, on_frame, &ctx);
                    if (got < 0) {
                        if (clock.now() >= next_capture_error_log) {  // at most once a second
                            next_capture_error_log = clock.now() + kStatsEvery;
                            log.emit(clock.now(), "capture_error", "reason=" + logfmt_value(capture.error()));
                        }
                        break;
                    }
                    if (got < kCaptureBatch) break;
                }
            } else if (fd == tun.fd()) {
                for (int b = 0; b < kTunBatch; ++b) {
                    const std::size_t len = tun.read(buf);
                    if (len == 0) break;
                    const MonoNs t0 = clock.now();
                    const auto before = engine.counters().to_client;
                    engine.on_backup_packet(std::span(buf.data(), len), t0);
                    if (engine.counters().to_client != before) to_client_latency.record(clock.now() - t0);
                }
            } else if (fd == link_watch.fd()) {
                if (link_watch.drain()) {
                    const bool up = link_watch.carrier_up();
                    if (up != carrier) {
                        carrier = up;
                        log.emit(clock.now(), "carrier",
                                 "interface=" + cfg.interface + " state=" + (up ? "up" : "down") +
                                     " state_now=" + std::string(name_of(engine.state())));
                    }
                    mon.on_carrier(up, clock.now());
                }
            } else if (control && fd == control->fd()) {
                control->poll();
            } else if (fd == sigfd.get()) {
                signalfd_siginfo si{};
                if (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
                    log.emit(clock.now(), "signal", std::string("signal=") + strsignal(static_cast<int>(si.ssi_signo)));
                    running = false;
                }
            } else if (tcp_probe && fd == tcp_probe->fd()) {
                tcp_probe_ready = true;
            } else if (fd == timer.get()) {
                std::uint64_t expirations;
                (void)!::read(timer.get(), &expirations, sizeof expirations);
            }
        }
        const MonoNs now = clock.now();
        if (state_before != State::Normal && engine.state() == State::Normal) {
            // A rolled-back takeover (the primary never died): the backup's
            // packets for the primary's IP go to the wire again, and a later
            // real failure must be declared afresh.
            tun.unroute_host(cfg.primary);
            mon.rearm();
        }
        // Everything captured so far is in; probes sent from here on are
        // judged against it.
        mon.on_segment_frames(engine.counters().segment_frames + reference_replies);
        while (auto probe = mon.due(now)) icmp.send_probe(cfg.primary, *probe);
        if (engine.state() == State::Normal && mon.segment_probe_due(now)) {
            if (cfg.neighbour_probe) engine.probe_segment(now);
            if (ref_mon)
                if (auto rp = ref_mon->due(now)) icmp.send_probe(*cfg.reference, *rp);
            mon.segment_probe_sent(now);
        }
        if (cfg.service_probe) {
            std::optional<monitor::ServiceVerdict> sv;
            if (tcp_probe) {
                const bool done = tcp_probe_ready;
                if (done || now >= service.timeout_at().value_or(now)) {
                    const auto result = done ? tcp_probe->result() : monitor::ProbeResult::TimedOut;
                    ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, tcp_probe->fd(), nullptr);
                    tcp_probe.reset();
                    tcp_probe_ready = false;
                    sv = service.finished(result, now);
                }
            }
            if (!tcp_probe && service.due(now)) {
                try {
                    tcp_probe = std::make_unique<ServiceConnect>(cfg.interface, cfg.primary, cfg.ports.front());
                    epoll_event pev{};
                    pev.events = EPOLLOUT;
                    pev.data.fd = tcp_probe->fd();
                    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, tcp_probe->fd(), &pev);
                    service.started(now);
                } catch (const IoError& e) {
                    service.started(now);
                    sv = service.finished(monitor::ProbeResult::Error, now);
                }
            }
            if (sv) {
                const bool host_up = mon.health() == monitor::Health::Up;
                log.emit(now, sv->health == monitor::ServiceHealth::Down ? "service_down" : "service_up",
                         "port=" + std::to_string(cfg.ports.front()) + " host=" +
                             std::string(monitor::name_of(mon.health())) + " reason=" +
                             logfmt_value(sv->reason));
                if (sv->health == monitor::ServiceHealth::Down && host_up &&
                    engine.state() == State::Normal) {
                    // The primary's own kernel has already closed the service's
                    // connections (FIN/RST to the clients); nothing here can
                    // mask that. Take over the service for new connections.
                    tun.route_host(cfg.primary);
                    engine.primary_down(now, "service down while the host answers: " + sv->reason);
                }
            }
        }
        auto verdict = mon.tick(now, engine.passive_signal());
        if (auto veto = mon.take_veto_notice()) {
            log.emit(now, "monitor_veto",
                     "reason=" + std::string(monitor::name_of(veto->reason)) + " detail=" +
                         logfmt_value(veto->detail) + " state=" + std::string(name_of(engine.state())));
        }
        if (verdict) {
            log.emit(now, "monitor", "health=" + std::string(monitor::name_of(verdict->health)) +
                                         " reason=" + logfmt_value(verdict->reason));
            if (verdict->health == monitor::Health::Down) {
                if (engine.state() == State::Normal) tun.route_host(cfg.primary);
                engine.primary_down(now, verdict->reason);
            } else if (verdict->health == monitor::Health::Up) {
                engine.primary_up(now, verdict->reason);
            }
        }
        engine.on_timer(now);
        if (!cfg.state_file.empty() && engine.state() == State::Normal && now >= next_snapshot) {
            next_snapshot = now + kSnapshotEvery;
            const std::uint64_t gen = engine.pipeline().table().generation();
            if (gen != snapshot_generation) {
                const std::string err =
                    write_snapshot_file(cfg.state_file, serialize_snapshot(engine.handshake_facts()));
                if (err.empty()) {
                    snapshot_generation = gen;
                    snapshot_error_logged = false;
                } else if (!snapshot_error_logged) {
                    snapshot_error_logged = true;  // once per failure streak, not every 250 ms
                    log.emit(now, "snapshot_error", "reason=" + logfmt_value(err));
                }
            }
        }
        if (now >= next_stats) {
            next_stats = now + kStatsEvery;
            // Errors are counted on the packet path and reported here, once a
            // second at most: an event per failed packet would bury the log.
            const auto& fc = engine.counters();
            const std::uint64_t errors[] = {fc.send_errors, fc.rewrite_errors,
                                            engine.pipeline().parse_counters().malformed()};
            if (errors[0] > last_errors[0] || errors[1] > last_errors[1] || errors[2] > last_errors[2]) {
                log.emit(now, "errors",
                         "send_errors=" + std::to_string(errors[0] - last_errors[0]) +
                             " rewrite_errors=" + std::to_string(errors[1] - last_errors[1]) +
                             " malformed=" + std::to_string(errors[2] - last_errors[2]) +
                             " window=1s");
                std::copy(std::begin(errors), std::end(errors), last_errors);
            }
            const auto cs = capture.stats();
            if (cs.dropped_kernel > last_drops) {
                log.emit(now, "capture_drops", "kernel_drops=" + std::to_string(cs.dropped_kernel) +
                                                   " new=" + std::to_string(cs.dropped_kernel - last_drops));
                last_drops = cs.dropped_kernel;
            }
        }
    }
    log.set_listener(nullptr, nullptr);
    const auto final_capture = capture.stats();
    const auto final_control = control ? control->counters() : ControlCounters{};
    log.emit(clock.now(), "shutdown",
             "state=" + std::string(name_of(engine.state())) + " " +
                 counters::logfmt_line({&engine, &mon, &final_capture, &final_control, &service,
                                        &to_backup_latency, &to_client_latency}));
    return 0;
}

}  // namespace migware
