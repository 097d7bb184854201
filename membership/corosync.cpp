#include "membership/corosync.hpp"

#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <corosync/votequorum.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "membership/codec.hpp"

namespace migware::membership {

namespace {

constexpr std::size_t kOutboxLimit = 4096;
// Own messages multicast but not delivered back yet. Corosync blocked the
// sender after ~280 queued messages while paused (measured, DESIGN.md §6).
constexpr std::size_t kMaxOutstanding = 64;

std::string cs_name(cs_error_t e) {
    switch (e) {
        case CS_OK: return "CS_OK";
        case CS_ERR_LIBRARY: return "CS_ERR_LIBRARY (corosync not running in this network namespace?)";
        case CS_ERR_TRY_AGAIN: return "CS_ERR_TRY_AGAIN";
        case CS_ERR_ACCESS: return "CS_ERR_ACCESS (needs root, or a uidgid entry in corosync's config)";
        case CS_ERR_BAD_HANDLE: return "CS_ERR_BAD_HANDLE (corosync went away)";
        case CS_ERR_NOT_EXIST: return "CS_ERR_NOT_EXIST";
        case CS_ERR_EXIST: return "CS_ERR_EXIST (the group is already joined by this process)";
        case CS_ERR_NO_RESOURCES: return "CS_ERR_NO_RESOURCES";
        case CS_ERR_TOO_BIG: return "CS_ERR_TOO_BIG";
        default: return "cs_error " + std::to_string(static_cast<int>(e));
    }
}

CorosyncProvider* from_cpg(cpg_handle_t h) {
    void* ctx = nullptr;
    cpg_context_get(h, &ctx);
    return static_cast<CorosyncProvider*>(ctx);
}

void deliver_cb(cpg_handle_t h, const cpg_name*, uint32_t nodeid, uint32_t pid, void* msg, size_t len) {
    if (auto* p = from_cpg(h)) p->on_deliver(nodeid, pid, msg, len);
}

void confchg_cb(cpg_handle_t h, const cpg_name*, const cpg_address* members, size_t n, const cpg_address* left,
                size_t n_left, const cpg_address* joined, size_t n_joined) {
    std::vector<NodeId> ids;
    for (size_t i = 0; i < n; ++i) ids.push_back(members[i].nodeid);
    // A node (not just a process) came or went: the totem ring changed, and
    // its quorum is not known yet.
    bool ring_change = false;
    for (size_t i = 0; i < n_left; ++i) ring_change |= left[i].reason == CPG_REASON_NODEDOWN;
    for (size_t i = 0; i < n_joined; ++i) ring_change |= joined[i].reason == CPG_REASON_NODEUP;
    if (auto* p = from_cpg(h)) p->on_confchg(ids, ring_change);
}

void totem_cb(cpg_handle_t h, cpg_ring_id ring, uint32_t, const uint32_t*) {
    if (auto* p = from_cpg(h)) p->on_totem(ring.nodeid, ring.seq);
}

void quorum_cb(quorum_handle_t h, uint32_t quorate, uint64_t ring_seq, uint32_t, uint32_t*) {
    const void* ctx = nullptr;
    quorum_context_get(h, &ctx);
    if (ctx) static_cast<CorosyncProvider*>(const_cast<void*>(ctx))->on_quorum(quorate != 0, ring_seq);
}

}  // namespace

struct CorosyncProvider::Handles {
    cpg_handle_t cpg = 0;
    quorum_handle_t quorum = 0;
    votequorum_handle_t votequorum = 0;
    bool have_cpg = false, have_quorum = false, have_votequorum = false;
    int cpg_fd = -1, quorum_fd = -1;
    ~Handles() {
        if (have_cpg) cpg_finalize(cpg);
        if (have_quorum) quorum_finalize(quorum);
        if (have_votequorum) votequorum_finalize(votequorum);
    }
};

CorosyncProvider::CorosyncProvider(CorosyncOptions options, MonoNs now) : options_(std::move(options)) {
    if (options_.group.empty() || options_.group.size() >= CPG_MAX_NAME_LENGTH)
        throw CorosyncError("membership.group: 1 to " + std::to_string(CPG_MAX_NAME_LENGTH - 1) + " characters");
    std::string error;
    // A ring that is syncing answers CS_ERR_TRY_AGAIN, as corosync's API asks
    // callers to retry: at start (nothing else runs yet) ask again, 20 ms
    // apart, for a bounded time; any other error, or too long, is final.
    constexpr MonoNs kGap = 20 * monitor::kMillisecond;
    for (MonoNs waited = 0; !connect(now, error); waited += kGap) {
        if (error.find("CS_ERR_TRY_AGAIN") == std::string::npos || waited >= options_.start_retry_for)
            throw CorosyncError("membership corosync: " + error);
        ::usleep(static_cast<useconds_t>(kGap / 1000));
    }
}

CorosyncProvider::~CorosyncProvider() = default;

bool CorosyncProvider::connect(MonoNs now, std::string& error) {
    auto h = std::make_unique<Handles>();
    cpg_model_v1_data_t model{};
    model.model = CPG_MODEL_V1;
    model.cpg_deliver_fn = deliver_cb;
    model.cpg_confchg_fn = confchg_cb;
    model.cpg_totem_confchg_fn = totem_cb;
    model.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF;
    cs_error_t e = cpg_model_initialize(&h->cpg, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&model), this);
    if (e != CS_OK) {
        error = "cpg_initialize: " + cs_name(e);
        return false;
    }
    h->have_cpg = true;
    quorum_callbacks_t qcb{};
    qcb.quorum_notify_fn = quorum_cb;
    uint32_t quorum_type = 0;
    if ((e = quorum_initialize(&h->quorum, &qcb, &quorum_type)) != CS_OK) {
        error = "quorum_initialize: " + cs_name(e);
        return false;
    }
    h->have_quorum = true;
    if (quorum_type == 0) {
        error = "corosync runs without a quorum provider: set quorum { provider: corosync_votequorum }";
        return false;
    }
    quorum_context_set(h->quorum, this);
    votequorum_callbacks_t vcb{};
    if (votequorum_initialize(&h->votequorum, &vcb) == CS_OK) h->have_votequorum = true;
    unsigned int nodeid = 0;
    if ((e = cpg_local_get(h->cpg, &nodeid)) != CS_OK) {
        error = "cpg_local_get: " + cs_name(e);
        return false;
    }
    if (self_ != 0 && nodeid != self_) {
        error = "this node's id changed from " + std::to_string(self_) + " to " + std::to_string(nodeid);
        return false;
    }
    cpg_name name{};
    name.length = static_cast<uint32_t>(options_.group.size());
    std::memcpy(name.value, options_.group.data(), options_.group.size());
    if ((e = cpg_join(h->cpg, &name)) != CS_OK) {
        error = "cpg_join '" + options_.group + "': " + cs_name(e);
        return false;
    }
    if ((e = quorum_trackstart(h->quorum, CS_TRACK_CHANGES | CS_TRACK_CURRENT)) != CS_OK) {
        error = "quorum_trackstart: " + cs_name(e);
        return false;
    }
    if (cpg_fd_get(h->cpg, &h->cpg_fd) != CS_OK || quorum_fd_get(h->quorum, &h->quorum_fd) != CS_OK) {
        error = "cannot get corosync's file descriptors";
        return false;
    }
    self_ = nodeid;
    own_pid_ = static_cast<std::uint32_t>(::getpid());
    outstanding_ = 0;
    stalled_ = false;
    h_ = std::move(h);
    connected_ = true;
    status_.connected = true;
    // Nothing is known about the ring until corosync says: hold.
    members_.clear();
    pending_.clear();
    quorum_known_ = false;
    held_ = true;
    held_since_ = now;
    event("membership_connected", {{"provider", "corosync"}, {"node", std::to_string(self_)}, {"group", options_.group}});
    return true;
}

