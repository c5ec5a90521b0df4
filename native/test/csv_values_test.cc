#include <doctest/doctest.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "csv/native_block.h"
#include "csv/schema.h"
#include "csv/types.h"
#include "csv/validator.h"
#include "csv/values.h"
#include "csv_test_util.h"

using namespace roost::csv;

namespace {

Type T(const char* s) {
  Type t;
  TypeError e;
  REQUIRE_MESSAGE(parseTypeString(s, t, e), e.message);
  return t;
}

// Encodes v as type t: the RowBinary bytes as hex, or the reason text.
std::string enc(const char* type, std::string_view v) {
  ByteBuf b;
  Reason r = encodeValue(T(type), v, b);
  if (r != Reason::Ok) return std::string(reasonText(r));
  return csvtest::hexOf(std::string_view(b.data(), b.size()));
}

}  // namespace

TEST_CASE("csv types: parse and print canonically") {
  CHECK(typeToString(T("Nullable(DateTime64(3))")) == "Nullable(DateTime64(3))");
  CHECK(typeToString(T("LowCardinality( Nullable(String) )")) == "LowCardinality(Nullable(String))");
  CHECK(typeToString(T("Decimal32(2)")) == "Decimal(9, 2)");
  CHECK(typeToString(T("Decimal128(4)")) == "Decimal(38, 4)");
  CHECK(typeToString(T("Enum8('a' = 1, 'b''c' = 2)")) == "Enum8('a' = 1, 'b\\'c' = 2)");
  CHECK(typeToString(T("Enum16('a', 'b')")) == "Enum16('a' = 1, 'b' = 2)");
  // Labels read with ClickHouse's escapes (\t was read as `t`), printed back so they read the same.
  CHECK(T("Enum8('a\\tb' = 1)").enumValues[0].first == "a\tb");
  CHECK(T("Enum8('a\\x41\\\\\\'\\q' = 1)").enumValues[0].first == "aA\\'\\q");
  CHECK(T("Enum8('a\\Nb\\=' = 1)").enumValues[0].first == "ab=");  // as the engine reads them
  CHECK(typeToString(T("Enum8('a\\tb' = 1, 'n\\nl' = 2)")) == "Enum8('a\\x09b' = 1, 'n\\x0al' = 2)");
  CHECK(typeToString(T(typeToString(T("Enum8('a\\tb\\\\' = 1)")).c_str())) == typeToString(T("Enum8('a\\tb\\\\' = 1)")));
  CHECK(typeToString(T("Array(Array(Nullable(Int8)))")) == "Array(Array(Nullable(Int8)))");
  CHECK(typeToString(T("DateTime('UTC')")) == "DateTime('UTC')");
  Type t;
  TypeError e;
  CHECK_FALSE(parseTypeString("Nullable(Array(Int8))", t, e));
  CHECK_FALSE(parseTypeString("Int33", t, e));
  CHECK_FALSE(e.unsupported);
  CHECK_FALSE(parseTypeString("UInt128", t, e));
  CHECK(e.unsupported);
  CHECK_FALSE(parseTypeString("DateTime('Europe/Madrid')", t, e));
  CHECK(e.unsupported);
  CHECK_FALSE(parseTypeString("Enum8('a' = 300)", t, e));
  CHECK_FALSE(parseTypeString("Enum8('a\\xZ' = 1)", t, e));
  CHECK_FALSE(parseTypeString("Decimal(5, 6)", t, e));
  CHECK_FALSE(parseTypeString("String x", t, e));
  CHECK(e.offset == 7);
}

TEST_CASE("csv values: integer ranges of every width") {
  CHECK(enc("Int8", "-128") == "80");
  CHECK(enc("Int8", "127") == "7f");
  CHECK(enc("Int8", "128") == "integer out of range");
  CHECK(enc("Int8", "-129") == "integer out of range");
  CHECK(enc("UInt8", "255") == "ff");
  CHECK(enc("UInt8", "256") == "integer out of range");
  CHECK(enc("UInt8", "-1") == "integer out of range");
  CHECK(enc("UInt8", "-0") == "00");
  CHECK(enc("Int16", "-32768") == "0080");
  CHECK(enc("Int16", "32768") == "integer out of range");
  CHECK(enc("UInt16", "65535") == "ffff");
  CHECK(enc("Int32", "-2147483648") == "00000080");
  CHECK(enc("Int32", "2147483648") == "integer out of range");
  CHECK(enc("UInt32", "4294967295") == "ffffffff");
  CHECK(enc("UInt32", "4294967296") == "integer out of range");
  CHECK(enc("Int64", "-9223372036854775808") == "0000000000000080");
  CHECK(enc("Int64", "9223372036854775807") == "ffffffffffffff7f");
  CHECK(enc("Int64", "9223372036854775808") == "integer out of range");
  CHECK(enc("UInt64", "18446744073709551615") == "ffffffffffffffff");
  CHECK(enc("UInt64", "18446744073709551616") == "integer out of range");
  CHECK(enc("UInt64", "99999999999999999999999") == "integer out of range");
  CHECK(enc("Int32", " 42 ") == "2a000000");
  CHECK(enc("Int32", "+42") == "2a000000");
  CHECK(enc("Int32", "4x") == "not an integer");
  CHECK(enc("Int32", "1.0") == "not an integer");
  CHECK(enc("Int32", "-") == "not an integer");
}

TEST_CASE("csv values: floats, including the inf and nan forms") {
  CHECK(enc("Float64", "1.5") == "000000000000f83f");
  CHECK(enc("Float64", "-2.5e-3").size() == 16);
  CHECK(enc("Float64", "inf") == "000000000000f07f");
  CHECK(enc("Float64", "-inf") == "000000000000f0ff");
  CHECK(enc("Float64", "+inf") == "000000000000f07f");
  CHECK(enc("Float64", "Infinity") == "000000000000f07f");
  CHECK(enc("Float64", "nan").size() == 16);
  CHECK(enc("Float64", "-nan").size() == 16);
  CHECK(enc("Float32", "1.5") == "0000c03f");
  CHECK(enc("Float32", "3.4e38").size() == 8);
  CHECK(enc("Float64", "1.5.2") == "not a number");
  CHECK(enc("Float64", "abc") == "not a number");
  CHECK(enc("Float64", "0x10") == "not a number");
  // The fast path and from_chars agree on a spread of decimals.
  for (const char* s : {"0.1", "123456.789012", "-0.000001", "9007199254740991", "3.14159265358979", "0.3"}) {
    double fast;
    REQUIRE(parseDouble(s, fast));
    CHECK(fast == std::strtod(s, nullptr));
  }
}

