#include "control/client.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace migware::control {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_name(int e) {
    switch (e) {
        case ENOENT: return "ENOENT";
        case EACCES: return "EACCES";
        case EPERM: return "EPERM";
        case ECONNREFUSED: return "ECONNREFUSED";
        case ENOTDIR: return "ENOTDIR";
        case ENOTSOCK: return "ENOTSOCK";
        case ENAMETOOLONG: return "ENAMETOOLONG";
        case EAGAIN: return "EAGAIN";
        case ETIMEDOUT: return "ETIMEDOUT";
        case ECONNRESET: return "ECONNRESET";
        case EPIPE: return "EPIPE";
        default: return "errno " + std::to_string(e);
    }
}

std::string describe_errno(int e) { return std::string(std::strerror(e)) + " (" + errno_name(e) + ")"; }

// The group that may use the socket, for the EACCES hint.
std::string control_group_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    if (const group* g = ::getgrgid(st.st_gid)) return g->gr_name;
    return "gid " + std::to_string(st.st_gid);
}

int remaining_ms(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::string default_socket_path() {
    const char* env = std::getenv(kSocketEnv);
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(kDefaultSocket);
}

Client::~Client() { close(); }

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      inbuf_(std::move(other.inbuf_)),
      next_id_(other.next_id_) {}

Client& Client::operator=(Client&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
        inbuf_ = std::move(other.inbuf_);
        next_id_ = other.next_id_;
    }
    return *this;
}

void Client::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    inbuf_.clear();
}

std::optional<std::string> Client::connect(const std::string& path) {
    close();
    path_ = path;
    const std::string what = "cannot connect to " + path + ": ";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty()) return what + "empty socket path";
    if (path.size() >= sizeof addr.sun_path)
        return what + "path longer than " + std::to_string(sizeof addr.sun_path - 1) + " bytes";
    std::memcpy(addr.sun_path, path.data(), path.size());

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return what + "socket: " + describe_errno(errno);
    // A Unix-socket connect() completes or fails at once (EAGAIN only when the
    // daemon's backlog is full), so no need for a non-blocking dance here.
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int e = errno;
        ::close(fd);
        std::string msg = what + describe_errno(e);
        switch (e) {
            case ENOENT:
                msg += "; is migware running with this --control.socket? (migctl --socket PATH or $" +
                       std::string(kSocketEnv) + " picks another)";
                break;
            case EACCES:
            case EPERM: {
                const std::string g = control_group_of(path);
                msg += g.empty() ? "; your user must be in migware's control group (--control.group)"
                                 : "; your user must be in the control group '" + g +
                                       "' (migware --control.group), or run as root";
                break;
            }
            case ECONNREFUSED: msg += "; a stale socket file, nobody is listening (is migware running?)"; break;
            case EAGAIN: msg += "; the daemon's accept queue is full, try again"; break;
            default: break;
        }
        return msg;
    }
    fd_ = fd;
    return std::nullopt;
}

CallError Client::lost(std::string message) {
    close();
    return CallError{std::move(message), true};
}

Expected<std::uint64_t, CallError> Client::send(Json request, int timeout_ms) {
    if (fd_ < 0) return CallError{"not connected", true};
    const std::uint64_t id = next_id_++;
    // "v" and "id" first, then the caller's fields, so a captured line reads naturally.
    Json msg = Json::object();
    msg["v"] = 1;
    msg["id"] = id;
    if (request.is_object())
        for (auto& [k, v] : request.items())
            if (k != "v" && k != "id") msg[k] = v;
    std::string line = dump(msg);
    line += '\n';

    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::size_t off = 0;
    while (off < line.size()) {
        const ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd_, POLLOUT, 0};
            const int r = ::poll(&p, 1, remaining_ms(deadline));
            if (r == 0) return lost("the daemon does not read its control socket (timed out sending)");
            if (r < 0 && errno != EINTR) return lost("poll: " + describe_errno(errno));
            continue;
        }
        return lost("the daemon closed the connection: " + describe_errno(errno));
    }
    return id;
}

Reply Client::read_message(int timeout_ms) {
    if (fd_ < 0) return CallError{"not connected", true};
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        const auto nl = inbuf_.find('\n');
        if (nl != std::string::npos) {
            const std::string line = inbuf_.substr(0, nl);
            inbuf_.erase(0, nl + 1);
            auto v = parse(line);
            if (!v) return lost("unreadable reply from the daemon: " + v.error().message());
            if (!v->is_object()) return lost("unreadable reply from the daemon: not a JSON object");
            return std::move(v).value();
        }
        if (inbuf_.size() > kMaxReplyLine)
            return lost("reply from the daemon longer than " + std::to_string(kMaxReplyLine) + " bytes");
        pollfd p{fd_, POLLIN, 0};
        const int r = ::poll(&p, 1, timeout_ms < 0 ? -1 : remaining_ms(deadline));
        if (r < 0) {
            if (errno == EINTR) {
                if (timeout_ms >= 0 && remaining_ms(deadline) == 0)
                    return CallError{"interrupted", false};
                continue;
            }
            return lost("poll: " + describe_errno(errno));
        }
        if (r == 0)
            return lost("no reply from the daemon within " + std::to_string(timeout_ms) + " ms");
        char buf[65536];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            inbuf_.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (n == 0)
            return lost("the daemon closed the connection (if it refused you: your user must be in "
                        "the control group)");
        return lost("the daemon closed the connection: " + describe_errno(errno));
    }
}

Reply Client::read_reply(std::uint64_t id, int timeout_ms) {
    auto msg = read_message(timeout_ms);
    if (!msg) return msg;
    const Json& m = *msg;
    if (as_u64(member(m, "id")) != id) {
        // Replies come in order (CONTROL.md), so a mismatch means we lost track.
        return lost("reply out of order from the daemon (expected id " + std::to_string(id) +
                    ", got " + dump(member(m, "id")) + ")");
    }
    if (as_bool(member(m, "ok")) == true) {
        if (!member(m, "result").is_object()) return CallError{"daemon reply without a result object", false};
        return member(m, "result");
    }
    if (const auto* e = as_string(member(m, "error"))) return CallError{"daemon: " + *e, false};
    return CallError{"daemon: request failed (no error text)", false};
}

Reply Client::call(Json request, int timeout_ms) {
    auto id = send(std::move(request), timeout_ms);
    if (!id) return id.error();
    return read_reply(*id, timeout_ms);
}

std::vector<Reply> Client::call_many(std::vector<Json> requests, int timeout_ms) {
    std::vector<Reply> out;
    out.reserve(requests.size());
    std::vector<std::uint64_t> ids;
    for (auto& r : requests) {
        auto id = send(std::move(r), timeout_ms);
        if (!id) {
            while (out.size() < requests.size()) out.emplace_back(id.error());
            return out;
        }
        ids.push_back(*id);
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto r = read_reply(ids[i], timeout_ms);
        if (!r && r.error().connection_lost) {
            const CallError e = r.error();
            while (out.size() < requests.size()) out.emplace_back(e);
            return out;
        }
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace migware::control
