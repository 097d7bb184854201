// migware/json: the strict JSON of the control protocol (CONTROL.md).
// Round trips, every escape, exact integers, malformed input, truncation at
// every length, the depth and size limits, and the duplicate-key policy
// (rejected).

#include "migware/json.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace migware::json {
namespace {

using Kind = ParseError::Kind;

Value ok(std::string_view text) {
    auto r = parse(text);
    EXPECT_TRUE(r) << text << " -> " << (r ? "" : r.error().message());
    return r ? r.value() : Value();
}

ParseError bad(std::string_view text, const ParseLimits& limits = {}) {
    auto r = parse(text, limits);
    EXPECT_FALSE(r) << "accepted: " << text;
    return r ? ParseError{} : r.error();
}

// A document exercising every kind of value, without surrounding whitespace.
const std::string kDoc =
    R"({"v":1,"id":"a\"b\\c\/d\b\f\n\r\t\u0001\u00e9\u20ac\ud83d\ude00","ok":true,)"
    R"("result":{"state":"proxy","n":-42,"big":18446744073709551615,"min":-9223372036854775808,)"
    R"("d":-1.5e-3,"z":0,"f":false,"nothing":null,"list":[1,2.5,[],{},["x",{"y":[null]}]],)"
    R"("utf8":"héllo €😀"}})";

