#pragma once
// Structured events: one logfmt line each (key=value, quoted when needed),
// which journald, syslog and grep all handle. The sink is injected so tests
// can read what was logged.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace migware {

class EventSink {
public:
    virtual ~EventSink() = default;
    /// `fields` is already logfmt ("k=v k2=\"v 2\""), without event/time keys.
    virtual void emit(std::int64_t mono_ns, std::string_view event, const std::string& fields) = 0;
};

/// Writes `ts=<wall> mono_ns=<n> event=<e> <fields>` lines to a FILE*.
class StderrSink final : public EventSink {
public:
    void emit(std::int64_t mono_ns, std::string_view event, const std::string& fields) override;
};

/// Keeps events in memory (tests).
class MemorySink final : public EventSink {
public:
    struct Entry {
        std::int64_t mono_ns;
        std::string event;
        std::string fields;
    };
    void emit(std::int64_t mono_ns, std::string_view event, const std::string& fields) override {
        entries.push_back({mono_ns, std::string(event), fields});
    }
    std::vector<Entry> entries;
};

/// Quotes a logfmt value when it contains spaces, quotes or '='.
std::string logfmt_value(std::string_view v);

/// Splits a logfmt field string back into key/value pairs (quotes removed,
/// escapes undone). Malformed input yields what could be read.
std::vector<std::pair<std::string, std::string>> parse_logfmt(std::string_view fields);

/// One logged event, as kept for the control socket.
struct EventRecord {
    std::uint64_t seq = 0;
    std::int64_t mono_ns = 0;
    std::int64_t wall_ns = 0;  // CLOCK_REALTIME
    std::string event;
    std::string fields;  // logfmt
};

/// Fans events out: to stderr (one logfmt line), into a bounded ring for
/// `migctl events`, and to a listener (the control server's followers).
class EventRing final : public EventSink {
public:
    explicit EventRing(std::size_t capacity = 1024, bool to_stderr = true)
        : capacity_(capacity), to_stderr_(to_stderr) {}
    void emit(std::int64_t mono_ns, std::string_view event, const std::string& fields) override;
    /// The last `n` events, oldest first.
    std::vector<EventRecord> last(std::size_t n) const;
    std::uint64_t next_seq() const { return next_seq_; }
    using Listener = void (*)(void* ctx, const EventRecord& e);
    void set_listener(Listener fn, void* ctx) {
        listener_ = fn;
        listener_ctx_ = ctx;
    }

private:
    std::size_t capacity_;
    bool to_stderr_;
    std::vector<EventRecord> ring_;
    std::size_t head_ = 0;  // oldest, once full
    std::uint64_t next_seq_ = 1;
    StderrSink stderr_;
    Listener listener_ = nullptr;
    void* listener_ctx_ = nullptr;
};

}  // namespace migware
