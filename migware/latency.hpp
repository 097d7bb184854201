#pragma once
// Recent per-packet latencies (ns) for the dashboard's p50/p99: a fixed ring,
// no allocation after construction, quantiles computed on demand (not on the
// packet path).

#include <algorithm>
#include <cstdint>
#include <vector>

namespace migware {

class LatencyRecorder {
public:
    explicit LatencyRecorder(std::size_t capacity = 4096) : ring_(capacity) {}
    void record(std::int64_t ns) {
        ring_[next_ % ring_.size()] = ns;
        ++next_;
        sum_ += ns;
        ++count_;
    }
    /// q in [0, 1] over the most recent samples; 0 when there are none.
    std::int64_t quantile(double q) const {
        const std::size_t n = std::min<std::uint64_t>(next_, ring_.size());
        if (n == 0) return 0;
        std::vector<std::int64_t> v(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(n));
        const auto k = static_cast<std::size_t>(q * static_cast<double>(n - 1) + 0.5);
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
        return v[k];
    }
    std::uint64_t count() const { return count_; }
    std::int64_t sum() const { return sum_; }

private:
    std::vector<std::int64_t> ring_;
    std::uint64_t next_ = 0;
    std::uint64_t count_ = 0;
    std::int64_t sum_ = 0;
};

}  // namespace migware
