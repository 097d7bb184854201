#include "migware/json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

namespace migware::json {

std::string_view name_of(Type t) {
    switch (t) {
        case Type::Null: return "null";
        case Type::Bool: return "bool";
        case Type::Integer: return "integer";
        case Type::Double: return "double";
        case Type::String: return "string";
        case Type::Array: return "array";
        case Type::Object: return "object";
    }
    return "?";
}

// ---- Value -----------------------------------------------------------------

Value Value::object(std::initializer_list<std::pair<std::string_view, Value>> members) {
    Value v{Object{}};
    for (const auto& [k, m] : members) v.set(k, m);
    return v;
}

Value Value::array(std::initializer_list<Value> items) { return Value{Array(items)}; }

Type Value::type() const {
    switch (v_.index()) {
        case 0: return Type::Null;
        case 1: return Type::Bool;
        case 2:
        case 3: return Type::Integer;
        case 4: return Type::Double;
        case 5: return Type::String;
        case 6: return Type::Array;
        default: return Type::Object;
    }
}

std::optional<bool> Value::as_bool() const {
    if (const auto* b = std::get_if<bool>(&v_)) return *b;
    return std::nullopt;
}

std::optional<std::int64_t> Value::as_i64() const {
    if (const auto* i = std::get_if<std::int64_t>(&v_)) return *i;
    if (const auto* u = std::get_if<std::uint64_t>(&v_)) {
        if (*u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return static_cast<std::int64_t>(*u);
    }
    return std::nullopt;
}

std::optional<std::uint64_t> Value::as_u64() const {
    // Negative integers are always stored as int64, so a uint64 is the whole story.
    if (const auto* u = std::get_if<std::uint64_t>(&v_)) return *u;
    return std::nullopt;
}

std::optional<double> Value::as_double() const {
    if (const auto* d = std::get_if<double>(&v_)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*i);
    if (const auto* u = std::get_if<std::uint64_t>(&v_)) return static_cast<double>(*u);
    return std::nullopt;
}

const std::string* Value::as_string() const { return std::get_if<std::string>(&v_); }
const Array* Value::as_array() const { return std::get_if<Array>(&v_); }
const Object* Value::as_object() const { return std::get_if<Object>(&v_); }
Array* Value::as_array() { return std::get_if<Array>(&v_); }
Object* Value::as_object() { return std::get_if<Object>(&v_); }

const Value* Value::find(std::string_view key) const {
    const auto* o = as_object();
    if (o == nullptr) return nullptr;
    for (const auto& m : *o)
        if (m.key == key) return &m.value;
    return nullptr;
}

namespace {
const Value& null_value() {
    static const Value kNull;
    return kNull;
}
}  // namespace

const Value& Value::operator[](std::string_view key) const {
    const Value* v = find(key);
    return v != nullptr ? *v : null_value();
}

const Value& Value::operator[](std::size_t index) const {
    const auto* a = as_array();
    return a != nullptr && index < a->size() ? (*a)[index] : null_value();
}

Value& Value::set(std::string_view key, Value v) {
    if (is_null()) v_ = Object{};
    auto& o = std::get<Object>(v_);  // throws on misuse: a programming error, not input
    for (auto& m : o) {
        if (m.key == key) {
            m.value = std::move(v);
            return m.value;
        }
    }
    o.push_back(Member{std::string(key), std::move(v)});
    return o.back().value;
}

Value& Value::push_back(Value v) {
    if (is_null()) v_ = Array{};
    auto& a = std::get<Array>(v_);
    a.push_back(std::move(v));
    return a.back();
}

bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

std::string ParseError::message() const {
    return "json: at byte " + std::to_string(offset) + ": " + what;
}

// ---- parser ----------------------------------------------------------------

namespace {

class Parser {
public:
    Parser(std::string_view s, const ParseLimits& limits) : s_(s), limits_(limits) {}

    ParseResult run() {
        if (s_.size() > limits_.max_bytes)
            return ParseError{ParseError::Kind::TooLarge, limits_.max_bytes,
                              "document longer than " + std::to_string(limits_.max_bytes) +
                                  " bytes"};
        Value v;
        skip_ws();
        if (!parse_value(v, 0)) return std::move(err_);
        skip_ws();
        if (pos_ != s_.size()) {
            fail(ParseError::Kind::Invalid, "unexpected data after the value");
            return std::move(err_);
        }
        return v;
    }

private:
    using Kind = ParseError::Kind;

    bool fail(Kind k, std::string what) {
        err_ = ParseError{k, pos_, std::move(what)};
        return false;
    }
    bool truncated(std::string_view inside) {
        return fail(Kind::Truncated, "input ends inside " + std::string(inside));
    }
    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return s_[pos_]; }

    void skip_ws() {
        // RFC 8259 §2: exactly these four.
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
            ++pos_;
    }

    bool count_item() {
        if (++items_ > limits_.max_items)
            return fail(Kind::TooLarge, "more than " + std::to_string(limits_.max_items) +
                                            " elements and members");
        return true;
    }

    bool parse_value(Value& out, std::size_t depth) {
        if (at_end()) return truncated("a value");
        switch (peek()) {
            case '{': return parse_object(out, depth + 1);
            case '[': return parse_array(out, depth + 1);
            case '"': {
                std::string s;
                if (!parse_string(s)) return false;
                out = Value(std::move(s));
                return true;
            }
            case 't': return parse_literal("true", Value(true), out);
            case 'f': return parse_literal("false", Value(false), out);
            case 'n': return parse_literal("null", Value(), out);
            default:
                if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number(out);
                return fail(Kind::Invalid, "expected a value, got " + describe(peek()));
        }
    }

    static std::string describe(char c) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", u);
        return std::string("byte ") + buf;
    }

    bool parse_literal(std::string_view word, Value v, Value& out) {
        const std::size_t avail = std::min(word.size(), s_.size() - pos_);
        for (std::size_t i = 0; i < avail; ++i) {
            if (s_[pos_ + i] != word[i]) {
                pos_ += i;
                return fail(Kind::Invalid, "invalid literal (expected " + std::string(word) + ")");
            }
        }
        if (avail < word.size()) {
            pos_ += avail;
            return truncated("a literal");
        }
        pos_ += word.size();
        out = std::move(v);
        return true;
    }

    static bool is_digit(char c) { return c >= '0' && c <= '9'; }

    bool parse_number(Value& out) {
        const std::size_t start = pos_;
        bool integer = true;
        if (peek() == '-') {
            ++pos_;
            if (at_end()) return truncated("a number");
        }
        if (peek() == '0') {
            ++pos_;
            if (!at_end() && is_digit(peek())) return fail(Kind::Invalid, "leading zero in a number");
        } else if (is_digit(peek())) {
            while (!at_end() && is_digit(peek())) ++pos_;
        } else {
            return fail(Kind::Invalid, "expected a digit, got " + describe(peek()));
        }
        if (!at_end() && peek() == '.') {
            integer = false;
            ++pos_;
            if (at_end()) return truncated("a number");
            if (!is_digit(peek())) return fail(Kind::Invalid, "expected a digit after '.'");
            while (!at_end() && is_digit(peek())) ++pos_;
        }
        if (!at_end() && (peek() == 'e' || peek() == 'E')) {
            integer = false;
            ++pos_;
            if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
            if (at_end()) return truncated("a number");
            if (!is_digit(peek())) return fail(Kind::Invalid, "expected a digit in the exponent");
            while (!at_end() && is_digit(peek())) ++pos_;
        }
        const char* first = s_.data() + start;
        const char* last = s_.data() + pos_;
        if (integer) {
            if (*first == '-') {
                std::int64_t i = 0;
                const auto r = std::from_chars(first, last, i);
                if (r.ec == std::errc() && r.ptr == last) {
                    out = Value(i);
                    return true;
                }
            } else {
                std::uint64_t u = 0;
                const auto r = std::from_chars(first, last, u);
                if (r.ec == std::errc() && r.ptr == last) {
                    out = Value(u);
                    return true;
                }
            }
            // Out of the exact ranges: RFC 8259 §6 lets us read it as a double.
        }
        double d = 0;
        const auto r = std::from_chars(first, last, d);
        if (r.ec == std::errc::result_out_of_range || !std::isfinite(d)) {
            pos_ = start;
            return fail(Kind::Invalid, "number out of range");
        }
        if (r.ec != std::errc() || r.ptr != last) {
            pos_ = start;
            return fail(Kind::Invalid, "bad number");
        }
        out = Value(d);
        return true;
    }

    static void append_utf8(std::string& s, std::uint32_t cp) {
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else if (cp < 0x800) {
            s += static_cast<char>(0xC0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s += static_cast<char>(0xE0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            s += static_cast<char>(0xF0 | (cp >> 18));
            s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // Four hex digits after "\u"; pos_ at the first digit.
    bool parse_hex4(std::uint32_t& out) {
        out = 0;
        for (int i = 0; i < 4; ++i) {
            if (at_end()) return truncated("a \\u escape");
            const char c = peek();
            std::uint32_t d;
            if (c >= '0' && c <= '9') d = static_cast<std::uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') d = static_cast<std::uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') d = static_cast<std::uint32_t>(c - 'A' + 10);
            else return fail(Kind::Invalid, "bad hex digit in a \\u escape");
            out = (out << 4) | d;
            ++pos_;
        }
        return true;
    }

    bool parse_escape(std::string& s) {
        // pos_ at the character after the backslash.
        if (at_end()) return truncated("a string escape");
        const char c = peek();
        ++pos_;
        switch (c) {
            case '"': s += '"'; return true;
            case '\\': s += '\\'; return true;
            case '/': s += '/'; return true;
            case 'b': s += '\b'; return true;
            case 'f': s += '\f'; return true;
            case 'n': s += '\n'; return true;
            case 'r': s += '\r'; return true;
            case 't': s += '\t'; return true;
            case 'u': break;
            default:
                --pos_;
                return fail(Kind::Invalid, "bad escape \\" + std::string(1, c));
        }
        std::uint32_t cp = 0;
        if (!parse_hex4(cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(Kind::Invalid, "lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            // RFC 8259 §7: a character outside the BMP is a surrogate pair.
            if (s_.size() - pos_ < 2) {
                if (at_end() || peek() == '\\') return truncated("a surrogate pair");
                return fail(Kind::Invalid, "high surrogate not followed by a low one");
            }
            if (s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
                return fail(Kind::Invalid, "high surrogate not followed by a low one");
            pos_ += 2;
            std::uint32_t lo = 0;
            if (!parse_hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(Kind::Invalid, "high surrogate not followed by a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        append_utf8(s, cp);
        return true;
    }

    // One raw UTF-8 sequence starting at pos_ (a byte >= 0x80), Unicode table 3-7.
    bool copy_utf8(std::string& s) {
        const auto b0 = static_cast<unsigned char>(peek());
        std::size_t len;
        unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            len = 2;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            len = 3;
            if (b0 == 0xE0) lo = 0xA0;
            if (b0 == 0xED) hi = 0x9F;  // no UTF-16 surrogates
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            len = 4;
            if (b0 == 0xF0) lo = 0x90;
            if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
        } else {
            return fail(Kind::Invalid, "invalid UTF-8");
        }
        for (std::size_t i = 1; i < len; ++i) {
            if (pos_ + i >= s_.size()) {
                pos_ = s_.size();
                return truncated("a UTF-8 sequence");
            }
            const auto b = static_cast<unsigned char>(s_[pos_ + i]);
            const unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
            if (b < l || b > h) {
                pos_ += i;
                return fail(Kind::Invalid, "invalid UTF-8");
            }
        }
        s.append(s_.data() + pos_, len);
        pos_ += len;
        return true;
    }

    bool parse_string(std::string& s) {
        ++pos_;  // opening quote
        for (;;) {
            if (at_end()) return truncated("a string");
            if (s.size() > limits_.max_string_bytes)
                return fail(Kind::TooLarge, "string longer than " +
                                                std::to_string(limits_.max_string_bytes) + " bytes");
            const char c = peek();
            const auto u = static_cast<unsigned char>(c);
            if (c == '"') {
                ++pos_;
                if (s.size() > limits_.max_string_bytes)
                    return fail(Kind::TooLarge, "string longer than " +
                                                    std::to_string(limits_.max_string_bytes) +
                                                    " bytes");
                return true;
            }
            if (c == '\\') {
                ++pos_;
                if (!parse_escape(s)) return false;
            } else if (u < 0x20) {
                return fail(Kind::Invalid, "unescaped control character in a string");
            } else if (u < 0x80) {
                // Copy the run of plain ASCII in one go.
                std::size_t end = pos_;
                while (end < s_.size()) {
                    const auto b = static_cast<unsigned char>(s_[end]);
                    if (b == '"' || b == '\\' || b < 0x20 || b >= 0x80) break;
                    ++end;
                }
                s.append(s_.data() + pos_, end - pos_);
                pos_ = end;
            } else if (!copy_utf8(s)) {
                return false;
            }
        }
    }

    bool enter(std::size_t depth) {
        if (depth > limits_.max_depth)
            return fail(Kind::TooDeep, "nested deeper than " + std::to_string(limits_.max_depth));
        return true;
    }

    bool parse_array(Value& out, std::size_t depth) {
        if (!enter(depth)) return false;
        ++pos_;
        Array a;
        skip_ws();
        if (at_end()) return truncated("an array");
        if (peek() == ']') {
            ++pos_;
            out = Value(std::move(a));
            return true;
        }
        for (;;) {
            if (!count_item()) return false;
            Value v;
            if (!parse_value(v, depth)) return false;
            a.push_back(std::move(v));
            skip_ws();
            if (at_end()) return truncated("an array");
            if (peek() == ',') {
                ++pos_;
                skip_ws();
                if (at_end()) return truncated("an array");
                if (peek() == ']') return fail(Kind::Invalid, "trailing comma in an array");
                continue;
            }
            if (peek() == ']') {
                ++pos_;
                out = Value(std::move(a));
                return true;
            }
            return fail(Kind::Invalid, "expected ',' or ']', got " + describe(peek()));
        }
    }

    bool parse_object(Value& out, std::size_t depth) {
        if (!enter(depth)) return false;
        const std::size_t open = pos_;
        ++pos_;
        Object o;
        skip_ws();
        if (at_end()) return truncated("an object");
        if (peek() == '}') {
            ++pos_;
            out = Value(std::move(o));
            return true;
        }
        for (;;) {
            if (!count_item()) return false;
            if (at_end()) return truncated("an object");
            if (peek() != '"')
                return fail(Kind::Invalid, "expected a string key, got " + describe(peek()));
            Member m;
            if (!parse_string(m.key)) return false;
            skip_ws();
            if (at_end()) return truncated("an object");
            if (peek() != ':') return fail(Kind::Invalid, "expected ':', got " + describe(peek()));
            ++pos_;
            skip_ws();
            if (!parse_value(m.value, depth)) return false;
            o.push_back(std::move(m));
            skip_ws();
            if (at_end()) return truncated("an object");
            if (peek() == ',') {
                ++pos_;
                skip_ws();
                if (at_end()) return truncated("an object");
                if (peek() == '}') return fail(Kind::Invalid, "trailing comma in an object");
                continue;
            }
            if (peek() == '}') {
                ++pos_;
                if (const std::string* dup = duplicate_key(o)) {
                    pos_ = open;
                    std::string k;
                    dump_string_to(k, *dup);
                    return fail(Kind::Invalid, "duplicate key " + k);
                }
                out = Value(std::move(o));
                return true;
            }
            return fail(Kind::Invalid, "expected ',' or '}', got " + describe(peek()));
        }
    }

    static const std::string* duplicate_key(const Object& o) {
        if (o.size() < 2) return nullptr;
        if (o.size() <= 16) {
            for (std::size_t i = 1; i < o.size(); ++i)
                for (std::size_t j = 0; j < i; ++j)
                    if (o[i].key == o[j].key) return &o[i].key;
            return nullptr;
        }
        std::vector<const std::string*> keys;
        keys.reserve(o.size());
        for (const auto& m : o) keys.push_back(&m.key);
        std::sort(keys.begin(), keys.end(), [](auto* a, auto* b) { return *a < *b; });
        for (std::size_t i = 1; i < keys.size(); ++i)
            if (*keys[i] == *keys[i - 1]) return keys[i];
        return nullptr;
    }

    std::string_view s_;
    const ParseLimits& limits_;
    std::size_t pos_ = 0;
    std::size_t items_ = 0;
    ParseError err_;
};

}  // namespace

ParseResult parse(std::string_view text, const ParseLimits& limits) {
    return Parser(text, limits).run();
}

// ---- serializer ------------------------------------------------------------

void dump_string_to(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (u < 0x20 || u == 0x7f) {
                    out += "\\u00";
                    out += kHex[u >> 4];
                    out += kHex[u & 0xF];
                } else {
                    out += c;  // UTF-8 passes through as it is
                }
        }
    }
    out += '"';
}

void dump_to(std::string& out, const Value& v) {
    switch (v.type()) {
        case Type::Null: out += "null"; return;
        case Type::Bool: out += *v.as_bool() ? "true" : "false"; return;
        case Type::Integer:
            if (auto u = v.as_u64()) out += std::to_string(*u);
            else out += std::to_string(*v.as_i64());
            return;
        case Type::Double: {
            const double d = *v.as_double();
            if (!std::isfinite(d)) {
                out += "null";
                return;
            }
            char buf[40];
            const auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round trip
            const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
            out += text;
            if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
            return;
        }
        case Type::String: dump_string_to(out, *v.as_string()); return;
        case Type::Array: {
            out += '[';
            bool first = true;
            for (const auto& item : *v.as_array()) {
                if (!first) out += ',';
                first = false;
                dump_to(out, item);
            }
            out += ']';
            return;
        }
        case Type::Object: {
            out += '{';
            bool first = true;
            for (const auto& m : *v.as_object()) {
                if (!first) out += ',';
                first = false;
                dump_string_to(out, m.key);
                out += ':';
                dump_to(out, m.value);
            }
            out += '}';
            return;
        }
    }
}

std::string dump(const Value& v) {
    std::string out;
    dump_to(out, v);
    return out;
}

}  // namespace migware::json
