#pragma once
// The control protocol's JSON (CONTROL.md), on nlohmann-json, shared by the
// daemon's control socket and migctl.
//
// - Objects keep insertion order (ordered_json): replies read the way they
//   were built, and `migware replay --json` keys keep their fixed order.
// - Integers are exact: negative ones as int64, non-negative ones as uint64.
//   An integer literal outside both ranges is read as a double (RFC 8259 §6).
// - Duplicate keys in one object are an error: a request that says two things
//   must not be read as either of them. nlohmann keeps the last one, so the
//   parse goes through a SAX handler that refuses them.
// - Nesting deeper than ParseLimits::max_depth is refused.
// - Bad input is a value (the error text), never an exception, never a crash.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

namespace migware::control {

using Json = nlohmann::ordered_json;

/// A value or an error, like C++23 std::expected.
template <class T, class E>
class Expected {
public:
    Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
    Expected(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
    explicit operator bool() const { return v_.index() == 0; }
    bool has_value() const { return v_.index() == 0; }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return std::get<0>(v_); }
    const T& operator*() const& { return std::get<0>(v_); }
    const E& error() const { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

struct ParseLimits {
    std::size_t max_depth = 64;  // nested arrays/objects
};

struct ParseError {
    std::size_t offset = 0;  // byte offset where the problem was seen
    std::string what;        // e.g. "duplicate key \"cmd\""
    /// One line: "json: at byte 17: ...".
    std::string message() const;
};

using ParseResult = Expected<Json, ParseError>;

/// Parses exactly one JSON value, optionally surrounded by whitespace.
ParseResult parse(std::string_view text, const ParseLimits& limits = {});

/// Compact, one line, no trailing newline. Invalid UTF-8 in a string (from a
/// kernel interface name, say) is replaced by U+FFFD rather than thrown.
std::string dump(const Json& v);

// ---- reads that never throw: a wrong type or an absent key gives nullopt/nullptr

/// Member `key` of an object, or a null value (absent key, or not an object):
/// chained reads such as member(member(st, "primary"), "rtt_us") never throw.
const Json& member(const Json& v, std::string_view key);
/// Element `i` of an array, or a null value.
const Json& element(const Json& v, std::size_t i);
/// Whether an object has `key` (a present null counts).
bool has(const Json& v, std::string_view key);
std::optional<bool> as_bool(const Json& v);
/// Exact integers only: 1.0 is not an integer, nor is true.
std::optional<std::uint64_t> as_u64(const Json& v);
std::optional<std::int64_t> as_i64(const Json& v);
/// Any number (integers convert, may round above 2^53).
std::optional<double> as_double(const Json& v);
const std::string* as_string(const Json& v);
/// The value itself when it is an array (object), else nullptr.
const Json* as_array(const Json& v);
const Json* as_object(const Json& v);

// ---- requests and replies

/// A request line that passed the envelope checks: an object with "v":1 and a
/// string "cmd". `body` is the whole request, for the command's arguments.
struct Request {
    Json id;  // null when the request carried none
    std::string cmd;
    Json body;
};

/// Parses one request line. On failure returns the error reply line (the id
/// echoed when it could be read), ready to send.
Expected<Request, std::string> parse_request(std::string_view line);

/// {"v":1,"id":…,"ok":false,"error":"…"} as one line.
std::string error_reply(const Json& id, std::string_view message);
/// {"v":1,"id":…,"ok":true,"result":…} as one line.
std::string ok_reply(const Json& id, Json result);

/// A non-negative integer argument, `dflt` when absent; on a wrong type sets
/// `error` and returns nullopt.
std::optional<std::uint64_t> uint_arg(const Json& req, std::string_view key, std::uint64_t dflt,
                                      std::string& error);

}  // namespace migware::control
