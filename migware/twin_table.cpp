#include "migware/twin_table.hpp"

#include <algorithm>

namespace migware {

Twin* TwinTable::find(const tracker::FourTuple& key) {
    auto it = by_tuple_.find(key);
    return it == by_tuple_.end() ? nullptr : &twins_[it->second];
}

const Twin* TwinTable::find(const tracker::FourTuple& key) const {
    auto it = by_tuple_.find(key);
    return it == by_tuple_.end() ? nullptr : &twins_[it->second];
}

Twin* TwinTable::by_port(std::uint16_t q) {
    const std::int32_t i = by_port_[q];
    return i < 0 ? nullptr : &twins_[static_cast<std::size_t>(i)];
}

std::uint16_t TwinTable::free_port(std::uint16_t wanted) const {
    for (std::uint32_t i = 0; i < 65536; ++i) {
        const auto q = static_cast<std::uint16_t>(wanted + i);
        if (q != 0 && by_port_[q] == -1) return q;
    }
    return 0;
}

TwinTable::Added TwinTable::add(Twin t, bool reuse) {
    const tracker::FourTuple key = t.key;
    const std::uint16_t q = t.twin_src.port.value;
    Added a{};
    if (reuse && !free_.empty()) {
        a.index = free_.back();
        free_.pop_back();
        twins_[a.index] = std::move(t);
    } else {
        a.index = static_cast<std::uint32_t>(twins_.size());
        a.appended = true;
        twins_.push_back(std::move(t));
    }
    by_tuple_[key] = a.index;
    by_port_[q] = static_cast<std::int32_t>(a.index);
    return a;
}

void TwinTable::unlink(const tracker::FourTuple& key) {
    auto it = by_tuple_.find(key);
    if (it == by_tuple_.end()) return;
    const Twin& o = twins_[it->second];
    if (by_port_[o.twin_src.port.value] == static_cast<std::int32_t>(it->second))
        by_port_[o.twin_src.port.value] = -1;
    by_tuple_.erase(it);
}

void TwinTable::linger(std::uint32_t i, monitor::MonoNs now) { lingering_.emplace_back(now, i); }

void TwinTable::release_expired(monitor::MonoNs now, monitor::MonoNs linger) {
    while (!lingering_.empty() && lingering_.front().first + linger <= now) {
        const std::uint32_t i = lingering_.front().second;
        lingering_.pop_front();
        Twin& t = twins_[i];
        if (t.phase != TwinPhase::Closed || t.released) continue;
        if (by_port_[t.twin_src.port.value] == static_cast<std::int32_t>(i))
            by_port_[t.twin_src.port.value] = -1;
        if (auto it = by_tuple_.find(t.key); it != by_tuple_.end() && it->second == i) by_tuple_.erase(it);
        t.released = true;
        std::vector<std::vector<std::byte>>().swap(t.recovery.queued);
        if (t.direct) free_.push_back(i);  // recovered twins keep their slot for the record
    }
}

std::optional<monitor::MonoNs> TwinTable::next_release(monitor::MonoNs linger) const {
    if (lingering_.empty()) return std::nullopt;
    return lingering_.front().first + linger;
}

void TwinTable::clear() {
    twins_.clear();
    by_tuple_.clear();
    std::fill(by_port_.begin(), by_port_.end(), -1);
    free_.clear();
    lingering_.clear();
}

}  // namespace migware