void CorosyncProvider::disconnect(MonoNs now, const std::string& why, std::vector<Delivery>& out) {
    h_.reset();
    connected_ = false;
    status_.connected = false;
    reconnect_at_ = now + options_.reconnect_every;
    members_.clear();
    pending_.clear();
    status_.send_dropped += outbox_.size();
    outbox_.clear();
    held_ = false;
    hold_until_quorum_above_ = 0;
    quorum_known_ = false;
    quorate_ = false;
    outstanding_ = 0;
    released_view_.reset();
    out.emplace_back(View{0, {}, false});
    event("membership_disconnected",
          {{"provider", "corosync"}, {"reason", why}, {"action", "observer until corosync is back; retry every 1 s"}});
}

std::vector<int> CorosyncProvider::fds() const {
    if (!h_) return {};
    return {h_->cpg_fd, h_->quorum_fd};
}

void CorosyncProvider::on_deliver(std::uint32_t nodeid, std::uint32_t pid, const void* msg, std::size_t len) {
    if (nodeid == self_ && pid == own_pid_ && outstanding_ > 0) --outstanding_;
    const auto bytes = std::span(static_cast<const std::byte*>(msg), len);
    Decoded d = decode(bytes, nodeid);
    if (!d.message) {
        if (status_.refused++ < 20)
            event("membership_message_refused", {{"from", std::to_string(nodeid)}, {"reason", d.error}});
        return;
    }
    ++status_.delivered;
    pending_.emplace_back(std::move(*d.message));
}

