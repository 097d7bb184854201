#pragma once
// One member of the group: the decision core over a provider. The daemon's
// only handle on membership: it polls fds(), reports its monitor's verdict,
// asks may_act() before any frame leaves for the primary's IP, and reads the
// notices and facts out.

#include <memory>
#include <string>
#include <vector>

#include "membership/decision.hpp"
#include "membership/provider.hpp"

namespace migware::membership {

class Member {
public:
    Member(Config config, std::unique_ptr<Provider> provider);

    std::vector<int> fds() const { return provider_->fds(); }
    void on_ready(MonoNs now);
    /// Heartbeats, the provider's retries, the core's clock. Every loop turn.
    void tick(MonoNs now);
    MonoNs next_deadline() const;

    void on_local_verdict(bool primary_down, MonoNs now) { core_.on_local_verdict(primary_down, now); }
    void release(MonoNs now) { core_.release(now); }
    void send_facts(std::string blob, MonoNs now);

    const Decision& core() const { return core_; }
    const Provider& provider() const { return *provider_; }
    NodeId self() const { return core_.config().self; }
    bool may_act(MonoNs now) const { return core_.may_act(now); }
    /// A group of one (standalone): no facts to share.
    bool alone_by_design() const { return core_.config().lease == 0; }

    std::vector<Notice> take_notices() { return core_.take_notices(); }
    std::vector<std::string> take_facts() { return core_.take_facts(); }
    bool take_table_wanted() { return core_.take_table_wanted(); }
    std::vector<ProviderEvent> take_events() { return provider_->take_events(); }
    /// Views delivered since the last call (for the event log).
    std::vector<View> take_views() { return std::exchange(views_, {}); }

private:
    void feed(std::vector<Delivery>& in, MonoNs now);
    void flush(MonoNs now);

    std::unique_ptr<Provider> provider_;
    Decision core_;
    std::vector<View> views_;
};

}  // namespace migware::membership
