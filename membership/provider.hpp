#pragma once
// Below the decision core: a group layer that delivers views and totally
// ordered messages (DESIGN.md §6). Two of them: Corosync (corosync.hpp) and
// standalone (a group of one, below). The daemon polls a provider's fds and
// feeds what it delivers to the core, in order.

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "membership/decision.hpp"

namespace migware::membership {

using Delivery = std::variant<View, Message>;

/// Something the operator should read in the event log.
struct ProviderEvent {
    std::string name;
    std::vector<std::pair<std::string, std::string>> fields;
};

/// What the provider knows beyond the view, for status and metrics.
struct ProviderStatus {
    std::string name;          // "standalone", "corosync"
    bool connected = false;    // to the group layer (always, standalone)
    std::uint64_t ring_id = 0;
    std::uint32_t votes = 0, expected_votes = 0, quorum_votes = 0;  // votequorum's; 0 when none
    std::uint64_t sent = 0, delivered = 0, refused = 0, send_retries = 0, send_dropped = 0;
};

class Provider {
public:
    virtual ~Provider() = default;
    /// File descriptors to poll for input (none, standalone).
    virtual std::vector<int> fds() const = 0;
    /// Reads what is ready; appends deliveries in stream order.
    virtual void dispatch(MonoNs now, std::vector<Delivery>& out) = 0;
    /// Retries, reconnects; may deliver too.
    virtual void tick(MonoNs now, std::vector<Delivery>& out) = 0;
    virtual MonoNs next_deadline() const = 0;
    /// Multicasts in the ordered stream (the sender gets its own copy back).
    virtual void send(const Message& m, MonoNs now) = 0;
    virtual NodeId self() const = 0;
    virtual ProviderStatus status() const = 0;
    virtual std::vector<ProviderEvent> take_events() = 0;
};

/// The single-backup case: a group of one, always quorate. Its messages come
/// straight back in order. Whether the segment around it is alive (the
/// evidence a quorum gives a group) is the monitor's segment-liveness rule
/// (issue 10): no "down" verdict without it.
class StandaloneProvider final : public Provider {
public:
    explicit StandaloneProvider(NodeId self = 1) : self_(self) {}
    std::vector<int> fds() const override { return {}; }
    void dispatch(MonoNs, std::vector<Delivery>& out) override { flush(out); }
    void tick(MonoNs, std::vector<Delivery>& out) override { flush(out); }
    MonoNs next_deadline() const override { return INT64_MAX; }
    void send(const Message& m, MonoNs) override {
        Message copy = m;
        copy.from = self_;
        queue_.push_back(std::move(copy));
        ++status_.sent;
    }
    NodeId self() const override { return self_; }
    ProviderStatus status() const override { return status_; }
    std::vector<ProviderEvent> take_events() override { return {}; }

private:
    void flush(std::vector<Delivery>& out) {
        if (!viewed_) {
            viewed_ = true;
            out.emplace_back(View{1, {self_}, true});
        }
        while (!queue_.empty()) {
            out.emplace_back(std::move(queue_.front()));
            queue_.pop_front();
            ++status_.delivered;
        }
    }
    NodeId self_;
    bool viewed_ = false;
    std::deque<Message> queue_;
    ProviderStatus status_{.name = "standalone", .connected = true, .ring_id = 1};
};

}  // namespace migware::membership
