// The ClickHouse column types the CSV validator supports: parsed from text,
// printed back canonically (for the file() structure string).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace roost::csv {

enum class Kind : uint8_t {
  Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64,
  Float32, Float64, Decimal, Bool, String, FixedString, UUID,
  Date, Date32, DateTime, DateTime64, Enum8, Enum16,
  Array, Nullable, LowCardinality,
  IPv4, IPv6,
};

struct Type {
  Kind kind = Kind::String;
  int precision = 0;  // Decimal P, DateTime64 precision, FixedString N
  int scale = 0;      // Decimal S
  std::vector<std::pair<std::string, int>> enumValues;
  std::string timezone;  // DateTime/DateTime64 only; empty or UTC
  std::unique_ptr<Type> inner;  // Array, Nullable, LowCardinality

  Type() = default;
  explicit Type(Kind k) : kind(k) {}
  Type(const Type& o) { *this = o; }
  Type& operator=(const Type& o) {
    if (this == &o) return *this;
    kind = o.kind;
    precision = o.precision;
    scale = o.scale;
    enumValues = o.enumValues;
    timezone = o.timezone;
    inner = o.inner ? std::make_unique<Type>(*o.inner) : nullptr;
    return *this;
  }
  Type(Type&&) = default;
  Type& operator=(Type&&) = default;

  /// Through LowCardinality: the type whose values are written.
  const Type& valueType() const { return kind == Kind::LowCardinality ? inner->valueType() : *this; }
  bool isNullable() const {
    const Type& v = valueType();
    return v.kind == Kind::Nullable;
  }
};

struct TypeError {
  size_t offset = 0;  // into the parsed text
  std::string message;
  bool unsupported = false;  // a valid ClickHouse type this validator does not handle
};

/// Parses one type at text[pos...]; on success advances pos past it (and trailing
/// spaces). Returns false with err set otherwise.
bool parseType(std::string_view text, size_t& pos, Type& out, TypeError& err);
/// Parses a whole string as one type.
bool parseTypeString(std::string_view text, Type& out, TypeError& err);
/// Canonical ClickHouse spelling, e.g. Nullable(DateTime64(3)).
std::string typeToString(const Type& t);

}  // namespace roost::csv
