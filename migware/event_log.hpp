#pragma once
// Structured events: one logfmt line each (key=value, quoted when needed),
// which journald, syslog and grep all handle. The sink is injected so tests
// can read what was logged.

#include <cstdint>
#include <string>
#include <string_view>
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

}  // namespace migware
