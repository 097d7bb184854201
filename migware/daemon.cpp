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
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "control/handler.hpp"
#include "control/server.hpp"
#include "membership/corosync.hpp"
#include "membership/member.hpp"
#include "migware/counters.hpp"
#include "migware/host_sockets.hpp"
#include "migware/io.hpp"
#include "migware/latency.hpp"
#include "migware/snapshot.hpp"
#include "sniffer/live_capture.hpp"

namespace migware {

namespace {

constexpr int kTunBatch = 256;
constexpr MonoNs kStatsEvery = 1'000 * monitor::kMillisecond;
// How often the capture's drop counters are read: the engine must know soon
// which connections may have lost frames (one getsockopt each time).
constexpr MonoNs kLossCheckEvery = 10 * monitor::kMillisecond;
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
        log.emit(now, "snapshot", Fields{{"file", cfg.state_file}, {"result", "none"}});
        return;
    }
    auto parsed = error.empty() ? parse_snapshot(text) : SnapshotParse{{}, error};
    if (!parsed.error.empty()) {
        log.emit(now, "snapshot_refused",
                 Fields{{"file", cfg.state_file},
                        {"reason", parsed.error},
                        {"action", "ignored; connections are picked up mid-stream"}});
        return;
    }
    const std::size_t n = engine.restore(parsed.facts, now);
    log.emit(now, "snapshot", Fields{{"file", cfg.state_file}, {"result", "loaded"}, {"connections", n}});
}

struct CaptureCtx {
    FailoverEngine* engine;
    sniffer::LinkType link;
    const monitor::Clock* clock;
    LatencyRecorder* latency;
    // Membership: this member holds a takeover it may not act on (lease out,
    // quorum lost). What the wire shows then is another member's business:
    // frames from the primary's IP may be a successor's, and must not read as
    // the primary's proof of life. Counted and tracked (the table must stay
    // current for a later takeover), not judged.
    const bool* held;
    std::uint64_t* ignored;
};

void on_frame(void* ctx, const sniffer::RawFrame& frame) {
    auto* c = static_cast<CaptureCtx*>(ctx);
    if (*c->held) {
        ++*c->ignored;
        c->engine->track_only(frame, c->link, c->clock->now());
        return;
    }
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

/// Every frame the engine sends on the wire passes here. Membership closes
/// it while this member may not act for the primary's IP (its lease ran out,
/// it lost quorum): frames are withheld, not queued, and reported as not
/// sent (the engine counts them in frames_withheld, and a fence RST held back
/// is probed again, not taken as done); TCP's retransmissions heal whatever a
/// short suspension held back.
class GatedLink final : public ClientLink {
public:
    explicit GatedLink(ClientLink& inner) : inner_(inner) {}
    void set_open(bool open) { open_ = open; }
    bool is_open() const { return open_; }
    bool send_to_client(std::span<const std::byte> frame) override {
        if (!open_) {
            ++withheld_;
            return false;
        }
        return inner_.send_to_client(frame);
    }
    bool withholding() const override { return !open_; }
    std::uint64_t withheld() const { return withheld_; }

private:
    ClientLink& inner_;
    bool open_ = true;
    std::uint64_t withheld_ = 0;
};

/// A provider's event as typed fields: numbers as numbers (CONTROL.md: a
/// string never holds an integer's text).
Fields provider_fields(const membership::ProviderEvent& e) {
    Fields f;
    for (const auto& [k, v] : e.fields) {
        const bool digits = !v.empty() && v.size() < 20 &&
                            std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) f.push_back(Field{k, std::uint64_t{std::stoull(v)}});
        else f.push_back(Field{k, v});
    }
    return f;
}

std::string node_list(const std::vector<membership::NodeId>& nodes) {
    std::string out = "[";
    for (auto n : nodes) out += (out.size() > 1 ? "," : "") + std::to_string(n);
    return out + "]";
}

