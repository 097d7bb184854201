// control/handler: the control socket's answers from a real FailoverEngine
// (fake links), through Normal, Recovery and Proxy: status, connections with
// a phase and a match filter, counters from the one table, typed events, the
// Prometheus text and the error replies.

#include "control/handler.hpp"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "control/protocol.hpp"
#include "migware/counters.hpp"
#include "migware/report.hpp"
#include "tests/control/fake_parts.hpp"

namespace migware {
namespace {

using control::Json;
using control::member;

const std::string kReqresp = std::string(MIGWARE_SOURCE_DIR) + "/pcaps/reqresp.pcap";

Json call(DaemonControl& c, const std::string& line) {
    const ControlReply r = c.handle(line);
    EXPECT_EQ(r.line.find('\n'), std::string::npos);
    auto parsed = control::parse(r.line);
    EXPECT_TRUE(parsed) << r.line;
    return parsed ? *parsed : Json();
}

Json result(DaemonControl& c, const std::string& line) {
    const Json r = call(c, line);
    EXPECT_EQ(member(r, "ok"), true) << control::dump(r);
    return member(r, "result");
}

class HandlerTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_GT(d.replay(kReqresp), 10u); }
    testing::FakeDaemon d;
};

TEST_F(HandlerTest, StatusInEveryState) {
    Json st = result(d.control, R"({"v":1,"cmd":"status"})");
    EXPECT_EQ(member(st, "state"), "normal");
    EXPECT_TRUE(member(st, "last_transition").is_null());
    EXPECT_EQ(member(member(st, "config"), "primary"), "198.18.0.1");
    EXPECT_EQ(member(member(st, "connections"), "tracked"), 1u);  // the one still open
    EXPECT_EQ(member(member(st, "connections"), "closed"), 1u);
    const Json& g = member(st, "membership");
    EXPECT_EQ(member(g, "provider"), "standalone");
    EXPECT_EQ(member(g, "role"), "standby");
    EXPECT_EQ(member(g, "epoch"), 0u);
    EXPECT_TRUE(member(g, "active").is_null());
    EXPECT_EQ(member(g, "quorate"), true);
    EXPECT_EQ(member(g, "may_act"), false);
    ASSERT_EQ(member(g, "members").size(), 1u);
    EXPECT_EQ(member(member(g, "members")[0], "self"), true);
    EXPECT_EQ(member(member(g, "members")[0], "rank"), 0u);

    d.primary_down();
    ASSERT_EQ(d.engine.state(), State::Recovery);
    st = result(d.control, R"({"v":1,"cmd":"status"})");
    EXPECT_EQ(member(st, "state"), "recovery");
    const Json& tr = member(st, "last_transition");
    EXPECT_EQ(member(tr, "from"), "normal");
    EXPECT_EQ(member(tr, "to"), "recovery");
    EXPECT_EQ(member(tr, "cause"), "primary_down");
    EXPECT_EQ(member(member(st, "connections"), "recovering"), 1u);
    EXPECT_EQ(member(member(st, "membership"), "role"), "active");
    EXPECT_EQ(member(member(st, "membership"), "epoch"), 1u);
    EXPECT_EQ(member(member(st, "membership"), "active"), 1u);
    EXPECT_EQ(member(member(st, "membership"), "may_act"), true);

    d.run_timers(60'000'000'000);
    ASSERT_EQ(d.engine.state(), State::Proxy);
    st = result(d.control, R"({"v":1,"cmd":"status"})");
    EXPECT_EQ(member(st, "state"), "proxy");
    EXPECT_EQ(member(member(st, "last_transition"), "to"), "proxy");
    EXPECT_EQ(member(member(st, "connections"), "lost"), 1u);
    EXPECT_EQ(member(member(st, "recovery"), "failed"), 1u);
}

TEST_F(HandlerTest, ConnectionItemsStartWithTheReplayJson) {
    const Json r = result(d.control, R"({"v":1,"cmd":"connections"})");
    EXPECT_EQ(member(r, "total"), 2u);
    ASSERT_EQ(member(r, "items").size(), 2u);
    std::vector<Json> replay;
    d.engine.pipeline().table().for_each([&](const tracker::Connection& c) { replay.push_back(connection_json(c)); });
    for (std::size_t i = 0; i < 2; ++i) {
        const Json& it = member(r, "items")[i];
        Json head = Json::object();
        for (auto& [k, v] : it.items()) {
            if (k == "phase") break;
            head[k] = v;
        }
        EXPECT_EQ(control::dump(head), control::dump(replay[i]));
        EXPECT_TRUE(member(it, "twin_port").is_null());  // Normal: no twins
        EXPECT_TRUE(member(it, "reason").is_null());
    }
}

TEST_F(HandlerTest, PhaseAndMatchFilters) {
    EXPECT_EQ(member(result(d.control, R"({"v":1,"cmd":"connections","state":"closed"})"), "total"), 1u);
    EXPECT_EQ(member(result(d.control, R"({"v":1,"cmd":"connections","state":"lost"})"), "total"), 0u);
    const Json open = result(d.control, R"({"v":1,"cmd":"connections","match":"TRACKED"})");
    EXPECT_EQ(member(open, "total"), 1u);
    EXPECT_EQ(member(open, "match"), "TRACKED");
    EXPECT_EQ(member(member(open, "items")[0], "phase"), "tracked");
    const std::string client = member(member(open, "items")[0], "client").get<std::string>();
    const Json by_client = result(d.control, R"({"v":1,"cmd":"connections","match":")" + client + "\"}");
    EXPECT_EQ(member(by_client, "total"), 1u);
    EXPECT_EQ(member(result(d.control, R"({"v":1,"cmd":"connections","match":"198.18.0.1:7000"})"), "total"), 2u);
    EXPECT_EQ(member(result(d.control, R"({"v":1,"cmd":"connections","match":"nothing-like-it"})"), "total"), 0u);
    // match and state together, and paging through the matches
    EXPECT_EQ(member(result(d.control, R"({"v":1,"cmd":"connections","state":"closed","match":"7000"})"), "total"),
              1u);
    const Json page = result(d.control, R"({"v":1,"cmd":"connections","match":"7000","offset":1,"limit":1})");
    EXPECT_EQ(member(page, "total"), 2u);
    EXPECT_EQ(member(page, "offset"), 1u);
    EXPECT_EQ(member(page, "items").size(), 1u);
    // Without a match the reply says nothing about one (old clients see no change).
    EXPECT_FALSE(control::has(result(d.control, R"({"v":1,"cmd":"connections"})"), "match"));
    for (const char* bad : {R"({"v":1,"cmd":"connections","match":5})",
                            R"({"v":1,"cmd":"connections","state":"up"})",
                            R"({"v":1,"cmd":"connections","state":null})",
                            R"({"v":1,"cmd":"connections","limit":-1})",
                            R"({"v":1,"cmd":"connections","offset":true})"}) {
        const Json r = call(d.control, bad);
        EXPECT_EQ(member(r, "ok"), false) << bad;
        EXPECT_TRUE(member(r, "error").is_string()) << bad;
    }
    const std::string long_match(300, 'x');
    EXPECT_EQ(member(call(d.control, R"({"v":1,"cmd":"connections","match":")" + long_match + "\"}"), "ok"), false);
}