void CorosyncProvider::on_confchg(const std::vector<NodeId>& members, bool ring_change) {
    members_ = members;
    std::sort(members_.begin(), members_.end());
    members_.erase(std::unique(members_.begin(), members_.end()), members_.end());
    pending_.emplace_back(View{ring_key_, members_, false});  // ring and quorate filled in when released
    if (ring_change) hold_for_quorum_after(quorum_seq_);
}

void CorosyncProvider::hold_for_quorum_after(std::uint64_t seq) {
    // CPG's view of a new ring comes before its quorum (with a witness,
    // hundreds of ms before): until then the old ring's quorum means nothing.
    if (!held_) held_since_ = now_;
    held_ = true;
    hold_until_quorum_above_ = std::max(hold_until_quorum_above_, seq);
}

void CorosyncProvider::on_totem(std::uint32_t nodeid, std::uint64_t ring_seq) {
    totem_seq_ = ring_seq;
    // The ring's identity is (representative, sequence): two sides of a
    // partition can reach the same sequence.
    ring_key_ = (ring_seq << 32) | nodeid;
    status_.ring_id = ring_seq;
    if (quorum_known_ && quorum_seq_ >= ring_seq) {
        // Its quorum is known already (measured: never so, but the order of
        // two IPC channels is not a promise).
        held_ = false;
        hold_until_quorum_above_ = 0;
        return;
    }
    if (!held_) held_since_ = now_;
    held_ = true;
    hold_until_quorum_above_ = ring_seq - 1;  // this ring's quorum, whatever the confchg guessed
}

void CorosyncProvider::on_quorum(bool quorate, std::uint64_t ring_seq) {
    quorate_ = quorate;
    quorum_seq_ = ring_seq;
    quorum_known_ = true;
    refresh_votes();
    if (held_ && ring_seq > hold_until_quorum_above_ && ring_seq >= totem_seq_) held_ = false;
    // A quorum change without a group change (a witness's vote, say) is a view too.
    pending_.emplace_back(View{totem_seq_, members_, false});
}

void CorosyncProvider::refresh_votes() {
    if (!h_ || !h_->have_votequorum) return;
    votequorum_info info{};
    if (votequorum_getinfo(h_->votequorum, 0, &info) != CS_OK) return;
    status_.votes = info.total_votes;
    status_.expected_votes = info.highest_expected;
    status_.quorum_votes = info.quorum;
}

void CorosyncProvider::release_held(std::vector<Delivery>& out) {
    for (Delivery& d : pending_) {
        if (auto* v = std::get_if<View>(&d)) {
            v->quorate = quorate_;
            v->ring_id = ring_key_;
            if (released_view_ && released_view_->ring_id == v->ring_id && released_view_->members == v->members &&
                released_view_->quorate == v->quorate)
                continue;  // the same view again (CPG's and the quorum's word on one ring)
            released_view_ = *v;
            if (v->members.size() == 1 && v->members[0] == self_ && !quorate_) {
                const std::string why = "alone and inquorate: " + std::to_string(status_.votes) + " of " +
                                        std::to_string(status_.expected_votes) +
                                        " votes; no other node reachable, or its authkey differs "
                                        "(corosync's log then says 'Digest does not match')";
                if (why != last_alone_reason_) {
                    last_alone_reason_ = why;
                    event("membership_alone", {{"reason", why}, {"action", "observer: never injects"}});
                }
            } else if (v->members.size() > 1) {
                last_alone_reason_.clear();
            }
        }
        out.push_back(std::move(d));
    }
    pending_.clear();
}