std::unique_ptr<membership::Member> make_member(const DaemonConfig& cfg, MonoNs now) {
    membership::Config mc{.priority = cfg.membership_priority};
    std::unique_ptr<membership::Provider> provider;
    if (cfg.membership == DaemonConfig::Membership::Corosync) {
        mc.lease = cfg.membership_lease_ms * monitor::kMillisecond;
        try {
            provider = std::make_unique<membership::CorosyncProvider>(
                membership::CorosyncOptions{.group = cfg.membership_group}, now);
        } catch (const membership::CorosyncError& e) {
            throw IoError(e.what());
        }
    } else {
        mc.lease = 0;  // a group of one: its stream is itself
        provider = std::make_unique<membership::StandaloneProvider>();
    }
    return std::make_unique<membership::Member>(mc, std::move(provider));
}

/// The live daemon: owns every fd and the loop, and hands packets and
/// verdicts to the engine and the monitor, which own the logic.
class Daemon {
public:
    explicit Daemon(const DaemonConfig& cfg);
    /// Runs until SIGINT/SIGTERM; returns the exit code.
    int run();

private:
    MonoNs next_deadline() const;
    void read_echo_replies();
    void on_ready(int fd);
    void on_capture_ready();
    void on_tun_ready();
    void on_link_event();
    void on_signal();
    /// Everything after a turn's reads: probes, verdicts, timers, snapshot, stats.
    void after_reads(State state_before);
    void probe(MonoNs now);
    void service_probe(MonoNs now);
    void judge(MonoNs now);
    void take_over(MonoNs now, const std::string& reason);
    /// Tells the engine when the capture's drop counters rose.
    void check_capture_loss(MonoNs now);
    /// The group's word: act, stand down, or hold every frame.
    void membership(MonoNs now);
    void log_membership(MonoNs now);
    void share_facts(MonoNs now);
    void apply_facts(MonoNs now);
    void watch_member_fds();
    void update_gate(MonoNs now) {
        held_ = engine_.state() != State::Normal && !member_->may_act(now);
        gate_.set_open(!held_);
    }
    void write_snapshot(MonoNs now);
    void report_stats(MonoNs now);
    void drain_arp();

    const DaemonConfig& cfg_;
    EventRing log_;
    monitor::SystemClock clock_;
    std::optional<gid_t> control_gid_;
    sniffer::LiveCapture capture_;
    sniffer::LiveCapture arp_capture_;
    TunDevice tun_;
    LinkInjector injector_;
    GatedLink gate_;
    IcmpSocket icmp_;
    LinkWatch link_watch_;
    FailoverEngine engine_;
    std::unique_ptr<membership::Member> member_;
    std::uint16_t echo_id_;
    monitor::IcmpMonitor mon_;
    // The reference host's echo replies are segment evidence, nothing more:
    // its own health is never judged, so only due() and on_reply() are used.
    std::optional<monitor::IcmpMonitor> ref_mon_;
    std::uint64_t reference_replies_ = 0;
    bool carrier_;
    UniqueFd sigfd_;
    UniqueFd timer_;
    UniqueFd ep_;
    LatencyRecorder to_backup_latency_, to_client_latency_;
    std::unique_ptr<ControlServer> control_;
    DaemonControl control_handler_;
    bool held_ = false;                 // see CaptureCtx::held
    std::uint64_t held_frames_ignored_ = 0;
    CaptureCtx ctx_;
    CaptureCtx arp_ctx_;
    std::vector<std::byte> buf_ = std::vector<std::byte>(65536);
    monitor::ServiceProbe service_;
    std::unique_ptr<ServiceConnect> tcp_probe_;
    bool tcp_probe_ready_ = false;
    std::uint64_t snapshot_generation_ = 0;
    MonoNs next_snapshot_ = 0;
    std::vector<int> member_fds_;
    std::uint64_t acted_epoch_ = 0;            // the epoch this member last took over in
    std::string down_reason_;                  // the monitor's (or service probe's) latest "down"
    bool service_down_ = false;
    std::uint64_t rollbacks_seen_ = 0;
    membership::Role last_role_ = membership::Role::Observer;
    std::uint64_t last_epoch_logged_ = 0;
    bool last_quorate_ = false;
    std::size_t last_members_ = 0;
    std::optional<membership::NodeId> last_active_;
    bool suspended_logged_ = false;
    std::set<tracker::FourTuple> facts_sent_;
    std::uint64_t facts_generation_ = 0;
    MonoNs next_facts_ = 0;
    std::uint64_t facts_applied_ = 0;
    bool snapshot_error_logged_ = false;
    std::uint64_t last_drops_ = 0;
    std::uint64_t loss_seen_ = 0;  // kernel + interface drops the engine was told of
    MonoNs next_loss_check_ = 0;
    std::uint64_t last_errors_[3] = {0, 0, 0};
    MonoNs next_capture_error_log_ = 0;
    MonoNs next_stats_ = 0;
    bool running_ = true;
};

