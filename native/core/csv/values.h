// Text -> ClickHouse RowBinary for one value of a supported type.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "csv/types.h"

namespace roost::csv {

/// Why a value or row was rejected. The texts are stable: callers and the
/// quarantine table may group by them.
enum class Reason : uint8_t {
  Ok,
  WrongColumnCount,
  NotInteger,
  IntegerOutOfRange,
  NotFloat,
  NotDecimal,
  DecimalOutOfRange,
  NotBool,
  NotDate,
  DateOutOfRange,
  NotDateTime,
  NotUuid,
  UnknownEnumValue,
  NotArray,
  TooLongForFixedString,
  EmptyNotNullable,
  InvalidUtf8,
  UnterminatedQuote,
  NullNotNullable,
};
std::string_view reasonText(Reason r);

/// Growable output buffer (RowBinary is little-endian; so are the targets we build for).
class ByteBuf {
 public:
  void reserve(size_t n) { s_.reserve(n); }
  size_t size() const { return s_.size(); }
  void truncate(size_t n) { s_.resize(n); }
  void put(const void* p, size_t n) { s_.append(static_cast<const char*>(p), n); }
  void putByte(uint8_t b) { s_.push_back(static_cast<char>(b)); }
  template <class T>
  void putLE(T v) {
    char tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    s_.append(tmp, sizeof(T));
  }
  void putVarUInt(uint64_t v) {
    char tmp[10];
    int n = 0;
    while (v >= 0x80) {
      tmp[n++] = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    tmp[n++] = static_cast<char>(v);
    s_.append(tmp, static_cast<size_t>(n));
  }
  std::string& str() { return s_; }

 private:
  std::string s_;
};

/// Encodes one non-empty text value `v` of type `t` (not Nullable: the caller
/// writes the null flag). Numbers, dates, bools and UUIDs may carry surrounding
/// spaces; strings are taken as they are.
Reason encodeValue(const Type& t, std::string_view v, ByteBuf& out);

/// Value parsers shared with type inference. All take trimmed text.
/// Sign and magnitude of an integer; `overflow` when the magnitude exceeds UInt64.
bool parseInt(std::string_view v, bool& negative, uint64_t& magnitude, bool& overflow);
bool parseDouble(std::string_view v, double& out);
/// Days since 1970-01-01 for "YYYY-MM-DD".
bool parseDate(std::string_view v, int32_t& days);
/// "YYYY-MM-DD[( |T)hh:mm[:ss[.fff...]]][Z|(+|-)hh[:]mm]". Seconds since the
/// epoch (naive times are UTC), the fraction as digits, and whether a time part
/// was present.
struct DateTimeParts {
  int64_t seconds = 0;
  uint64_t fraction = 0;  // the fractional digits as written, up to 9
  int fractionDigits = 0;
  bool hasTime = false;
};
bool parseDateTime(std::string_view v, DateTimeParts& out);
std::string_view trimSpaces(std::string_view v);

}  // namespace roost::csv
