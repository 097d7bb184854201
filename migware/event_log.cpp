#include "migware/event_log.hpp"

#include <cstdio>
#include <ctime>

namespace migware {

std::string logfmt_value(std::string_view v) {
    bool quote = v.empty();
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\\') quote = true;
    if (!quote) return std::string(v);
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
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

}  // namespace migware