TEST(Json, ParsesEveryKindOfValue) {
    const Value v = ok(kDoc);
    ASSERT_TRUE(v.is_object());
    EXPECT_EQ(v["v"].as_u64(), 1u);
    EXPECT_EQ(*v["id"].as_string(),
              std::string("a\"b\\c/d\b\f\n\r\t\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    EXPECT_EQ(v["ok"].as_bool(), true);
    const Value& r = v["result"];
    EXPECT_EQ(*r["state"].as_string(), "proxy");
    EXPECT_EQ(r["n"].as_i64(), -42);
    EXPECT_EQ(r["n"].as_u64(), std::nullopt);
    EXPECT_EQ(r["big"].as_u64(), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(r["big"].as_i64(), std::nullopt);
    EXPECT_EQ(r["min"].as_i64(), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(r["d"].type(), Type::Double);
    EXPECT_DOUBLE_EQ(*r["d"].as_double(), -1.5e-3);
    EXPECT_EQ(r["z"].as_i64(), 0);
    EXPECT_EQ(r["f"].as_bool(), false);
    EXPECT_TRUE(r["nothing"].is_null());
    EXPECT_TRUE(r.find("nothing") != nullptr);
    EXPECT_TRUE(r.find("absent") == nullptr);
    EXPECT_TRUE(r["absent"]["deeper"][3].is_null());  // chained reads never throw
    EXPECT_EQ(r["list"].as_array()->size(), 5u);
    EXPECT_TRUE(r["list"][4][1]["y"][0].is_null());
    EXPECT_EQ(*r["utf8"].as_string(), "héllo €😀");
}

TEST(Json, RoundTripIsStable) {
    const Value v = ok(kDoc);
    const std::string once = dump(v);
    const Value again = ok(once);
    EXPECT_EQ(v, again);
    EXPECT_EQ(dump(again), once);
    // Key order is insertion order, so the serialized form starts as the input did.
    EXPECT_EQ(once.rfind(R"({"v":1,"id":)", 0), 0u);
}

TEST(Json, ObjectsKeepInsertionOrder) {
    const Value v = ok(R"({"z":1,"a":2,"m":3})");
    std::vector<std::string> keys;
    for (const auto& m : *v.as_object()) keys.push_back(m.key);
    EXPECT_EQ(keys, (std::vector<std::string>{"z", "a", "m"}));
    EXPECT_EQ(dump(v), R"({"z":1,"a":2,"m":3})");
}

TEST(Json, BuildsAndSerializes) {
    Value req = Value::object({{"v", 1}, {"cmd", "connections"}, {"limit", 100}});
    req.set("state", "proxied");
    req.set("limit", 5);  // replaced in place
    EXPECT_EQ(dump(req), R"({"v":1,"cmd":"connections","limit":5,"state":"proxied"})");
    Value a;
    a.push_back(-1);
    a.push_back(std::uint64_t{18446744073709551615u});
    a.push_back(0.5);
    a.push_back(2.0);
    a.push_back(nullptr);
    a.push_back(Value::array({true, false}));
    EXPECT_EQ(dump(a), R"([-1,18446744073709551615,0.5,2.0,null,[true,false]])");
    EXPECT_EQ(dump(Value(std::numeric_limits<double>::infinity())), "null");
    EXPECT_EQ(dump(Value(std::numeric_limits<double>::quiet_NaN())), "null");
    // Same integer from signed and unsigned types is the same value.
    EXPECT_EQ(Value(5), Value(5u));
    EXPECT_EQ(Value(std::int64_t{7}), ok("7"));
}

TEST(Json, EveryEscapeBothWays) {
    const struct {
        const char* json;
        std::string text;
    } cases[] = {
        {R"("\"")", "\""},        {R"("\\")", "\\"},       {R"("\/")", "/"},
        {R"("\b")", "\b"},        {R"("\f")", "\f"},       {R"("\n")", "\n"},
        {R"("\r")", "\r"},        {R"("\t")", "\t"},       {R"("\u0000")", std::string(1, '\0')},
        {R"("\u001f")", "\x1f"},  {R"("\u0041")", "A"},    {R"("\u00E9")", "\xc3\xa9"},
        {R"("\u07ff")", "\xdf\xbf"}, {R"("\u0800")", "\xe0\xa0\x80"},
        {R"("\uffff")", "\xef\xbf\xbf"}, {R"("\ud800\udc00")", "\xf0\x90\x80\x80"},
        {R"("\udbff\udfff")", "\xf4\x8f\xbf\xbf"},
    };
    for (const auto& c : cases) {
        const Value v = ok(c.json);
        ASSERT_TRUE(v.is_string()) << c.json;
        EXPECT_EQ(*v.as_string(), c.text) << c.json;
        EXPECT_EQ(ok(dump(v)), v) << c.json;
    }
    // Serializer: the short escapes, \u00XX for other controls and DEL, "/" left alone.
    EXPECT_EQ(dump(Value(std::string("\"\\/\b\f\n\r\t\x01\x7f", 10))),
              R"("\"\\/\b\f\n\r\t\u0001\u007f")");
    std::string zero(1, '\0');
    EXPECT_EQ(dump(Value(zero)), R"("\u0000")");
    // Every byte value 0..127 round trips.
    std::string all;
    for (int c = 0; c < 128; ++c) all += static_cast<char>(c);
    EXPECT_EQ(*ok(dump(Value(all))).as_string(), all);
}

TEST(Json, Numbers) {
    EXPECT_EQ(ok("0").as_u64(), 0u);
    EXPECT_EQ(ok("-0").as_i64(), 0);
    EXPECT_EQ(ok("9223372036854775807").as_i64(), std::numeric_limits<std::int64_t>::max());
    EXPECT_EQ(ok("9223372036854775808").as_u64(), 9223372036854775808u);
    EXPECT_EQ(ok("9223372036854775808").as_i64(), std::nullopt);
    EXPECT_EQ(ok("18446744073709551615").as_u64(), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(ok("-9223372036854775808").as_i64(), std::numeric_limits<std::int64_t>::min());
    // Beyond the exact ranges: a double (RFC 8259 §6).
    EXPECT_EQ(ok("18446744073709551616").type(), Type::Double);
    EXPECT_DOUBLE_EQ(*ok("18446744073709551616").as_double(), 18446744073709551616.0);
    EXPECT_EQ(ok("-9223372036854775809").type(), Type::Double);
    EXPECT_EQ(ok("1.0").type(), Type::Double);
    EXPECT_EQ(ok("1e2").type(), Type::Double);
    EXPECT_DOUBLE_EQ(*ok("1E+2").as_double(), 100.0);
    EXPECT_DOUBLE_EQ(*ok("-2.5e-1").as_double(), -0.25);
    EXPECT_DOUBLE_EQ(*ok("123.456").as_double(), 123.456);
    EXPECT_EQ(ok("1.5").as_i64(), std::nullopt);
    EXPECT_EQ(ok("3").as_double(), 3.0);
    // Doubles print shortest and read back bit for bit.
    for (double d : {0.1, -1e-300, 1.7976931348623157e308, 5e-324, 123456789.125, -0.0}) {
        const Value back = ok(dump(Value(d)));
        EXPECT_EQ(back.type(), Type::Double) << dump(Value(d));
        EXPECT_EQ(*back.as_double(), d) << dump(Value(d));
    }
    EXPECT_EQ(dump(Value(0.1)), "0.1");
    EXPECT_EQ(dump(Value(1e21)), "1e+21");
}

TEST(Json, MalformedInputIsRejectedWithOneLine) {
    const char* cases[] = {
        "01", "-01", "+1", ".5", "1.", "1.e3", "1e", "-", "--1", "0x10", "1e400", "-1e400",
        "NaN", "Infinity", "-Infinity", "tru", "nul", "truex", "True", "[1,]", "[,1]", "[1 2]",
        "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}", "{\"a\":}", "{1:2}", "[1]]", "{}{}",
        "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"a\tb\"", "\"a\nb\"", "\"\x01\"",
        "\"\xff\"", "\"\xc0\x80\"", "\"\xc1\xbf\"", "\"\xe0\x80\x80\"", "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\x80\"", "\"\xc3\x28\"", "// c\n1",
        "/* c */ 1", "[1] x", "\f1", "\v1", "\xef\xbb\xbf{}", "[\"a\",,]", "{\"a\"::1}",
    };
    for (const char* c : cases) {
        const ParseError e = bad(c);
        const std::string m = e.message();
        EXPECT_EQ(m.find('\n'), std::string::npos) << c;
        EXPECT_EQ(m.rfind("json: at byte ", 0), 0u) << m;
    }
    EXPECT_EQ(bad("[1,]").kind, Kind::Invalid);
    EXPECT_EQ(bad("[1,]").message(), "json: at byte 3: trailing comma in an array");
    EXPECT_EQ(bad("{\"a\" 1}").message(), "json: at byte 5: expected ':', got '1'");
    EXPECT_EQ(bad("").kind, Kind::Truncated);
    EXPECT_EQ(bad("   ").kind, Kind::Truncated);
}

TEST(Json, DuplicateKeysAreRejected) {
    const ParseError e = bad(R"({"cmd":"status","cmd":"metrics"})");
    EXPECT_EQ(e.kind, Kind::Invalid);
    EXPECT_EQ(e.what, R"(duplicate key "cmd")");
    EXPECT_EQ(e.offset, 0u);  // points at the object
    // Also in large objects (the sorted check) and nested ones.
    std::string big = "{";
    for (int i = 0; i < 40; ++i) big += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
    EXPECT_TRUE(parse(big + "\"k40\":0}"));
    EXPECT_EQ(bad(big + "\"k7\":0}").what, R"(duplicate key "k7")");
    EXPECT_FALSE(parse(R"({"a":{"b":1,"b":2}})"));
    // The same key in sibling objects is fine.
    EXPECT_TRUE(parse(R"([{"a":1},{"a":2}])"));
}

TEST(Json, TruncationAtEveryLengthFailsCleanly) {
    for (const std::string& doc : {kDoc, std::string(R"([1,-2.5e+10,"\ud83d\ude00",true,null])"),
                                   std::string(R"({"a":[{"b":"\u00e9"}],"c":false})")}) {
        ASSERT_TRUE(parse(doc));
        for (std::size_t n = 0; n < doc.size(); ++n) {
            auto r = parse(std::string_view(doc).substr(0, n));
            ASSERT_FALSE(r) << "prefix " << n << " accepted";
            EXPECT_EQ(r.error().kind, Kind::Truncated)
                << "prefix " << n << ": " << r.error().message();
            EXPECT_LE(r.error().offset, n);
        }
    }
}

TEST(Json, EveryByteFlipNeverCrashes) {
    // A cheap fuzz pass: every single-byte substitution parses or fails, no crash.
    const std::string doc = R"({"a":[1,2.5,"x\u00e9",{"b":null}],"c":true})";
    for (std::size_t i = 0; i < doc.size(); ++i) {
        for (int b = 0; b < 256; b += 7) {
            std::string m = doc;
            m[i] = static_cast<char>(b);
            auto r = parse(m);
            if (!r) {
                EXPECT_FALSE(r.error().message().empty());
            }
        }
    }
}

TEST(Json, DepthLimit) {
    auto nested = [](std::size_t depth) {
        return std::string(depth, '[') + std::string(depth, ']');
    };
    EXPECT_TRUE(parse(nested(64)));
    const ParseError e = bad(nested(65));
    EXPECT_EQ(e.kind, Kind::TooDeep);
    EXPECT_EQ(e.offset, 64u);
    EXPECT_EQ(bad(nested(100000)).kind, Kind::TooDeep);  // no stack overflow
    std::string objs;
    for (int i = 0; i < 65; ++i) objs += "{\"a\":";
    objs += "1" + std::string(65, '}');
    EXPECT_EQ(bad(objs).kind, Kind::TooDeep);
    ParseLimits shallow;
    shallow.max_depth = 2;
    EXPECT_TRUE(parse("[[1]]", shallow));
    EXPECT_EQ(bad("[[[1]]]", shallow).kind, Kind::TooDeep);
}

TEST(Json, SizeLimits) {
    ParseLimits l;
    l.max_bytes = 15;
    EXPECT_TRUE(parse(R"({"a":"0123456"})", l));
    EXPECT_EQ(bad(R"({"a":"01234567"})", l).kind, Kind::TooLarge);
    l = {};
    l.max_string_bytes = 4;
    EXPECT_TRUE(parse(R"(["abcd"])", l));
    EXPECT_EQ(bad(R"(["abcde"])", l).kind, Kind::TooLarge);
    EXPECT_EQ(bad(R"({"abcde":1})", l).kind, Kind::TooLarge);
    l = {};
    l.max_items = 3;
    EXPECT_TRUE(parse("[1,2,3]", l));
    EXPECT_EQ(bad("[1,2,3,4]", l).kind, Kind::TooLarge);
    EXPECT_EQ(bad(R"({"a":1,"b":[2,3]})", l).kind, Kind::TooLarge);
}

TEST(Json, WhitespaceAroundAndInside) {
    EXPECT_EQ(ok(" \t\r\n{ \"a\" : [ 1 , 2 ] }\n "), ok(R"({"a":[1,2]})"));
    EXPECT_EQ(dump(ok("[ ]")), "[]");
    EXPECT_EQ(dump(ok("{ }")), "{}");
}

}  // namespace
}  // namespace migware::json