FailoverConfig live_engine_config(const DaemonConfig& cfg) {
    FailoverConfig c = cfg.failover;
    c.backup_mac = interface_mac(cfg.interface);
    c.verify_tcp_checksums = true;  // received frames: complete checksums
    return c;
}

std::uint64_t random64(std::random_device& rd) { return (std::uint64_t{rd()} << 32) | rd(); }

UniqueFd make_fd(int fd, const char* what) {
    if (fd < 0) throw IoError(std::string("event loop set-up: ") + what + ": " + std::strerror(errno));
    return UniqueFd(fd);
}

sigset_t blocked_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) throw IoError("sigprocmask failed");
    return mask;
}

Daemon::Daemon(const DaemonConfig& cfg)
    : cfg_(cfg),
      control_gid_(lookup_group(cfg.control_group)),
      capture_({cfg.interface, sniffer::capture_filter(cfg.primary.to_string(), cfg.ports),
                cfg.capture_buffer_mb << 20, 65535}),
      arp_capture_({cfg.interface, sniffer::arp_capture_filter(), 1 << 20, 128}),
      tun_(cfg.tun_name),
      injector_(cfg.interface),
      gate_(injector_),
      icmp_(cfg.interface),
      link_watch_(cfg.interface),
      engine_(live_engine_config(cfg), tun_, gate_, log_),
      member_(make_member(cfg, clock_.now())),
      echo_id_([] {
          std::random_device rd;
          return static_cast<std::uint16_t>(::getpid() ^ rd());
      }()),
      mon_(cfg.monitor, echo_id_, [] {
          std::random_device rd;
          return random64(rd);
      }()),
      carrier_(link_watch_.carrier_up()),
      sigfd_([] {
          const sigset_t mask = blocked_signals();
          return make_fd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC), "signalfd");
      }()),
      timer_(make_fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), "timerfd")),
      ep_(make_fd(::epoll_create1(EPOLL_CLOEXEC), "epoll")),
      control_handler_({cfg, engine_, mon_, log_, to_backup_latency_, to_client_latency_,
                        [this] { return capture_.stats(); },
                        [this] { return control_ ? control_->counters() : ControlCounters{}; },
                        [this] { return clock_.now(); }, &service_, member_.get()}),
      ctx_{&engine_, capture_.link(), &clock_, &to_backup_latency_, &held_, &held_frames_ignored_},
      arp_ctx_{&engine_, arp_capture_.link(), &clock_, &to_backup_latency_, &held_, &held_frames_ignored_},
      service_(cfg.probe) {
    if (cfg.reference) {
        std::random_device rd;
        ref_mon_.emplace(monitor::MonitorConfig{25 * monitor::kMillisecond, 1000 * monitor::kMillisecond,
                                                1 << 20, false},
                         static_cast<std::uint16_t>(echo_id_ ^ 0x5a5a), random64(rd));
    }
    mon_.on_carrier(carrier_, clock_.now());
    for (int fd : {capture_.fd(), arp_capture_.fd(), tun_.fd(), icmp_.fd(), link_watch_.fd(),
                   sigfd_.get(), timer_.get()})
        add_fd(ep_.get(), fd);
    if (!cfg.control_socket.empty()) {
        const auto slash = cfg.control_socket.rfind('/');
        if (slash != std::string::npos && slash > 0)
            ::mkdir(cfg.control_socket.substr(0, slash).c_str(), 0755);  // e.g. /run/migware
        control_ = std::make_unique<ControlServer>(ControlOptions{cfg.control_socket, control_gid_},
                                                   control_handler_);
        add_fd(ep_.get(), control_->fd());
        log_.set_listener(on_event, control_.get());
    }
    if (!cfg.state_file.empty()) {
        const auto slash = cfg.state_file.rfind('/');
        if (slash != std::string::npos && slash > 0)
            ::mkdir(cfg.state_file.substr(0, slash).c_str(), 0750);  // e.g. /var/lib/migware
    }
    log_membership(clock_.now());  // the provider's connect event
    watch_member_fds();
    load_snapshot(cfg, engine_, log_, clock_.now());
    snapshot_generation_ = engine_.pipeline().table().generation();
    next_snapshot_ = clock_.now() + kSnapshotEvery;
    next_stats_ = clock_.now() + kStatsEvery;
    engine_.started(clock_.now());
    Fields start{{"state", "normal"}};
    start.insert(start.end(), cfg.summary.begin(), cfg.summary.end());
    start.push_back({"control", control_ ? cfg.control_socket : std::string("off")});
    log_.emit(clock_.now(), "start", std::move(start));
    for (const auto& w : cfg.warnings) log_.emit(clock_.now(), "config_warning", Fields{{"warning", w}});
}

