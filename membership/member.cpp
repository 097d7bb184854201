#include "membership/member.hpp"

#include <algorithm>

namespace migware::membership {

namespace {
Config with_self(Config c, NodeId self) {
    c.self = self;
    return c;
}
}  // namespace

Member::Member(Config config, std::unique_ptr<Provider> provider)
    : provider_(std::move(provider)), core_(with_self(config, provider_->self())) {}

void Member::feed(std::vector<Delivery>& in, MonoNs now) {
    for (Delivery& d : in) {
        if (auto* v = std::get_if<View>(&d)) {
            core_.on_view(*v, now);
            views_.push_back(*v);
        } else {
            core_.on_message(std::get<Message>(d), now);
        }
    }
    in.clear();
}

void Member::flush(MonoNs now) {
    // A loopback provider (standalone) delivers what we send at once; a
    // few rounds settle a claim and its consequences.
    std::vector<Delivery> in;
    for (int round = 0; round < 8; ++round) {
        std::vector<Message> out = core_.take_outgoing();
        if (out.empty()) return;
        for (const Message& m : out) provider_->send(m, now);
        provider_->tick(now, in);
        feed(in, now);
    }
}

void Member::on_ready(MonoNs now) {
    std::vector<Delivery> in;
    provider_->dispatch(now, in);
    feed(in, now);
    flush(now);
}

void Member::tick(MonoNs now) {
    std::vector<Delivery> in;
    provider_->tick(now, in);
    feed(in, now);
    core_.tick(now);
    flush(now);
}

MonoNs Member::next_deadline() const { return std::min(core_.next_deadline(), provider_->next_deadline()); }

void Member::send_facts(std::string blob, MonoNs now) {
    provider_->send({.kind = MessageKind::Facts, .facts = std::move(blob)}, now);
}

}  // namespace migware::membership
