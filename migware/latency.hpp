#pragma once
// Per-packet proxy latency (ns): a histogram with fixed buckets for the
// Prometheus metrics, and a ring of recent samples for the dashboard's
// p50/p99. No allocation after construction; quantiles are computed on
// demand (not on the packet path).

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace migware {

class LatencyRecorder {
public:
    /// Upper bounds (inclusive, ns) of the histogram buckets, +Inf implied:
    /// 5 µs to 10 ms, where a proxied packet's processing time lives.
    static constexpr std::array<std::int64_t, 11> kBucketBounds = {
        5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000,
        10'000'000};

    explicit LatencyRecorder(std::size_t capacity = 4096) : ring_(capacity) {}
    void record(std::int64_t ns) {
        ring_[next_ % ring_.size()] = ns;
        ++next_;
        sum_ += ns;
        ++count_;
        const auto it = std::lower_bound(kBucketBounds.begin(), kBucketBounds.end(), ns);
        ++buckets_[static_cast<std::size_t>(it - kBucketBounds.begin())];
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
    /// Samples <= kBucketBounds[i] (cumulative, as Prometheus wants them);
    /// i == kBucketBounds.size() is +Inf, equal to count().
    std::uint64_t cumulative(std::size_t i) const {
        std::uint64_t n = 0;
        for (std::size_t b = 0; b <= i && b < buckets_.size(); ++b) n += buckets_[b];
        return n;
    }

private:
    std::vector<std::int64_t> ring_;
    std::uint64_t next_ = 0;
    std::uint64_t count_ = 0;
    std::int64_t sum_ = 0;
    std::array<std::uint64_t, kBucketBounds.size() + 1> buckets_{};
};

}  // namespace migware