int Daemon::run() {
    while (running_) {
        const State state_before = engine_.state();
        itimerspec its{};
        const MonoNs at = std::max(next_deadline(), clock_.now() + 1);
        its.it_value.tv_sec = at / 1'000'000'000;
        its.it_value.tv_nsec = at % 1'000'000'000;
        ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &its, nullptr);

        epoll_event events[8];
        const int n = ::epoll_wait(ep_.get(), events, 8, -1);
        if (n < 0 && errno != EINTR) throw IoError(std::string("epoll_wait: ") + std::strerror(errno));
        // Before any frame can leave: a member whose lease ran out while
        // this process was not running (paused, starved) holds them all.
        update_gate(clock_.now());
        // Echo replies first: a loaded loop must not mistake its own delay
        // for a dead primary.
        read_echo_replies();
        for (int i = 0; i < n; ++i) on_ready(events[i].data.fd);
        after_reads(state_before);
    }
    log_.set_listener(nullptr, nullptr);
    const auto final_capture = capture_.stats();
    const auto final_control = control_ ? control_->counters() : ControlCounters{};
    Fields shutdown{{"state", std::string(name_of(engine_.state()))}};
    counters::for_each_json({&engine_, &mon_, &final_capture, &final_control, &service_,
                             &to_backup_latency_, &to_client_latency_},
                            [&](std::string key, std::uint64_t v) { shutdown.push_back({std::move(key), v}); });
    log_.emit(clock_.now(), "shutdown", std::move(shutdown));
    return 0;
}

MonoNs Daemon::next_deadline() const {
    return std::min({mon_.next_deadline(), engine_.next_deadline(), next_stats_, member_->next_deadline(),
                     cfg_.state_file.empty() ? next_stats_ : next_snapshot_,
                     cfg_.service_probe ? service_.next_deadline() : next_stats_});
}

void Daemon::read_echo_replies() {
    for (std::size_t r = 0; r < 64; ++r) {
        const std::size_t len = icmp_.read(buf_);
        if (len == 0) break;
        sniffer::Packet p;
        if (sniffer::parse(std::span(buf_.data(), len), static_cast<std::uint32_t>(len),
                           sniffer::LinkType::RawIp, p) ||
            p.kind != sniffer::PacketKind::IcmpEcho || p.icmp.type != 0)
            continue;
        const auto payload = std::span(buf_.data() + p.layout.payload, p.payload_captured);
        if (p.ip.src == cfg_.primary) {
            mon_.on_reply(p.icmp.id, p.icmp.sequence, payload, clock_.now());
            // The first echo reply after the takeover, not the monitor's
            // verdict a few probes later: fencing must beat the primary's
            // stale sockets to the clients.
            if (engine_.state() != State::Normal && !held_) engine_.primary_heard(clock_.now(), "echo reply");
        } else if (ref_mon_ && p.ip.src == *cfg_.reference &&
                   ref_mon_->on_reply(p.icmp.id, p.icmp.sequence, payload, clock_.now())) {
            ++reference_replies_;
        }
    }
}