TEST_F(HandlerTest, CountersComeFromTheTable) {
    d.primary_down();
    d.run_timers(60'000'000'000);
    const Json c = result(d.control, R"({"v":1,"cmd":"counters"})");
    // Every JSON entry of the table is there, and nothing else.
    std::set<std::string> want;
    for (const auto& e : counters::table()) {
        if (!e.in_json || e.source == counters::Source::Service) continue;  // no service probe here
        if (e.label_count == 0) want.insert(std::string(e.name));
        for (std::size_t i = 0; i < e.label_count; ++i)
            want.insert(std::string(e.name) + "_" + std::string(e.label_value(i)));
    }
    std::set<std::string> got;
    for (auto& [k, v] : c.items()) {
        got.insert(k);
        EXPECT_TRUE(v.is_number_unsigned() || v.is_number_integer()) << k;
    }
    EXPECT_EQ(got, want);
    // Values read through the table's pointers and getters.
    EXPECT_EQ(member(c, "twins"), d.engine.counters().twins);
    EXPECT_EQ(member(c, "syn_sent"), d.engine.counters().syn_sent);
    EXPECT_GE(d.engine.counters().syn_sent, 1u);
    EXPECT_EQ(member(c, "unrecovered_no_synack"), 1u);
    EXPECT_EQ(member(c, "phase_lost"), 1u);
    EXPECT_EQ(member(c, "pcap_received"), 10u);  // FakeDaemon's capture statistics
    EXPECT_EQ(member(c, "control_requests"), 3u);
    EXPECT_EQ(member(c, "frames_captured"), d.engine.pipeline().parse_counters().frames);
    EXPECT_EQ(member(c, "connections"), 2u);
}

TEST_F(HandlerTest, EventsAreTypedJson) {
    d.log.emit(d.now, "typed", Fields{{"s", std::string("a b")}, {"i", std::int64_t{-5}},
                                      {"u", std::uint64_t{18446744073709551615u}}, {"d", 0.25}, {"b", true}});
    d.log.emit(d.now, "text", Fields{{"lead", std::string("007")}, {"q", std::string("two words")}});
    const Json r = result(d.control, R"({"v":1,"cmd":"events","last":2})");
    ASSERT_EQ(member(r, "events").size(), 2u);
    const Json& typed = member(member(r, "events")[0], "fields");
    EXPECT_EQ(control::dump(typed), R"({"s":"a b","i":-5,"u":18446744073709551615,"d":0.25,"b":true})");
    // A string stays a string, whatever its text.
    const Json& text = member(member(r, "events")[1], "fields");
    EXPECT_EQ(control::dump(text), R"({"lead":"007","q":"two words"})");
    const Json& ev = member(r, "events")[1];
    EXPECT_EQ(member(ev, "event"), "text");
    EXPECT_TRUE(member(ev, "seq").is_number_unsigned());
    EXPECT_TRUE(member(ev, "wall").is_string());
    // followers get the same object under "event"
    const EventRecord* rec = d.log.newest("typed");
    ASSERT_NE(rec, nullptr);
    const Json line = *control::parse(DaemonControl::follower_line(*rec));
    EXPECT_EQ(member(line, "v"), 1);
    EXPECT_EQ(control::dump(member(member(line, "event"), "fields")), control::dump(typed));
}

/// Family name -> type, and every sample name, from the text.
struct Exposition {
    std::map<std::string, std::string> types;
    std::vector<std::pair<std::string, std::string>> samples;  // name{labels}, value
};

Exposition read_text(const std::string& text) {
    Exposition e;
    std::istringstream in(text);
    std::string line;
    const std::regex type_re(R"(^# TYPE (\S+) (counter|gauge|histogram)$)");
    const std::regex sample_re(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$)");
    std::smatch m;
    while (std::getline(in, line)) {
        if (std::regex_match(line, m, type_re)) {
            EXPECT_EQ(e.types.count(m[1]), 0u) << "second TYPE for " << m[1];
            e.types[m[1]] = m[2];
        } else if (line.rfind("# HELP ", 0) == 0) {
            EXPECT_GT(line.size(), 8u);
        } else {
            EXPECT_TRUE(std::regex_match(line, m, sample_re)) << line;
            e.samples.emplace_back(std::string(m[1]) + std::string(m[2]), m[3]);
        }
    }
    return e;
}

void check_conventions(const std::string& text, const char* state) {
    SCOPED_TRACE(state);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    const Exposition e = read_text(text);
    for (const auto& [name, type] : e.types) {
        EXPECT_EQ(name.rfind("migware_", 0), 0u) << name;
        if (type == "counter") {
            EXPECT_TRUE(name.size() > 6 && name.substr(name.size() - 6) == "_total") << name;
        }
        for (const char* abbrev : {"_ns", "_us", "_ms", "_p50", "_p99"})
            EXPECT_EQ(name.find(abbrev), std::string::npos) << name;
    }
    std::map<std::string, std::string> by_name(e.samples.begin(), e.samples.end());
    EXPECT_EQ(by_name["migware_state{state=\"" + std::string(state) + "\"}"], "1");
    // The histogram: cumulative buckets, +Inf equal to the count.
    EXPECT_EQ(e.types.at("migware_proxy_latency_seconds"), "histogram");
    for (const char* dir : {"to_backup", "to_client"}) {
        const std::string d = std::string("direction=\"") + dir + "\"";
        std::uint64_t prev = 0;
        int buckets = 0;
        for (const auto& [n, v] : e.samples) {
            if (n.rfind("migware_proxy_latency_seconds_bucket{" + d, 0) != 0) continue;
            const std::uint64_t c = std::stoull(v);
            EXPECT_GE(c, prev) << n;
            prev = c;
            ++buckets;
        }
        EXPECT_EQ(buckets, static_cast<int>(LatencyRecorder::kBucketBounds.size() + 1));
        EXPECT_EQ(by_name["migware_proxy_latency_seconds_bucket{" + d + ",le=\"+Inf\"}"],
                  by_name["migware_proxy_latency_seconds_count{" + d + "}"]);
    }
}

TEST_F(HandlerTest, MetricsFollowPrometheusConventionsInEveryState) {
    check_conventions(member(result(d.control, R"({"v":1,"cmd":"metrics"})"), "text").get<std::string>(), "normal");
    d.primary_down();
    check_conventions(member(result(d.control, R"({"v":1,"cmd":"metrics"})"), "text").get<std::string>(),
                      "recovery");
    d.run_timers(60'000'000'000);
    for (std::int64_t ns : {3'000, 7'000, 7'000, 40'000, 20'000'000}) d.to_backup.record(ns);
    d.to_client.record(9'000);
    const std::string text = member(result(d.control, R"({"v":1,"cmd":"metrics"})"), "text").get<std::string>();
    check_conventions(text, "proxy");
    EXPECT_NE(text.find("migware_proxy_latency_seconds_bucket{direction=\"to_backup\",le=\"0.000005\"} 1\n"),
              std::string::npos);
    EXPECT_NE(text.find("migware_proxy_latency_seconds_bucket{direction=\"to_backup\",le=\"0.00001\"} 3\n"),
              std::string::npos);
    EXPECT_NE(text.find("migware_proxy_latency_seconds_bucket{direction=\"to_backup\",le=\"0.01\"} 4\n"),
              std::string::npos);
    EXPECT_NE(text.find("migware_proxy_latency_seconds_bucket{direction=\"to_backup\",le=\"+Inf\"} 5\n"),
              std::string::npos);
    EXPECT_NE(text.find("migware_proxy_latency_seconds_sum{direction=\"to_backup\"} 0.020057\n"), std::string::npos);
    EXPECT_NE(text.find("migware_unrecovered_connections_total{reason=\"no_synack\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("migware_connections{phase=\"lost\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("migware_to_backup_bytes_total "), std::string::npos);
}

TEST_F(HandlerTest, EveryBadRequestGetsOneErrorLine) {
    for (const char* bad : {"hello", "{\"v\":1,\"cmd\":\"status\",", "[1]", "null", "{\"v\":1}",
                            "{\"v\":1,\"cmd\":5}", "{\"v\":1,\"cmd\":\"frobnicate\",\"id\":\"e\"}",
                            "{\"cmd\":\"status\"}", "{\"v\":2,\"cmd\":\"status\"}",
                            "{\"v\":1,\"cmd\":\"status\",\"cmd\":\"metrics\"}",
                            "{\"v\":1,\"cmd\":\"events\",\"follow\":1}", "{\"v\":1,\"cmd\":\"events\",\"last\":\"5\"}"}) {
        const ControlReply r = d.control.handle(bad);
        EXPECT_FALSE(r.subscribe) << bad;
        const Json j = call(d.control, bad);
        EXPECT_EQ(member(j, "v"), 1) << bad;
        EXPECT_EQ(member(j, "ok"), false) << bad;
        EXPECT_FALSE(member(j, "error").get<std::string>().empty()) << bad;
        EXPECT_FALSE(control::has(j, "result")) << bad;
    }
    EXPECT_EQ(member(call(d.control, R"({"v":1,"cmd":"frobnicate","id":"e"})"), "id"), "e");
    EXPECT_TRUE(d.control.handle(R"({"v":1,"cmd":"events","follow":true,"last":0})").subscribe);
}

}  // namespace
}  // namespace migware
