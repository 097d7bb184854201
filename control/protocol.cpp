#include "control/protocol.hpp"

#include <limits>
#include <unordered_set>
#include <vector>

namespace migware::control {

namespace {

const Json kNull;

/// nlohmann's DOM builder behind two checks it does not make itself: no key
/// twice in one object, and no nesting beyond the limit. Returning false stops
/// the parse at once; nothing here throws.
class StrictSax {
public:
    StrictSax(Json& out, const ParseLimits& limits) : dom_(out, false), limits_(limits) {}

    bool null() { return dom_.null(); }
    bool boolean(bool b) { return dom_.boolean(b); }
    bool number_integer(Json::number_integer_t n) { return dom_.number_integer(n); }
    bool number_unsigned(Json::number_unsigned_t n) { return dom_.number_unsigned(n); }
    bool number_float(Json::number_float_t d, const Json::string_t& s) { return dom_.number_float(d, s); }
    bool string(Json::string_t& s) { return dom_.string(s); }
    bool binary(Json::binary_t& b) { return dom_.binary(b); }

    bool start_object(std::size_t n) {
        if (!enter()) return false;
        keys_.emplace_back();
        is_object_.push_back(true);
        return dom_.start_object(n);
    }
    bool key(Json::string_t& k) {
        if (!keys_.back().insert(k).second) return fail("duplicate key \"" + k + "\"");
        return dom_.key(k);
    }
    bool end_object() {
        keys_.pop_back();
        is_object_.pop_back();
        return dom_.end_object();
    }
    bool start_array(std::size_t n) {
        if (!enter()) return false;
        is_object_.push_back(false);
        return dom_.start_array(n);
    }
    bool end_array() {
        is_object_.pop_back();
        return dom_.end_array();
    }
    bool parse_error(std::size_t position, const std::string& /*last_token*/,
                     const nlohmann::detail::exception& ex) {
        error_.offset = position;
        // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ...":
        // the bracketed tag says nothing to an operator.
        std::string what = ex.what();
        if (const auto close = what.find("] "); what.rfind("[json.exception.", 0) == 0 && close != std::string::npos)
            what.erase(0, close + 2);
        error_.what = std::move(what);
        failed_ = true;
        return false;
    }

    bool failed() const { return failed_; }
    const ParseError& error() const { return error_; }
    /// For the checks this class makes, the offset is not known to the SAX
    /// interface; the caller fills in what it can.
    void set_offset_if_unknown(std::size_t n) {
        if (error_.offset == 0) error_.offset = n;
    }

private:
    bool enter() {
        if (is_object_.size() >= limits_.max_depth)
            return fail("nesting deeper than " + std::to_string(limits_.max_depth));
        return true;
    }
    bool fail(std::string what) {
        error_.what = std::move(what);
        failed_ = true;
        return false;
    }

    nlohmann::detail::json_sax_dom_parser<Json> dom_;
    const ParseLimits& limits_;
    std::vector<std::unordered_set<std::string>> keys_;
    std::vector<bool> is_object_;
    ParseError error_;
    bool failed_ = false;
};

}  // namespace

std::string ParseError::message() const {
    return "json: at byte " + std::to_string(offset) + ": " + what;
}

ParseResult parse(std::string_view text, const ParseLimits& limits) {
    // nlohmann skips a leading UTF-8 byte order mark; RFC 8259 §8.1 lets a
    // parser ignore it, but the protocol never had one and refuses it.
    if (text.substr(0, 3) == "\xEF\xBB\xBF") return ParseError{0, "byte order mark before the value"};
    Json out;
    StrictSax sax(out, limits);
    const bool ok = Json::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json,
                                    /*strict=*/true, /*ignore_comments=*/false);
    if (!ok || sax.failed()) {
        ParseError e = sax.error();
        if (e.what.empty()) e.what = "invalid JSON";
        return e;
    }
    return out;
}

std::string dump(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); }

const Json& member(const Json& v, std::string_view key) {
    if (!v.is_object()) return kNull;
    const auto it = v.find(key);
    return it == v.end() ? kNull : *it;
}

const Json& element(const Json& v, std::size_t i) {
    if (!v.is_array() || i >= v.size()) return kNull;
    return v[i];
}

bool has(const Json& v, std::string_view key) { return v.is_object() && v.find(key) != v.end(); }

std::optional<bool> as_bool(const Json& v) {
    if (!v.is_boolean()) return std::nullopt;
    return v.get<bool>();
}

std::optional<std::uint64_t> as_u64(const Json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer()) {
        const auto i = v.get<std::int64_t>();
        if (i >= 0) return static_cast<std::uint64_t>(i);
    }
    return std::nullopt;
}

std::optional<std::int64_t> as_i64(const Json& v) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return static_cast<std::int64_t>(u);
        return std::nullopt;
    }
    if (v.is_number_integer()) return v.get<std::int64_t>();
    return std::nullopt;
}

std::optional<double> as_double(const Json& v) {
    if (!v.is_number()) return std::nullopt;
    return v.get<double>();
}

const std::string* as_string(const Json& v) { return v.is_string() ? v.get_ptr<const std::string*>() : nullptr; }

const Json* as_array(const Json& v) { return v.is_array() ? &v : nullptr; }
const Json* as_object(const Json& v) { return v.is_object() ? &v : nullptr; }

namespace {

std::string reply(const Json& id, bool ok, const char* key, Json value) {
    Json r = Json::object();
    r["v"] = 1;
    r["id"] = id;
    r["ok"] = ok;
    r[key] = std::move(value);
    return dump(r);
}

}  // namespace

std::string error_reply(const Json& id, std::string_view message) {
    return reply(id, false, "error", std::string(message));
}

std::string ok_reply(const Json& id, Json result) { return reply(id, true, "result", std::move(result)); }

Expected<Request, std::string> parse_request(std::string_view line) {
    auto parsed = parse(line);
    if (!parsed) return error_reply(kNull, "malformed request: " + parsed.error().message());
    Json& req = *parsed;
    if (!req.is_object()) return error_reply(kNull, "a request is a JSON object");
    const Json& id = member(req, "id");
    const Json& v = member(req, "v");
    if (as_u64(v) != 1u) {
        const std::string got = has(req, "v") ? dump(v) : "none";
        return error_reply(id, "unsupported protocol version " + got + " (this daemon speaks 1)");
    }
    const std::string* cmd = as_string(member(req, "cmd"));
    if (cmd == nullptr)
        return error_reply(id, "missing \"cmd\" (status, connections, counters, events, metrics)");
    Request r{id, *cmd, Json()};
    r.body = std::move(req);
    return r;
}

std::optional<std::uint64_t> uint_arg(const Json& req, std::string_view key, std::uint64_t dflt,
                                      std::string& error) {
    if (!has(req, key)) return dflt;
    auto n = as_u64(member(req, key));
    if (!n) {
        error = "'" + std::string(key) + "' must be a non-negative integer";
        return std::nullopt;
    }
    return n;
}

}  // namespace migware::control
