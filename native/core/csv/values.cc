#include "csv/values.h"

#include "csv/cells.h"

#include <charconv>
#include <limits>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace roost::csv {

namespace {

// --- SWAR digit parsing. Every load stays inside [p, p + n): fields may end at
// the very end of a buffer.

// The n (1..8) bytes at p in the top n bytes of a little-endian word (the last
// byte highest), the low 8 - n bytes set to '0'.
inline uint64_t loadDigitsRight(const char* p, size_t n) {
  uint64_t w;
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    // Overlapping bytes are equal, so OR merges them.
    w = (static_cast<uint64_t>(b) << 32) | (static_cast<uint64_t>(a) << (8 * (8 - n)));
  } else {
    // 1..3 bytes without branching on n: first, middle and last byte (the same
    // byte more than once for n < 3 lands on the same place).
    auto b = [](char c) { return static_cast<uint64_t>(static_cast<unsigned char>(c)); };
    w = (b(p[0]) << (64 - 8 * n)) | (b(p[n >> 1]) << (56 - 8 * ((n - 1) - (n >> 1)))) | (b(p[n - 1]) << 56);
  }
  uint64_t fill = n >= 8 ? 0 : 0x3030303030303030ull >> (8 * n);
  return w | fill;
}

inline bool eightDigits(uint64_t w) {
  return (((w & 0xF0F0F0F0F0F0F0F0ull) | (((w + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) ==
          0x3333333333333333ull);
}

// Eight ASCII digits (first digit in the lowest byte) to their value.
inline uint32_t eightDigitsValue(uint64_t w) {
  w -= 0x3030303030303030ull;
  w = (w * 10) + (w >> 8);
  w = (((w & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
       (((w >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
      32;
  return static_cast<uint32_t>(w);
}

inline uint64_t load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// Eight bytes at p: digits, and separators at the bytes where sepMask is 0xFF
// (sepXor holds separator ^ '0' there, turning a right separator into '0' so
// that one test checks all eight bytes). On success `pairs` holds, in byte i,
// digit i * 10 + digit i + 1 (a separator counts as 0).
inline bool pairedDigits(const char* p, uint64_t sepXor, uint64_t sepMask, uint64_t& pairs) {
  const uint64_t w = load64(p) ^ sepXor;
  if (!eightDigits(w) || (w & sepMask) != (0x3030303030303030ull & sepMask)) return false;
  const uint64_t x = w - 0x3030303030303030ull;
  pairs = x * 10 + (x >> 8);
  return true;
}

// The value of n (1..16) ASCII digits at p; false if any byte is not a digit.
inline bool digitsSwar(const char* p, size_t n, uint64_t& out) {
  if (n <= 8) {
    uint64_t w = loadDigitsRight(p, n);
    if (!eightDigits(w)) return false;
    out = eightDigitsValue(w);
    return true;
  }
  uint64_t hi = loadDigitsRight(p, n - 8), lo;
  std::memcpy(&lo, p + n - 8, 8);
  if (!eightDigits(hi) || !eightDigits(lo)) return false;
  out = static_cast<uint64_t>(eightDigitsValue(hi)) * 100000000u + eightDigitsValue(lo);
  return true;
}

}  // namespace

std::string_view reasonText(Reason r) {
  switch (r) {
    case Reason::Ok: return "ok";
    case Reason::WrongColumnCount: return "wrong column count";
    case Reason::NotInteger: return "not an integer";
    case Reason::IntegerOutOfRange: return "integer out of range";
    case Reason::NotFloat: return "not a number";
    case Reason::NotDecimal: return "not a decimal";
    case Reason::DecimalOutOfRange: return "decimal out of range";
    case Reason::NotBool: return "not a bool";
    case Reason::NotDate: return "not a date";
    case Reason::DateOutOfRange: return "date out of range";
    case Reason::NotDateTime: return "not a datetime";
    case Reason::NotUuid: return "not a UUID";
    case Reason::NotIp: return "not an IP address";
    case Reason::UnknownEnumValue: return "unknown enum value";
    case Reason::NotArray: return "not an array";
    case Reason::TooLongForFixedString: return "too long for FixedString";
    case Reason::EmptyNotNullable: return "empty value in a non-Nullable column";
    case Reason::InvalidUtf8: return "invalid UTF-8";
    case Reason::UnterminatedQuote: return "unterminated quoted field";
    case Reason::NullNotNullable: return "NULL in a non-Nullable column";
    case Reason::TextAfterQuote: return "text after the closing quote (a quote inside a value is written \"\"; an opening quote without its closing one joins the lines after it)";
    case Reason::QuoteSpansLines: return "a value quoted with ' spans lines (' was taken for the quote from the file's start: send dialect_quotechar if it is none)";
  }
  return "invalid value";
}

bool parseInt(std::string_view v, bool& negative, uint64_t& magnitude, bool& overflow) {
  overflow = false;
  const char* p = v.data();
  const char* e = p + v.size();
  negative = false;
  if (p < e && (*p == '-' || *p == '+')) negative = *p++ == '-';
  if (p == e) return false;
  uint64_t m = 0;
  for (; p < e; ++p) {
    unsigned d = static_cast<unsigned char>(*p) - '0';
    if (d > 9) return false;
    if (__builtin_mul_overflow(m, 10u, &m) || __builtin_add_overflow(m, d, &m)) {
      // Keep reading digits so "1234...x" is "not an integer", not "out of range".
      for (++p; p < e; ++p)
        if (static_cast<unsigned>(static_cast<unsigned char>(*p) - '0') > 9) return false;
      magnitude = UINT64_MAX;
      overflow = true;
      return true;
    }
  }
  magnitude = m;
  return true;
}

namespace {

// Clinger's fast path: a decimal with a mantissa below 2^53 (2^24 for float)
// and at most 22 (10) fractional digits is exactly m / 10^k, one correctly
// rounded division. Anything else goes to from_chars.
template <class F>
bool fastDecimal(const char* p, const char* e, F& out) {
  constexpr uint64_t kMaxMantissa = sizeof(F) == 8 ? (1ull << 53) : (1ull << 24);
  constexpr int kMaxPow = sizeof(F) == 8 ? 22 : 10;
  static constexpr F kPow[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  bool neg = false;
  if (p < e && *p == '-') {
    neg = true;
    ++p;
  }
  uint64_t m = 0;
  int digits = 0, frac = 0;
  const char* start = p;
  for (; p < e; ++p) {
    unsigned d = static_cast<unsigned char>(*p) - '0';
    if (d > 9) break;
    m = m * 10 + d;
    ++digits;
  }
  if (p < e && *p == '.') {
    ++p;
    for (; p < e; ++p) {
      unsigned d = static_cast<unsigned char>(*p) - '0';
      if (d > 9) break;
      m = m * 10 + d;
      ++digits;
      ++frac;
    }
  }
  if (p != e || digits == 0 || digits > 19 || p == start || m > kMaxMantissa || frac > kMaxPow) return false;
  F x = static_cast<F>(m);
  if (frac) x /= kPow[frac];
  out = neg ? -x : x;
  return true;
}

}  // namespace

namespace {

// from_chars leaves `out` unset when the value is out of range: [p, e) (a
// well-formed decimal) is then too large or too small for the type, and reads,
// as ClickHouse reads it, as +-inf or +-0. Which one follows from the position
// of the first significant digit: an overflow is >= 1e308, an underflow < 1e-323.
[[gnu::cold, gnu::noinline]] double outOfRange(const char* p, const char* e) {
  const bool neg = p < e && *p == '-';
  if (neg) ++p;
  int64_t mag = 0;  // the power of ten of the first significant digit, + 1
  bool seen = false, dot = false;
  for (; p < e && *p != 'e' && *p != 'E'; ++p) {
    if (*p == '.') {
      dot = true;
    } else if (*p != '0' || seen) {
      seen = true;
      if (!dot) ++mag;
    } else if (dot) {
      --mag;  // a zero between the point and the first significant digit
    }
  }
  int64_t exp = 0;
  if (p < e) {
    ++p;
    bool eneg = p < e && *p == '-';
    if (p < e && (*p == '-' || *p == '+')) ++p;
    for (; p < e; ++p) exp = std::min<int64_t>(exp * 10 + (*p - '0'), int64_t{1} << 40);
    if (eneg) exp = -exp;
  }
  const double x = seen && mag + exp > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return neg ? -x : x;
}

}  // namespace

bool parseDouble(std::string_view v, double& out) {
  const char* p = v.data();
  const char* e = p + v.size();
  if (p < e && *p == '+') ++p;
  if (p == e) return false;
  if (fastDecimal(p, e, out)) return true;
  auto r = std::from_chars(p, e, out, std::chars_format::general);
  if (r.ec == std::errc::invalid_argument || r.ptr != e) return false;
  if (r.ec == std::errc::result_out_of_range) out = outOfRange(p, e);
  return true;
}

namespace {

bool parseFloat32(std::string_view v, float& out) {
  const char* p = v.data();
  const char* e = p + v.size();
  if (p < e && *p == '+') ++p;
  if (p == e) return false;
  if (fastDecimal(p, e, out)) return true;
  auto r = std::from_chars(p, e, out, std::chars_format::general);
  if (r.ptr != e) return false;
  if (r.ec == std::errc::result_out_of_range) {
    double d;
    if (!parseDouble(v, d)) return false;
    out = static_cast<float>(d);
  }
  return r.ec != std::errc::invalid_argument;
}

// Days from 1970-01-01 to y-m-d, for years 0..9999 (four digits). Howard
// Hinnant's days_from_civil, counted from 12 eras (4800 years) earlier so that
// every quantity is unsigned and 32 bits: cheaper divisions by constants.
int64_t daysFromCivil(unsigned y, unsigned m, unsigned d) {
  const uint32_t yy = y + 4800 - (m <= 2);
  const uint32_t era = yy / 400;
  const uint32_t yoe = yy - era * 400;
  const uint32_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<int64_t>(era) * 146097 + doe - 719468 - 12 * 146097;
}

inline bool digits(const char* p, int n, int& out) {
  int v = 0;
  for (int i = 0; i < n; ++i) {
    unsigned d = static_cast<unsigned char>(p[i]) - '0';
    if (d > 9) return false;
    v = v * 10 + static_cast<int>(d);
  }
  out = v;
  return true;
}

// 'YYYY-MM-DD' at p (10 bytes there) to days since 1970-01-01; 'YYYY-MM-' is
// read as one word ('-' ^ '0' = 0x1D at bytes 4 and 7).
bool ymd(const char* p, int64_t& days) {
  uint64_t x;
  const unsigned d0 = static_cast<unsigned char>(p[8]) - '0', d1 = static_cast<unsigned char>(p[9]) - '0';
  if (!pairedDigits(p, 0x1D00001D00000000ull, 0xFF0000FF00000000ull, x) || d0 > 9 || d1 > 9) return false;
  const int y = static_cast<int>((x & 0xFF) * 100 + ((x >> 16) & 0xFF));
  const int m = static_cast<int>((x >> 40) & 0xFF);
  const int d = static_cast<int>(d0 * 10 + d1);
  static constexpr int kDays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > kDays[m - 1]) return false;
  if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return false;
  days = daysFromCivil(static_cast<unsigned>(y), static_cast<unsigned>(m), static_cast<unsigned>(d));
  return true;
}

constexpr int64_t kPow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000};

// Acc: unsigned __int128, or uint64_t when precision <= 18 (cheaper; wrapping
// on absurd inputs is harmless because those are rejected by digit count).
template <class Acc>
Reason encodeDecimalAs(const Type& t, std::string_view v, ByteBuf& out) {
  const char* p = v.data();
  const char* e = p + v.size();
  bool neg = false;
  if (p < e && (*p == '-' || *p == '+')) neg = *p++ == '-';
  Acc value = 0;
  int intDigits = 0, fracDigits = 0;
  bool any = false;
  while (p < e && *p == '0') {
    ++p;
    any = true;
  }
  for (; p < e && *p >= '0' && *p <= '9'; ++p) {
    any = true;
    if (++intDigits > 38) return Reason::DecimalOutOfRange;
    value = value * 10 + static_cast<unsigned>(*p - '0');
  }
  if (p < e && *p == '.') {
    ++p;
    for (; p < e && *p >= '0' && *p <= '9'; ++p) {
      any = true;
      // Digits beyond the scale are dropped (truncation, as ClickHouse does).
      if (fracDigits < t.scale) {
        value = value * 10 + static_cast<unsigned>(*p - '0');
        ++fracDigits;
      }
    }
  }
  if (!any || p != e) return Reason::NotDecimal;
  for (; fracDigits < t.scale; ++fracDigits) value *= 10;
  if (intDigits > t.precision - t.scale) return Reason::DecimalOutOfRange;
  if (neg) value = 0 - value;  // two's complement, in the unsigned accumulator
  if (t.precision <= 9) out.putLE(static_cast<int32_t>(static_cast<uint32_t>(value)));
  else if (t.precision <= 18) out.putLE(static_cast<int64_t>(static_cast<uint64_t>(value)));
  else out.putLE(static_cast<__int128>(value));
  return Reason::Ok;
}

Reason encodeDecimal(const Type& t, std::string_view v, ByteBuf& out) {
  return t.precision <= 18 ? encodeDecimalAs<uint64_t>(t, v, out) : encodeDecimalAs<unsigned __int128>(t, v, out);
}

struct HexTable {
  int8_t v[256];
  constexpr HexTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = -1;
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<int8_t>(i);
    for (int i = 0; i < 6; ++i) {
      v['a' + i] = static_cast<int8_t>(10 + i);
      v['A' + i] = static_cast<int8_t>(10 + i);
    }
  }
};
constexpr HexTable kHex;

// Reads 2*n hex digits (n bytes) at p into acc; false on a non-hex byte.
inline bool hexBytes(const char* p, int n, uint64_t& acc) {
  int bad = 0;
  for (int i = 0; i < 2 * n; ++i) {
    int h = kHex.v[static_cast<unsigned char>(p[i])];
    bad |= h;
    acc = (acc << 4) | static_cast<uint64_t>(h & 15);
  }
  return bad >= 0;
}

inline uint64_t load32(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

#if defined(__SSE2__)
// 16 hex digits (given as two little-endian words, the first digit lowest) to
// the 8 bytes they spell, the first digit most significant; false on a non-hex
// byte. Branch-free per digit: each byte's value comes from its digit or its
// letter reading, whichever is in range.
inline bool hex16(uint64_t first8, uint64_t next8, uint64_t& out) {
  const __m128i x = _mm_set_epi64x(static_cast<long long>(next8), static_cast<long long>(first8));
  const __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
  const __m128i l = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
  const __m128i isDigit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
  const __m128i isLetter = _mm_cmpeq_epi8(_mm_min_epu8(l, _mm_set1_epi8(5)), l);
  if (_mm_movemask_epi8(_mm_or_si128(isDigit, isLetter)) != 0xFFFF) return false;
  const __m128i val =
      _mm_or_si128(_mm_and_si128(isDigit, d), _mm_andnot_si128(isDigit, _mm_add_epi8(l, _mm_set1_epi8(10))));
  // Each 16-bit lane holds (high digit, low digit): high << 4 | low.
  const __m128i hiNib = _mm_slli_epi16(_mm_and_si128(val, _mm_set1_epi16(0x00FF)), 4);
  const __m128i pairs = _mm_or_si128(hiNib, _mm_srli_epi16(val, 8));
  const uint64_t bytes = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs)));
  out = __builtin_bswap64(bytes);
  return true;
}
#else
inline bool hex16(uint64_t first8, uint64_t next8, uint64_t& out) {
  char h[16];
  std::memcpy(h, &first8, 8);
  std::memcpy(h + 8, &next8, 8);
  out = 0;
  return hexBytes(h, 8, out);
}
#endif

Reason encodeUuid(std::string_view v, ByteBuf& out) {
  const char* p = v.data();
  if (v.size() != 36 || p[8] != '-' || p[13] != '-' || p[18] != '-' || p[23] != '-') return Reason::NotUuid;
  // The 32 digits without their dashes, 8-4-4 | 4-12, gathered in registers.
  uint64_t hi, lo;
  if (!hex16(load64(p), load32(p + 9) | load32(p + 14) << 32, hi) ||
      !hex16(load32(p + 19) | load32(p + 24) << 32, load64(p + 28), lo))
    return Reason::NotUuid;
  // RowBinary UUID: the first 8 bytes' value, then the last 8, each little-endian.
  out.putLE(hi);
  out.putLE(lo);
  return Reason::Ok;
}


/// One element of a ClickHouse text-form array: a quoted string (unescaped), a
/// nested array (with brackets), or a bare token.
struct Element {
  std::string_view text;
  bool quoted;
  bool null;
};

// Parses "[...]" at v (trimmed); fills elems (unescaped strings go to storage).
bool splitArray(std::string_view v, std::vector<Element>& elems, std::string& storage) {
  v = trimSpaces(v);
  if (v.size() < 2 || v.front() != '[' || v.back() != ']') return false;
  size_t i = 1, end = v.size() - 1;
  auto skip = [&] {
    while (i < end && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r')) ++i;
  };
  skip();
  if (i == end) return true;
  // First pass stores offsets into storage; views are made after it stops growing.
  struct Pending {
    size_t a, b;
    bool inStorage, quoted;
  };
  std::vector<Pending> pending;
  for (;;) {
    skip();
    if (i >= end) return false;
    char c = v[i];
    if (c == '\'' || c == '"') {
      size_t a = storage.size();
      ++i;
      bool closed = false;
      while (i < end) {
        char x = v[i++];
        if (x == '\\' && i < end) {
          if (!readEscape(v.substr(0, end), i, storage)) return false;
        } else if (x == c) {
          if (i < end && v[i] == c) {
            storage.push_back(c);
            ++i;
          } else {
            closed = true;
            break;
          }
        } else {
          storage.push_back(x);
        }
      }
      if (!closed) return false;
      pending.push_back({a, storage.size(), true, true});
    } else if (c == '[') {
      size_t a = i;
      int depth = 0;
      char q = 0;
      for (; i < end; ++i) {
        char x = v[i];
        if (q) {
          if (x == '\\') ++i;
          else if (x == q) q = 0;
        } else if (x == '\'' || x == '"') q = x;
        else if (x == '[') ++depth;
        else if (x == ']' && --depth == 0) break;
      }
      if (i >= end) return false;
      ++i;
      pending.push_back({a, i, false, false});
    } else {
      size_t a = i;
      while (i < end && v[i] != ',') ++i;
      size_t b = i;
      while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) --b;
      if (b == a) return false;
      pending.push_back({a, b, false, false});
    }
    skip();
    if (i == end) break;
    if (v[i] != ',') return false;
    ++i;
  }
  elems.clear();
  for (const Pending& p : pending) {
    std::string_view t = p.inStorage ? std::string_view(storage).substr(p.a, p.b - p.a) : v.substr(p.a, p.b - p.a);
    // NULL in any case, as ClickHouse reads it, and a bare \N (NULL in every text form of
    // ClickHouse; a string element holding the text \N is written quoted).
    elems.push_back({t, p.quoted, !p.quoted && (equalsLower(t, "null") || t == "\\N")});
  }
  return true;
}

// A Bool's value: 1, 0, or -1 when `v` is none. ClickHouse's text input takes true/false or 1/0,
// and, outside arrays (`words`), t/f, yes/no, y/n, on/off, enable/disable, in any letter case
// (an export's `yes`, `T` or `on` was quarantined; `[yes]` ClickHouse refuses).
int boolValue(std::string_view v, bool words) {
  const std::string_view s = trimSpaces(v);
  if (s == "1" || equalsLower(s, "true")) return 1;
  if (s == "0" || equalsLower(s, "false")) return 0;
  if (!words) return -1;
  if (equalsLower(s, "t") || equalsLower(s, "yes") || equalsLower(s, "y") || equalsLower(s, "on") || equalsLower(s, "enable")) return 1;
  if (equalsLower(s, "f") || equalsLower(s, "no") || equalsLower(s, "n") || equalsLower(s, "off") || equalsLower(s, "disable")) return 0;
  return -1;
}

// A Bool element of an array: true/false or 1/0 only, as ClickHouse reads one there.
Reason encBoolInArray(const Type&, std::string_view v, ByteBuf& out) {
  const int b = boolValue(v, false);
  if (b < 0) return Reason::NotBool;
  out.putByte(static_cast<uint8_t>(b));
  return Reason::Ok;
}

Reason encodeArray(const Type& t, std::string_view v, ByteBuf& out) {
  std::vector<Element> elems;
  std::string storage;
  if (!splitArray(v, elems, storage)) return Reason::NotArray;
  out.putVarUInt(elems.size());
  const Type& et = t.inner->valueType();
  const bool nullable = et.kind == Kind::Nullable;
  const Type& vt = nullable ? et.inner->valueType() : et;
  // '' is a value for strings; an empty element of another type is not.
  const bool stringy = vt.kind == Kind::String || vt.kind == Kind::FixedString;
  // Inside an array ClickHouse reads a Bool only as true/false or 1/0 (`[yes]` is refused).
  const ValueEncoder enc = vt.kind == Kind::Bool ? encBoolInArray : encoderFor(vt);
  for (const Element& el : elems) {
    if (el.null) {
      if (!nullable) return Reason::NullNotNullable;
      out.putByte(1);
      continue;
    }
    if (nullable) out.putByte(0);
    // An empty element of a non-string type is no value of it: "empty value in a non-Nullable
    // column" when the elements are not Nullable; under Nullable (where only NULL is missing)
    // the type's own reason ("not an integer"), not a hint to make the column Nullable.
    Reason r = el.text.empty() && !stringy && !nullable ? Reason::EmptyNotNullable : enc(vt, el.text, out);
    if (r != Reason::Ok) return r;
  }
  return Reason::Ok;
}

// Fast path for the common case: an optional '-' and up to 18 digits, no spaces.
inline bool quickInt(std::string_view v, bool& neg, uint64_t& m) {
  const char* p = v.data();
  const char* e = p + v.size();
  if (p == e) return false;
  neg = *p == '-';  // branch-free: signs are unpredictable in real data
  p += neg;
  if (p == e || e - p > 18) return false;
  size_t n = static_cast<size_t>(e - p);
  if (n <= 16) return digitsSwar(p, n, m);
  uint64_t x = 0;
  for (; p < e; ++p) {
    unsigned d = static_cast<unsigned char>(*p) - '0';
    if (d > 9) return false;
    x = x * 10 + d;
  }
  m = x;
  return true;
}

template <class T>
Reason encodeSigned(const Type&, std::string_view v, ByteBuf& out) {
  {
    bool neg;
    uint64_t m;
    if (quickInt(v, neg, m)) {
      constexpr uint64_t maxPos = static_cast<uint64_t>(std::numeric_limits<T>::max());
      if (m > maxPos + neg) return Reason::IntegerOutOfRange;
      uint64_t mask = 0 - static_cast<uint64_t>(neg);
      out.putLE(static_cast<T>((m ^ mask) - mask));  // -m when negative
      return Reason::Ok;
    }
  }
  bool neg, over;
  uint64_t m;
  if (!parseInt(trimSpaces(v), neg, m, over)) return Reason::NotInteger;
  if (over) return Reason::IntegerOutOfRange;
  constexpr uint64_t maxPos = static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (neg ? m > maxPos + 1 : m > maxPos) return Reason::IntegerOutOfRange;
  T x = neg ? static_cast<T>(0 - m) : static_cast<T>(m);
  out.putLE(x);
  return Reason::Ok;
}

template <class T>
Reason encodeUnsigned(const Type&, std::string_view v, ByteBuf& out) {
  {
    bool neg;
    uint64_t m;
    if (quickInt(v, neg, m) && !neg) {
      if (m > static_cast<uint64_t>(std::numeric_limits<T>::max())) return Reason::IntegerOutOfRange;
      out.putLE(static_cast<T>(m));
      return Reason::Ok;
    }
  }
  bool neg, over;
  uint64_t m;
  if (!parseInt(trimSpaces(v), neg, m, over)) return Reason::NotInteger;
  if (over) return Reason::IntegerOutOfRange;
  if ((neg && m != 0) || m > static_cast<uint64_t>(std::numeric_limits<T>::max())) return Reason::IntegerOutOfRange;
  out.putLE(static_cast<T>(m));
  return Reason::Ok;
}

// The digits of a fraction from p (after its dot), up to 9 of them kept in `out`: where they end.
inline const char* readFraction(const char* p, const char* e, DateTimeParts& out) {
  for (; p < e && *p >= '0' && *p <= '9'; ++p) {
    if (out.fractionDigits < 9) {
      out.fraction = out.fraction * 10 + static_cast<uint64_t>(*p - '0');
      ++out.fractionDigits;
    }
  }
  return p;
}

}  // namespace

bool readEscape(std::string_view v, size_t& i, std::string& out) {
  // ClickHouse's escapes (parseComplexEscapeSequence): control characters, \xHH, \N for
  // nothing, a few characters that drop the backslash; any other backslash is kept with its
  // character.
  const size_t end = v.size();
  char y = v[i++];
  switch (y) {
    case 'a': out.push_back('\a'); break;
    case 'b': out.push_back('\b'); break;
    case 'e': out.push_back('\x1B'); break;
    case 'f': out.push_back('\f'); break;
    case 'n': out.push_back('\n'); break;
    case 'r': out.push_back('\r'); break;
    case 't': out.push_back('\t'); break;
    case 'v': out.push_back('\v'); break;
    case '0': out.push_back('\0'); break;
    case 'N': break;
    case 'x': {
      const int h = i + 1 < end ? kHex.v[static_cast<unsigned char>(v[i])] : -1;
      const int l = i + 1 < end ? kHex.v[static_cast<unsigned char>(v[i + 1])] : -1;
      if (h < 0 || l < 0) return false;
      out.push_back(static_cast<char>(h << 4 | l));
      i += 2;
      break;
    }
    case '\\': case '\'': case '"': case '`': case '/': case '=': out.push_back(y); break;
    default:
      out.push_back('\\');
      out.push_back(y);
  }
  return true;
}

bool parseDate(std::string_view v, int32_t& days) {
  int64_t d;
  if (v.size() != 10 || !ymd(v.data(), d)) return false;
  days = static_cast<int32_t>(d);
  return true;
}

bool parseDateTime(std::string_view v, DateTimeParts& out) {
  const char* p = v.data();
  const char* e = p + v.size();
  int64_t days;
  if (v.size() < 10 || !ymd(p, days)) return false;
  out = DateTimeParts{};
  p += 10;
  int64_t secs = days * 86400;
  if (p < e && (*p == ' ' || *p == 'T')) {
    int hh, mm, ss = 0;
    uint64_t x;
    if (e - p >= 9 && pairedDigits(p + 1, 0x00000A00000A0000ull, 0x0000FF0000FF0000ull, x)) {
      // 'hh:mm:ss' at once (':' ^ '0' = 0x0A at bytes 2 and 5), as ymd does.
      hh = static_cast<int>(x & 0xFF);
      mm = static_cast<int>((x >> 24) & 0xFF);
      ss = static_cast<int>((x >> 48) & 0xFF);
      p += 9;
    } else {
      if (e - p < 6 || !digits(p + 1, 2, hh) || p[3] != ':' || !digits(p + 4, 2, mm)) return false;
      p += 6;
      if (p < e && *p == ':') {
        if (e - p < 3 || !digits(p + 1, 2, ss)) return false;
        p += 3;
      }
    }
    if (hh > 23 || mm > 59 || ss > 59) return false;
    secs += hh * 3600 + mm * 60 + ss;
    out.hasTime = true;
    if (p < e && *p == '.') {
      const char* f = ++p;
      p = readFraction(p, e, out);
      if (p == f) return false;
    }
    // `2026-03-12 10:00:00 +0200`: one space before the offset, as ClickHouse reads it.
    if (e - p >= 2 && *p == ' ' && (p[1] == '+' || p[1] == '-')) ++p;
    if (p < e && *p == 'Z') {
      ++p;
    } else if (p < e && (*p == '+' || *p == '-')) {
      int sign = *p == '-' ? -1 : 1;
      int oh, om = 0;
      if (e - p < 3 || !digits(p + 1, 2, oh)) return false;
      p += 3;
      if (p < e && *p == ':') ++p;
      if (e - p >= 2 && digits(p, 2, om)) p += 2;
      if (oh > 14 || om > 59) return false;
      secs -= sign * (oh * 3600 + om * 60);
    }
  }
  if (p != e) return false;
  out.seconds = secs;
  return true;
}

namespace {

// One encoder per type, chosen once per column (encoderFor): a cell costs one
// call to a small function instead of a walk through a switch of every type.

Reason encString(const Type&, std::string_view v, ByteBuf& out) {
  out.putVarString(v.data(), v.size());
  return Reason::Ok;
}
Reason encFloat32(const Type&, std::string_view v, ByteBuf& out) {
  float f;
  if (!parseFloat32(trimSpaces(v), f)) return Reason::NotFloat;
  out.putLE(f);
  return Reason::Ok;
}
Reason encFloat64(const Type&, std::string_view v, ByteBuf& out) {
  double d;
  if (!parseDouble(trimSpaces(v), d)) return Reason::NotFloat;
  out.putLE(d);
  return Reason::Ok;
}
Reason encDecimal(const Type& t, std::string_view v, ByteBuf& out) { return encodeDecimal(t, trimSpaces(v), out); }
Reason encBool(const Type&, std::string_view v, ByteBuf& out) {
  const int b = boolValue(v, true);
  if (b < 0) return Reason::NotBool;
  out.putByte(static_cast<uint8_t>(b));
  return Reason::Ok;
}
Reason encFixedString(const Type& t, std::string_view v, ByteBuf& out) {
  if (v.size() > static_cast<size_t>(t.precision)) return Reason::TooLongForFixedString;
  out.put(v.data(), v.size());
  for (size_t i = v.size(); i < static_cast<size_t>(t.precision); ++i) out.putByte(0);
  return Reason::Ok;
}
Reason encUuid(const Type&, std::string_view v, ByteBuf& out) { return encodeUuid(trimSpaces(v), out); }
Reason encIPv4(const Type&, std::string_view v, ByteBuf& out) {
  uint32_t a;
  if (!parseIPv4(trimSpaces(v), a)) return Reason::NotIp;
  out.putLE(a);
  return Reason::Ok;
}
Reason encIPv6(const Type&, std::string_view v, ByteBuf& out) {
  uint8_t a[16];
  if (!parseIPv6(trimSpaces(v), a)) return Reason::NotIp;
  out.put(a, 16);
  return Reason::Ok;
}
Reason encDate(const Type&, std::string_view v, ByteBuf& out) {
  int32_t days;
  if (!parseDate(trimSpaces(v), days)) return Reason::NotDate;
  if (days < 0 || days > 65535) return Reason::DateOutOfRange;
  out.putLE(static_cast<uint16_t>(days));
  return Reason::Ok;
}
Reason encDate32(const Type&, std::string_view v, ByteBuf& out) {
  int32_t days;
  if (!parseDate(trimSpaces(v), days)) return Reason::NotDate;
  // 1900-01-01 .. 2299-12-31
  if (days < -25567 || days > 120529) return Reason::DateOutOfRange;
  out.putLE(days);
  return Reason::Ok;
}
// Unix seconds as ClickHouse's text input reads them for DateTime and DateTime64: 9 or 10 digits
// (fewer read as a date, `20260312`, or are refused), for DateTime64 with a fraction after a dot.
// Only where the schema says DateTime: inference keeps such columns integers.
bool unixSeconds(std::string_view v, bool fraction, DateTimeParts& out) {
  size_t n = 0;
  while (n < v.size() && v[n] >= '0' && v[n] <= '9') ++n;
  if (n != 9 && n != 10) return false;
  out = DateTimeParts{};
  int64_t secs = 0;
  for (size_t i = 0; i < n; ++i) secs = secs * 10 + (v[i] - '0');
  out.seconds = secs;
  out.hasTime = true;
  if (n == v.size()) return true;
  if (!fraction || v[n] != '.' || n + 1 == v.size()) return false;
  const char* e = v.data() + v.size();
  return readFraction(v.data() + n + 1, e, out) == e;
}

Reason encDateTime(const Type&, std::string_view v, ByteBuf& out) {
  DateTimeParts dt;
  const std::string_view s = trimSpaces(v);
  if (!parseDateTime(s, dt) && !unixSeconds(s, false, dt)) return Reason::NotDateTime;
  if (dt.seconds < 0 || dt.seconds > 4294967295LL) return Reason::DateOutOfRange;
  out.putLE(static_cast<uint32_t>(dt.seconds));
  return Reason::Ok;
}
Reason encDateTime64(const Type& t, std::string_view v, ByteBuf& out) {
  DateTimeParts dt;
  const std::string_view s = trimSpaces(v);
  if (!parseDateTime(s, dt) && !unixSeconds(s, true, dt)) return Reason::NotDateTime;
  // ClickHouse's DateTime64 range: 1900-01-01 .. 2299-12-31 23:59:59.
  if (dt.seconds < -2208988800LL || dt.seconds > 10413791999LL) return Reason::DateOutOfRange;
  int p = t.precision;
  uint64_t frac = dt.fraction;
  int fd = dt.fractionDigits;
  while (fd > p) {
    frac /= 10;
    --fd;
  }
  while (fd < p) {
    frac *= 10;
    ++fd;
  }
  // DateTime64(9) ends earlier, at 2262-04-11 23:47:16.854775807 (Int64 nanoseconds).
  int64_t ticks;
  if (__builtin_mul_overflow(dt.seconds, kPow10[p], &ticks) ||
      __builtin_add_overflow(ticks, static_cast<int64_t>(frac), &ticks))
    return Reason::DateOutOfRange;
  out.putLE(ticks);
  return Reason::Ok;
}
Reason encEnum(const Type& t, std::string_view v, ByteBuf& out) {
  int value = 0;
  bool found = false;
  for (const auto& ev : t.enumValues) {
    if (ev.first == v) {
      value = ev.second;
      found = true;
      break;
    }
  }
  if (!found) {
    bool neg, over;
    uint64_t m;
    std::string_view s = trimSpaces(v);
    if (parseInt(s, neg, m, over) && !over && m <= 32768) {
      int n = neg ? -static_cast<int>(m) : static_cast<int>(m);
      for (const auto& ev : t.enumValues)
        if (ev.second == n) {
          value = n;
          found = true;
          break;
        }
      // A padded number that is also a label's text (labels are taken as written: ` a` is no
      // label) counts only when that label is the same value: Enum8('1' = 2, '2' = 1) stored
      // ` 1` as '2' silently, where ClickHouse reads label '1'. `Enum16('404' = 404)` and ` 404`
      // agree either way.
      if (found && s.size() != v.size())
        for (const auto& ev : t.enumValues)
          if (ev.first == s && ev.second != n) found = false;
    }
  }
  if (!found) return Reason::UnknownEnumValue;
  if (t.kind == Kind::Enum8) out.putLE(static_cast<int8_t>(value));
  else out.putLE(static_cast<int16_t>(value));
  return Reason::Ok;
}
Reason encLowCardinality(const Type& t, std::string_view v, ByteBuf& out) { return encodeValue(*t.inner, v, out); }
Reason encNullable(const Type& t, std::string_view v, ByteBuf& out) {
  // Callers strip Nullable and write the flag themselves; kept for safety.
  out.putByte(0);
  return encodeValue(*t.inner, v, out);
}

}  // namespace

bool parseIPv4(std::string_view v, uint32_t& out) {
  uint32_t a = 0;
  size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= v.size() || v[i] != '.') return false;
      ++i;
    }
    size_t start = i;
    uint32_t x = 0;
    while (i < v.size() && i - start < 3 && v[i] >= '0' && v[i] <= '9') x = x * 10 + static_cast<uint32_t>(v[i++] - '0');
    if (i == start || x > 255) return false;  // "01" is 1, as ClickHouse reads it (decimal, never octal)
    a = a << 8 | x;
  }
  if (i != v.size()) return false;
  out = a;
  return true;
}

bool parseIPv6(std::string_view v, uint8_t (&out)[16]) {
  uint32_t v4;
  if (v.find(':') == std::string_view::npos) {
    // A bare IPv4: the IPv4-mapped address ::ffff:a.b.c.d.
    if (!parseIPv4(v, v4)) return false;
    std::memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    for (int k = 0; k < 4; ++k) out[12 + k] = static_cast<uint8_t>(v4 >> (24 - 8 * k));
    return true;
  }
  uint16_t groups[8];
  int n = 0;         // groups written
  int gap = -1;      // where "::" was, as a group index
  size_t i = 0;
  if (v.size() >= 2 && v[0] == ':' && v[1] == ':') {
    gap = 0;
    i = 2;
    if (i == v.size()) { std::memset(out, 0, 16); return true; }
  } else if (!v.empty() && v[0] == ':') {
    return false;
  }
  for (;;) {
    // An IPv4 tail takes the last two groups.
    size_t dot = v.find('.', i);
    size_t colon = v.find(':', i);
    if (dot != std::string_view::npos && (colon == std::string_view::npos || dot < colon)) {
      if (n > 6 || !parseIPv4(v.substr(i), v4)) return false;
      groups[n++] = static_cast<uint16_t>(v4 >> 16);
      groups[n++] = static_cast<uint16_t>(v4 & 0xffff);
      i = v.size();
      break;
    }
    size_t start = i;
    uint32_t g = 0;
    while (i < v.size() && i - start < 4) {
      char c = v[i];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) break;
      g = g << 4 | static_cast<uint32_t>(d);
      ++i;
    }
    if (i == start || n >= 8) return false;
    groups[n++] = static_cast<uint16_t>(g);
    if (i == v.size()) break;
    if (v[i] != ':') return false;
    ++i;
    if (i < v.size() && v[i] == ':') {
      if (gap >= 0) return false;  // a second "::"
      gap = n;
      ++i;
      if (i == v.size()) break;
    } else if (i == v.size()) {
      return false;  // a trailing single ':'
    }
  }
  if (gap < 0 ? n != 8 : n > 7) return false;
  int k = 0;
  for (int j = 0; j < 8; ++j) {
    uint16_t g;
    if (gap >= 0 && j >= gap && j < gap + (8 - n)) g = 0;
    else g = groups[k++];
    out[2 * j] = static_cast<uint8_t>(g >> 8);
    out[2 * j + 1] = static_cast<uint8_t>(g & 0xff);
  }
  return true;
}

