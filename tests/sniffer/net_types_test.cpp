#include "sniffer/net_types.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>

namespace migware::sniffer {
namespace {

// The type-level promises: distinct wrappers, and no plain ordering on SeqNum.
static_assert(!std::is_convertible_v<Port, Ipv4Addr>);
static_assert(!std::is_convertible_v<Ipv4Addr, Port>);
static_assert(!std::is_convertible_v<std::uint32_t, SeqNum>, "SeqNum construction is explicit");
template <typename T>
concept LessComparable = requires(T a, T b) { a < b; };
template <typename T>
concept ThreeWayComparable = requires(T a, T b) { a <=> b; };
static_assert(!LessComparable<SeqNum>, "a plain < on SeqNum must not compile");
static_assert(!ThreeWayComparable<SeqNum>);
static_assert(LessComparable<Ipv4Addr>, "the concept itself can succeed");

// --- Ipv4Addr --------------------------------------------------------------

struct AddrCase {
    const char* text;
    std::uint32_t value;
};

TEST(Ipv4AddrParse, AcceptsDottedQuads) {
    const AddrCase ok[] = {
        {"0.0.0.0", 0x00000000},       {"255.255.255.255", 0xffffffff},
        {"10.0.0.1", 0x0a000001},      {"192.168.1.200", 0xc0a801c8},
        {"1.2.3.4", 0x01020304},       {"100.64.0.10", 0x6440000a},
        {"0.255.0.255", 0x00ff00ff},
    };
    for (const auto& c : ok) {
        const auto a = Ipv4Addr::parse(c.text);
        ASSERT_TRUE(a.has_value()) << c.text;
        EXPECT_EQ(a->value, c.value) << c.text;
        EXPECT_EQ(a->to_string(), c.text);
    }
}

TEST(Ipv4AddrParse, RejectsEverythingElse) {
    const char* bad[] = {
        "",            ".",           "1.2.3",        "1.2.3.",       "1.2.3.4.",
        "1.2.3.4.5",   ".1.2.3.4",    "1..3.4",       "01.2.3.4",     "1.2.3.00",
        "1.2.03.4",    "256.0.0.1",   "1.2.3.256",    "999.1.1.1",    "1000.1.1.1",
        "0001.1.1.1",  "4294967296.1.1.1",            "1.2.3.4 ",     " 1.2.3.4",
        "1.2.3.4x",    "1.2.3.4/24",  "1.2.3.4:80",   "a.b.c.d",      "-1.2.3.4",
        "+1.2.3.4",    "1.-2.3.4",    "0x1.2.3.4",    "1,2,3,4",      "16909060",
        "1.2.3.4\n",   "1. 2.3.4",
    };
    for (const char* text : bad) EXPECT_EQ(Ipv4Addr::parse(text), std::nullopt) << '"' << text << '"';
}

TEST(Ipv4AddrParse, RejectsEmbeddedNul) {
    using namespace std::string_view_literals;
    EXPECT_EQ(Ipv4Addr::parse("1.2.3.4\0"sv), std::nullopt);
    EXPECT_EQ(Ipv4Addr::parse("1.2\0.3.4"sv), std::nullopt);
}

TEST(Ipv4AddrParse, ToStringRoundTripsRandomValues) {
    std::mt19937 rng(42);
    for (int i = 0; i < 10000; ++i) {
        const Ipv4Addr a{static_cast<std::uint32_t>(rng())};
        const std::string s = a.to_string();
        const auto back = Ipv4Addr::parse(s);
        ASSERT_TRUE(back.has_value()) << s;
        EXPECT_EQ(*back, a) << s;
    }
}

TEST(Ipv4AddrOrder, FollowsNumericValue) {
    EXPECT_LT(*Ipv4Addr::parse("9.255.255.255"), *Ipv4Addr::parse("10.0.0.0"));
    EXPECT_EQ(std::hash<Ipv4Addr>{}(Ipv4Addr{7}), std::hash<Ipv4Addr>{}(Ipv4Addr{7}));
}

TEST(MacAddrToString, LowercaseColonHex) {
    EXPECT_EQ((MacAddr{{0x02, 0xab, 0x0c, 0x00, 0xff, 0x10}}).to_string(), "02:ab:0c:00:ff:10");
    EXPECT_EQ(MacAddr{}.to_string(), "00:00:00:00:00:00");
}

// --- Endpoint --------------------------------------------------------------

TEST(EndpointParse, AcceptsIpColonPort) {
    const auto e = Endpoint::parse("10.0.0.1:8080");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->ip, Ipv4Addr{0x0a000001});
    EXPECT_EQ(e->port, Port{8080});
    EXPECT_EQ(e->to_string(), "10.0.0.1:8080");