TEST_CASE("csv values: the SWAR decimal fast path agrees with from_chars on every shape") {
  // Random strings of digits, points, signs and exponents, 1..20 bytes, each read
  // from a buffer that ends exactly where the value does (the fast path must not
  // read past it; ASan checks that in the fuzz build). Wherever from_chars reads
  // the whole string, parseDouble must give the same double; wherever it does
  // not, parseDouble must refuse it. Float32 through the encoder, the same way.
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  auto next = [&seed] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  const char alphabet[] = "0123456789012345678901234567890123456789....-+e";
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    const size_t n = 1 + next() % 20;
    std::string s(n, '0');
    for (auto& c : s) c = alphabet[next() % (sizeof(alphabet) - 1)];
    if (i % 3 == 0) {  // mostly well-formed: digits, one point somewhere, maybe a sign
      for (auto& c : s) c = static_cast<char>('0' + next() % 10);
      s[next() % n] = '.';
      if (n > 1 && next() % 2) s[0] = '-';
    }
    std::vector<char> exact(s.begin(), s.end());  // no terminator after the value
    const std::string_view v(exact.data(), exact.size());
    const char* b = v.data();
    const char* e = b + v.size();
    if (b < e && *b == '+') ++b;
    double want = 0;
    auto r = std::from_chars(b, e, want, std::chars_format::general);
    double got = 0;
    const bool ok = parseDouble(v, got);
    if (r.ec == std::errc::result_out_of_range) continue;
    const bool valid = b < e && r.ec == std::errc() && r.ptr == e;
    INFO("value: ", s);
    REQUIRE(ok == valid);
    if (!valid) continue;
    ++accepted;
    CHECK(std::memcmp(&got, &want, sizeof got) == 0);
    float wantF = 0;
    auto rf = std::from_chars(b, e, wantF, std::chars_format::general);
    if (rf.ec == std::errc() && rf.ptr == e) {
      std::string hex;
      char h[3];
      for (size_t k = 0; k < 4; ++k) {
        std::snprintf(h, sizeof h, "%02x", reinterpret_cast<unsigned char*>(&wantF)[k]);
        hex += h;
      }
      CHECK(enc("Float32", s) == hex);
    }
  }
  CHECK(accepted > 50000);  // the test reached the fast path, not only refusals
}

TEST_CASE("csv values: floats out of range are +-inf or +-0, as ClickHouse reads them") {
  // from_chars leaves its output unset out of range: the value stored used to be
  // whatever was in the variable (0, or the previous array element).
  CHECK(enc("Float64", "1e309") == "000000000000f07f");
  CHECK(enc("Float64", "-1e309") == "000000000000f0ff");
  CHECK(enc("Float64", "1.7976931348623159e308") == "000000000000f07f");
  CHECK(enc("Float64", "0.00001e999999") == "000000000000f07f");
  CHECK(enc("Float64", "1e-400") == "0000000000000000");
  CHECK(enc("Float64", "-1e-400") == "0000000000000080");
  CHECK(enc("Float64", "123456e-330") == "0000000000000000");
  CHECK(enc("Float64", "-08.4590955367076999e-329") == "0000000000000080");
  CHECK(enc("Float64", "4.9e-324") == "0100000000000000");  // subnormals stay exact
  CHECK(enc("Float64", "1e-310") == enc("Float64", "0.0000000001e-300"));
  CHECK(enc("Float32", "1e39") == "0000807f");
  CHECK(enc("Float32", "-1e309") == "000080ff");
  CHECK(enc("Float32", "1e-400") == "00000000");
  CHECK(enc("Array(Float64)", "[1e308,1e309,-1e-400]") ==
        "03" "a0c8eb85f3cce17f" "000000000000f07f" "0000000000000080");
}

TEST_CASE("csv values: decimals") {
  CHECK(enc("Decimal(9, 2)", "1.5") == "96000000");          // 150
  CHECK(enc("Decimal(9, 2)", "-1.999") == "39ffffff");       // -199: truncated like ClickHouse
  CHECK(enc("Decimal(9, 2)", "1234567.89") == "15cd5b07");   // 123456789
  CHECK(enc("Decimal(9, 2)", "12345678.9") == "decimal out of range");
  CHECK(enc("Decimal64(4)", "1").size() == 16);
  CHECK(enc("Decimal128(2)", "1").size() == 32);
  CHECK(enc("Decimal(10, 2)", "1e5") == "not a decimal");
  CHECK(enc("Decimal(10, 2)", ".5") == "3200000000000000");
  CHECK(enc("Decimal(10, 2)", "-") == "not a decimal");
}

TEST_CASE("csv values: dates and times") {
  CHECK(enc("Date", "1970-01-01") == "0000");
  CHECK(enc("Date", "2024-01-02") == "0c4d");  // 19724
  CHECK(enc("Date", "2024-02-29") == "464d");
  CHECK(enc("Date", "2023-02-29") == "not a date");
  CHECK(enc("Date", "2024-13-01") == "not a date");
  CHECK(enc("Date", "1969-12-31") == "date out of range");
  CHECK(enc("Date32", "1969-12-31") == "ffffffff");
  CHECK(enc("Date", "2024-1-2") == "not a date");
  CHECK(enc("DateTime", "2024-01-02 03:04:05") == enc("DateTime", "2024-01-02T03:04:05Z"));
  CHECK(enc("DateTime", "2024-01-02 03:04:05") == enc("DateTime", "2024-01-02T05:04:05+02:00"));
  CHECK(enc("DateTime", "2024-01-02 03:04:05") == enc("DateTime", "2024-01-01T22:04:05-0500"));
  CHECK(enc("DateTime", "1970-01-01 00:00:01") == "01000000");
  CHECK(enc("DateTime", "2024-01-02") == enc("DateTime", "2024-01-02 00:00:00"));
  CHECK(enc("DateTime", "2024-01-02 24:00:00") == "not a datetime");
  CHECK(enc("DateTime", "1969-12-31 23:59:59") == "date out of range");
  // Unix seconds (9 or 10 digits, as ClickHouse reads them), and a space before an offset.
  CHECK(enc("DateTime", "1773309600") == enc("DateTime", "2026-03-12 10:00:00"));
  CHECK(enc("DateTime", "123456789") == enc("DateTime", "1973-11-29 21:33:09"));
  CHECK(enc("DateTime", "4294967296") == "date out of range");
  CHECK(enc("DateTime", "12345") == "not a datetime");
  CHECK(enc("DateTime", "17733096001") == "not a datetime");
  CHECK(enc("DateTime", "1773309600.5") == "not a datetime");
  CHECK(enc("DateTime", "2026-03-12 10:00:00 +0200") == enc("DateTime", "2026-03-12 08:00:00"));
  CHECK(enc("DateTime", "2026-03-12 10:00:00  +0200") == "not a datetime");
  CHECK(enc("DateTime64(3)", "1773309600.123") == enc("DateTime64(3)", "2026-03-12 10:00:00.123"));
  CHECK(enc("DateTime64(3)", "1773309600") == enc("DateTime64(3)", "2026-03-12 10:00:00"));
  CHECK(enc("DateTime64(3)", "1773309600.") == "not a datetime");
  CHECK(enc("DateTime64(3)", "1970-01-01 00:00:01.5") == "dc05000000000000");       // 1500
  CHECK(enc("DateTime64(3)", "1970-01-01 00:00:01.123456") == "6304000000000000");  // 1123: truncated
  CHECK(enc("DateTime64(6)", "1970-01-01T00:00:00.000001Z") == "0100000000000000");
  CHECK(enc("DateTime64(3)", "1969-12-31 23:59:59.000") == "18fcffffffffffff");      // -1000
  CHECK(enc("DateTime64(3)", "2024-01-02 03:04") == enc("DateTime64(3)", "2024-01-02 03:04:00"));
  CHECK(enc("DateTime64(3)", "2024-01-02 03:04:05.") == "not a datetime");
}

