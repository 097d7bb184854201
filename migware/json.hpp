#pragma once
// A small, strict JSON (RFC 8259) value, parser and serializer for the control
// protocol (CONTROL.md), shared by the daemon and migctl.
//
// - Objects keep insertion order (replies read the way they were built).
// - Integers are exact: negative ones as int64, non-negative ones as uint64.
//   An integer literal outside both ranges is read as a double, as RFC 8259
//   §6 allows; a number with a fraction or exponent is always a double.
// - Duplicate keys in one object are an error: a request that says two
//   things must not be read as either of them.
// - Bad input is a value (ParseError), never an exception, never a crash;
//   running out of input is told apart from wrong input (Truncated vs
//   Invalid), so a reader can tell "wait for more" from "reject".

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace migware::json {

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

enum class Type : std::uint8_t { Null, Bool, Integer, Double, String, Array, Object };
std::string_view name_of(Type t);

class Value;
struct Member;
using Array = std::vector<Value>;
using Object = std::vector<Member>;  // insertion order, unique keys

class Value {
public:
    Value() = default;
    Value(std::nullptr_t) {}                                         // NOLINT
    Value(bool b) : v_(b) {}                                         // NOLINT
    template <class I>
        requires(std::is_integral_v<I> && !std::is_same_v<I, bool>)
    Value(I i) {                                                     // NOLINT
        if constexpr (std::is_signed_v<I>) {
            if (i < 0) {
                v_ = static_cast<std::int64_t>(i);
                return;
            }
        }
        v_ = static_cast<std::uint64_t>(i);
    }
    Value(double d) : v_(d) {}                                       // NOLINT
    Value(std::string s) : v_(std::move(s)) {}                       // NOLINT
    Value(std::string_view s) : v_(std::string(s)) {}                // NOLINT
    Value(const char* s) : v_(std::string(s)) {}                     // NOLINT
    Value(Array a) : v_(std::move(a)) {}                             // NOLINT
    Value(Object o) : v_(std::move(o)) {}                            // NOLINT

    /// Builds an object; a repeated key keeps its first position and the last value.
    static Value object(std::initializer_list<std::pair<std::string_view, Value>> members = {});
    static Value array(std::initializer_list<Value> items = {});

    Type type() const;
    bool is_null() const { return type() == Type::Null; }
    bool is_bool() const { return type() == Type::Bool; }
    bool is_integer() const { return type() == Type::Integer; }
    bool is_number() const { return type() == Type::Integer || type() == Type::Double; }
    bool is_string() const { return type() == Type::String; }
    bool is_array() const { return type() == Type::Array; }
    bool is_object() const { return type() == Type::Object; }

    // Typed reads: a wrong type or an integer that does not fit gives nullptr/nullopt.
    std::optional<bool> as_bool() const;
    std::optional<std::int64_t> as_i64() const;
    std::optional<std::uint64_t> as_u64() const;
    std::optional<double> as_double() const;  // integers convert (may round above 2^53)
    const std::string* as_string() const;
    const Array* as_array() const;
    const Object* as_object() const;
    Array* as_array();
    Object* as_object();

    /// Member lookup; nullptr when this is not an object or has no such key.
    const Value* find(std::string_view key) const;
    /// Member lookup for chained reads (v["primary"]["rtt_us"]): a null value when absent.
    const Value& operator[](std::string_view key) const;
    /// Array element, or a null value when out of range or not an array.
    const Value& operator[](std::size_t index) const;

    /// Object: replaces the value of `key` in place or appends it. A null value becomes {}.
    Value& set(std::string_view key, Value v);
    /// Array: appends. A null value becomes [].
    Value& push_back(Value v);

    friend bool operator==(const Value& a, const Value& b);

private:
    std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string, Array,
                 Object>
        v_;
};

struct Member {
    std::string key;
    Value value;
    friend bool operator==(const Member&, const Member&) = default;
};

struct ParseLimits {
    std::size_t max_depth = 64;               // nested arrays/objects
    std::size_t max_bytes = 16u << 20;        // whole document
    std::size_t max_string_bytes = 4u << 20;  // one string (after unescaping)
    std::size_t max_items = 1u << 20;         // elements + members in the whole document
};

struct ParseError {
    enum class Kind : std::uint8_t {
        Truncated,  // the input ended inside a value: a longer input might parse
        Invalid,    // wrong input
        TooDeep,    // nesting over ParseLimits::max_depth
        TooLarge,   // over a size limit
    };
    Kind kind = Kind::Invalid;
    std::size_t offset = 0;  // byte offset where the problem was seen
    std::string what;        // e.g. "expected ',' or '}'"

    /// One line: "json: at byte 17: expected ',' or '}'".
    std::string message() const;
};

using ParseResult = Expected<Value, ParseError>;

/// Parses exactly one JSON value, optionally surrounded by whitespace.
ParseResult parse(std::string_view text, const ParseLimits& limits = {});

/// Compact, one line, no trailing newline. Non-finite doubles become null
/// (JSON cannot say them); doubles always carry a '.' or an exponent so they
/// read back as doubles.
std::string dump(const Value& v);
void dump_to(std::string& out, const Value& v);
void dump_string_to(std::string& out, std::string_view s);

}  // namespace migware::json
