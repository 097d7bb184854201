#pragma once
// The control socket's transport (CONTROL.md): a Unix stream socket, one
// JSON request per line, replies in order, event followers. It never blocks
// the packet path: sockets are non-blocking, each client has a bounded output
// buffer, and a client that lets it fill is cut off.
//
// What a request means is the handler's business; this class only frames.
// (Namespace migware, not migware::control, until the daemon that uses it is
// restructured: issue 11 moves the files first.)

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "migware/counters.hpp"  // ControlCounters

namespace migware {

struct ControlReply {
    std::string line;       // one JSON object, without the trailing newline
    bool subscribe = false; // keep this client as an event follower
};

class ControlHandler {
public:
    virtual ~ControlHandler() = default;
    virtual ControlReply handle(std::string_view request_line) = 0;
};

struct ControlOptions {
    std::string path;
    std::optional<gid_t> group;          // owner group of the socket file; nullopt: ours
    std::size_t max_output = 1u << 20;   // per client
    std::size_t max_line = 64u << 10;    // per request
    std::size_t max_clients = 64;
};

class ControlServer {
public:
    /// Creates the socket file (replacing a stale one), mode 0660. Throws
    /// std::runtime_error with one line on failure.
    ControlServer(ControlOptions options, ControlHandler& handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    /// One fd for the daemon's epoll loop: readable when anything here needs work.
    int fd() const { return epfd_; }
    /// Accepts, reads, answers, flushes: everything ready, without blocking.
    void poll();
    /// Queues one line to every follower.
    void publish(const std::string& line);
    const ControlCounters& counters() const { return counters_; }
    const std::string& path() const { return options_.path; }

private:
    struct Client {
        int fd = -1;
        std::string in;
        std::string out;
        std::size_t out_sent = 0;
        bool follower = false;
        bool want_write = false;
    };

    void accept_all();
    void on_readable(Client& c);
    void flush(Client& c);
    void reject_oversize(Client& c);
    bool queue(Client& c, std::string_view line);
    void close_client(int fd);
    void update_interest(Client& c);

    ControlOptions options_;
    ControlHandler& handler_;
    int listen_fd_ = -1;
    int epfd_ = -1;
    std::unordered_map<int, std::unique_ptr<Client>> clients_;
    ControlCounters counters_;
};

}  // namespace migware