// A plain reference for 'YYYY-MM-DD': digit by digit, days counted by walking
// the calendar (no formula shared with the code under test).
namespace {
bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int monthDays(int y, int m) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : d[m - 1];
}
bool refDate(const std::string& s, int& y, int& m, int& d) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (s[i] < '0' || s[i] > '9') return false;
  y = std::stoi(s.substr(0, 4));
  m = std::stoi(s.substr(5, 2));
  d = std::stoi(s.substr(8, 2));
  return m >= 1 && m <= 12 && d >= 1 && d <= monthDays(y, m);
}
}  // namespace

TEST_CASE("csv values: DateTime64(9) ends at 2262-04-11 23:47:16.854775807") {
  // Int64 nanoseconds: later times used to wrap around to the 1700s.
  CHECK(enc("DateTime64(9)", "2262-04-11 23:47:16.854775807") == "ffffffffffffff7f");
  CHECK(enc("DateTime64(9)", "2262-04-11 23:47:16.854775808") == "date out of range");
  CHECK(enc("DateTime64(9)", "2262-04-11 23:47:17") == "date out of range");
  CHECK(enc("DateTime64(9)", "2299-12-31 23:59:59") == "date out of range");
  CHECK(enc("DateTime64(9)", "1900-01-01 00:00:00") == "00002fdf631858e1");  // -2208988800e9
  CHECK(enc("DateTime64(8)", "2299-12-31 23:59:59.99999999") != "date out of range");
}