void Daemon::on_ready(int fd) {
    if (fd == arp_capture_.fd()) {
        drain_arp();
    } else if (fd == capture_.fd()) {
        on_capture_ready();
    } else if (fd == tun_.fd()) {
        on_tun_ready();
    } else if (fd == link_watch_.fd()) {
        on_link_event();
    } else if (std::find(member_fds_.begin(), member_fds_.end(), fd) != member_fds_.end()) {
        member_->on_ready(clock_.now());
    } else if (control_ && fd == control_->fd()) {
        control_->poll();
    } else if (fd == sigfd_.get()) {
        on_signal();
    } else if (tcp_probe_ && fd == tcp_probe_->fd()) {
        tcp_probe_ready_ = true;
    } else if (fd == timer_.get()) {
        std::uint64_t expirations;
        (void)!::read(timer_.get(), &expirations, sizeof expirations);
    }
}

void Daemon::drain_arp() {
    // ARP first, and again between TCP batches (see arp_capture_filter).
    for (int b = 0; b < 4 && arp_capture_.dispatch(64, on_frame, &arp_ctx_) == 64; ++b) {
    }
}

void Daemon::on_capture_ready() {
    for (int b = 0; b < 8; ++b) {
        drain_arp();
        const int got = capture_.dispatch(cfg_.capture_batch, on_frame, &ctx_);
        if (got < 0) {
            if (clock_.now() >= next_capture_error_log_) {  // at most once a second
                next_capture_error_log_ = clock_.now() + kStatsEvery;
                log_.emit(clock_.now(), "capture_error", Fields{{"reason", capture_.error()}});
            }
            break;
        }
        if (got < cfg_.capture_batch) break;
    }
}

void Daemon::on_tun_ready() {
    for (int b = 0; b < kTunBatch; ++b) {
        const std::size_t len = tun_.read(buf_);
        if (len == 0) break;
        const MonoNs t0 = clock_.now();
        const auto before = engine_.counters().to_client;
        engine_.on_backup_packet(std::span(buf_.data(), len), t0);
        if (engine_.counters().to_client != before) to_client_latency_.record(clock_.now() - t0);
    }
}

void Daemon::on_link_event() {
    if (!link_watch_.drain()) return;
    const bool up = link_watch_.carrier_up();
    if (up != carrier_) {
        carrier_ = up;
        log_.emit(clock_.now(), "carrier",
                  Fields{{"interface", cfg_.interface},
                         {"state", up ? "up" : "down"},
                         {"state_now", std::string(name_of(engine_.state()))}});
    }
    mon_.on_carrier(up, clock_.now());
}

void Daemon::on_signal() {
    signalfd_siginfo si{};
    if (::read(sigfd_.get(), &si, sizeof si) != sizeof si) return;
    log_.emit(clock_.now(), "signal", Fields{{"signal", std::string(strsignal(static_cast<int>(si.ssi_signo)))}});
    running_ = false;
}

void Daemon::after_reads(State state_before) {
    const MonoNs now = clock_.now();
    if (state_before != State::Normal && engine_.state() == State::Normal) {
        // A rolled-back takeover (the primary never died): the backup's
        // packets for the primary's IP go to the wire again, and a later
        // real failure must be declared afresh.
        tun_.unroute_host(cfg_.primary);
        mon_.rearm();
    }
    if (engine_.counters().rollbacks != rollbacks_seen_) {
        // The primary never died: this member's epoch goes back to the group.
        rollbacks_seen_ = engine_.counters().rollbacks;
        member_->release(now);
    }
    probe(now);
    if (cfg_.service_probe) service_probe(now);
    judge(now);
    membership(now);
    engine_.on_timer(now);
    update_gate(now);
    if (!cfg_.state_file.empty() && engine_.state() == State::Normal && now >= next_snapshot_)
        write_snapshot(now);
    if (now >= next_loss_check_) check_capture_loss(now);
    if (now >= next_stats_) report_stats(now);
}

