#pragma once
// Time as a value passed in. The daemon reads CLOCK_MONOTONIC once per loop
// turn; tests pass whatever they like.

#include <cstdint>
#include <ctime>

namespace migware::monitor {

/// Nanoseconds on a monotonic clock.
using MonoNs = std::int64_t;

inline constexpr MonoNs kMillisecond = 1'000'000;

class Clock {
public:
    virtual ~Clock() = default;
    virtual MonoNs now() const = 0;
};

class SystemClock final : public Clock {
public:
    MonoNs now() const override {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return static_cast<MonoNs>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
};

class FakeClock final : public Clock {
public:
    explicit FakeClock(MonoNs start = 0) : now_(start) {}
    MonoNs now() const override { return now_; }
    void advance(MonoNs by) { now_ += by; }
    void set(MonoNs at) { now_ = at; }

private:
    MonoNs now_;
};

}  // namespace migware::monitor
