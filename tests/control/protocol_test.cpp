// control/protocol: the control protocol's JSON on nlohmann-json (CONTROL.md).
// What nlohmann does not do by itself is checked hardest: duplicate keys
// refused, the depth limit, reads that never throw, one-line errors, exact
// integers, and the request envelope (v, cmd, id echoed).

#include "control/protocol.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace migware::control {
namespace {

Json ok(std::string_view text) {
    auto r = parse(text);
    EXPECT_TRUE(r) << text << " -> " << (r ? "" : r.error().message());
    return r ? r.value() : Json();
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

TEST(Protocol, ParsesEveryKindOfValue) {
    const Json v = ok(kDoc);
    ASSERT_TRUE(v.is_object());
    EXPECT_EQ(as_u64(member(v, "v")), 1u);
    EXPECT_EQ(*as_string(member(v, "id")),
              std::string("a\"b\\c/d\b\f\n\r\t\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    EXPECT_EQ(as_bool(member(v, "ok")), true);
    const Json& r = member(v, "result");
    EXPECT_EQ(*as_string(member(r, "state")), "proxy");
    EXPECT_EQ(as_i64(member(r, "n")), -42);
    EXPECT_EQ(as_u64(member(r, "n")), std::nullopt);
    EXPECT_EQ(as_u64(member(r, "big")), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(as_i64(member(r, "big")), std::nullopt);
    EXPECT_EQ(as_i64(member(r, "min")), std::numeric_limits<std::int64_t>::min());
    EXPECT_TRUE(member(r, "d").is_number_float());
    EXPECT_DOUBLE_EQ(*as_double(member(r, "d")), -1.5e-3);
    EXPECT_EQ(as_i64(member(r, "z")), 0);
    EXPECT_EQ(as_bool(member(r, "f")), false);
    EXPECT_TRUE(member(r, "nothing").is_null());
    EXPECT_TRUE(has(r, "nothing"));
    EXPECT_FALSE(has(r, "absent"));
    EXPECT_TRUE(element(member(member(r, "absent"), "deeper"), 3).is_null());  // chained reads never throw
    EXPECT_TRUE(member(element(r, 0), "x").is_null());                       // not an array, not an object
    ASSERT_NE(as_array(member(r, "list")), nullptr);
    EXPECT_EQ(as_array(member(r, "list"))->size(), 5u);
    EXPECT_EQ(as_array(member(r, "state")), nullptr);
    EXPECT_TRUE(element(member(element(element(member(r, "list"), 4), 1), "y"), 0).is_null());
    EXPECT_EQ(*as_string(member(r, "utf8")), "héllo €😀");
    // Typed reads refuse the other types.
    EXPECT_EQ(as_u64(member(r, "f")), std::nullopt);   // true/false is not 1/0
    EXPECT_EQ(as_u64(member(r, "d")), std::nullopt);
    EXPECT_EQ(as_bool(member(r, "z")), std::nullopt);
    EXPECT_EQ(as_string(member(r, "z")), nullptr);
}

TEST(Protocol, RoundTripIsStableAndKeepsInsertionOrder) {
    const Json v = ok(kDoc);
    const std::string once = dump(v);
    const Json again = ok(once);
    EXPECT_EQ(v, again);
    EXPECT_EQ(dump(again), once);
    EXPECT_EQ(once.rfind(R"({"v":1,"id":)", 0), 0u);
    EXPECT_EQ(dump(ok(R"({"z":1,"a":2,"m":3})")), R"({"z":1,"a":2,"m":3})");
}

TEST(Protocol, DumpIsOneLineWithEveryControlEscaped) {
    Json a = Json::array({-1, std::uint64_t{18446744073709551615u}, 0.5, 2.0, nullptr, Json::array({true, false})});
    EXPECT_EQ(dump(a), R"([-1,18446744073709551615,0.5,2.0,null,[true,false]])");
    EXPECT_EQ(dump(Json(std::numeric_limits<double>::infinity())), "null");
    EXPECT_EQ(dump(Json(std::numeric_limits<double>::quiet_NaN())), "null");
    std::string all;
    for (int c = 0; c < 128; ++c) all += static_cast<char>(c);
    const std::string out = dump(Json(all));
    for (char c : out) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << "raw control byte in " << out;
    EXPECT_EQ(*as_string(ok(out)), all);
    // Invalid UTF-8 from the daemon's side is replaced, never thrown.
    const std::string replaced = dump(Json(std::string("eth\xff" "0")));
    EXPECT_EQ(replaced, "\"eth\xef\xbf\xbd" "0\"");
}

TEST(Protocol, Numbers) {
    EXPECT_EQ(as_u64(ok("0")), 0u);
    EXPECT_EQ(as_i64(ok("-0")), 0);
    EXPECT_EQ(as_i64(ok("9223372036854775807")), std::numeric_limits<std::int64_t>::max());
    EXPECT_EQ(as_u64(ok("9223372036854775808")), 9223372036854775808u);
    EXPECT_EQ(as_i64(ok("9223372036854775808")), std::nullopt);
    EXPECT_EQ(as_u64(ok("18446744073709551615")), std::numeric_limits<std::uint64_t>::max());
    // Beyond the exact ranges: a double (RFC 8259 §6).
    EXPECT_TRUE(ok("18446744073709551616").is_number_float());
    EXPECT_TRUE(ok("-9223372036854775809").is_number_float());
    EXPECT_TRUE(ok("1.0").is_number_float());
    EXPECT_EQ(as_u64(ok("1.0")), std::nullopt);  // "v":1.0 is not version 1
    EXPECT_EQ(as_i64(ok("1.5")), std::nullopt);
    EXPECT_EQ(as_double(ok("3")), 3.0);
    for (double d : {0.1, -1e-300, 1.7976931348623157e308, 5e-324, 123456789.125}) {
        const Json back = ok(dump(Json(d)));
        EXPECT_EQ(*as_double(back), d) << dump(Json(d));
    }
    EXPECT_EQ(dump(Json(0.1)), "0.1");
}

TEST(Protocol, MalformedInputIsRejectedWithOneLine) {
    const char* cases[] = {
        "", "   ", "01", "-01", "+1", ".5", "1.", "1.e3", "1e", "-", "--1", "0x10", "1e400",
        "NaN", "Infinity", "tru", "nul", "truex", "True", "[1,]", "[,1]", "[1 2]", "{\"a\":1,}",
        "{\"a\" 1}", "{a:1}", "{'a':1}", "{\"a\":}", "{1:2}", "[1]]", "{}{}", "\"abc", "\"\\x\"",
        "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\tb\"", "\"a\nb\"", "\"\x01\"",
        "\"\xff\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\x80\"", "// c\n1",
        "/* c */ 1", "[1] x", "\xef\xbb\xbf{}", "{\"a\"::1}",
    };
    for (const char* c : cases) {
        const ParseError e = bad(c);
        const std::string m = e.message();
        EXPECT_EQ(m.find('\n'), std::string::npos) << c;
        EXPECT_EQ(m.rfind("json: at byte ", 0), 0u) << m;
        EXPECT_EQ(m.find("[json.exception"), std::string::npos) << m;
    }
    // A NUL inside a string, as bytes.
    EXPECT_FALSE(parse(std::string_view("\"sta\0tus\"", 9)));
}

TEST(Protocol, DuplicateKeysAreRejected) {
    EXPECT_EQ(bad(R"({"cmd":"status","cmd":"metrics"})").what, R"(duplicate key "cmd")");
    std::string big = "{";
    for (int i = 0; i < 400; ++i) big += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
    EXPECT_TRUE(parse(big + "\"k400\":0}"));
    EXPECT_EQ(bad(big + "\"k7\":0}").what, R"(duplicate key "k7")");
    EXPECT_FALSE(parse(R"({"a":{"b":1,"b":2}})"));
    EXPECT_FALSE(parse(R"({"a":1,"b":{"c":1},"a":2})"));  // after a nested object closed
    // The same key in sibling or nested objects is fine.
    EXPECT_TRUE(parse(R"([{"a":1},{"a":2}])"));
    EXPECT_TRUE(parse(R"({"a":{"a":{"a":1}}})"));
    // Escapes are undone before the comparison.
    EXPECT_FALSE(parse(R"({"a":1,"\u0061":2})"));
}

TEST(Protocol, TruncationAtEveryLengthFailsCleanly) {
    for (const std::string& doc : {kDoc, std::string(R"([1,-2.5e+10,"\ud83d\ude00",true,null])"),
                                   std::string(R"({"a":[{"b":"\u00e9"}],"c":false})")}) {
        ASSERT_TRUE(parse(doc));
        for (std::size_t n = 0; n < doc.size(); ++n) {
            auto r = parse(std::string_view(doc).substr(0, n));
            // Every document is an object or an array: no proper prefix is whole.
            ASSERT_FALSE(r) << "prefix " << n << " accepted";
            EXPECT_LE(r.error().offset, n + 1);
        }
    }
}

TEST(Protocol, EveryByteFlipNeverCrashes) {
    const std::string doc = R"({"a":[1,2.5,"x\u00e9",{"b":null}],"c":true})";
    for (std::size_t i = 0; i < doc.size(); ++i) {
        for (int b = 0; b < 256; ++b) {
            std::string m = doc;
            m[i] = static_cast<char>(b);
            auto r = parse(m);
            if (!r) {
                EXPECT_FALSE(r.error().message().empty());
            }
        }
    }
}

TEST(Protocol, DepthLimit) {
    auto nested = [](std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
    EXPECT_TRUE(parse(nested(64)));
    EXPECT_EQ(bad(nested(65)).what, "nesting deeper than 64");
    EXPECT_FALSE(parse(nested(100000)));  // no stack overflow
    std::string objs;
    for (int i = 0; i < 65; ++i) objs += "{\"a\":";
    objs += "1" + std::string(65, '}');
    EXPECT_FALSE(parse(objs));
    ParseLimits shallow;
    shallow.max_depth = 2;
    EXPECT_TRUE(parse("[[1]]", shallow));
    EXPECT_FALSE(parse("[[[1]]]", shallow));
}

// ---- the request envelope

Json reply_of(const Expected<Request, std::string>& r) {
    EXPECT_FALSE(r);
    return r ? Json() : ok(r.error());
}

TEST(Protocol, RequestEnvelope) {
    auto r = parse_request(R"({"v":1,"cmd":"status","id":"x1","extra":[1]})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cmd, "status");
    EXPECT_EQ(r->id, "x1");
    EXPECT_EQ(member(r->body, "extra"), Json::array({1}));
    auto no_id = parse_request(R"({"v":1,"cmd":"status"})");
    ASSERT_TRUE(no_id);
    EXPECT_TRUE(no_id->id.is_null());

    // Every failure is one reply line, ok:false, the id echoed when readable.
    const Json v2 = reply_of(parse_request(R"({"v":2,"cmd":"status","id":9})"));
    EXPECT_EQ(dump(v2), R"x({"v":1,"id":9,"ok":false,"error":"unsupported protocol version 2 (this daemon speaks 1)"})x");
    EXPECT_EQ(member(reply_of(parse_request(R"({"cmd":"status"})")), "error"),
              "unsupported protocol version none (this daemon speaks 1)");
    EXPECT_EQ(member(reply_of(parse_request(R"({"v":"1","cmd":"status"})")), "error"),
              "unsupported protocol version \"1\" (this daemon speaks 1)");
    EXPECT_EQ(member(reply_of(parse_request(R"({"v":1.0,"cmd":"status"})")), "error"),
              "unsupported protocol version 1.0 (this daemon speaks 1)");
    const Json nocmd = reply_of(parse_request(R"({"v":1,"cmd":5,"id":[1,2]})"));
    EXPECT_EQ(member(nocmd, "id"), Json::array({1, 2}));
    EXPECT_EQ(member(nocmd, "ok"), false);
    const Json arr = reply_of(parse_request(R"([{"v":1,"cmd":"status"}])"));
    EXPECT_EQ(member(arr, "error"), "a request is a JSON object");
    EXPECT_TRUE(member(arr, "id").is_null());
    const Json dup = reply_of(parse_request(R"({"v":1,"cmd":"status","cmd":"metrics","id":3})"));
    EXPECT_EQ(member(dup, "error").get<std::string>().rfind("malformed request: json: at byte ", 0), 0u);
    EXPECT_NE(member(dup, "error").get<std::string>().find("duplicate key \"cmd\""), std::string::npos);
    EXPECT_TRUE(member(dup, "id").is_null());  // a malformed request has no trustworthy id
}

TEST(Protocol, Replies) {
    EXPECT_EQ(ok_reply(Json("a"), Json{{"n", 1}}), R"({"v":1,"id":"a","ok":true,"result":{"n":1}})");
    EXPECT_EQ(error_reply(Json(), "bad\nthing"), R"({"v":1,"id":null,"ok":false,"error":"bad\nthing"})");
}

TEST(Protocol, UintArguments) {
    std::string err;
    const Json req = ok(R"({"a":5,"b":-1,"c":1.5,"d":true,"e":"5","f":18446744073709551615})");
    EXPECT_EQ(uint_arg(req, "a", 0, err), 5u);
    EXPECT_EQ(uint_arg(req, "missing", 7, err), 7u);
    EXPECT_EQ(uint_arg(req, "f", 0, err), std::numeric_limits<std::uint64_t>::max());
    for (const char* k : {"b", "c", "d", "e"}) {
        err.clear();
        EXPECT_EQ(uint_arg(req, k, 0, err), std::nullopt) << k;
        EXPECT_EQ(err, "'" + std::string(k) + "' must be a non-negative integer");
    }
}

}  // namespace
}  // namespace migware::control