TEST_CASE("csv values: every day of years 0000..9999, and every byte at every place of a date") {
  // Day numbers counted from 0000-01-01 by walking the calendar, then shifted so
  // that 1970-01-01 is day 0.
  char buf[11];
  int64_t n = 0, epoch = 0;
  for (int y = 0; y <= 1969; ++y) epoch += leap(y) ? 366 : 365;
  int bad = 0;
  for (int y = 0; y <= 9999; ++y)
    for (int m = 1; m <= 12; ++m)
      for (int d = 1; d <= monthDays(y, m); ++d, ++n) {
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
        int32_t got;
        if (!parseDate(std::string_view(buf, 10), got) || got != n - epoch) ++bad;
      }
  CHECK(bad == 0);
  CHECK(n == 3652425);
  // Every byte value at every position of a few dates: parsed exactly when the
  // reference parser takes the result, and then to the same day.
  int mismatches = 0;
  for (const char* base : {"2024-02-29", "1999-12-31", "0000-01-01", "9999-12-31", "2023-06-15"}) {
    for (int pos = 0; pos < 10; ++pos)
      for (int b = 0; b < 256; ++b) {
        std::string s(base);
        s[static_cast<size_t>(pos)] = static_cast<char>(b);
        int y, m, d;
        bool want = refDate(s, y, m, d);
        int32_t got;
        bool ok = parseDate(s, got);
        if (ok != want) ++mismatches;
        else if (ok) {
          int32_t again;
          std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
          if (!parseDate(std::string_view(buf, 10), again) || again != got) ++mismatches;
        }
      }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("csv values: every time of day, and every byte at every place of a datetime") {
  char buf[32];
  int bad = 0;
  for (int t = 0; t < 86400; ++t) {
    std::snprintf(buf, sizeof buf, "1970-01-02 %02d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    DateTimeParts dt;
    if (!parseDateTime(buf, dt) || dt.seconds != 86400 + t || !dt.hasTime) ++bad;
  }
  CHECK(bad == 0);
  // The reference: the date as refDate reads it, then 'hh:mm:ss' digit by digit.
  auto ref = [](const std::string& s, int64_t& secs) {
    int y, m, d;
    if (s.size() != 19 || !refDate(s.substr(0, 10), y, m, d) || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':') return false;
    for (int i : {11, 12, 14, 15, 17, 18})
      if (s[i] < '0' || s[i] > '9') return false;
    int hh = std::stoi(s.substr(11, 2)), mm = std::stoi(s.substr(14, 2)), ss = std::stoi(s.substr(17, 2));
    if (hh > 23 || mm > 59 || ss > 59) return false;
    int32_t days;
    REQUIRE(parseDate(s.substr(0, 10), days));
    secs = int64_t{days} * 86400 + hh * 3600 + mm * 60 + ss;
    return true;
  };
  int mismatches = 0;
  for (const char* base : {"2024-02-29 23:59:59", "1999-12-31 00:00:00", "2023-06-15 12:34:56"}) {
    for (int pos = 10; pos < 19; ++pos)
      for (int b = 0; b < 256; ++b) {
        std::string s(base);
        s[static_cast<size_t>(pos)] = static_cast<char>(b);
        int64_t want;
        bool wantOk = ref(s, want);
        DateTimeParts dt;
        bool ok = parseDateTime(s, dt);
        // 'hh:mm' followed by a fraction or an offset is a form of its own (tested above).
        if (pos == 16 && (b == '.' || b == '+' || b == '-')) continue;
        if (ok != wantOk || (ok && dt.seconds != want)) {
          ++mismatches;
          MESSAGE("mismatch: " << s << " parsed " << ok << " reference " << wantOk);
        }
      }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("csv values: bool, UUID, enum, strings") {
  CHECK(enc("Bool", "true") == "01");
  CHECK(enc("Bool", "FALSE") == "00");
  CHECK(enc("Bool", "1") == "01");
  CHECK(enc("Bool", "yes!") == "not a bool");
  // What ClickHouse's text input takes, in any case.
  for (const char* t : {"yes", "Y", "T", "on", "Enable", "TRUE"}) CHECK(enc("Bool", t) == "01");
  for (const char* f : {"no", "N", "f", "OFF", "disable", "False"}) CHECK(enc("Bool", f) == "00");
  CHECK(enc("Bool", "yess") == "not a bool");
  // Inside an array, as ClickHouse reads one there: true/false and 1/0 only.
  CHECK(enc("Array(Bool)", "[true,0]") == "020100");
  CHECK(enc("Array(Bool)", "[yes]") == "not a bool");
  CHECK(enc("Bool", "") == "not a bool");
  CHECK(enc("UUID", "61f0c404-5cb3-11e7-907b-a6006ad3dba0") == "e711b35c04c4f061a0dbd36a00a67b90");
  CHECK(enc("UUID", "61F0C404-5CB3-11E7-907B-A6006AD3DBA0") == "e711b35c04c4f061a0dbd36a00a67b90");
  CHECK(enc("UUID", "61f0c404-5cb3-11e7-907b-a6006ad3dbaz") == "not a UUID");
  CHECK(enc("UUID", "61f0c4045cb311e7907ba6006ad3dba0") == "not a UUID");
  CHECK(enc("Enum8('a' = 1, 'b' = -2)", "b") == "fe");
  CHECK(enc("Enum8('a' = 1, 'b' = -2)", "1") == "01");
  CHECK(enc("Enum8('a' = 1, 'b' = -2)", "c") == "unknown enum value");
  CHECK(enc("Enum16('a' = 1000)", "a") == "e803");
  // A number-like label with spaces around it is neither the label nor another label's number.
  CHECK(enc("Enum8('1' = 2, '2' = 1)", "1") == "02");
  CHECK(enc("Enum8('1' = 2, '2' = 1)", " 1") == "unknown enum value");
  CHECK(enc("Enum8('1' = 2, '2' = 1)", "2 ") == "unknown enum value");
  CHECK(enc("Enum16('10' = 1, '1' = 10)", " 10") == "unknown enum value");
  CHECK(enc("Enum8('1' = 2, '2' = 1)", " 3") == "unknown enum value");
  // Label and number agree: taken (as before, and as ClickHouse).
  CHECK(enc("Enum16('200' = 200, '404' = 404)", " 404") == "9401");
  CHECK(enc("Enum8('1' = 1, '2' = 2)", " 1") == "01");
  CHECK(enc("Enum8('a' = 1, 'b' = -2)", " 1 ") == "01");  // a number, as ClickHouse reads it
  CHECK(enc("String", "héllo") == "0668c3a96c6c6f");
  CHECK(enc("LowCardinality(String)", "ab") == "026162");
  CHECK(enc("FixedString(3)", "ab") == "616200");
  CHECK(enc("FixedString(3)", "abcd") == "too long for FixedString");
}

TEST_CASE("csv values: arrays in ClickHouse text form") {
  CHECK(enc("Array(Int32)", "[1, 2]") == "020100000002000000");
  CHECK(enc("Array(Int32)", "[]") == "00");
  CHECK(enc("Array(String)", "['a','b''c']") == "02016103622763");
  CHECK(enc("Array(String)", "['x\\'y', \"z\"]") == "020378277901" "7a");
  CHECK(enc("Array(Nullable(Int8))", "[1,NULL]") == "02000101");
  CHECK(enc("Array(Int8)", "[1,NULL]") == "NULL in a non-Nullable column");
  // A bare null in any case is NULL (it was the string 'null' in Array(Nullable(String))).
  CHECK(enc("Array(Nullable(String))", "[null,Null,'null']") == "03" "01" "01" "00046e756c6c");
  CHECK(enc("Array(Nullable(Int8))", "[nULL]") == "0101");
  // A bare \N is NULL too; quoted, it is the text \N; in an array of non-Nullable, refused.
  CHECK(enc("Array(Nullable(String))", R"([\N,'\\N'])") == "02" "01" "0002" "5c4e");
  CHECK(enc("Array(Nullable(Int32))", R"([1, \N])") == "02" "0001000000" "01");
  CHECK(enc("Array(String)", R"([\N])") == "NULL in a non-Nullable column");
  // An empty element: under Nullable elements the type's own reason (NULL is the missing value
  // there, and making the column Nullable would not help); otherwise the empty-value reason.
  CHECK(enc("Array(Nullable(Int32))", R"([""])") == "not an integer");
  CHECK(enc("Array(Nullable(Date))", "['2020-01-02','']") == "not a date");
  CHECK(enc("Array(Int32)", R"([""])") == "empty value in a non-Nullable column");
  CHECK(enc("Array(Nullable(String))", R"([""])") == "01" "00" "00");
}

TEST_CASE("csv values: IPv4 and IPv6") {
  CHECK(enc("IPv4", "1.2.3.4") == "04030201");  // UInt32 0x01020304, little-endian
  CHECK(enc("IPv4", " 255.255.255.255 ") == "ffffffff");
  CHECK(enc("IPv4", "01.002.3.4") == "04030201");
  for (const char* bad : {"256.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.4x", "a.b.c.d", "0001.2.3.4", "::1", "-1.2.3.4"})
    CHECK_MESSAGE(enc("IPv4", bad) == "not an IP address", bad);
  CHECK(enc("IPv6", "::") == "00000000000000000000000000000000");
  CHECK(enc("IPv6", "::1") == "00000000000000000000000000000001");
  CHECK(enc("IPv6", "1::") == "00010000000000000000000000000000");
  CHECK(enc("IPv6", "2001:DB8::ff00:42:8329") == "20010db8000000000000ff0000428329");
  CHECK(enc("IPv6", "1:2:3:4:5:6:7:8") == "00010002000300040005000600070008");
  CHECK(enc("IPv6", "::ffff:1.2.3.4") == "00000000000000000000ffff01020304");
  CHECK(enc("IPv6", "1.2.3.4") == "00000000000000000000ffff01020304");  // bare IPv4: mapped
  CHECK(enc("IPv6", "1:2:3:4:5:6:1.2.3.4") == "00010002000300040005000601020304");
  CHECK(enc("IPv6", "1:2:3:4:5:6:7::") == "00010002000300040005000600070000");
  for (const char* bad : {"1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "12345::", "1:2:3:4:5:6:7", "g::1", "1:", ":1", "::1%eth0",
                          "[::1]", "::ffff:256.1.1.1", "1:2:3:4:5:6:7:1.2.3.4", ""})
    CHECK_MESSAGE(enc("IPv6", bad) == "not an IP address", bad);
  CHECK(typeToString(T("Nullable(IPv6)")) == "Nullable(IPv6)");
  CHECK(enc("Array(String)", "[null]") == "NULL in a non-Nullable column");
  CHECK(enc("Array(Array(Int8))", "[[1],[2,3],[]]") == "03" "0101" "020203" "00");
  CHECK(enc("Array(Int8)", "[1,2") == "not an array");
  CHECK(enc("Array(Int8)", "[1,,2]") == "not an array");
  CHECK(enc("Array(Int8)", "[1,x]") == "not an integer");
  CHECK(enc("Array(Int8)", "[300]") == "integer out of range");
  CHECK(enc("Array(Date)", "['2024-01-02']") == "010c4d");
}

TEST_CASE("csv values: escapes in array strings as ClickHouse reads them") {
  // Control escapes, \xHH and \N (nothing); \\ \' \" \` \/ \= drop the
  // backslash; any other backslash stays with its character ('a\,b' is a\,b).
  CHECK(enc("Array(String)", R"(['\a\b\e\f\n\r\t\v\0'])") == "0109" "07081b0c0a0d090b00");
  CHECK(enc("Array(String)", R"(['\x41\x4a\x4A'])") == "0103" "414a4a");
  CHECK(enc("Array(String)", R"(['a\Nb'])") == "0102" "6162");
  CHECK(enc("Array(String)", R"(['\\\'\"\`\/\='])") == "0106" "5c2722602f3d");
  CHECK(enc("Array(String)", R"(['a\,b','\u00e9','\:','\1'])") ==
        "04" "04615c2c62" "065c7530306539" "025c3a" "025c31");
  CHECK(enc("Array(String)", R"(['\x4'])") == "not an array");
  CHECK(enc("Array(String)", R"(['\xZZ'])") == "not an array");
  CHECK(enc("Array(String)", R"(['\x'])") == "not an array");
}

TEST_CASE("csv schema: Tinybird syntax, positions of errors") {
  std::vector<Column> cols;
  SchemaError e;
  REQUIRE(parseSchema("`a` Int32 `json:$.a.b`, b Nullable(String) DEFAULT 'x, y', `c d` Array(Int8) DEFAULT [1, 2]",
                      cols, e));
  REQUIRE(cols.size() == 3);
  CHECK(cols[0].jsonPath == "$.a.b");
  CHECK(cols[1].defaultExpr == "'x, y'");
  CHECK(cols[2].name == "c d");
  CHECK(cols[2].defaultExpr == "[1, 2]");
  CHECK(structureOf(cols, true) == "`a` Int32, `b` Nullable(String) DEFAULT 'x, y', `c d` Array(Int8) DEFAULT [1, 2]");
  CHECK_FALSE(parseSchema("a Int32, a String", cols, e));
  CHECK(e.offset == 9);
  CHECK_FALSE(parseSchema("a Int32 DEFAULT", cols, e));
  CHECK_FALSE(parseSchema("a Int32 `json:a`", cols, e));
  // A backtick in the path is written twice.
  REQUIRE(parseSchema("a String `json:$['we``ird']`, b Int8 `json:$.b`", cols, e));
  CHECK(cols[0].jsonPath == "$['we`ird']");
  CHECK(cols[1].jsonPath == "$.b");
  CHECK_FALSE(parseSchema("a String `json:$['we`ird']`", cols, e));
  // Clauses a schema does not take say which and what to do.
  CHECK_FALSE(parseSchema("`a` String CODEC(ZSTD(1))", cols, e));
  CHECK(e.message.find("CODEC(...) is not supported") != std::string::npos);
  CHECK(e.offset == 11);
  CHECK_FALSE(parseSchema("`a` Int32, b Int32 ALIAS a + 1", cols, e));
  CHECK(e.message.find("ALIAS columns are not supported") != std::string::npos);
  CHECK_FALSE(parseSchema("a", cols, e));
  CHECK_FALSE(parseSchema("", cols, e));
  CHECK_FALSE(parseSchema("a Int32,", cols, e));
  CHECK(e.offset == 8);
  CHECK_FALSE(parseSchema("a Tuple(Int8)", cols, e));
  CHECK(e.unsupportedType);
  // The JSON path may also follow the DEFAULT expression; a backquoted name inside
  // the expression is not a path.
  REQUIRE(parseSchema("n Nullable(Int32) DEFAULT 9 `json:$.n`, s String DEFAULT concat(`a b`, 'x') `json:$.s`, t Int8 DEFAULT 1", cols, e));
  REQUIRE(cols.size() == 3);
  CHECK(cols[0].defaultExpr == "9");
  CHECK(cols[0].jsonPath == "$.n");
  CHECK(cols[1].defaultExpr == "concat(`a b`, 'x')");
  CHECK(cols[1].jsonPath == "$.s");
  CHECK(cols[2].jsonPath.empty());
  CHECK_FALSE(parseSchema("n Int32 `json:$.a` DEFAULT 1 `json:$.b`", cols, e));  // two paths
  CHECK_FALSE(parseSchema("n Int32 DEFAULT 1 `json:n`", cols, e));
  CHECK_FALSE(parseSchema("n Int32 DEFAULT 1 `json:$.n", cols, e));
}

namespace {

struct Result {
  std::string rows;
  uint64_t count = 0;
  std::vector<std::string> rejected;  // "line:column:reason:raw"
  bool ok = true;
};

Result validate(const char* schema, const std::string& csv, bool header = false, size_t cut = std::string::npos) {
  std::vector<Column> cols;
  SchemaError e;
  REQUIRE(parseSchema(schema, cols, e));
  ValidatorOptions o;
  o.hasHeader = header;
  o.encoding = Encoding::RowBinary;
  Validator v(cols, o);
  Result r;
  auto take = [&](Batch& b) {
    r.rows.append(b.rows.view());
    r.count += b.rowCount;
    const std::string& s = b.rejected;
    size_t p = 0;
    for (uint64_t i = 0; i < b.rejectedCount; ++i) {
      uint64_t line;
      int32_t col;
      uint8_t len;
      uint32_t raw;
      std::memcpy(&line, s.data() + p, 8);
      std::memcpy(&col, s.data() + p + 8, 4);
      std::memcpy(&len, s.data() + p + 12, 1);
      std::string reason = s.substr(p + 13, len);
      p += 13 + len;
      std::memcpy(&raw, s.data() + p, 4);
      std::string rec = std::to_string(line) + ":" + std::to_string(col) + ":" + reason + ":" + s.substr(p + 4, raw);
      p += 4 + raw;
      uint8_t more = static_cast<uint8_t>(s[p++]);
      for (uint8_t k = 0; k < more; ++k) {
        int32_t c2;
        std::memcpy(&c2, s.data() + p, 4);
        uint8_t l2 = static_cast<uint8_t>(s[p + 4]);
        rec += "|" + std::to_string(c2) + ":" + s.substr(p + 5, l2);
        p += 5 + l2;
      }
      r.rejected.push_back(rec);
    }
  };
  size_t c = std::min(cut, csv.size());
  Batch b1, b2, b3;
  r.ok = v.push(csv.data(), c, b1);
  take(b1);
  if (r.ok) {
    r.ok = v.push(csv.data() + c, csv.size() - c, b2);
    take(b2);
  }
  if (r.ok) {
    r.ok = v.finish(b3);
    take(b3);
  }
  return r;
}

}  // namespace

TEST_CASE("csv validator: nulls, defaults, empty cells and rejections") {
  auto r = validate("a Nullable(Int8), b Nullable(String), c String", ",\"\",\"\"\n\\N,\\N,\\N\n");
  CHECK(r.count == 2);
  // a NULL | b '' (quoted empty is a string) | c '' ; then NULL, NULL, "\N" (not Nullable: a literal)
  CHECK(r.rows == std::string("\x01\x00\x00\x00\x01\x01\x02\\N", 9));
  // \N in a column with a DEFAULT that is not Nullable: the DEFAULT (flag 1), as an empty cell.
  r = validate("a Int8 DEFAULT 7, b String DEFAULT 'x'", "\\N,\\N\n\"\\N\",\"\\N\"\n");
  CHECK(r.count == 1);
  CHECK(r.rows == std::string("\x01\x01", 2));
  CHECK(r.rejected == std::vector<std::string>{"2:0:not an integer:\"\\N\",\"\\N\""});
  r = validate("a Int8 DEFAULT 7, b LowCardinality(Nullable(String))", ",x\n1,\n");
  CHECK(r.rows == std::string("\x01\x00\x00\x01x\x00\x01\x00\x01", 9));
  // An empty cell of a Nullable column with a DEFAULT is the DEFAULT (flag 1), as
  // ClickHouse reads it (it was NULL); \N stays NULL.
  r = validate("a Nullable(Int8) DEFAULT 7, b Nullable(String) DEFAULT 'x'", ",\n\\N,\\N\n\"\",\"\"\n");
  CHECK(r.rows == std::string("\x01\x01" "\x00\x01\x00\x01" "\x01\x00\x00\x00", 10));
  r = validate("a Int8, b String", "1,x\n,y\n2\n3,z,extra\n\"4\",\"w\"\n");
  CHECK(r.count == 2);
  CHECK(r.rejected == std::vector<std::string>{"2:0:empty value in a non-Nullable column:,y", "3:-1:wrong column count: 1 field, expected 2:2",
                                               "4:-1:wrong column count: 3 fields, expected 2:3,z,extra"});
  r = validate("a String", "ok\n\xff\xfe\n");
  CHECK(r.rejected == std::vector<std::string>{"2:0:invalid UTF-8:\xff\xfe"});
  // Invalid UTF-8 is said before anything else wrong with the row (it fails the
  // request as a whole): with a wrong column count, an unterminated quote, or in a
  // field past the schema's columns.
  r = validate("a Int8, b String", "1,x\n2,\xff,extra\n3,\"\xfe\n");
  CHECK(r.rejected == std::vector<std::string>{"2:1:invalid UTF-8:2,\xff,extra", "3:1:invalid UTF-8:3,\"\xfe\n"});  // unterminated: to the end
  r = validate("a Int8", "1,\xff\n");
  CHECK(r.rejected == std::vector<std::string>{"1:-1:invalid UTF-8:1,\xff"});
}

TEST_CASE("csv validator: UTF-8 rows checked right wherever the chunk splits") {
  // Valid 2-, 3- and 4-byte characters around one row with a stray continuation
  // byte: whatever the split (a character cut in two, the bad row carried over
  // from the first chunk or wholly in the second), only that row is rejected.
  const std::string csv = "1,\xc3\xa9t\xc3\xa9\n2,\xe2\x82\xac\xf0\x9f\x98\x80\n3,a\x80" "b\n4,\xe6\x97\xa5\n";
  for (size_t cut = 0; cut <= csv.size(); ++cut) {
    CAPTURE(cut);
    auto r = validate("n Int8, s String", csv, false, cut);
    CHECK(r.ok);
    CHECK(r.count == 3);
    CHECK(r.rejected == std::vector<std::string>{"3:1:invalid UTF-8:3,a\x80" "b"});
  }
}

TEST_CASE("csv validator: UTF-8 checked in slices ahead of the rows, characters across slice edges") {
  // ~120 KB of rows made of 2-, 3- and 4-byte characters (the checker's slices
  // end wherever these fall), one row with a lone continuation byte far in; the
  // first row's padding shifts every slice edge through the characters.
  for (int pad = 0; pad < 6; ++pad) {
    std::string csv = "0," + std::string(static_cast<size_t>(pad), 'p') + "\n";
    int rows = 1;
    for (int i = 1; rows < 3000; ++i, ++rows) {
      csv += std::to_string(i % 100) + ",";
      for (int k = 0; k < 12; ++k) csv += (k + i) % 3 == 0 ? "\xc3\xa9" : (k + i) % 3 == 1 ? "\xe2\x82\xac" : "\xf0\x9f\x98\x80";
      if (i == 2500) csv += "\x80";
      csv += "\n";
    }
    CAPTURE(pad);
    CAPTURE(csv.size());
    auto r = validate("n Int8, s String", csv);
    CHECK(r.ok);
    CHECK(r.count == 2999);
    REQUIRE(r.rejected.size() == 1);
    CHECK(r.rejected[0].rfind("2501:1:invalid UTF-8:0,", 0) == 0);
  }
}

TEST_CASE("csv validator: header check and line numbers across a split") {
  auto r = validate("a Int8, b String", "a,b\n1,\"x\ny\"\nbad,z\n", true, 9);
  CHECK(r.ok);
  CHECK(r.count == 1);
  CHECK(r.rejected == std::vector<std::string>{"4:0:not an integer:bad,z"});
  r = validate("a Int8, b String", "a,c\n1,x\n", true);
  CHECK_FALSE(r.ok);
  std::vector<Column> cols;
  SchemaError e;
  REQUIRE(parseSchema("a Int8, b String", cols, e));
  CHECK(headerMismatch({"a", "c"}, cols) == "CSV header does not match the schema: expected [a, b], found [a, c]");
  CHECK(headerMismatch({"a", "b"}, cols).empty());
}

TEST_CASE("csv validator: a header naming the columns in another order takes them by name") {
  // The same rows as "a,b,c" in schema order, whatever the split; a rejected row keeps the
  // file's raw text and names the schema's column.
  const std::string csv = "c,a,b\nx,1,\"p, q\"\ny,bad,r\n\"z\n\",3,s\n";
  const auto want = validate("a Int8, b String, c String", "1,\"p, q\",x\n3,s,\"z\n\"\n");
  REQUIRE(want.ok);
  for (size_t cut = 0; cut <= csv.size(); ++cut) {
    CAPTURE(cut);
    auto r = validate("a Int8, b String, c String", csv, true, cut);
    CHECK(r.ok);
    CHECK(r.count == 2);
    CHECK(r.rows == want.rows);
    CHECK(r.rejected == std::vector<std::string>{"3:0:not an integer:y,bad,r"});
  }
  // Every column once, or it is a mismatch: a column named twice, one missing, one extra.
  CHECK_FALSE(validate("a Int8, b String", "b,b\n1,x\n", true).ok);
  CHECK_FALSE(validate("a Int8, b String, c String", "b,a\n1,x\n", true).ok);
  CHECK_FALSE(validate("a Int8, b String", "b,a,c\n1,x,y\n", true).ok);
  // A row with another field count is still the wrong column count.
  auto r = validate("a Int8, b String", "b,a\nx,1\ny\n", true);
  CHECK(r.count == 1);
  CHECK(r.rejected == std::vector<std::string>{"3:-1:wrong column count: 1 field, expected 2:y"});
}

TEST_CASE("csv native block: the layout ClickHouse writes") {
  std::vector<Column> cols;
  SchemaError e;
  REQUIRE(parseSchema("a Int32, b LowCardinality(Nullable(String)), c Array(Nullable(Int8))", cols, e));
  ByteBuf rb;
  // rows: (7, 'xy', [1, NULL]) and (8, NULL, [])
  const char rows[] = "\x07\x00\x00\x00" "\x00\x02xy" "\x02\x00\x01\x01" "\x08\x00\x00\x00" "\x01" "\x00";
  ByteBuf out;
  rowBinaryToNative(std::string_view(rows, sizeof rows - 1), 2, cols, out);
  const char expect[] =
      "\x03\x02"
      "\x01" "a" "\x05" "Int32" "\x07\x00\x00\x00\x08\x00\x00\x00"
      "\x01" "b" "\x10" "Nullable(String)" "\x00\x01" "\x02xy" "\x00"
      "\x01" "c" "\x15" "Array(Nullable(Int8))" "\x02\x00\x00\x00\x00\x00\x00\x00" "\x02\x00\x00\x00\x00\x00\x00\x00"
      "\x00\x01" "\x01\x00";
  CHECK(std::string(out.data(), out.size()) == std::string(expect, sizeof expect - 1));
  CHECK(nativeTypeName(cols[1].type) == "Nullable(String)");
  ByteBuf none;
  rowBinaryToNative({}, 0, cols, none);
  CHECK(none.size() == 0);
}

TEST_CASE("csv validator: Native blocks equal the transposed RowBinary, rejections rolled back") {
  const char* schema =
      "a Int32, b LowCardinality(Nullable(String)), c Array(Nullable(Int8)), d Nullable(Float64), e Array(String), "
      "f String, g UUID";
  std::string csv =
      "1,x,\"[1,NULL]\",1.5,\"['p','q']\",s,61f0c404-5cb3-11e7-907b-a6006ad3dba0\n"
      "2,,,,,\"\",61f0c404-5cb3-11e7-907b-a6006ad3dba0\n"
      "3,y,\"[7]\",\\N,\"[]\",t,not-a-uuid\n"         // rejected at the last column
      "4,z,\"[1,x]\",2,\"['r']\",u,61f0c404-5cb3-11e7-907b-a6006ad3dba0\n"  // rejected mid-row
      "5,\"\",\"[]\",-0.5,\"['']\",v,00000000-0000-0000-0000-000000000000\n";
  std::vector<Column> cols;
  SchemaError e;
  REQUIRE(parseSchema(schema, cols, e));
  // partMin 0: one copied block in `rows`; otherwise the block in `parts`
  // (1: every non-empty column buffer a piece of its own).
  auto run = [&](Encoding enc, size_t cut, size_t partMin = 0) {
    ValidatorOptions o;
    o.encoding = enc;
    o.nativeParts = partMin > 0;
    o.nativePartMin = partMin;
    Validator v(cols, o);
    Batch a, b, c;
    REQUIRE(v.push(csv.data(), cut, a));
    REQUIRE(v.push(csv.data() + cut, csv.size() - cut, b));
    REQUIRE(v.finish(c));
    CHECK(a.rowCount + b.rowCount + c.rowCount == 3);
    CHECK(a.rejectedCount + b.rejectedCount + c.rejectedCount == 2);
    auto bytes = [&](const Batch& x) {
      if (!o.nativeParts) return std::string(x.rows.view());
      CHECK(x.rows.size == 0);
      std::string s;
      for (const OwnedBytes& p : x.parts) {
        CHECK(p.size > 0);
        s.append(p.view());
      }
      return s;
    };
    return std::vector<std::pair<std::string, uint64_t>>{{bytes(a), a.rowCount}, {bytes(b), b.rowCount}, {bytes(c), c.rowCount}};
  };
  for (size_t cut : {size_t(0), size_t(40), size_t(120), csv.size()}) {
    CAPTURE(cut);
    auto rb = run(Encoding::RowBinary, cut);
    auto nat = run(Encoding::Native, cut);
    auto parts = run(Encoding::Native, cut, 1);
    auto merged = run(Encoding::Native, cut, 64 << 10);
    for (size_t i = 0; i < 3; ++i) {
      ByteBuf expect;
      rowBinaryToNative(rb[i].first, rb[i].second, cols, expect);
      CHECK(nat[i].first == std::string(expect.data(), expect.size()));
      CHECK(parts[i].first == nat[i].first);
      CHECK(merged[i].first == nat[i].first);
    }
  }
}

TEST_CASE("csv validator: Native block pieces over many batches, big and small columns") {
  // Column buffers given up with one batch are reserved again for the next:
  // every batch's pieces, written one after another, must still be its block.
  std::vector<Column> cols;
  SchemaError e;
  REQUIRE(parseSchema("a UInt64, s String, n Nullable(Int32), l Array(String), b Bool", cols, e));
  std::string csv;
  for (int i = 0; i < 30000; ++i) {
    csv += std::to_string(i) + "," + std::string(static_cast<size_t>(i % 37), 'x') + "," +
           (i % 3 ? std::to_string(i) : std::string()) + ",\"['" + std::to_string(i % 11) + "']\"," +
           (i % 2 ? "true" : "false") + "\n";
    if (i % 997 == 0) csv += "bad,row\n";  // rejected: wrong column count
  }
  auto run = [&](bool parts) {
    ValidatorOptions o;
    o.nativeParts = parts;
    o.nativePartMin = 4096;
    Validator v(cols, o);
    std::vector<std::string> blocks;
    size_t pieces = 0, rows = 0;
    auto take = [&](Batch& b) {
      rows += b.rowCount;
      std::string s(b.rows.view());
      for (const OwnedBytes& p : b.parts) s.append(p.view());
      pieces += b.parts.size();
      blocks.push_back(std::move(s));
    };
    for (size_t off = 0; off < csv.size(); off += 100000) {
      Batch b;
      REQUIRE(v.push(csv.data() + off, std::min<size_t>(100000, csv.size() - off), b));
      take(b);
    }
    Batch f;
    REQUIRE(v.finish(f));
    take(f);
    CHECK(rows == 30000);
    return std::make_pair(blocks, pieces);
  };
  auto [whole, none] = run(false);
  auto [split, pieces] = run(true);
  CHECK(none == 0);
  CHECK(pieces > whole.size() * 3);  // the big columns came as pieces of their own
  REQUIRE(split.size() == whole.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    CAPTURE(i);
    CHECK(split[i] == whole[i]);
  }
}

TEST_CASE("csv validator: rows the block path took keep their UTF-8 check (ASCII, valid and invalid high bytes)") {
  // Rows of 30–150 bytes, so the reader's 64-byte block path takes them, with
  // ASCII rows, valid 2–4-byte characters (also right at a block edge) and
  // invalid bytes: a stray continuation, 0xFF, a lead byte before the row end,
  // an overlong form and a surrogate, in plain and quoted cells.
  std::string csv;
  std::vector<std::string> want;
  const char* bad[] = {"\x80", "\xff", "\xc3", "\xc0\x80", "\xed\xa0\x80"};
  const char* good[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  for (int i = 1; i <= 400; ++i) {
    std::string cell(static_cast<size_t>(30 + (i * 37) % 120), 'x');
    if (i % 5 == 0) cell.insert(static_cast<size_t>(i % 29), good[i % 3]);
    const bool isBad = i % 9 == 4;
    if (isBad) {
      if (i % 2) cell.insert(cell.size() - static_cast<size_t>(i % 4), bad[i % 5]);
      else cell += bad[i % 5];
    }
    std::string row = std::to_string(i % 100) + "," + (i % 3 == 0 ? "\"" + cell + "\"" : cell);
    if (isBad) want.push_back(std::to_string(i) + ":1:invalid UTF-8:" + row);
    csv += row + "\n";
  }
  for (size_t cut : {std::string::npos, size_t{1}, csv.size() / 2, csv.size() - 3}) {
    CAPTURE(cut);
    auto r = validate("n Int8, s String", csv, false, cut);
    CHECK(r.ok);
    CHECK(r.count == 400 - want.size());
    CHECK(r.rejected == want);
  }
}

TEST_CASE("buffer cache: a freed output buffer serves the next one that fits, bounded") {
  bufcache::clear();
  {
    ByteBuf b;
    b.reserve(100000);
    b.putByte(1);
  }  // given back
  CHECK(bufcache::cachedBytes() >= 100000);
  {
    ByteBuf c;
    c.reserve(90000);  // fits: taken from the cache
    CHECK(bufcache::cachedBytes() == 0);
    c.reserve(20000);  // no change
    ByteBuf d;
    d.reserve(1000);  // nothing cached fits (and a large one would not be given to a small one)
  }
  // Twice the size asked for at most: a 300 KB buffer is not taken for 100 KB.
  bufcache::clear();
  { ByteBuf big; big.reserve(300000); big.putByte(1); }
  size_t cap = 0;
  CHECK(bufcache::take(100000, cap) == nullptr);
  void* p = bufcache::take(200000, cap);
  REQUIRE(p != nullptr);
  CHECK(cap >= 200000);
  bufcache::give(p, cap);
  // Bounded: beyond kMaxBytes, buffers are freed, not kept.
  bufcache::clear();
  for (int i = 0; i < 40; ++i) bufcache::give(std::malloc(1 << 20), 1 << 20);
  CHECK(bufcache::cachedBytes() <= bufcache::kMaxBytes);
  CHECK(bufcache::cachedBytes() >= bufcache::kMaxBytes - (1 << 20));
  // Released bytes keep their capacity, so they go back whole.
  bufcache::clear();
  {
    ByteBuf e;
    e.reserve(50000);
    e.putByte(7);
    OwnedBytes o;
    o.data = e.release(o.size, o.cap);
    CHECK(o.size == 1);
    CHECK(o.cap >= 50000);
  }
  CHECK(bufcache::cachedBytes() >= 50000);
  bufcache::clear();
}

TEST_CASE("csv validator: CSV's NULL in a non-Nullable column is said as such") {
  auto r = validate("a Int8, b Date, c String", "\\N,2024-01-01,x\n1,\\N,\\N\n\"\\N\",2024-01-01,y\n");
  CHECK(r.count == 0);
  CHECK(r.rejected == std::vector<std::string>{"1:0:NULL in a non-Nullable column:\\N,2024-01-01,x",
                                               "2:1:NULL in a non-Nullable column:1,\\N,\\N",
                                               "3:0:not an integer:\"\\N\",2024-01-01,y"});
}