ValueEncoder encoderFor(const Type& t) {
  switch (t.kind) {
    case Kind::String: return encString;
    case Kind::Int8: return encodeSigned<int8_t>;
    case Kind::Int16: return encodeSigned<int16_t>;
    case Kind::Int32: return encodeSigned<int32_t>;
    case Kind::Int64: return encodeSigned<int64_t>;
    case Kind::UInt8: return encodeUnsigned<uint8_t>;
    case Kind::UInt16: return encodeUnsigned<uint16_t>;
    case Kind::UInt32: return encodeUnsigned<uint32_t>;
    case Kind::UInt64: return encodeUnsigned<uint64_t>;
    case Kind::Float32: return encFloat32;
    case Kind::Float64: return encFloat64;
    case Kind::Decimal: return encDecimal;
    case Kind::Bool: return encBool;
    case Kind::FixedString: return encFixedString;
    case Kind::UUID: return encUuid;
    case Kind::IPv4: return encIPv4;
    case Kind::IPv6: return encIPv6;
    case Kind::Date: return encDate;
    case Kind::Date32: return encDate32;
    case Kind::DateTime: return encDateTime;
    case Kind::DateTime64: return encDateTime64;
    case Kind::Enum8:
    case Kind::Enum16: return encEnum;
    case Kind::Array: return encodeArray;
    case Kind::LowCardinality: return encLowCardinality;
    case Kind::Nullable: return encNullable;
  }
  return [](const Type&, std::string_view, ByteBuf&) { return Reason::NotFloat; };
}