void CorosyncProvider::dispatch(MonoNs now, std::vector<Delivery>& out) {
    if (!h_) return;
    now_ = now;
    cs_error_t e = cpg_dispatch(h_->cpg, CS_DISPATCH_ALL);
    if (e != CS_OK && e != CS_ERR_TRY_AGAIN) return disconnect(now, "cpg_dispatch: " + cs_name(e), out);
    e = quorum_dispatch(h_->quorum, CS_DISPATCH_ALL);
    if (e != CS_OK && e != CS_ERR_TRY_AGAIN) return disconnect(now, "quorum_dispatch: " + cs_name(e), out);
    if (!held_) release_held(out);
    try_send(now);
}

void CorosyncProvider::tick(MonoNs now, std::vector<Delivery>& out) {
    now_ = now;
    if (!connected_) {
        if (now < reconnect_at_) return;
        std::string error;
        if (!connect(now, error)) {
            h_.reset();
            reconnect_at_ = now + options_.reconnect_every;
            return;
        }
        return;
    }
    if (held_ && now - held_since_ > options_.quorum_wait) {
        event("membership_quorum_unknown",
              {{"ring", std::to_string(totem_seq_)},
               {"waited_ms", std::to_string((now - held_since_) / monitor::kMillisecond)},
               {"action", "the ring is taken as inquorate until corosync says otherwise"}});
        quorate_ = false;
        held_ = false;
    }
    if (!held_ && !pending_.empty()) release_held(out);
    try_send(now);
}

MonoNs CorosyncProvider::next_deadline() const {
    MonoNs at = INT64_MAX;
    if (!connected_) at = reconnect_at_;
    if (held_) at = std::min(at, held_since_ + options_.quorum_wait + 1);
    if (!outbox_.empty()) at = std::min(at, now_ + 5 * monitor::kMillisecond);
    return at;
}

void CorosyncProvider::send(const Message& m, MonoNs now) {
    if (!connected_) {
        ++status_.send_dropped;
        return;
    }
    if (outbox_.size() >= kOutboxLimit) {
        ++status_.send_dropped;
        outbox_.pop_front();
    }
    if (m.kind == MessageKind::Heartbeat && stalled_ && !outbox_.empty()) {
        // Only the newest heartbeat matters; older ones could renew nothing.
        ++status_.send_dropped;
        outbox_.pop_back();
    }
    outbox_.push_back(encode(m));
    try_send(now);
}

void CorosyncProvider::try_send(MonoNs now) {
    while (h_ && !outbox_.empty()) {
        if (outstanding_ >= kMaxOutstanding) {
            // Corosync has not delivered our own recent messages (it is
            // paused, or starved): its IPC queue would fill and block this
            // thread, the packet path's. Hold until it delivers again.
            if (!stalled_) {
                stalled_ = true;
                stalled_since_ = now;
                event("membership_stalled",
                      {{"outstanding", std::to_string(outstanding_)},
                       {"action", "sending paused until corosync delivers our messages again"}});
            }
            return;
        }
        if (stalled_) {
            stalled_ = false;
            event("membership_unstalled",
                  {{"stalled_ms", std::to_string((now - stalled_since_) / monitor::kMillisecond)}});
        }
        iovec iov{outbox_.front().data(), outbox_.front().size()};
        const cs_error_t e = cpg_mcast_joined(h_->cpg, CPG_TYPE_AGREED, &iov, 1);
        if (e == CS_ERR_TRY_AGAIN) {
            ++status_.send_retries;
            return;
        }
        if (e == CS_OK) {
            ++status_.sent;
            ++outstanding_;
        } else {
            ++status_.send_dropped;
        }
        outbox_.pop_front();
    }
}

}  // namespace migware::membership