void Daemon::check_capture_loss(MonoNs now) {
    next_loss_check_ = now + kLossCheckEvery;
    const auto cs = capture_.stats();
    const std::uint64_t lost = cs.dropped_kernel + cs.dropped_interface;
    if (lost <= loss_seen_) return;
    // The frames' time stamps are the capture's (CLOCK_REALTIME, libpcap's
    // host stamps): the engine compares them with this moment.
    timespec wall{};
    ::clock_gettime(CLOCK_REALTIME, &wall);
    engine_.capture_lost(lost - loss_seen_, std::int64_t{wall.tv_sec} * 1'000'000'000 + wall.tv_nsec, now);
    loss_seen_ = lost;
}

void Daemon::probe(MonoNs now) {
    // Everything captured so far is in; probes sent from here on are
    // judged against it.
    mon_.on_segment_frames(engine_.counters().segment_frames + reference_replies_);
    mon_.on_primary_arp(engine_.counters().primary_arp_frames, now);
    while (auto p = mon_.due(now)) icmp_.send_probe(cfg_.primary, *p);
    if (engine_.state() == State::Normal && mon_.arp_probe_due(now)) {
        engine_.probe_primary_arp();
        mon_.arp_probe_sent(now);
    }
    if (engine_.state() == State::Normal && mon_.segment_probe_due(now)) {
        if (cfg_.neighbour_probe) engine_.probe_segment(now);
        if (ref_mon_)
            if (auto rp = ref_mon_->due(now)) icmp_.send_probe(*cfg_.reference, *rp);
        mon_.segment_probe_sent(now);
    }
}

void Daemon::service_probe(MonoNs now) {
    std::optional<monitor::ServiceVerdict> sv;
    if (tcp_probe_) {
        const bool done = tcp_probe_ready_;
        if (done || now >= service_.timeout_at().value_or(now)) {
            const auto result = done ? tcp_probe_->result() : monitor::ProbeResult::TimedOut;
            ::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, tcp_probe_->fd(), nullptr);
            tcp_probe_.reset();
            tcp_probe_ready_ = false;
            sv = service_.finished(result, now);
        }
    }
    if (!tcp_probe_ && service_.due(now)) {
        try {
            tcp_probe_ = std::make_unique<ServiceConnect>(cfg_.interface, cfg_.primary, cfg_.ports.front());
            epoll_event pev{};
            pev.events = EPOLLOUT;
            pev.data.fd = tcp_probe_->fd();
            ::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, tcp_probe_->fd(), &pev);
            service_.started(now);
        } catch (const IoError&) {
            service_.started(now);
            sv = service_.finished(monitor::ProbeResult::Error, now);
        }
    }
    if (!sv) return;
    const bool host_up = mon_.health() == monitor::Health::Up;
    log_.emit(now, sv->health == monitor::ServiceHealth::Down ? "service_down" : "service_up",
              Fields{{"port", std::uint64_t{cfg_.ports.front()}},
                     {"host", std::string(monitor::name_of(mon_.health()))},
                     {"reason", sv->reason}});
    service_down_ = sv->health == monitor::ServiceHealth::Down && host_up;
    if (service_down_) {
        // The primary's own kernel has already closed the service's
        // connections (FIN/RST to the clients); nothing here can mask that.
        // Take over the service for new connections (when the group agrees).
        down_reason_ = "service down while the host answers: " + sv->reason;
    }
}

void Daemon::judge(MonoNs now) {
    auto verdict = mon_.tick(now, engine_.passive_signal());
    if (auto veto = mon_.take_veto_notice()) {
        log_.emit(now, "monitor_veto",
                  Fields{{"reason", std::string(monitor::name_of(veto->reason))},
                         {"detail", veto->detail},
                         {"state", std::string(name_of(engine_.state()))}});
    }
    if (mon_.take_never_answered_notice()) {
        log_.emit(now, "primary_never_answered",
                  Fields{{"probes_sent", mon_.sent()},
                         {"arp_probes", mon_.arp_probes()},
                         {"state", std::string(name_of(engine_.state()))},
                         {"note", "the primary has answered neither echo nor ARP since the start: it is never "
                                  "judged down (it may filter both); no takeover until it has been seen alive"}});
    }
    if (!verdict) return;
    log_.emit(now, "monitor",
              Fields{{"health", std::string(monitor::name_of(verdict->health))}, {"reason", verdict->reason}});
    if (verdict->health == monitor::Health::Down) {
        down_reason_ = verdict->reason;  // the group decides (membership())
    } else if (verdict->health == monitor::Health::Up) {
        engine_.primary_up(now, verdict->reason);
    }
}

