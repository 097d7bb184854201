#pragma once
// Structured events. Fields stay typed (string, integer, double, bool) until
// they are written out: stderr gets one logfmt line each (key=value, quoted
// when needed), which journald, syslog and grep all handle; the control
// socket gets typed JSON. The sink is injected so tests can read what was
// logged.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace migware {

using FieldValue = std::variant<std::string, std::int64_t, std::uint64_t, double, bool>;

struct Field {
    std::string key;
    FieldValue value;
    friend bool operator==(const Field&, const Field&) = default;
};

/// An event's fields, in the order they are written.
using Fields = std::vector<Field>;

class EventSink {
public:
    virtual ~EventSink() = default;
    /// `fields` without the event/time keys.
    virtual void emit(std::int64_t mono_ns, std::string_view event, Fields fields) = 0;
};

/// Writes `ts=<wall> mono_ns=<n> event=<e> <fields>` lines to stderr.
class StderrSink final : public EventSink {
public:
    using EventSink::emit;
    void emit(std::int64_t mono_ns, std::string_view event, Fields fields) override;
};

/// Keeps events in memory (tests).
class MemorySink final : public EventSink {
public:
    struct Entry {
        std::int64_t mono_ns;
        std::string event;
        std::string fields;  // as written to stderr (logfmt)
        Fields values;
    };
    using EventSink::emit;
    void emit(std::int64_t mono_ns, std::string_view event, Fields fields) override;
    std::vector<Entry> entries;
};

/// Quotes a logfmt value when it contains spaces, quotes, '=', '\\' or a
/// control character (escaped: one event, one line).
std::string logfmt_value(std::string_view v);
/// One value as logfmt writes it: strings through logfmt_value, numbers as
/// their shortest exact text, booleans as true/false.
std::string field_text(const FieldValue& v);
/// "k=v k2=\"v 2\"".
std::string to_logfmt(const Fields& fields);

/// Splits a logfmt field string back into key/value pairs (quotes removed,
/// escapes undone). Malformed input yields what could be read.
std::vector<std::pair<std::string, std::string>> parse_logfmt(std::string_view fields);


/// One logged event, as kept for the control socket.
struct EventRecord {
    std::uint64_t seq = 0;
    std::int64_t mono_ns = 0;
    std::int64_t wall_ns = 0;  // CLOCK_REALTIME
    std::string event;
    Fields fields;
};

/// Fans events out: to stderr (one logfmt line), into a bounded ring for
/// `migctl events`, and to a listener (the control server's followers).
class EventRing final : public EventSink {
public:
    explicit EventRing(std::size_t capacity = 1024, bool to_stderr = true)
        : capacity_(capacity), to_stderr_(to_stderr) {}
    using EventSink::emit;
    void emit(std::int64_t mono_ns, std::string_view event, Fields fields) override;
    /// The last `n` events, oldest first.
    std::vector<EventRecord> last(std::size_t n) const;
    /// The newest event named `event`, or nullptr (no copy of the ring).
    const EventRecord* newest(std::string_view event) const;
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
    Listener listener_ = nullptr;
    void* listener_ctx_ = nullptr;
};

}  // namespace migware