Reason encodeValue(const Type& t, std::string_view v, ByteBuf& out) { return encoderFor(t)(t, v, out); }

}  // namespace roost::csv

// --- Column-at-a-time (cells.h) ---------------------------------------------------------------

namespace roost::csv {
namespace {

template <class Enc>
[[gnu::always_inline]] inline bool cellsLoop(const ColumnCells& c, ByteBuf& data, ByteBuf* nulls, Enc enc) {
  const Type& t = *c.type;
  const Field* f = c.first;
  for (size_t r = 0; r < c.rows; ++r, f += c.stride) {
    const std::string_view v(f->data, f->size);
    const bool isNull = c.nullable && ((v.empty() && (!f->quoted || !c.quotedEmptyIsValue)) ||
                                       (!f->quoted && v.size() == 2 && v[0] == '\\' && v[1] == 'N'));
    if (isNull) {
      nulls->putByte(1);
      if (c.nullWidth) std::memset(data.grow(c.nullWidth), 0, c.nullWidth);
      else data.putByte(0);
      continue;
    }
    if (c.nullable) nulls->putByte(0);
    else if (v.empty() && !c.emptyIsValue && (!f->quoted || !c.quotedEmptyIsValue)) return false;  // (not a value of this type)
    if (enc(t, v, data) != Reason::Ok) return false;
  }
  return true;
}

#define ROOST_CELLS(fn) cellsLoop(c, data, nulls, [](const Type& t, std::string_view v, ByteBuf& o) { return fn(t, v, o); })

}  // namespace

bool encodeCells(const ColumnCells& c, ByteBuf& data, ByteBuf* nulls) {
  switch (c.type->kind) {
    case Kind::String:
      return cellsLoop(c, data, nulls, [](const Type&, std::string_view v, ByteBuf& o) {
        o.putVarString(v.data(), v.size());
        return Reason::Ok;
      });
    case Kind::Int8: return ROOST_CELLS(encodeSigned<int8_t>);
    case Kind::Int16: return ROOST_CELLS(encodeSigned<int16_t>);
    case Kind::Int32: return ROOST_CELLS(encodeSigned<int32_t>);
    case Kind::Int64: return ROOST_CELLS(encodeSigned<int64_t>);
    case Kind::UInt8: return ROOST_CELLS(encodeUnsigned<uint8_t>);
    case Kind::UInt16: return ROOST_CELLS(encodeUnsigned<uint16_t>);
    case Kind::UInt32: return ROOST_CELLS(encodeUnsigned<uint32_t>);
    case Kind::UInt64: return ROOST_CELLS(encodeUnsigned<uint64_t>);
    case Kind::Float32: return ROOST_CELLS(encFloat32);
    case Kind::Float64: return ROOST_CELLS(encFloat64);
    case Kind::Decimal: return ROOST_CELLS(encDecimal);
    case Kind::Bool: return ROOST_CELLS(encBool);
    case Kind::UUID: return ROOST_CELLS(encUuid);
    case Kind::Date: return ROOST_CELLS(encDate);
    case Kind::DateTime: return ROOST_CELLS(encDateTime);
    case Kind::DateTime64: return ROOST_CELLS(encDateTime64);
    default: {
      const ValueEncoder e = encoderFor(*c.type);
      return cellsLoop(c, data, nulls, e);
    }
  }
}

#undef ROOST_CELLS

}  // namespace roost::csv