void Daemon::watch_member_fds() {
    const std::vector<int> now_fds = member_->fds();
    if (now_fds == member_fds_) return;
    for (int fd : member_fds_) ::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);  // may be closed already
    member_fds_ = now_fds;
    for (int fd : member_fds_) add_fd(ep_.get(), fd);
}

void Daemon::membership(MonoNs now) {
    const bool own_down = mon_.health() == monitor::Health::Down || service_down_;
    member_->on_local_verdict(own_down, now);
    member_->tick(now);
    watch_member_fds();
    log_membership(now);
    apply_facts(now);
    share_facts(now);
    const auto& core = member_->core();
    if (member_->may_act(now) && engine_.state() == State::Normal && acted_epoch_ != core.epoch()) {
        acted_epoch_ = core.epoch();
        std::string reason = core.by_succession() || down_reason_.empty()
                                 ? "succession: the active member left the group (epoch " +
                                       std::to_string(core.epoch()) + ")"
                                 : down_reason_;
        take_over(now, reason);
    } else if (engine_.state() != State::Normal && core.role() != membership::Role::Active && core.active() &&
               *core.active() != member_->self()) {
        engine_.stand_down(now, "member " + std::to_string(*core.active()) + " is active at epoch " +
                                    std::to_string(core.epoch()));
        tun_.unroute_host(cfg_.primary);
        mon_.rearm();
    }
    const bool suspended = engine_.state() != State::Normal && !member_->may_act(now);
    if (suspended != suspended_logged_) {
        suspended_logged_ = suspended;
        log_.emit(now, suspended ? "membership_suspended" : "membership_resumed",
                  Fields{{"node", std::uint64_t{member_->self()}},
                         {"role", std::string(membership::name_of(core.role()))},
                         {"epoch", core.epoch()},
                         {"quorate", core.quorate() ? "yes" : "no"},
                         {"state", std::string(name_of(engine_.state()))},
                         {"frames_withheld", gate_.withheld()},
                         {"captured_frames_tracked_only", held_frames_ignored_},
                         {"action", suspended ? "every frame for the primary's IP withheld, captured frames "
                                                "only tracked (they may be a successor's); twins kept"
                                              : "frames flow again"}});
    }
}

void Daemon::log_membership(MonoNs now) {
    for (const auto& e : member_->take_events()) {
        log_.emit(now, e.name, provider_fields(e));
    }
    for (const membership::View& v : member_->take_views())
        log_.emit(now, "membership_view",
                  Fields{{"ring", v.ring_id}, {"members", std::uint64_t{v.members.size()}},
                         {"nodes", node_list(v.members)}, {"quorate", v.quorate ? "yes" : "no"}});
    for (const membership::Notice& n : member_->take_notices())
        log_.emit(now, "membership_" + std::string(membership::name_of(n.kind)),
                  Fields{{"node", std::uint64_t{n.node}}, {"epoch", n.epoch}});
    const auto& core = member_->core();
    if (core.role() != last_role_ || core.epoch() != last_epoch_logged_ || core.quorate() != last_quorate_ ||
        core.view().members.size() != last_members_ || core.active() != last_active_) {
        last_role_ = core.role();
        last_members_ = core.view().members.size();
        last_active_ = core.active();
        last_epoch_logged_ = core.epoch();
        last_quorate_ = core.quorate();
        log_.emit(now, "membership_role",
                  Fields{{"node", std::uint64_t{member_->self()}},
                         {"role", std::string(membership::name_of(core.role()))},
                         {"epoch", core.epoch()},
                         {"active", core.active() ? FieldValue{std::uint64_t{*core.active()}} : FieldValue{std::string("none")}},
                         {"quorate", core.quorate() ? "yes" : "no"},
                         {"members", std::uint64_t{core.view().members.size()}}});
    }
}

