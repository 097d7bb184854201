#pragma once
// The client side of the control protocol (CONTROL.md): one Unix stream
// connection, requests as JSON lines, replies read in order, follow mode.
// Every wait has a deadline, so a wedged daemon cannot hang migctl, and
// every failure is one line that says what to do about it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/protocol.hpp"

namespace migware::control {

inline constexpr const char* kDefaultSocket = "/run/migware/control.sock";
inline constexpr const char* kSocketEnv = "MIGWARE_CONTROL_SOCKET";
inline constexpr std::size_t kMaxReplyLine = 64u << 20;  // a 1000-item page is well under 1 MiB

/// $MIGWARE_CONTROL_SOCKET when set and non-empty, else kDefaultSocket.
std::string default_socket_path();

struct CallError {
    std::string message;          // one line
    bool connection_lost = false;  // the connection is unusable (closed, timed out, garbage)
};

using Reply = Expected<Json, CallError>;

class Client {
public:
    Client() = default;
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    Client(Client&& other) noexcept;
    Client& operator=(Client&& other) noexcept;

    /// Connects to `path`. On failure returns one line naming the path and the
    /// errno, with a hint (for EACCES: the control group).
    std::optional<std::string> connect(const std::string& path);
    bool connected() const { return fd_ >= 0; }
    void close();
    const std::string& path() const { return path_; }

    /// Sends one request; "v":1 and a fresh "id" are added. Returns that id.
    Expected<std::uint64_t, CallError> send(Json request, int timeout_ms);

    /// Reads the next line as JSON. timeout_ms < 0 waits forever.
    Reply read_message(int timeout_ms);

    /// Reads the reply to `id` and unwraps it: its "result" on "ok":true, the
    /// daemon's "error" line otherwise (the connection stays usable then).
    Reply read_reply(std::uint64_t id, int timeout_ms);

    /// One request, one reply.
    Reply call(Json request, int timeout_ms = 5000);

    /// Several requests pipelined on the connection; replies in the same order.
    /// After a lost connection the remaining entries carry the same error.
    std::vector<Reply> call_many(std::vector<Json> requests, int timeout_ms = 5000);

private:
    CallError lost(std::string message);

    int fd_ = -1;
    std::string path_;
    std::string inbuf_;
    std::uint64_t next_id_ = 1;
};

}  // namespace migware::control
