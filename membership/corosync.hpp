#pragma once
// The Corosync provider (DESIGN.md §6): a CPG process group for views and
// totally ordered messages (virtual synchrony), votequorum for the quorum.
//
// Views and quorum come on two IPC channels whose order is not defined. A
// view is handed to the core only with the quorum state of its own totem
// ring: after a ring change, CPG deliveries are held until the quorum
// notification for that ring (same ring sequence) has arrived, so that no
// member ever acts in a new ring on the old ring's quorum. If it does not
// come within `quorum_wait`, the ring is treated as inquorate.
//
// Loss of the connection to corosync (it stopped, or restarted) is an empty,
// inquorate view: the member is an observer until it reconnects (every
// second) and the group's view says otherwise.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "membership/provider.hpp"

namespace migware::membership {

struct CorosyncOptions {
    std::string group = "migware";
    MonoNs quorum_wait = 2'000 * monitor::kMillisecond;
    MonoNs reconnect_every = 1'000 * monitor::kMillisecond;
    /// At start: how long a corosync that answers CS_ERR_TRY_AGAIN (its ring is
    /// syncing, e.g. another node just joined) is asked again before giving up.
    MonoNs start_retry_for = 3'000 * monitor::kMillisecond;
};

/// Thrown when corosync cannot be reached at start-up (one line, for the operator).
struct CorosyncError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class CorosyncProvider final : public Provider {
public:
    /// Connects, joins the group and learns this node's id; throws CorosyncError.
    CorosyncProvider(CorosyncOptions options, MonoNs now);
    ~CorosyncProvider() override;

    std::vector<int> fds() const override;
    void dispatch(MonoNs now, std::vector<Delivery>& out) override;
    void tick(MonoNs now, std::vector<Delivery>& out) override;
    MonoNs next_deadline() const override;
    void send(const Message& m, MonoNs now) override;
    NodeId self() const override { return self_; }
    ProviderStatus status() const override { return status_; }
    std::vector<ProviderEvent> take_events() override { return std::exchange(events_, {}); }

    // The library's callbacks (C linkage trampolines call these).
    void on_deliver(std::uint32_t nodeid, std::uint32_t pid, const void* msg, std::size_t len);
    void on_confchg(const std::vector<NodeId>& members, bool ring_change);
    void on_totem(std::uint32_t nodeid, std::uint64_t ring_seq);
    void on_quorum(bool quorate, std::uint64_t ring_seq);

private:
    struct Handles;
    bool connect(MonoNs now, std::string& error);
    void disconnect(MonoNs now, const std::string& why, std::vector<Delivery>& out);
    void release_held(std::vector<Delivery>& out);
    void hold_for_quorum_after(std::uint64_t seq);
    void refresh_votes();
    void try_send(MonoNs now);
    void event(std::string name, std::vector<std::pair<std::string, std::string>> fields) {
        events_.push_back({std::move(name), std::move(fields)});
    }

    CorosyncOptions options_;
    std::unique_ptr<Handles> h_;
    NodeId self_ = 0;
    bool connected_ = false;
    MonoNs reconnect_at_ = 0;
    // The CPG group's members (node ids, sorted, unique), the totem ring and
    // the quorum state as far as delivered.
    std::vector<NodeId> members_;
    std::uint64_t totem_seq_ = 0;
    std::uint64_t ring_key_ = 0;             // (representative node id, sequence) of the totem ring
    std::uint64_t hold_until_quorum_above_ = 0;
    std::uint32_t own_pid_ = 0;
    std::size_t outstanding_ = 0;            // own messages sent, not delivered back yet
    bool stalled_ = false;
    MonoNs stalled_since_ = 0;
    std::uint64_t quorum_seq_ = 0;
    bool quorum_known_ = false;
    bool quorate_ = false;
    bool held_ = false;        // a ring change whose quorum is not known yet
    MonoNs held_since_ = 0;
    MonoNs now_ = 0;           // of the current dispatch, for the callbacks
    bool view_dirty_ = false;  // a view to hand out at the next release
    std::vector<Delivery> pending_;  // deliveries, held or ready, in stream order
    std::optional<View> released_view_;
    std::deque<std::vector<std::byte>> outbox_;
    ProviderStatus status_{.name = "corosync"};
    std::vector<ProviderEvent> events_;
    std::string last_alone_reason_;
};

}  // namespace migware::membership