void Daemon::share_facts(MonoNs now) {
    if (member_->alone_by_design() || now < next_facts_) return;
    next_facts_ = now + kSnapshotEvery;
    const bool everything = member_->take_table_wanted();
    const std::uint64_t gen = engine_.pipeline().table().generation();
    if (!everything && gen == facts_generation_) return;
    facts_generation_ = gen;
    // Handshake facts of open connections, in chunks; everything for a
    // joiner, else only what the group has not heard from us.
    constexpr std::size_t kChunk = 256;
    std::vector<tracker::HandshakeFacts> chunk;
    std::set<tracker::FourTuple> open;
    for (const tracker::HandshakeFacts& f : engine_.handshake_facts()) {
        open.insert(f.key);
        if (!everything && facts_sent_.count(f.key)) continue;
        facts_sent_.insert(f.key);
        chunk.push_back(f);
        if (chunk.size() == kChunk) {
            member_->send_facts(serialize_snapshot(chunk), now);
            chunk.clear();
        }
    }
    if (!chunk.empty()) member_->send_facts(serialize_snapshot(chunk), now);
    std::erase_if(facts_sent_, [&](const tracker::FourTuple& k) { return !open.count(k); });
}

void Daemon::apply_facts(MonoNs now) {
    for (const std::string& blob : member_->take_facts()) {
        if (engine_.state() != State::Normal) continue;  // a takeover works from what it has
        const SnapshotParse parsed = parse_snapshot(blob);
        if (!parsed.error.empty()) {
            log_.emit(now, "membership_facts_refused", Fields{{"reason", parsed.error}});
            continue;
        }
        const std::size_t added = engine_.restore(parsed.facts, now);
        if (added > 0) {
            facts_applied_ += added;
            log_.emit(now, "membership_facts", Fields{{"connections_learnt", added}, {"total", facts_applied_}});
        }
    }
}

void Daemon::take_over(MonoNs now, const std::string& reason) {
    if (engine_.state() != State::Normal) return;
    check_capture_loss(now);  // the plan for each connection needs the latest
    // Sockets a previous migware's twins left in this host's replica (it was
    // killed while active): their ports stay out of the new twins' way.
    std::vector<std::uint16_t> busy;
    if (std::ifstream in("/proc/net/tcp"); in) {
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        busy = twin_ports_in_use(text, cfg_.primary, cfg_.backup, cfg_.ports);
    }
    tun_.route_host(cfg_.primary);
    engine_.primary_down(now, reason, busy);
}

void Daemon::write_snapshot(MonoNs now) {
    next_snapshot_ = now + kSnapshotEvery;
    const std::uint64_t gen = engine_.pipeline().table().generation();
    if (gen == snapshot_generation_) return;
    const std::string err = write_snapshot_file(cfg_.state_file, serialize_snapshot(engine_.handshake_facts()));
    if (err.empty()) {
        snapshot_generation_ = gen;
        snapshot_error_logged_ = false;
    } else if (!snapshot_error_logged_) {
        snapshot_error_logged_ = true;  // once per failure streak, not every 250 ms
        log_.emit(now, "snapshot_error", Fields{{"reason", err}});
    }
}

void Daemon::report_stats(MonoNs now) {
    next_stats_ = now + kStatsEvery;
    // Errors are counted on the packet path and reported here, once a
    // second at most: an event per failed packet would bury the log.
    const auto& fc = engine_.counters();
    const std::uint64_t errors[] = {fc.send_errors, fc.rewrite_errors,
                                    engine_.pipeline().parse_counters().malformed()};
    if (errors[0] > last_errors_[0] || errors[1] > last_errors_[1] || errors[2] > last_errors_[2]) {
        log_.emit(now, "errors",
                  Fields{{"send_errors", errors[0] - last_errors_[0]},
                         {"rewrite_errors", errors[1] - last_errors_[1]},
                         {"malformed", errors[2] - last_errors_[2]},
                         {"window", "1s"}});
        std::copy(std::begin(errors), std::end(errors), last_errors_);
    }
    const auto cs = capture_.stats();
    if (cs.dropped_kernel > last_drops_) {
        log_.emit(now, "capture_drops",
                  Fields{{"kernel_drops", cs.dropped_kernel}, {"new", cs.dropped_kernel - last_drops_}});
        last_drops_ = cs.dropped_kernel;
    }
}

}  // namespace

int run_daemon(const DaemonConfig& cfg) {
    if (::if_nametoindex(cfg.interface.c_str()) == 0)
        throw IoError("unknown interface '" + cfg.interface + "'");
    require_capabilities();
    Daemon daemon(cfg);
    return daemon.run();
}

}  // namespace migware
