#include "csv/types.h"
#include "csv/values.h"

#include <cctype>
#include <cstdlib>

namespace roost::csv {
namespace {

struct Cursor {
  std::string_view s;
  size_t& pos;
  void skipSpace() {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
  }
  bool eat(char c) {
    skipSpace();
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  std::string_view ident() {
    skipSpace();
    size_t b = pos;
    while (pos < s.size() && (std::isalnum(static_cast<unsigned char>(s[pos])) || s[pos] == '_')) ++pos;
    return s.substr(b, pos - b);
  }
  bool number(long long& v) {
    skipSpace();
    size_t b = pos;
    if (pos < s.size() && (s[pos] == '-' || s[pos] == '+')) ++pos;
    size_t d = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
    if (pos == d || pos - d > 18) {
      pos = b;
      return false;
    }
    v = std::strtoll(std::string(s.substr(b, pos - b)).c_str(), nullptr, 10);
    return true;
  }
  bool quoted(std::string& out) {
    skipSpace();
    if (pos >= s.size() || s[pos] != '\'') return false;
    ++pos;
    out.clear();
    while (pos < s.size()) {
      char c = s[pos++];
      if (c == '\\' && pos < s.size()) {
        // ClickHouse's escapes in string literals: an enum label `'a\tb'` holds a tab (the
        // backslash was dropped and the label became `atb`, which the engine's own type refuses).
        if (!readEscape(s, pos, out)) return false;
      } else if (c == '\'') {
        if (pos < s.size() && s[pos] == '\'') {
          out.push_back('\'');
          ++pos;
        } else {
          return true;
        }
      } else {
        out.push_back(c);
      }
    }
    return false;
  }
};

struct Simple {
  std::string_view name;
  Kind kind;
};
constexpr Simple kSimple[] = {
    {"Int8", Kind::Int8},       {"Int16", Kind::Int16},     {"Int32", Kind::Int32},
    {"Int64", Kind::Int64},     {"UInt8", Kind::UInt8},     {"UInt16", Kind::UInt16},
    {"UInt32", Kind::UInt32},   {"UInt64", Kind::UInt64},   {"Float32", Kind::Float32},
    {"Float64", Kind::Float64}, {"Bool", Kind::Bool},       {"Boolean", Kind::Bool},
    {"String", Kind::String},   {"UUID", Kind::UUID},       {"Date", Kind::Date},
    {"Date32", Kind::Date32},   {"IPv4", Kind::IPv4},       {"IPv6", Kind::IPv6},
};

bool fail(TypeError& err, size_t at, std::string msg, bool unsupported = false) {
  err.offset = at;
  err.message = std::move(msg);
  err.unsupported = unsupported;
  return false;
}

bool parseInner(Cursor& c, Type& out, TypeError& err, int depth) {
  if (depth > 16) return fail(err, c.pos, "type nested too deeply");
  c.skipSpace();
  size_t at = c.pos;
  std::string_view name = c.ident();
  if (name.empty()) return fail(err, at, "expected a type name");
  for (const Simple& s : kSimple) {
    if (s.name == name) {
      out = Type(s.kind);
      return true;
    }
  }
  auto need = [&](char ch) {
    if (c.eat(ch)) return true;
    c.skipSpace();
    return fail(err, c.pos, std::string("expected '") + ch + "' in " + std::string(name));
  };
  if (name == "Nullable" || name == "LowCardinality" || name == "Array") {
    out = Type(name == "Nullable" ? Kind::Nullable : name == "Array" ? Kind::Array : Kind::LowCardinality);
    if (!need('(')) return false;
    out.inner = std::make_unique<Type>();
    size_t innerAt = c.pos;
    if (!parseInner(c, *out.inner, err, depth + 1)) return false;
    if (!need(')')) return false;
    Kind ik = out.inner->kind;
    if (out.kind == Kind::Nullable && (ik == Kind::Nullable || ik == Kind::Array || ik == Kind::LowCardinality))
      return fail(err, innerAt, "Nullable cannot wrap " + typeToString(*out.inner));
    if (out.kind == Kind::LowCardinality) {
      const Type& v = ik == Kind::Nullable ? *out.inner->inner : *out.inner;
      if (v.kind == Kind::Array || v.kind == Kind::LowCardinality)
        return fail(err, innerAt, "LowCardinality cannot wrap " + typeToString(*out.inner));
    }
    return true;
  }
  if (name == "Decimal" || name == "Decimal32" || name == "Decimal64" || name == "Decimal128") {
    out = Type(Kind::Decimal);
    if (!need('(')) return false;
    long long a = 0, b = 0;
    size_t numAt = c.pos;
    if (!c.number(a)) return fail(err, numAt, "expected a number in " + std::string(name));
    if (name == "Decimal") {
      if (!need(',')) return false;
      numAt = c.pos;
      if (!c.number(b)) return fail(err, numAt, "expected the scale of Decimal");
      out.precision = static_cast<int>(a);
      out.scale = static_cast<int>(b);
    } else {
      out.precision = name == "Decimal32" ? 9 : name == "Decimal64" ? 18 : 38;
      out.scale = static_cast<int>(a);
    }
    if (!need(')')) return false;
    if (out.precision < 1 || out.precision > 38)
      return fail(err, at, "Decimal precision must be 1..38", out.precision > 38);
    if (out.scale < 0 || out.scale > out.precision) return fail(err, at, "Decimal scale must be 0..precision");
    return true;
  }
  if (name == "FixedString") {
    out = Type(Kind::FixedString);
    if (!need('(')) return false;
    long long n = 0;
    size_t numAt = c.pos;
    if (!c.number(n) || n < 1 || n > 65535) return fail(err, numAt, "FixedString needs a length 1..65535");
    out.precision = static_cast<int>(n);
    return need(')');
  }
  if (name == "DateTime" || name == "DateTime64") {
    out = Type(name == "DateTime" ? Kind::DateTime : Kind::DateTime64);
    bool hasArgs = c.eat('(');
    // DateTime64 alone is DateTime64(3), as ClickHouse reads it.
    if (out.kind == Kind::DateTime64 && !hasArgs) out.precision = 3;
    if (!hasArgs) return true;
    if (out.kind == Kind::DateTime64) {
      long long p = 0;
      size_t numAt = c.pos;
      if (!c.number(p) || p < 0 || p > 9) return fail(err, numAt, "DateTime64 precision must be 0..9");
      out.precision = static_cast<int>(p);
      if (c.eat(')')) return true;
      if (!need(',')) return false;
    }
    size_t tzAt = c.pos;
    if (!c.quoted(out.timezone)) return fail(err, tzAt, "expected a quoted time zone");
    if (out.timezone != "UTC" && out.timezone != "Etc/UTC")
      return fail(err, tzAt, "only the UTC time zone is supported in " + std::string(name), true);
    return need(')');
  }
  if (name == "Enum8" || name == "Enum16") {
    out = Type(name == "Enum8" ? Kind::Enum8 : Kind::Enum16);
    if (!need('(')) return false;
    const long long lo = out.kind == Kind::Enum8 ? -128 : -32768, hi = out.kind == Kind::Enum8 ? 127 : 32767;
    int next = 1;
    do {
      std::string label;
      size_t labelAt = c.pos;
      if (!c.quoted(label)) return fail(err, labelAt, "expected a quoted enum label");
      long long v = next;
      if (c.eat('=')) {
        size_t numAt = c.pos;
        if (!c.number(v)) return fail(err, numAt, "expected an enum value");
      }
      if (v < lo || v > hi) return fail(err, labelAt, "enum value out of range for " + std::string(name));
      for (auto& e : out.enumValues)
        if (e.first == label || e.second == v) return fail(err, labelAt, "duplicate enum label or value");
      out.enumValues.emplace_back(std::move(label), static_cast<int>(v));
      next = static_cast<int>(v) + 1;
    } while (c.eat(','));
    return need(')');
  }
  static constexpr std::string_view kKnownUnsupported[] = {
      "Int128", "Int256", "UInt128", "UInt256", "Decimal256", "Map", "Tuple", "JSON", "Object", "Variant",
      "Dynamic", "Point", "Ring", "Polygon", "MultiPolygon", "Nested", "BFloat16", "Time", "Time64"};
  for (auto u : kKnownUnsupported)
    if (u == name) return fail(err, at, "type " + std::string(name) + " is not supported for ingest (CSV or NDJSON)", true);
  return fail(err, at, "unknown type " + std::string(name));
}

}  // namespace

bool parseType(std::string_view text, size_t& pos, Type& out, TypeError& err) {
  Cursor c{text, pos};
  if (!parseInner(c, out, err, 0)) return false;
  c.skipSpace();
  return true;
}

bool parseTypeString(std::string_view text, Type& out, TypeError& err) {
  size_t pos = 0;
  if (!parseType(text, pos, out, err)) return false;
  if (pos != text.size()) return fail(err, pos, "unexpected text after the type");
  return true;
}

std::string typeToString(const Type& t) {
  switch (t.kind) {
    case Kind::Int8: return "Int8";
    case Kind::Int16: return "Int16";
    case Kind::Int32: return "Int32";
    case Kind::Int64: return "Int64";
    case Kind::UInt8: return "UInt8";
    case Kind::UInt16: return "UInt16";
    case Kind::UInt32: return "UInt32";
    case Kind::UInt64: return "UInt64";
    case Kind::Float32: return "Float32";
    case Kind::Float64: return "Float64";
    case Kind::Decimal: return "Decimal(" + std::to_string(t.precision) + ", " + std::to_string(t.scale) + ")";
    case Kind::Bool: return "Bool";
    case Kind::String: return "String";
    case Kind::FixedString: return "FixedString(" + std::to_string(t.precision) + ")";
    case Kind::UUID: return "UUID";
    case Kind::IPv4: return "IPv4";
    case Kind::IPv6: return "IPv6";
    case Kind::Date: return "Date";
    case Kind::Date32: return "Date32";
    case Kind::DateTime: return t.timezone.empty() ? "DateTime" : "DateTime('" + t.timezone + "')";
    case Kind::DateTime64:
      return "DateTime64(" + std::to_string(t.precision) + (t.timezone.empty() ? "" : ", '" + t.timezone + "'") + ")";
    case Kind::Enum8:
    case Kind::Enum16: {
      std::string s = t.kind == Kind::Enum8 ? "Enum8(" : "Enum16(";
      for (size_t i = 0; i < t.enumValues.size(); ++i) {
        if (i) s += ", ";
        s += '\'';
        for (char ch : t.enumValues[i].first) {
          unsigned char u = static_cast<unsigned char>(ch);
          if (ch == '\'' || ch == '\\') {
            s += '\\';
            s += ch;
          } else if (u < 0x20 || u == 0x7f) {
            // Control bytes as \xHH: the label reads back the same, and the schema stays one line.
            static constexpr char kHex[] = "0123456789abcdef";
            s += "\\x";
            s += kHex[u >> 4];
            s += kHex[u & 15];
          } else {
            s += ch;
          }
        }
        s += "' = " + std::to_string(t.enumValues[i].second);
      }
      return s + ")";
    }
    case Kind::Array: return "Array(" + typeToString(*t.inner) + ")";
    case Kind::Nullable: return "Nullable(" + typeToString(*t.inner) + ")";
    case Kind::LowCardinality: return "LowCardinality(" + typeToString(*t.inner) + ")";
  }
  return "String";
}

}  // namespace roost::csv