    const auto lo = Endpoint::parse("0.0.0.0:1");
    ASSERT_TRUE(lo.has_value());
    EXPECT_EQ(lo->port, Port{1});
    const auto hi = Endpoint::parse("255.255.255.255:65535");
    ASSERT_TRUE(hi.has_value());
    EXPECT_EQ(hi->port, Port{65535});
    EXPECT_EQ(hi->ip, Ipv4Addr{0xffffffff});
}

TEST(EndpointParse, RejectsBadPortsAndAddresses) {
    const char* bad[] = {
        "10.0.0.1:0",     "10.0.0.1:65536", "10.0.0.1:99999", "10.0.0.1:123456",
        "10.0.0.1:",      "10.0.0.1",       ":80",            "",
        "10.0.0.1:80x",   "10.0.0.1:x80",   "10.0.0.1:-1",    "10.0.0.1:+80",
        "10.0.0.1: 80",   "10.0.0.1:80 ",   "10.0.0.1::80",   "10.0.0.1:80:81",
        "10.0.0.256:80",  "010.0.0.1:80",   "host:80",        "[::1]:80",
        "10.0.0.1:4294967297",
    };
    for (const char* text : bad) EXPECT_EQ(Endpoint::parse(text), std::nullopt) << '"' << text << '"';
}

TEST(EndpointParse, ToStringRoundTrip) {
    std::mt19937 rng(7);
    for (int i = 0; i < 2000; ++i) {
        const Endpoint e{Ipv4Addr{static_cast<std::uint32_t>(rng())},
                         Port{static_cast<std::uint16_t>(1 + rng() % 65535)}};
        const auto back = Endpoint::parse(e.to_string());
        ASSERT_TRUE(back.has_value()) << e.to_string();
        EXPECT_EQ(*back, e);
    }
}

// --- SeqNum / SeqDelta -------------------------------------------------------

TEST(SeqNumOrder, BeforeAfterPlain) {
    const SeqNum a{100}, b{200};
    EXPECT_TRUE(a.before(b));
    EXPECT_FALSE(b.before(a));
    EXPECT_TRUE(b.after(a));
    EXPECT_FALSE(a.after(b));
    EXPECT_FALSE(a.before(a));
    EXPECT_FALSE(a.after(a));
    EXPECT_TRUE(a.before_or_eq(a));
    EXPECT_TRUE(a.after_or_eq(a));
    EXPECT_TRUE(a.before_or_eq(b));
    EXPECT_FALSE(b.before_or_eq(a));
    EXPECT_TRUE(b.after_or_eq(a));
    EXPECT_FALSE(a.after_or_eq(b));
}

TEST(SeqNumOrder, AcrossTheWrap) {
    const SeqNum late_old{0xfffffff0u};
    const SeqNum early_new{0x00000010u};
    EXPECT_TRUE(late_old.before(early_new));
    EXPECT_TRUE(early_new.after(late_old));
    EXPECT_FALSE(early_new.before(late_old));
    EXPECT_TRUE(SeqNum{0xffffffffu}.before(SeqNum{0}));
    EXPECT_TRUE(SeqNum{0}.after(SeqNum{0xffffffffu}));
    // Just under half the space apart: still ordered, both ways round the wrap.
    EXPECT_TRUE(SeqNum{0}.before(SeqNum{0x7fffffffu}));
    EXPECT_TRUE(SeqNum{0x80000001u}.before(SeqNum{0}));
    EXPECT_TRUE(SeqNum{0xc0000000u}.before(SeqNum{0x3fffffffu}));
}

TEST(SeqNumOrder, MaxPicksLaterInSerialOrder) {
    EXPECT_EQ(SeqNum::max(SeqNum{0xfffffff0u}, SeqNum{0x10}), SeqNum{0x10});
    EXPECT_EQ(SeqNum::max(SeqNum{0x10}, SeqNum{0xfffffff0u}), SeqNum{0x10});
    EXPECT_EQ(SeqNum::max(SeqNum{5}, SeqNum{7}), SeqNum{7});
    EXPECT_EQ(SeqNum::max(SeqNum{7}, SeqNum{5}), SeqNum{7});
    EXPECT_EQ(SeqNum::max(SeqNum{9}, SeqNum{9}), SeqNum{9});
}

TEST(SeqNumArithmetic, WrapsModulo2To32) {
    EXPECT_EQ(SeqNum{0xfffffff0u} + 0x20u, SeqNum{0x10});
    EXPECT_EQ(SeqNum{0x10} - 0x20u, SeqNum{0xfffffff0u});
    EXPECT_EQ(SeqNum{0xffffffffu} + 1u, SeqNum{0});
    EXPECT_EQ((SeqNum{0x10} - SeqNum{0xfffffff0u}).value, 0x20u);
    EXPECT_EQ((SeqNum{0x10} - SeqNum{0xfffffff0u}).as_signed(), 32);
    EXPECT_EQ((SeqNum{0xfffffff0u} - SeqNum{0x10}).as_signed(), -32);
    EXPECT_EQ((SeqNum{5} - SeqNum{5}).value, 0u);
}

TEST(SeqDeltaArithmetic, NegationAndApplication) {
    const SeqDelta d = SeqNum{1000} - SeqNum{400};
    EXPECT_EQ(d.as_signed(), 600);
    EXPECT_EQ((-d).as_signed(), -600);
    EXPECT_EQ((-d).value, 0u - 600u);
    EXPECT_EQ(-(-d), d);
    EXPECT_EQ(SeqNum{400} + d, SeqNum{1000});
    EXPECT_EQ(SeqNum{1000} - d, SeqNum{400});
    EXPECT_EQ(SeqNum{1000} + (-d), SeqNum{400});
    // Translation across the wrap, as the rewriter does it: seq + delta.
    const SeqDelta shift = SeqNum{0x00000100u} - SeqNum{0xffffff00u};
    EXPECT_EQ(shift.as_signed(), 0x200);
    EXPECT_EQ(SeqNum{0xfffffff0u} + shift, SeqNum{0x000001f0u});
    EXPECT_EQ(SeqNum{0x000001f0u} - shift, SeqNum{0xfffffff0u});
    EXPECT_EQ(-SeqDelta{0}, SeqDelta{0});
    EXPECT_EQ((-SeqDelta{0x80000000u}).value, 0x80000000u);
}

TEST(SeqDeltaArithmetic, RandomRoundTrip) {
    std::mt19937 rng(99);
    for (int i = 0; i < 10000; ++i) {
        const SeqNum a{static_cast<std::uint32_t>(rng())};
        const SeqNum b{static_cast<std::uint32_t>(rng())};
        const SeqDelta d = b - a;
        EXPECT_EQ(a + d, b);
        EXPECT_EQ(b - d, a);
        EXPECT_EQ(b + (-d), a);
        if (d.as_signed() > 0) {
            EXPECT_TRUE(a.before(b));
        }
        if (d.as_signed() < 0 && d.value != 0x80000000u) {
            EXPECT_TRUE(a.after(b));
        }
    }
}

}  // namespace
}  // namespace migware::sniffer
