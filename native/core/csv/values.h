// Text -> ClickHouse RowBinary for one value of a supported type.
#pragma once
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "csv/buffer_cache.h"
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
  NotIp,
  QuoteSpansLines,
  TextAfterQuote,
};
std::string_view reasonText(Reason r);

/// Growable output buffer (RowBinary is little-endian; so are the targets we
/// build for). Writes are inlined bounds checks plus memcpy: this is the hot path.
class ByteBuf {
 public:
  ByteBuf() = default;
  ByteBuf(const ByteBuf&) = delete;
  ByteBuf& operator=(const ByteBuf&) = delete;
  ~ByteBuf() { bufcache::give(p_, cap_); }
  void reserve(size_t n) {
    if (n > cap_) realloc(n);
  }
  size_t size() const { return len_; }
  void truncate(size_t n) { len_ = n; }
  char* grow(size_t n) {
    if (__builtin_expect(len_ + n > cap_, 0)) growSlow(n);
    char* p = p_ + len_;
    len_ += n;
    return p;
  }
  void put(const void* p, size_t n) {
    if (n) std::memcpy(grow(n), p, n);  // an empty source may be null
  }
  void putByte(uint8_t b) { *grow(1) = static_cast<char>(b); }
  void setLastByte(uint8_t b) { p_[len_ - 1] = static_cast<char>(b); }
  template <class T>
  void putLE(T v) {
    std::memcpy(grow(sizeof(T)), &v, sizeof(T));
  }
  void putVarUInt(uint64_t v) {
    char tmp[10];
    int n = 0;
    while (v >= 0x80) {
      tmp[n++] = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    tmp[n++] = static_cast<char>(v);
    put(tmp, static_cast<size_t>(n));
  }
  /// A String in RowBinary/Native form: VarUInt length, then the bytes; one
  /// bounds check for both.
  void putVarString(const char* s, size_t n) {
    char* d = grow(n + 10);
    size_t k = 0;
    uint64_t v = n;
    while (v >= 0x80) {
      d[k++] = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    d[k++] = static_cast<char>(v);
    copySmall(d + k, s, n);
    len_ -= 10 - k;
  }
  /// memcpy without a call for the short strings most cells are: two
  /// overlapping loads and stores, never reading outside [s, s + n).
  static void copySmall(char* d, const char* s, size_t n) {
    if (n >= 8 && n <= 16) {
      uint64_t a, b;
      std::memcpy(&a, s, 8);
      std::memcpy(&b, s + n - 8, 8);
      std::memcpy(d, &a, 8);
      std::memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
      uint32_t a, b;
      std::memcpy(&a, s, 4);
      std::memcpy(&b, s + n - 4, 4);
      std::memcpy(d, &a, 4);
      std::memcpy(d + n - 4, &b, 4);
    } else if (n > 16) {
      std::memcpy(d, s, n);
    } else {
      for (size_t i = 0; i < n; ++i) d[i] = s[i];
    }
  }
  const char* data() const { return p_; }
  /// Hands the written bytes (malloc'd, `cap` bytes of capacity; give them back
  /// with bufcache::give, or free() them) to the caller.
  char* release(size_t& len, size_t& cap) {
    char* p = p_;
    len = len_;
    cap = cap_;
    p_ = nullptr;
    len_ = cap_ = 0;
    return p;
  }

 private:
  [[gnu::noinline, gnu::cold]] void growSlow(size_t n) { realloc(std::max(cap_ * 2, len_ + n + 4096)); }
  void realloc(size_t n) {
    if (!p_) {
      // A buffer starting: memory given back by an earlier batch, if one fits.
      size_t k = 0;
      if (void* c = bufcache::take(n, k)) {
        p_ = static_cast<char*>(c);
        cap_ = k;
        return;
      }
    }
    // Not zero-filled: every byte up to len_ is written before it is read.
    char* q = static_cast<char*>(std::realloc(p_, n));
    if (!q) throw std::bad_alloc();
    p_ = q;
    cap_ = n;
  }
  char* p_ = nullptr;
  size_t len_ = 0;
  size_t cap_ = 0;
};

/// malloc'd bytes with their length and capacity; given back to the buffer
/// cache (see buffer_cache.h) unless released.
struct OwnedBytes {
  char* data = nullptr;
  size_t size = 0;
  size_t cap = 0;
  OwnedBytes() = default;
  OwnedBytes(const OwnedBytes&) = delete;
  OwnedBytes& operator=(const OwnedBytes&) = delete;
  OwnedBytes(OwnedBytes&& o) noexcept : data(o.data), size(o.size), cap(o.cap) { o.data = nullptr; o.size = o.cap = 0; }
  OwnedBytes& operator=(OwnedBytes&& o) noexcept {
    std::swap(data, o.data);
    std::swap(size, o.size);
    std::swap(cap, o.cap);
    return *this;
  }
  ~OwnedBytes() { bufcache::give(data, cap); }
  std::string_view view() const { return {data, size}; }
};

/// Encodes one non-empty text value `v` of type `t` (not Nullable: the caller
/// writes the null flag). Numbers, dates, bools and UUIDs may carry surrounding
/// spaces; strings are taken as they are.
Reason encodeValue(const Type& t, std::string_view v, ByteBuf& out);
/// encodeValue for one type, chosen once (per column): encoderFor(t)(t, v, out)
/// is encodeValue(t, v, out) without the dispatch on t's kind per value.
using ValueEncoder = Reason (*)(const Type& t, std::string_view v, ByteBuf& out);
ValueEncoder encoderFor(const Type& t);

/// Value parsers shared with type inference. All take trimmed text.
/// Sign and magnitude of an integer; `overflow` when the magnitude exceeds UInt64.
bool parseInt(std::string_view v, bool& negative, uint64_t& magnitude, bool& overflow);
bool parseDouble(std::string_view v, double& out);
/// One escape of a ClickHouse string literal: `v[i]` is the character after the backslash; its
/// value is appended to `out` and `i` moves past it. False on a bad `\xHH`.
bool readEscape(std::string_view v, size_t& i, std::string& out);
/// Dotted-quad IPv4 ("192.168.0.1": four decimal octets 0-255 of up to three digits;
/// "01" is 1, as ClickHouse reads it): the address as a number (a << 24 | ...).
bool parseIPv4(std::string_view v, uint32_t& out);
/// IPv6 text (RFC 4291: eight groups of 1-4 hex digits, one "::", a dotted IPv4 in the
/// last 32 bits), or a bare IPv4 (stored as ::ffff:a.b.c.d, as ClickHouse does): the 16
/// bytes in network order.
bool parseIPv6(std::string_view v, uint8_t (&out)[16]);
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
/// `text` in any ASCII case is `lower` (written in lower case: "true", "null").
inline bool equalsLower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char x = text[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != lower[i]) return false;
  }
  return true;
}
inline std::string_view trimSpaces(std::string_view v) {
  // Space (0x20) and tab (0x09) are both <= 0x20: one compare per end in the common case.
  if (v.empty() || (static_cast<unsigned char>(v.front()) > 0x20 && static_cast<unsigned char>(v.back()) > 0x20)) return v;
  size_t b = 0, e = v.size();
  while (b < e && (v[b] == ' ' || v[b] == '\t')) ++b;
  while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t')) --e;
  return v.substr(b, e - b);
}

}  // namespace roost::csv
