#include "migware/event_log.hpp"

#include <algorithm>
#include <charconv>
#include <type_traits>
#include <cstdio>
#include <ctime>

namespace migware {

std::string logfmt_value(std::string_view v) {
    // One event, one line: any control character forces quoting and is
    // escaped, so a value can never split a line or hide in the terminal.
    const auto control = [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    };
    bool quote = v.empty();
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || control(c)) quote = true;
    if (!quote) return std::string(v);
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (control(c)) {
            static constexpr char kHex[] = "0123456789abcdef";
            const auto u = static_cast<unsigned char>(c);
            out += "\\x";
            out += kHex[u >> 4];
            out += kHex[u & 0xf];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string field_text(const FieldValue& v) {
    return std::visit(
        [](const auto& x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
                return logfmt_value(std::string_view(x));
            } else if constexpr (std::is_same_v<T, bool>) {
                return x ? "true" : "false";
            } else {
                char buf[64];
                const auto r = std::to_chars(buf, buf + sizeof buf, x);  // shortest exact text
                return std::string(buf, r.ptr);
            }
        },
        v);
}

std::string to_logfmt(const Fields& fields) {
    std::string out;
    for (const auto& f : fields) {
        if (!out.empty()) out += ' ';
        out += f.key;
        out += '=';
        out += field_text(f.value);
    }
    return out;
}

namespace {

void write_stderr(std::int64_t mono_ns, std::string_view event, const Fields& fields) {
    timespec wall{};
    clock_gettime(CLOCK_REALTIME, &wall);
    tm utc{};
    gmtime_r(&wall.tv_sec, &utc);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  wall.tv_nsec / 1000);
    const std::string text = to_logfmt(fields);
    std::fprintf(stderr, "ts=%s mono_ns=%lld event=%.*s%s%s\n", ts,
                 static_cast<long long>(mono_ns), static_cast<int>(event.size()), event.data(),
                 text.empty() ? "" : " ", text.c_str());
    std::fflush(stderr);
}

}  // namespace

void StderrSink::emit(std::int64_t mono_ns, std::string_view event, Fields fields) {
    write_stderr(mono_ns, event, fields);
}

void MemorySink::emit(std::int64_t mono_ns, std::string_view event, Fields fields) {
    std::string text = to_logfmt(fields);
    entries.push_back({mono_ns, std::string(event), std::move(text), std::move(fields)});
}

std::vector<std::pair<std::string, std::string>> parse_logfmt(std::string_view f) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t i = 0;
    while (i < f.size()) {
        while (i < f.size() && f[i] == ' ') ++i;
        const std::size_t k0 = i;
        while (i < f.size() && f[i] != '=' && f[i] != ' ') ++i;
        std::string key(f.substr(k0, i - k0));
        std::string value;
        if (i < f.size() && f[i] == '=') {
            ++i;
            if (i < f.size() && f[i] == '"') {
                ++i;
                while (i < f.size() && f[i] != '"') {
                    if (f[i] == '\\' && i + 1 < f.size()) {
                        ++i;
                        // The inverse of logfmt_value's escapes.
                        const auto hex = [](char c) -> int {
                            if (c >= '0' && c <= '9') return c - '0';
                            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
                            return -1;
                        };
                        if (f[i] == 'n') value += '\n';
                        else if (f[i] == 'r') value += '\r';
                        else if (f[i] == 't') value += '\t';
                        else if (f[i] == 'x' && i + 2 < f.size() && hex(f[i + 1]) >= 0 && hex(f[i + 2]) >= 0) {
                            value += static_cast<char>(hex(f[i + 1]) * 16 + hex(f[i + 2]));
                            i += 2;
                        } else {
                            value += f[i];
                        }
                    } else {
                        value += f[i];
                    }
                    ++i;
                }
                if (i < f.size()) ++i;  // closing quote
            } else {
                const std::size_t v0 = i;
                while (i < f.size() && f[i] != ' ') ++i;
                value = std::string(f.substr(v0, i - v0));
            }
        }
        if (!key.empty()) out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

void EventRing::emit(std::int64_t mono_ns, std::string_view event, Fields fields) {
    if (to_stderr_) write_stderr(mono_ns, event, fields);
    timespec wall{};
    clock_gettime(CLOCK_REALTIME, &wall);
    EventRecord rec{next_seq_++, mono_ns,
                    static_cast<std::int64_t>(wall.tv_sec) * 1'000'000'000 + wall.tv_nsec,
                    std::string(event), std::move(fields)};
    if (listener_) listener_(listener_ctx_, rec);
    if (ring_.size() < capacity_) {
        ring_.push_back(std::move(rec));
    } else {
        ring_[head_] = std::move(rec);
        head_ = (head_ + 1) % capacity_;
    }
}

const EventRecord* EventRing::newest(std::string_view event) const {
    const std::size_t size = ring_.size();
    for (std::size_t i = size; i-- > 0;) {
        const EventRecord& e = ring_[(head_ + i) % size];
        if (e.event == event) return &e;
    }
    return nullptr;
}

std::vector<EventRecord> EventRing::last(std::size_t n) const {
    std::vector<EventRecord> out;
    const std::size_t size = ring_.size();
    n = std::min(n, size);
    out.reserve(n);
    for (std::size_t i = size - n; i < size; ++i) out.push_back(ring_[(head_ + i) % size]);
    return out;
}

}  // namespace migware
