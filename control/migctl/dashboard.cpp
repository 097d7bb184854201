#include "control/migctl/dashboard.hpp"

#include <curses.h>
#include <langinfo.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <csignal>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cwchar>
#include <limits>
#include <vector>

#include "control/client.hpp"
#include "migware/counters.hpp"
#include "migware/phase.hpp"

namespace migware::migctl {

// ---- text helpers shared with the one-shot commands --------------------------

std::string human_duration(double s) {
    char buf[32];
    if (s < 0) s = 0;
    if (s < 60) {
        std::snprintf(buf, sizeof buf, "%.1fs", s);
    } else if (s < 3600) {
        const auto t = static_cast<long>(s);
        std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    } else if (s < 86400) {
        const auto t = static_cast<long>(s) / 60;
        std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 60, t % 60);
    } else {
        const auto t = static_cast<long>(s) / 3600;
        std::snprintf(buf, sizeof buf, "%ldd%02ldh", t / 24, t % 24);
    }
    return buf;
}

std::string human_count(double v) {
    char buf[32];
    if (v < 999.5) std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (v < 999.5e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    else if (v < 999.5e6) std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
    else std::snprintf(buf, sizeof buf, "%.1fG", v / 1e9);
    return buf;
}

std::string human_bytes(double v) {
    char buf[32];
    if (v < 1024) std::snprintf(buf, sizeof buf, "%.0fB", v);
    else if (v < 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.1fKiB", v / 1024);
    else if (v < 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1fMiB", v / (1024.0 * 1024));
    else std::snprintf(buf, sizeof buf, "%.1fGiB", v / (1024.0 * 1024 * 1024));
    return buf;
}

std::string scalar_text(const Json& v) {
    if (v.is_null()) return "-";
    if (const auto* s = as_string(v)) return *s;
    return dump(v);
}

std::optional<std::uint64_t> counter(const Json& counters,
                                     std::initializer_list<std::string_view> names) {
    for (auto n : names)
        if (auto v = as_u64(member(counters, n))) return v;
    return std::nullopt;
}

namespace {

std::string logfmt_quoted(const std::string& s) {
    bool quote = s.empty();
    for (char c : s)
        if (c == ' ' || c == '"' || c == '=' || c == '\\') quote = true;
    if (!quote) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string event_line(const Json& ev, bool full_timestamp) {
    std::string line;
    if (const auto* wall = as_string(member(ev, "wall"))) {
        // "2026-11-23T02:38:29.314Z": the time of day is what a live view needs.
        if (!full_timestamp && wall->size() >= 23 && (*wall)[10] == 'T') line = wall->substr(11, 12);
        else line = *wall;
        line += ' ';
    }
    if (!member(ev, "seq").is_null()) line += "#" + scalar_text(member(ev, "seq")) + " ";
    line += scalar_text(member(ev, "event"));
    const Json& f = member(ev, "fields");
    const bool arrow = member(f, "from").is_string() && member(f, "to").is_string();
    if (arrow) line += " " + *as_string(member(f, "from")) + "->" + *as_string(member(f, "to"));
    if (const auto* o = as_object(f)) {
        for (const auto& m : o->items()) {
            if (arrow && (m.key() == "from" || m.key() == "to")) continue;
            line += " " + m.key() + "=";
            line += m.value().is_string() ? logfmt_quoted(*as_string(m.value())) : scalar_text(m.value());
        }
    }
    return line;
}

// ---- the dashboard -----------------------------------------------------------

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kRefresh = std::chrono::milliseconds(250);
constexpr auto kReconnectEvery = std::chrono::seconds(1);
constexpr int kCallTimeoutMs = 1500;
constexpr const auto& kPhases = migware::kPhaseNames;
constexpr int kFirstContentRow = 10;  // rows 0-8 summary, 9 section heading

// The handler can only set a flag; the loop wakes from wgetch's timeout.
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }

struct Glyphs {
    std::array<const char*, 8> spark;
    const char* bar_full;
    const char* bar_empty;
    const char* hline;
    const char* sep;
};
constexpr Glyphs kUtf8Glyphs{{"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"}, "█", "░", "─", "·"};
constexpr Glyphs kAsciiGlyphs{{"_", ".", ",", "-", "~", "=", "*", "#"}, "#", ".", "-", "|"};

enum ColorPair : short { kPairNormal = 1, kPairRecovery, kPairProxy, kPairBad, kPairGood, kPairDim };

struct Seg {
    std::string text;
    attr_t attr = A_NORMAL;
};
using Line = std::vector<Seg>;

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string pad(std::string s, std::size_t w) {
    if (s.size() < w) s.resize(w, ' ');
    return s;
}

class Dashboard {
public:
    explicit Dashboard(std::string path) : path_(std::move(path)) {}

    int run(control::Client first) {
        client_ = std::move(first);
        init_screen();
        auto next_poll = SteadyClock::now();
        while (g_stop == 0) {
            const auto now = SteadyClock::now();
            if (now >= next_poll) {
                poll(now);
                next_poll = now + kRefresh;
                force_poll_ = false;
                draw();
            }
            const auto wait =
                std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - SteadyClock::now());
            wtimeout(stdscr, static_cast<int>(std::clamp<long>(wait.count(), 0, 250)));
            const int ch = wgetch(stdscr);
            if (ch == ERR) continue;
            if (!handle_key(ch)) break;
            if (force_poll_) next_poll = SteadyClock::now();
            draw();
        }
        endwin();
        return 0;
    }

private:
    // ---- screen setup ----
    void init_screen() {
        use_color_ = isatty(STDOUT_FILENO) != 0 && !no_color_env();
        cbreak();
        noecho();
        nonl();
        keypad(stdscr, TRUE);
        set_escdelay(25);  // Esc cancels the filter at once, not after a second
        curs_set(0);
        if (use_color_ && has_colors()) {
            start_color();
            use_default_colors();
            init_pair(kPairNormal, COLOR_BLACK, COLOR_GREEN);
            init_pair(kPairRecovery, COLOR_BLACK, COLOR_YELLOW);
            init_pair(kPairProxy, COLOR_WHITE, COLOR_RED);
            init_pair(kPairBad, COLOR_RED, -1);
            init_pair(kPairGood, COLOR_GREEN, -1);
            init_pair(kPairDim, COLOR_CYAN, -1);
        } else {
            use_color_ = false;
        }
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;  // no SA_RESTART: wgetch returns, the loop ends, endwin runs
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        sigaction(SIGHUP, &sa, nullptr);
    }

    static bool no_color_env() {
        // Any NO_COLOR in the environment disables colour, even empty: the
        // issue's rule ("set"), and what the original no-color.org text said.
        return std::getenv("NO_COLOR") != nullptr;
    }

    attr_t color(ColorPair p, attr_t fallback) const {
        return use_color_ ? COLOR_PAIR(p) : fallback;
    }
    attr_t bad_attr() const { return color(kPairBad, A_BOLD) | A_BOLD; }
    attr_t good_attr() const { return color(kPairGood, A_NORMAL); }
    attr_t dim_attr() const { return color(kPairDim, A_DIM); }

    // ---- talking to the daemon ----
    void poll(SteadyClock::time_point now) {
        if (!client_.connected()) {
            if (now < next_connect_) return;
            next_connect_ = now + kReconnectEvery;
            if (auto err = client_.connect(path_)) {
                problem_ = "unreachable, retrying every 1 s: " + *err;
                return;
            }
            problem_.clear();
            have_prev_counters_ = false;  // a restarted daemon starts its counters over
            rates_ = {};
        }

        std::vector<Json> reqs;
        reqs.push_back(Json({{"cmd", "status"}}));
        reqs.push_back(Json({{"cmd", "counters"}}));
        reqs.push_back(Json({{"cmd", "events"}, {"last", std::max(event_rows(), 1)}}));
        // Counts by phase: from status.connections when the daemon gives it,
        // otherwise the exact totals of a one-item connections query per phase.
        const bool phase_queries = !status_has_phases_;
        if (phase_queries)
            for (std::string_view ph : kPhases)
                reqs.push_back(Json({{"cmd", "connections"}, {"state", ph}, {"limit", 1}}));
        const std::size_t table_first = reqs.size();
        const bool filtered = !filter_.empty();
        std::size_t table_pages = 0;
        if (table_shown_) {
            // One page at scroll_. A filter travels with it ("match"): the
            // daemon picks the matching rows in one pass over its table, so
            // neither side copies the whole table to filter it.
            Json req{{"cmd", "connections"}, {"offset", scroll_}, {"limit", std::max(table_rows(), 1)}};
            if (filtered) req["match"] = filter_;
            reqs.push_back(std::move(req));
            table_pages = 1;
        }

        auto replies = client_.call_many(std::move(reqs), kCallTimeoutMs);
        if (!replies[0] && replies[0].error().connection_lost) {
            problem_ = "lost the daemon, reconnecting: " + replies[0].error().message;
            next_connect_ = now + kReconnectEvery;
            return;
        }
        problem_.clear();
        auto take = [&](std::size_t i, Json& into) {
            if (replies[i]) into = replies[i].value();
            else if (problem_.empty()) problem_ = replies[i].error().message;
        };
        take(0, status_);
        last_contact_ = now;
        have_status_ = status_.is_object();
        status_has_phases_ = member(status_, "connections").is_object();

        Json counters;
        take(1, counters);
        if (counters.is_object()) update_rates(counters, now);

        take(2, events_);

        if (phase_queries) {
            for (std::size_t i = 0; i < kPhases.size(); ++i) {
                phase_counts_[i].reset();
                if (replies[3 + i]) phase_counts_[i] = as_u64(member(replies[3 + i].value(), "total"));
            }
        }
        if (status_has_phases_) {
            for (std::size_t i = 0; i < kPhases.size(); ++i)
                phase_counts_[i] = as_u64(member(member(status_, "connections"), kPhases[i]));
        }

        if (table_pages > 0) {
            const auto& r = replies[table_first];
            if (!r) {
                if (problem_.empty()) problem_ = r.error().message;
            } else {
                table_total_ = as_u64(member(r.value(), "total")).value_or(0);
                std::vector<Json> items;
                if (const auto* a = as_array(member(r.value(), "items"))) items.assign(a->begin(), a->end());
                // A daemon older than "match" ignores it: filter what came, and say so.
                page_only_filter_ = filtered && !control::has(r.value(), "match");
                if (page_only_filter_) {
                    const std::string needle = lower(filter_);
                    std::erase_if(items, [&](const Json& it) {
                        for (const char* k : {"client", "server", "phase"})
                            if (lower(scalar_text(member(it, k))).find(needle) != std::string::npos) return false;
                        return true;
                    });
                }
                rows_ = std::move(items);
            }
        }
        clamp_scroll();
    }

    void update_rates(const Json& cur, SteadyClock::time_point now) {
        if (have_prev_counters_) {
            const double dt = std::chrono::duration<double>(now - counters_at_).count();
            if (dt > 0.05) {
                auto rate = [&](std::initializer_list<std::string_view> names) -> std::optional<double> {
                    const auto a = counter(prev_counters_, names), b = counter(cur, names);
                    if (!a || !b || *b < *a) return std::nullopt;  // absent, or the daemon restarted
                    return static_cast<double>(*b - *a) / dt;
                };
                rates_.cap_pkts = rate({counters::kPcapReceived, "frames"});
                rates_.cap_bytes = rate({"pcap_received_bytes", "frame_bytes", counters::kCapturedBytes});
                rates_.tb_pkts = rate({counters::kToBackupPackets, "to_backup"});
                rates_.tb_bytes = rate({counters::kToBackupBytes});
                rates_.tc_pkts = rate({counters::kToClientPackets, "to_client"});
                rates_.tc_bytes = rate({counters::kToClientBytes});
                rates_.kernel = rate({counters::kKernelDrops});
                rates_.iface = rate({counters::kInterfaceDrops});
                const auto h0 = holes_total(prev_counters_), h1 = holes_total(cur);
                rates_.holes = h0 && h1 && *h1 >= *h0 ? std::optional<double>(static_cast<double>(*h1 - *h0) / dt)
                                                      : std::nullopt;
                const auto m0 = malformed_total(prev_counters_), m1 = malformed_total(cur);
                rates_.malformed = m0 && m1 && *m1 >= *m0
                                       ? std::optional<double>(static_cast<double>(*m1 - *m0) / dt)
                                       : std::nullopt;
            } else {
                return;  // too close to the last sample to say anything
            }
        }
        prev_counters_ = cur;
        counters_ = cur;
        counters_at_ = now;
        have_prev_counters_ = true;
    }

    /// Holes the tracker found in the streams: frames the capture lost that
    /// its counters may not show (client data past a hole, and on aligned
    /// and full ports server bytes never seen).
    static std::optional<std::uint64_t> holes_total(const Json& c) {
        const auto a = as_u64(member(c, "capture_gaps")), b = as_u64(member(c, "replay_digest_gaps"));
        if (!a && !b) return std::nullopt;
        return a.value_or(0) + b.value_or(0);
    }

    static std::optional<std::uint64_t> malformed_total(const Json& c) {
        if (auto m = as_u64(member(c, counters::kMalformed))) return m;
        const auto* o = as_object(c);
        if (o == nullptr) return std::nullopt;
        std::optional<std::uint64_t> sum;
        for (const auto& m : o->items())
            if (m.key().rfind("malformed_", 0) == 0)
                if (auto v = as_u64(m.value())) sum = sum.value_or(0) + *v;
        return sum;
    }

    // ---- keys ----
    bool handle_key(int ch) {
        if (editing_) {
            switch (ch) {
                case 27: editing_ = false; break;  // Esc: keep the old filter
                case '\n':
                case '\r':
                case KEY_ENTER:
                    editing_ = false;
                    filter_ = edit_;
                    table_shown_ = true;  // the filter applies to the connection table
                    scroll_ = 0;
                    rows_.clear();
                    force_poll_ = true;
                    break;
                case KEY_BACKSPACE:
                case 127:
                case 8:
                    if (!edit_.empty()) edit_.pop_back();
                    break;
                case KEY_RESIZE: break;
                default:
                    if (ch >= 0x20 && ch < 0x7f && edit_.size() < 64) edit_ += static_cast<char>(ch);
            }
            return true;
        }
        const std::int64_t page = std::max(table_rows(), 1);
        switch (ch) {
            case 'q':
            case 'Q': return false;
            case 'c':
            case 'C':
                table_shown_ = !table_shown_;
                scroll_ = 0;
                rows_.clear();
                force_poll_ = true;
                break;
            case '/':
                editing_ = true;
                edit_ = filter_;
                break;
            case 'j':
            case KEY_DOWN: scroll_by(1); break;
            case 'k':
            case KEY_UP: scroll_by(-1); break;
            case ' ':
            case KEY_NPAGE: scroll_by(page); break;
            case KEY_PPAGE: scroll_by(-page); break;
            case 'g':
            case KEY_HOME: scroll_by(-scroll_); break;
            case 'G':
            case KEY_END: scroll_by(std::numeric_limits<std::int32_t>::max()); break;
            case KEY_RESIZE: clamp_scroll(); break;  // ncurses has updated LINES and COLS
            default: break;
        }
        return true;
    }

    void scroll_by(std::int64_t d) {
        if (!table_shown_) return;
        scroll_ += d;
        clamp_scroll();
        force_poll_ = true;  // fetch the page now
    }

    void clamp_scroll() {
        const auto n = static_cast<std::int64_t>(table_total_);
        scroll_ = std::clamp<std::int64_t>(scroll_, 0, std::max<std::int64_t>(0, n - table_rows()));
    }

    // ---- layout ----
    int event_rows() const { return std::max(0, LINES - footer_rows() - kFirstContentRow); }
    int table_rows() const { return std::max(0, LINES - footer_rows() - 1 - kFirstContentRow); }  // minus header
    // A problem gets a second line rather than losing its errno off the edge.
    int footer_rows() const {
        return !problem_.empty() && static_cast<int>(problem_.size()) + 1 > COLS ? 2 : 1;
    }

    /// Text made safe to print: no control characters; without UTF-8 only ASCII.
    std::string clean(std::string_view s) const {
        std::string out;
        out.reserve(s.size());
        for (std::size_t i = 0; i < s.size(); ++i) {
            const auto u = static_cast<unsigned char>(s[i]);
            if (u < 0x20 || u == 0x7f) {
                out += ' ';
            } else if (u >= 0x80 && !utf8_) {
                if (u >= 0xC0 || i == 0) out += '?';  // one '?' per character
            } else {
                out += static_cast<char>(u);
            }
        }
        return out;
    }

    /// The longest prefix of `s` that fits in `cols` screen columns; sets `used`.
    std::size_t fit(std::string_view s, int cols, int& used) const {
        used = 0;
        if (!utf8_) {
            const std::size_t n = std::min<std::size_t>(s.size(), static_cast<std::size_t>(std::max(cols, 0)));
            used = static_cast<int>(n);
            return n;
        }
        std::mbstate_t st{};
        std::size_t i = 0;
        while (i < s.size()) {
            wchar_t wc = 0;
            const std::size_t n = std::mbrtowc(&wc, s.data() + i, s.size() - i, &st);
            if (n == static_cast<std::size_t>(-1) || n == static_cast<std::size_t>(-2) || n == 0) break;
            int w = wcwidth(wc);
            if (w < 0) w = 1;
            if (used + w > cols) break;
            used += w;
            i += n;
        }
        return i;
    }

    void put_line(int row, const Line& segs, attr_t fill = A_NORMAL) {
        if (row < 0 || row >= LINES) return;
        int col = 0;
        wmove(stdscr, row, 0);
        for (const auto& seg : segs) {
            if (col >= COLS) break;
            int used = 0;
            const std::size_t n = fit(seg.text, COLS - col, used);
            wattrset(stdscr, seg.attr);
            waddnstr(stdscr, seg.text.data(), static_cast<int>(n));
            col += used;
        }
        if (fill != A_NORMAL && col < COLS) {
            wattrset(stdscr, fill);
            // Not the last cell of the last line: writing there scrolls some terminals.
            const int n = row == LINES - 1 ? COLS - col - 1 : COLS - col;
            if (n > 0) whline(stdscr, ' ' | fill, n);
        }
        wattrset(stdscr, A_NORMAL);
    }

    const Glyphs& glyphs() const { return utf8_ ? kUtf8Glyphs : kAsciiGlyphs; }

    std::string state_word() const {
        std::string s = scalar_text(member(status_, "state"));
        for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return s;
    }

    void draw() {
        werase(stdscr);
        if (!have_status_) {
            put_line(0, {{" migware  waiting for the daemon at " + path_ + " ", A_REVERSE | A_BOLD}},
                     A_REVERSE);
        } else {
            draw_banner();
            draw_primary(1);
            draw_rates(2);
            draw_drops(4);
            draw_phases(5);
            draw_recovery(6);
            draw_latency(7);
            draw_membership(8);
            if (table_shown_) draw_table();
            else draw_events();
        }
        draw_footer();
        wnoutrefresh(stdscr);
        doupdate();
    }

    void draw_banner() {
        const std::string word = state_word();
        attr_t a = A_REVERSE | A_BOLD;
        if (word == "NORMAL") a = color(kPairNormal, A_REVERSE) | A_BOLD;
        else if (word == "RECOVERY") a = color(kPairRecovery, A_REVERSE) | A_BOLD;
        else if (word == "PROXY") a = color(kPairProxy, A_REVERSE) | A_BOLD;
        std::string text = " " + word;
        if (!client_.connected()) {
            // Said first: a stale banner must not pass for a live one, whatever the width.
            const double ago = std::chrono::duration<double>(SteadyClock::now() - last_contact_).count();
            text += " [stale: no contact for " + human_duration(ago) + "]";
        }
        if (auto s = as_double(member(status_, "seconds_in_state"))) text += " for " + human_duration(*s);
        if (const auto* w = as_string(member(status_, "since_wall")); w && w->size() >= 19)
            text += " since " + w->substr(11, 8) + "Z";
        const Json& tr = member(status_, "last_transition");
        if (tr.is_object()) {
            text += "  " + std::string(glyphs().sep) + " " + scalar_text(member(tr, "from")) + "->" +
                    scalar_text(member(tr, "to"));
            if (!member(tr, "cause").is_null()) text += " (" + scalar_text(member(tr, "cause")) + ")";
            if (const auto* r = as_string(member(tr, "reason")); r && !r->empty()) text += " " + clean(*r);
        }
        put_line(0, {{text + " ", a}}, a);
    }

    void draw_primary(int row) {
        const Json& p = member(status_, "primary");
        const std::string health = scalar_text(member(p, "health"));
        const attr_t ha = health == "up" ? good_attr() : health == "down" ? bad_attr() : A_BOLD;
        Line l{{"Primary   ", A_BOLD}, {pad(health, 6), ha}};
        std::string t = "misses " + scalar_text(member(p, "consecutive_misses")) + "  replies " +
                        scalar_text(member(p, "replies")) + "/" + scalar_text(member(p, "probes_sent"));
        const auto* rtts = as_array(member(p, "rtt_us"));
        if (rtts != nullptr && !rtts->empty()) t += "  rtt " + scalar_text(rtts->back()) + "us ";
        l.push_back({t});
        if (rtts != nullptr && !rtts->empty()) {
            int used = 0;
            for (const auto& s : l) {
                int u = 0;
                fit(s.text, 1 << 20, u);
                used += u;
            }
            const int room = std::min<int>(COLS - used - 1, static_cast<int>(rtts->size()));
            if (room > 4) l.push_back({sparkline(*rtts, static_cast<std::size_t>(room)), dim_attr()});
        }
        put_line(row, l);
    }

    std::string sparkline(const Json& samples, std::size_t n) const {
        const std::size_t first = samples.size() - n;
        double hi = 0;
        for (std::size_t i = first; i < samples.size(); ++i) hi = std::max(hi, as_double(samples[i]).value_or(0));
        std::string out;
        for (std::size_t i = first; i < samples.size(); ++i) {
            const double v = as_double(samples[i]).value_or(0);
            // Scaled to the window's maximum from zero, so a flat line means steady.
            const auto level = hi > 0 ? static_cast<std::size_t>(v / hi * 7.0 + 0.5) : 0;
            out += glyphs().spark[std::min<std::size_t>(level, 7)];
        }
        return out;
    }

    static std::string rate_text(const std::optional<double>& r, bool bytes) {
        if (!r) return "-";
        return bytes ? human_bytes(*r) : human_count(*r);
    }

    void draw_rates(int row) {
        put_line(row, {{"Packets/s ", A_BOLD},
                       {pad("capture " + rate_text(rates_.cap_pkts, false), 22)},
                       {pad("to backup " + rate_text(rates_.tb_pkts, false), 22)},
                       {"to client " + rate_text(rates_.tc_pkts, false)}});
        put_line(row + 1, {{"Bytes/s   ", A_BOLD},
                           {pad("capture " + rate_text(rates_.cap_bytes, true), 22)},
                           {pad("to backup " + rate_text(rates_.tb_bytes, true), 22)},
                           {"to client " + rate_text(rates_.tc_bytes, true)}});
    }

    void draw_drops(int row) {
        auto item = [&](const char* name, std::optional<std::uint64_t> total,
                        const std::optional<double>& rate) -> Seg {
            std::string t = std::string(name) + " " + (total ? std::to_string(*total) : "-");
            const bool rising = rate && *rate > 0;
            if (rising) t += " (+" + human_count(*rate) + "/s)";
            return {pad(t, 17), rising ? bad_attr() : A_NORMAL};  // four fit in 80 columns
        };
        put_line(row, {{"Drops     ", A_BOLD},
                       item("kernel", counter(counters_, {counters::kKernelDrops}), rates_.kernel),
                       item("interface", counter(counters_, {counters::kInterfaceDrops}), rates_.iface),
                       item("holes", holes_total(counters_), rates_.holes),
                       item("malformed", malformed_total(counters_), rates_.malformed)});
    }

    void draw_phases(int row) {
        Line l{{"Conns     ", A_BOLD}};
        for (std::size_t i = 0; i < kPhases.size(); ++i) {
            const auto& n = phase_counts_[i];
            const bool warn = std::string_view(kPhases[i]) == "lost" && n && *n > 0;
            l.push_back({std::string(kPhases[i]) + " " + (n ? std::to_string(*n) : "-") + "  ",
                         warn ? bad_attr() : A_NORMAL});
        }
        put_line(row, l);
    }

    void draw_recovery(int row) {
        const Json& r = member(status_, "recovery");
        const auto twins = as_u64(member(r, "twins")).value_or(0);
        const auto resolved = as_u64(member(r, "resolved")).value_or(0);
        const std::string counts = std::to_string(resolved) + "/" + std::to_string(twins);
        const std::string tail = "  recovered " + scalar_text(member(r, "recovered")) + "  failed " +
                                 scalar_text(member(r, "failed"));
        const std::string word = state_word();
        if (word == "RECOVERY") {
            const int bar = std::clamp(COLS - 10 - 3 - static_cast<int>(counts.size() + tail.size()), 10, 40);
            const int full = twins > 0 ? static_cast<int>(static_cast<double>(resolved) /
                                                          static_cast<double>(twins) * bar)
                                       : 0;
            std::string b;
            for (int i = 0; i < bar; ++i) b += i < full ? glyphs().bar_full : glyphs().bar_empty;
            put_line(row, {{"Recovery  ", A_BOLD},
                           {"[", A_NORMAL},
                           {b, good_attr() | A_BOLD},
                           {"] " + counts, A_BOLD},
                           {tail}});
        } else if (twins > 0) {
            std::string t = "done " + counts + tail;
            if (auto us = as_double(member(r, "duration_us"))) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "  in %.1f ms", *us / 1000.0);
                t += buf;
            }
            Line l{{"Recovery  ", A_BOLD}, {t}};
            // Issue 13: aligned and full replays, and how their overlaps went.
            const auto n = [&](std::string_view name) { return counter(counters_, {name}).value_or(0); };
            const auto replayed = n("replay_aligned") + n("replay_full");
            if (replayed > 0) {
                const auto diverged = n("replay_diverged");
                // Replies that could not be carried: reset, never left to stall.
                const auto lost = n("unrecovered_reply_lost") + n("unrecovered_reply_not_seen_whole") +
                                  n("unrecovered_request_unanswered");
                l.push_back({"  replay " + std::to_string(replayed) + " ("});
                l.push_back({std::to_string(diverged) + " diverged", diverged > 0 ? bad_attr() : A_NORMAL});
                if (lost > 0) l.push_back({", " + std::to_string(lost) + " lost", bad_attr()});
                l.push_back({")"});
            }
            put_line(row, l);
        } else {
            put_line(row, {{"Recovery  ", A_BOLD}, {"none yet", dim_attr()}});
        }
    }

    void draw_latency(int row) {
        if (state_word() != "PROXY") {
            put_line(row, {{"Latency   ", A_BOLD}, {"(in Proxy)", dim_attr()}});
            return;
        }
        auto us = [&](std::string_view name) {
            const auto v = counter(counters_, {name});
            if (!v) return std::string("-");
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.0fus", static_cast<double>(*v) / 1000.0);
            return std::string(buf);
        };
        put_line(row, {{"Latency   ", A_BOLD},
                       {pad("to backup p50 " + us(counters::kLatencyToBackupP50) + " p99 " +
                                us(counters::kLatencyToBackupP99),
                            34)},
                       {"to client p50 " + us(counters::kLatencyToClientP50) + " p99 " +
                        us(counters::kLatencyToClientP99)}});
    }

    void draw_membership(int row) {
        const Json& g = member(status_, "membership");
        if (!g.is_object()) {
            put_line(row, {{"Group     ", A_BOLD}, {"(no membership data)", dim_attr()}});
            return;
        }
        const std::string role = scalar_text(member(g, "role"));
        const bool quorate = member(g, "quorate") == Json(true);
        const bool suspended = member(g, "suspended") == Json(true);
        Line l{{"Group     ", A_BOLD},
               {scalar_text(member(g, "provider")) + " node " + scalar_text(member(g, "node")) + "  "},
               {role, role == "active" ? good_attr() | A_BOLD : role == "observer" ? bad_attr() : A_NORMAL},
               {"  epoch " + scalar_text(member(g, "epoch")) + "  "},
               {quorate ? "quorate" : "NOT QUORATE", quorate ? A_NORMAL : bad_attr()}};
        if (suspended) l.push_back({"  SUSPENDED", bad_attr() | A_BOLD});
        std::string ms;
        if (const auto* a = as_array(member(g, "members")))
            for (const auto& mm : *a) {
                const std::string r = scalar_text(member(mm, "role"));
                ms += "  " + scalar_text(member(mm, "node")) + (r == "active" ? "*" : "") + "/p" +
                      scalar_text(member(mm, "priority"));
            }
        l.push_back({"  members" + (ms.empty() ? std::string(" -") : ms), dim_attr()});
        put_line(row, l);
    }

    void heading(int row, const std::string& title) {
        std::string t;
        t += glyphs().hline;
        t += glyphs().hline;
        t += " " + title + " ";
        int used = 0;
        fit(t, 1 << 20, used);
        for (int i = used; i < COLS; ++i) t += glyphs().hline;
        put_line(row, {{t, dim_attr()}});
    }

    void draw_events() {
        heading(kFirstContentRow - 1, "Events (newest last)");
        const auto* evs = as_array(member(events_, "events"));
        if (evs == nullptr) return;
        const int rows = event_rows();
        const std::size_t n = std::min<std::size_t>(evs->size(), static_cast<std::size_t>(rows));
        int row = kFirstContentRow;
        for (std::size_t i = evs->size() - n; i < evs->size(); ++i, ++row) {
            const Json& e = (*evs)[i];
            const std::string name = scalar_text(member(e, "event"));
            attr_t a = A_NORMAL;
            if (name == "transition") a = A_BOLD;
            else if (name == "unrecoverable" || name == "error" || name == "capture_drops") a = bad_attr();
            put_line(row, {{clean(event_line(e, false)), a}});
        }
    }

    void draw_table() {
        std::string title = "Connections";
        if (filter_.empty()) {
            title += " " + std::to_string(table_total_);
        } else if (page_only_filter_) {
            title += ": " + std::to_string(rows_.size()) + " match \"" + filter_ + "\" on this page (daemon without match)";
        } else {
            title += ": " + std::to_string(table_total_) + " match \"" + filter_ + "\"";
        }
        const int rows = table_rows();
        const auto n = page_only_filter_ ? scroll_ + static_cast<std::int64_t>(rows_.size())
                                         : static_cast<std::int64_t>(table_total_);
        if (n > scroll_)
            title += "  rows " + std::to_string(scroll_ + 1) + "-" +
                     std::to_string(std::min<std::int64_t>(scroll_ + rows, n));
        heading(kFirstContentRow - 1, title);
        // Widths from the rows on screen, so IPv4 endpoints leave room for the counters.
        const std::size_t first = 0;  // rows_ is the page at scroll_
        const std::size_t last = std::min(rows_.size(), first + static_cast<std::size_t>(rows));
        int wc = 6, ws = 6;
        for (std::size_t i = first; i < last; ++i) {
            wc = std::max(wc, static_cast<int>(scalar_text(member(rows_[i], "client")).size()));
            ws = std::max(ws, static_cast<int>(scalar_text(member(rows_[i], "server")).size()));
        }
        wc = std::min(wc, 47);  // [IPv6]:port at most
        ws = std::min(ws, 47);
        auto fmt = [&](const std::string& c, const std::string& s, const std::string& ph,
                       const std::string& tw, const std::string& tb, const std::string& tc,
                       const std::string& st) {
            char buf[320];
            std::snprintf(buf, sizeof buf, "%-*.*s %-*.*s %-10.10s %5.5s %9.9s %9.9s %s", wc, wc,
                          c.c_str(), ws, ws, s.c_str(), ph.c_str(), tw.c_str(), tb.c_str(), tc.c_str(),
                          st.c_str());
            return std::string(buf);
        };
        put_line(kFirstContentRow,
                 {{fmt("CLIENT", "SERVER", "PHASE", "TWIN", "TO_BACKUP", "TO_CLIENT", "STATE/REASON"),
                   A_BOLD | A_UNDERLINE}});
        for (std::size_t i = first; i < last; ++i) {
            const Json& it = rows_[i];
            const std::string phase = scalar_text(member(it, "phase"));
            const bool lost = phase == "lost";
            put_line(kFirstContentRow + 1 + static_cast<int>(i - first),
                     {{clean(fmt(scalar_text(member(it, "client")), scalar_text(member(it, "server")), phase,
                                 scalar_text(member(it, "twin_port")), scalar_text(member(it, "to_backup_packets")),
                                 scalar_text(member(it, "to_client_packets")),
                                 lost ? "lost: " + scalar_text(member(it, "reason")) : scalar_text(member(it, "state")))),
                       lost ? bad_attr() : A_NORMAL}});
        }
    }

    void draw_footer() {
        const int row = LINES - 1;
        if (row <= 0) return;
        if (editing_) {
            put_line(row, {{"filter connections (client, server, phase): /", A_BOLD}, {clean(edit_)}});
            int used = 0;
            fit("filter connections (client, server, phase): /" + clean(edit_), COLS, used);
            curs_set(1);
            wmove(stdscr, row, std::min(used, COLS - 1));
            return;
        }
        curs_set(0);
        if (!problem_.empty()) {
            // The problem instead of the key hints, on two lines if it needs them.
            const std::string text = " " + clean(problem_);
            if (footer_rows() == 1) {
                put_line(row, {{text, bad_attr()}});
                return;
            }
            int used = 0;
            const std::size_t cut = fit(text, COLS, used);
            put_line(row - 1, {{text.substr(0, cut), bad_attr()}});
            put_line(row, {{" " + text.substr(cut), bad_attr()}});
            return;
        }
        Line l{{" q", A_BOLD}, {" quit "}, {" c", A_BOLD}, {table_shown_ ? " events " : " connections "},
               {" /", A_BOLD}, {" filter "}};
        if (table_shown_) l.insert(l.end(), {{" j/k", A_BOLD}, {" scroll "}});
        if (!filter_.empty()) l.push_back({" [filter \"" + clean(filter_) + "\"]", A_BOLD});
        l.push_back({"  " + path_, dim_attr()});
        put_line(row, l);
    }


    std::string path_;
    control::Client client_;
    bool utf8_ = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    bool use_color_ = false;

    Json status_, counters_, prev_counters_, events_;
    bool have_status_ = false;
    bool status_has_phases_ = false;
    bool have_prev_counters_ = false;
    SteadyClock::time_point counters_at_{}, last_contact_{}, next_connect_{};
    std::array<std::optional<std::uint64_t>, kPhases.size()> phase_counts_{};
    struct {
        std::optional<double> cap_pkts, cap_bytes, tb_pkts, tb_bytes, tc_pkts, tc_bytes;
        std::optional<double> kernel, iface, holes, malformed;
    } rates_;
    std::string problem_;

    bool table_shown_ = false;
    std::int64_t scroll_ = 0;
    std::vector<Json> rows_;
    std::uint64_t table_total_ = 0;
    std::string filter_;
    bool page_only_filter_ = false;
    bool editing_ = false;
    std::string edit_;
    bool force_poll_ = false;
};

}  // namespace

int run_dashboard(const std::string& socket_path) {
    if (isatty(STDIN_FILENO) == 0 || isatty(STDOUT_FILENO) == 0) {
        std::fprintf(stderr, "migctl: top needs a terminal (try migctl status or events --follow)\n");
        return 1;
    }
    // Fail before taking the screen when the socket is wrong or refuses us;
    // once running, a daemon that goes away is retried.
    control::Client first;
    if (auto err = first.connect(socket_path)) {
        std::fprintf(stderr, "migctl: %s\n", err->c_str());
        return 1;
    }
    std::setlocale(LC_CTYPE, "");  // only the character set: numbers stay C-formatted
    if (newterm(nullptr, stdout, stdin) == nullptr) {
        std::fprintf(stderr, "migctl: cannot open the terminal (TERM=%s)\n",
                     std::getenv("TERM") ? std::getenv("TERM") : "");
        return 1;
    }
    Dashboard d(socket_path);
    return d.run(std::move(first));
}

}  // namespace migware::migctl
