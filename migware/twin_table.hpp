#pragma once
// The twins and their two indexes: by the client's 4-tuple (client frames)
// and by the twin's port q on the primary's IP (the backup's packets, which
// are addressed to IPp:q). Slots of closed connections opened after the
// failover are reused; closed twins linger for close_linger so that the
// last ACKs still pass, then their mapping goes.

#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "migware/twin.hpp"

namespace migware {

class TwinTable {
public:
    TwinTable() : by_port_(65536, -1) {}

    std::size_t size() const { return twins_.size(); }
    bool empty() const { return twins_.empty(); }
    Twin& operator[](std::size_t i) { return twins_[i]; }
    const Twin& operator[](std::size_t i) const { return twins_[i]; }
    auto begin() { return twins_.begin(); }
    auto end() { return twins_.end(); }
    auto begin() const { return twins_.begin(); }
    auto end() const { return twins_.end(); }
    std::uint32_t index_of(const Twin& t) const { return static_cast<std::uint32_t>(&t - twins_.data()); }

    /// The twin mapped to a client's connection, or nullptr.
    Twin* find(const tracker::FourTuple& key);
    const Twin* find(const tracker::FourTuple& key) const;
    /// The twin whose port on the primary's IP is q, or nullptr.
    Twin* by_port(std::uint16_t q);

    /// DESIGN.md §3: q = the client's port, unless another twin already has
    /// (IPp, q) (two clients on different hosts may share a port number).
    /// 0 when every port is taken.
    std::uint16_t free_port(std::uint16_t wanted) const;

    struct Added {
        std::uint32_t index;
        bool appended;  // a new slot at the end (not a reused one)
    };
    /// Maps `t.key` and `t.twin_src.port` to the new twin, replacing whatever
    /// the key mapped to. `reuse` takes a released slot when there is one.
    Added add(Twin t, bool reuse);
    /// Unmaps whatever twin `key` maps to (a 4-tuple reused after a close).
    void unlink(const tracker::FourTuple& key);

    /// The twin has closed: its mapping goes once `linger` has passed.
    void linger(std::uint32_t i, monitor::MonoNs now);
    /// Releases the twins whose linger is over.
    void release_expired(monitor::MonoNs now, monitor::MonoNs linger);
    /// When the oldest lingering twin is due, if any.
    std::optional<monitor::MonoNs> next_release(monitor::MonoNs linger) const;

    void clear();
    /// Ports q that this host's kernel already uses toward (IPp, q): sockets
    /// a previous migware's twins left in the replica (it was killed while
    /// active). A twin SYN on such a 4-tuple would meet an established
    /// socket and never get a SYN-ACK. Until clear().
    void reserve(std::uint16_t q) {
        if (by_port_[q] == -1) by_port_[q] = kReserved;
    }

private:
    static constexpr std::int32_t kReserved = -2;
    std::vector<Twin> twins_;
    std::unordered_map<tracker::FourTuple, std::uint32_t> by_tuple_;
    std::vector<std::int32_t> by_port_;  // 65536 entries: q -> twin index, -1 if none, kReserved
    std::vector<std::uint32_t> free_;    // released slots of direct twins
    std::deque<std::pair<monitor::MonoNs, std::uint32_t>> lingering_;  // (closed_at, twin), oldest first
};

}  // namespace migware
