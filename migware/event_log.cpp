#include "migware/event_log.hpp"

#include <algorithm>
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

void StderrSink::emit(std::int64_t mono_ns, std::string_view event, const std::string& fields) {
    timespec wall{};
    clock_gettime(CLOCK_REALTIME, &wall);
    tm utc{};
    gmtime_r(&wall.tv_sec, &utc);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  wall.tv_nsec / 1000);
    std::fprintf(stderr, "ts=%s mono_ns=%lld event=%.*s%s%s\n", ts,
                 static_cast<long long>(mono_ns), static_cast<int>(event.size()), event.data(),
                 fields.empty() ? "" : " ", fields.c_str());
    std::fflush(stderr);
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

void EventRing::emit(std::int64_t mono_ns, std::string_view event, const std::string& fields) {
    if (to_stderr_) stderr_.emit(mono_ns, event, fields);
    timespec wall{};
    clock_gettime(CLOCK_REALTIME, &wall);
    EventRecord rec{next_seq_++, mono_ns,
                    static_cast<std::int64_t>(wall.tv_sec) * 1'000'000'000 + wall.tv_nsec,
                    std::string(event), fields};
    if (listener_) listener_(listener_ctx_, rec);
    if (ring_.size() < capacity_) {
        ring_.push_back(std::move(rec));
    } else {
        ring_[head_] = std::move(rec);
        head_ = (head_ + 1) % capacity_;
    }
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
