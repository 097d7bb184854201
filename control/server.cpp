#include "control/server.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace migware {

namespace {

std::string errno_text() { return std::strerror(errno); }

// SO_PEERCRED carries only the primary group; the kernel's own check on the
// 0660 socket file honours supplementary groups, so this check must too.
bool in_group(pid_t pid, gid_t group) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Groups:", 0) != 0) continue;
        std::istringstream groups(line.substr(7));
        unsigned long g;
        while (groups >> g)
            if (g == group) return true;
        return false;
    }
    return false;
}

}  // namespace

ControlServer::ControlServer(ControlOptions options, ControlHandler& handler)
    : options_(std::move(options)), handler_(handler) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (options_.path.empty() || options_.path.size() >= sizeof addr.sun_path)
        throw std::runtime_error("control socket path '" + options_.path + "' is empty or too long");
    std::memcpy(addr.sun_path, options_.path.c_str(), options_.path.size() + 1);
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("control socket: " + errno_text());
    // A stale socket from a crashed run would make bind() fail; only a socket
    // is removed, never another kind of file.
    struct stat st{};
    if (::lstat(options_.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        // Live (another migware answers) or stale (a crashed run)?
        const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const bool live = probe >= 0 &&
                          ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        if (probe >= 0) ::close(probe);
        if (live) {
            ::close(listen_fd_);
            throw std::runtime_error("control socket " + options_.path +
                                     " is in use by a running migware (choose another --control.socket)");
        }
        ::unlink(options_.path.c_str());
    }
    // The file is created with 0660 from the start: no window where others may connect.
    const mode_t old = ::umask(0117);
    const int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0) {
        const std::string err = errno_text();
        ::close(listen_fd_);
        throw std::runtime_error("control socket " + options_.path + ": " + err);
    }
    if (options_.group && ::chown(options_.path.c_str(), static_cast<uid_t>(-1), *options_.group) != 0) {
        const std::string err = errno_text();
        ::close(listen_fd_);
        ::unlink(options_.path.c_str());
        throw std::runtime_error("control socket " + options_.path + ": cannot set group: " + err);
    }
    ::chmod(options_.path.c_str(), 0660);
    if (::listen(listen_fd_, 16) != 0) throw std::runtime_error("control socket listen: " + errno_text());
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::runtime_error("control epoll: " + errno_text());
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev);
}

ControlServer::~ControlServer() {
    for (auto& [fd, c] : clients_) ::close(fd);
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        ::unlink(options_.path.c_str());
    }
    if (epfd_ >= 0) ::close(epfd_);
}

void ControlServer::poll() {
    epoll_event events[16];
    for (int round = 0; round < 4; ++round) {
        const int n = ::epoll_wait(epfd_, events, 16, 0);
        if (n <= 0) return;
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == listen_fd_) {
                accept_all();
                continue;
            }
            auto it = clients_.find(fd);
            if (it == clients_.end()) continue;
            Client& c = *it->second;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                close_client(fd);
                continue;
            }
            if (events[i].events & EPOLLOUT) flush(c);
            if (clients_.count(fd) && (events[i].events & EPOLLIN)) on_readable(c);
        }
    }
}

void ControlServer::accept_all() {
    for (int i = 0; i < 16; ++i) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        // Defence in depth behind the 0660 file mode: root, our own uid, or
        // the control group.
        ucred cred{};
        socklen_t len = sizeof cred;
        const bool known = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
        const gid_t group = options_.group.value_or(::getegid());
        const bool allowed = known && (cred.uid == 0 || cred.uid == ::geteuid() ||
                                       cred.gid == group || in_group(cred.pid, group));
        if (!allowed || clients_.size() >= options_.max_clients) {
            ++counters_.refused_peer;
            const char* msg = allowed ? "{\"v\":1,\"ok\":false,\"error\":\"too many control clients\"}\n"
                                      : "{\"v\":1,\"ok\":false,\"error\":\"permission denied\"}\n";
            (void)!::send(fd, msg, std::strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
            ::close(fd);
            continue;
        }
        auto c = std::make_unique<Client>();
        c->fd = fd;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
        clients_.emplace(fd, std::move(c));
        ++counters_.accepted;
        counters_.active = clients_.size();
    }
}

void ControlServer::on_readable(Client& c) {
    char buf[4096];
    const int fd = c.fd;
    for (int i = 0; i < 16; ++i) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            close_client(fd);
            return;
        }
        if (n < 0) break;
        c.in.append(buf, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (;;) {
            const std::size_t nl = c.in.find('\n', start);
            if (nl == std::string::npos) break;
            std::string_view line(c.in.data() + start, nl - start);
            if (line.size() > options_.max_line) {
                reject_oversize(c);
                return;
            }
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            start = nl + 1;
            if (line.empty()) continue;
            ++counters_.requests;
            ControlReply reply = handler_.handle(line);
            if (!queue(c, reply.line)) return;  // cut off: c is gone
            if (reply.subscribe && !c.follower) {
                c.follower = true;
                ++counters_.followers;
            }
        }
        c.in.erase(0, start);
        if (c.in.size() > options_.max_line) {
            reject_oversize(c);
            return;
        }
    }
}

void ControlServer::reject_oversize(Client& c) {
    const int fd = c.fd;
    ++counters_.oversize_requests;
    if (!queue(c, "{\"v\":1,\"ok\":false,\"error\":\"request line longer than " +
                      std::to_string(options_.max_line) + " bytes\"}"))
        return;
    if (clients_.count(fd)) close_client(fd);  // queue() already tried to flush
}

bool ControlServer::queue(Client& c, std::string_view line) {
    const int fd = c.fd;  // c may be gone after flush()
    if (c.out.size() - c.out_sent + line.size() + 1 > options_.max_output) {
        ++counters_.slow_disconnects;
        close_client(fd);
        return false;
    }
    c.out.append(line);
    c.out.push_back('\n');
    flush(c);
    return clients_.count(fd) > 0;
}

void ControlServer::flush(Client& c) {
    while (c.out_sent < c.out.size()) {
        const ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            close_client(c.fd);
            return;
        }
        c.out_sent += static_cast<std::size_t>(n);
    }
    if (c.out_sent == c.out.size()) {
        c.out.clear();
        c.out_sent = 0;
    } else if (c.out_sent > (64u << 10)) {
        c.out.erase(0, c.out_sent);
        c.out_sent = 0;
    }
    update_interest(c);
}

void ControlServer::update_interest(Client& c) {
    const bool want = !c.out.empty();
    if (want == c.want_write) return;
    c.want_write = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.fd = c.fd;
    ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void ControlServer::publish(const std::string& line) {
    std::vector<int> fds;
    for (auto& [fd, c] : clients_)
        if (c->follower) fds.push_back(fd);
    for (int fd : fds) {
        auto it = clients_.find(fd);
        if (it != clients_.end()) queue(*it->second, line);
    }
}

void ControlServer::close_client(int fd) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    if (it->second->follower && counters_.followers > 0) --counters_.followers;
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    clients_.erase(it);
    counters_.active = clients_.size();
}

}  // namespace migware
