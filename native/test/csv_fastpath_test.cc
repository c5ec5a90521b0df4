// Edge cases of the fast paths: the reader's 64-byte block masks, the SWAR
// integer and date parsers, the SSE2 UUID and UTF-8 scans. Each is checked
// against a plain reference or against the slow path it shortcuts.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "csv/reader.h"
#include "csv/scan.h"
#include "csv/types.h"
#include "csv/values.h"
#include "csv_test_util.h"

using csvtest::fieldsOf;
using csvtest::parse;
using roost::csv::Dialect;
using namespace roost::csv;
using V = std::vector<std::vector<std::string>>;

namespace {

std::string encHex(const char* type, std::string_view v) {
  Type t;
  TypeError e;
  REQUIRE(parseTypeString(type, t, e));
  ByteBuf b;
  Reason r = encodeValue(t, v, b);
  if (r != Reason::Ok) return std::string(reasonText(r));
  return csvtest::hexOf(std::string_view(b.data(), b.size()));
}

// Little-endian hex of an integer of `bytes` bytes.
std::string leHex(unsigned long long v, int bytes) {
  std::string s;
  char buf[3];
  for (int i = 0; i < bytes; ++i) {
    std::snprintf(buf, sizeof buf, "%02llx", (v >> (8 * i)) & 0xff);
    s += buf;
  }
  return s;
}

// The plain reference for the vector searches.
const char* firstOf(const char* p, const char* e, const char* set) {
  for (; p < e; ++p)
    if (*p && std::strchr(set, *p)) return p;
  return e;
}

}  // namespace

TEST_CASE("csv scan: BlockFinder and Needles4 agree with a plain search at every offset and block edge") {
  std::string s;
  for (int i = 0; i < 300; ++i) s += (i % 17 == 0) ? ',' : (i % 29 == 0) ? '\n' : (i % 41 == 0) ? '\r' : 'a' + i % 26;
  for (size_t len : {0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 300}) {
    const char* b = s.data();
    const char* e = b + len;
    const scan::Needles4 ends(',', '\n', '\r', ',');
    scan::BlockFinder f;
    // Forward walk, as the reader does: every hit, from every start.
    for (const char* p = b; p < e; ++p) {
      CAPTURE(len);
      CAPTURE(p - b);
      CHECK(f.find(p, e, ends) == firstOf(p, e, ",\n\r"));
      CHECK(ends.find(p, e) == firstOf(p, e, ",\n\r"));
    }
    f.reset();
    const char* p = b;
    while (p < e) {
      const char* q = f.find(p, e, ends);
      REQUIRE(q == firstOf(p, e, ",\n\r"));
      p = q == e ? e : q + 1;
    }
  }
  // No hit at all in a long run: returns end, across several blocks.
  std::string plain(200, 'x');
  scan::BlockFinder f;
  CHECK(f.find(plain.data(), plain.data() + plain.size(), scan::Needles4(',', '\n', '\r', ',')) == plain.data() + plain.size());
}

TEST_CASE("csv reader: fields, quotes and line ends at 16/32/64-byte boundaries") {
  for (SimdLevel level : supportedSimdLevels()) {
  const std::string levelName = simdName(level);
  CAPTURE(levelName);
  setSimdLimit(level);
  for (size_t shift = 0; shift < 70; ++shift) {
    for (size_t len : {0, 1, 14, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65}) {
      CAPTURE(shift);
      CAPTURE(len);
      std::string pre(shift, 'p');
      std::string a(len, 'a');
      std::string q = std::string(len, 'q') + ",\n\"" + std::string(len % 5, 'z');  // data with , LF and a quote
      std::string quoted = "\"" + std::string(len, 'q') + ",\n\"\"" + std::string(len % 5, 'z') + "\"";
      std::string in = pre + "," + a + "," + quoted + "," + a + "\r\n" + "x" + a + "\r" + "y" + pre + "\n" + a + "," + "\n";
      V want = {{pre, a, q, a}, {"x" + a}, {"y" + pre}, {a, ""}};
      auto rows = parse(in);
      CHECK(fieldsOf(rows) == want);
      REQUIRE(rows.size() == 4);
      CHECK(rows[1].line == 3);  // the quoted LF is a line
      // Split anywhere near the block edges: the carried row parses the same.
      for (size_t cut : {size_t{15}, size_t{16}, size_t{17}, size_t{63}, size_t{64}, size_t{65}, in.size() / 2})
        if (cut <= in.size()) CHECK(fieldsOf(parse(in, Dialect{}, {cut})) == want);
    }
  }
  // A chunk buffer reused at the same address with new content (the JS side and
  // the tests do this): no stale block mask may survive between feeds.
  Reader r(Dialect{}, 1 << 20);
  csvtest::Collect c;
  std::string buf(100, 'x');
  buf[99] = '\n';
  r.feed(buf.data(), buf.size(), c);
  std::fill(buf.begin(), buf.end(), 'y');
  buf[10] = ',';
  buf[99] = '\n';
  r.feed(buf.data(), buf.size(), c);
  r.finish(c);
  REQUIRE(c.rows.size() == 2);
  CHECK(c.rows[0].fields == std::vector<std::string>{std::string(99, 'x')});
  CHECK(c.rows[1].fields == std::vector<std::string>{std::string(10, 'y'), std::string(88, 'y')});
  }
  setSimdLimit(SimdLevel::Avx512);
}

TEST_CASE("csv values: SWAR integer parsing at every length and sign") {
  // 1..18 digits, both signs, against the plain value.
  unsigned long long v = 0;
  for (int n = 1; n <= 18; ++n) {
    v = v * 10 + static_cast<unsigned>(n % 10);
    std::string s = std::to_string(v);
    CAPTURE(s);
    CHECK(encHex("UInt64", s) == leHex(v, 8));
    CHECK(encHex("Int64", "-" + s) == leHex(0ull - v, 8));
    CHECK(encHex("Int64", "0" + s.substr(0, 17)) == leHex(std::stoull(s.substr(0, 17)), 8));
    // A non-digit at each position of an n-digit number.
    for (int i = 0; i < n; ++i) {
      std::string bad = s;
      for (char c : {'/', ':', 'a', ' ', '\0', '\x80'}) {
        bad[i] = c;
        if (c == ' ' && (i == 0 || i == n - 1)) continue;  // surrounding spaces are allowed
        CAPTURE(i);
        CHECK(encHex("Int64", bad) == "not an integer");
      }
    }
  }
  CHECK(encHex("UInt8", "0") == "00");
  CHECK(encHex("UInt8", "9") == "09");
  CHECK(encHex("UInt8", "10") == "0a");
  CHECK(encHex("UInt8", "255") == "ff");
  CHECK(encHex("Int8", "-0") == "00");
  CHECK(encHex("Int8", "-1") == "ff");
  CHECK(encHex("Int16", "-5") == "fbff");
  CHECK(encHex("Int32", "--1") == "not an integer");
  CHECK(encHex("Int32", "-+1") == "not an integer");
  CHECK(encHex("UInt32", "-") == "not an integer");
  CHECK(encHex("Int64", "12345678901234567") == leHex(12345678901234567ull, 8));   // 17 digits: loop
  CHECK(encHex("Int64", "000000000000000001") == leHex(1, 8));                      // 18 digits
  CHECK(encHex("Int64", "0000000000000000001") == leHex(1, 8));                     // 19: slow path
}

namespace {

// Byte-at-a-time reference for scan::firstInvalidUtf8.
std::ptrdiff_t refInvalidUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int k;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 1;
    else if (c == 0xE0) { k = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) k = 2;
    else if (c == 0xED) { k = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) k = 2;
    else if (c == 0xF0) { k = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) k = 3;
    else if (c == 0xF4) { k = 3; hi = 0x8F; }
    else return static_cast<std::ptrdiff_t>(i);
    if (n - i <= static_cast<size_t>(k)) return static_cast<std::ptrdiff_t>(i);
    if (p[i + 1] < lo || p[i + 1] > hi) return static_cast<std::ptrdiff_t>(i);
    for (int j = 2; j <= k; ++j)
      if ((p[i + j] & 0xC0) != 0x80) return static_cast<std::ptrdiff_t>(i);
    i += k + 1;
  }
  return -1;
}

}  // namespace

TEST_CASE("csv scan: UTF-8 ASCII fast path at 16/64-byte edges") {
  const std::string seqs[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xFF", "\xC3", "\xE2\x82", "\xED\xA0\x80",
                              "\xC0\xAF"};
  for (size_t len : {0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 79, 80, 127, 128, 129, 200}) {
    for (size_t at = 0; at <= len; ++at) {
      for (const std::string& q : seqs) {
        std::string s(len, 'a');
        s.insert(at, q);
        CAPTURE(len);
        CAPTURE(at);
        REQUIRE(scan::firstInvalidUtf8(s.data(), s.data() + s.size()) == refInvalidUtf8(s));
        s += std::string(70, 'b') + q;  // a second one after a long ASCII run
        REQUIRE(scan::firstInvalidUtf8(s.data(), s.data() + s.size()) == refInvalidUtf8(s));
      }
    }
  }
}

TEST_CASE("csv values: vector UUID decoding agrees with a per-digit reference for every byte at every digit") {
  // Reference: a digit's value, or -1.
  auto hexVal = [](unsigned char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  // RowBinary UUID: the first 8 bytes' value little-endian, then the last 8.
  auto reference = [&](const std::string& u) -> std::string {
    std::string digits;
    for (size_t i = 0; i < u.size(); ++i)
      if (i != 8 && i != 13 && i != 18 && i != 23) digits += u[i];
    std::string bytes;
    for (size_t i = 0; i < 32; i += 2) {
      int h = hexVal(static_cast<unsigned char>(digits[i])), l = hexVal(static_cast<unsigned char>(digits[i + 1]));
      if (h < 0 || l < 0) return "not a UUID";
      bytes += static_cast<char>(h << 4 | l);
    }
    std::string le(bytes.rbegin() + 8, bytes.rend());
    le += std::string(bytes.rbegin(), bytes.rbegin() + 8);
    return csvtest::hexOf(le);
  };
  const std::string base = "0123abcd-ef45-6789-ABCD-EF0123456789";
  CHECK(encHex("UUID", base) == reference(base));
  // 0123abcdef456789 then abcdef0123456789, each written little-endian.
  CHECK(encHex("UUID", base) == "896745efcdab23018967452301efcdab");
  for (size_t pos = 0; pos < base.size(); ++pos) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) continue;
    for (int c = 0; c < 256; ++c) {
      std::string u = base;
      u[pos] = static_cast<char>(c);
      CAPTURE(pos);
      CAPTURE(c);
      REQUIRE(encHex("UUID", u) == reference(u));
    }
  }
}

namespace {

// Random CSV made of the pieces the block path takes and the ones it must leave
// to the row parser: plain and quoted fields of any length, "" pairs, quotes
// inside unquoted fields, text after a closing quote, quoted line ends, LF,
// CRLF and lone CR, empty lines, a missing final line end.
std::string randomCsv(uint32_t& seed, char delim, char quote) {
  auto rnd = [&seed](uint32_t n) {
    seed = seed * 1664525u + 1013904223u;
    return (seed >> 8) % n;
  };
  auto word = [&](size_t maxLen) {
    std::string w;
    size_t n = rnd(static_cast<uint32_t>(maxLen + 1));
    for (size_t i = 0; i < n; ++i) w += static_cast<char>('a' + rnd(26));
    return w;
  };
  std::string s;
  const size_t rows = 1 + rnd(40);
  const bool rare = rnd(3) == 0;  // most inputs hold only what the block path takes
  for (size_t r = 0; r < rows; ++r) {
    const size_t fields = 1 + rnd(12);
    for (size_t f = 0; f < fields; ++f) {
      if (f) s += delim;
      switch (rnd(rare ? 12 : 6)) {
        case 0: case 1: s += word(rnd(4) == 0 ? 90 : 12); break;
        case 2: s += word(3) + (rnd(2) ? "\xC3\xA9" : "\xE2\x82\xAC\xC3") + word(3); break;  // UTF-8 (or not)
        case 3: s += quote + word(20) + delim + word(5) + quote; break;
        case 4: s += quote + word(8) + quote + quote + word(8) + quote; break;  // a "" pair
        case 5: s += quote + std::string() + quote; break;
        case 6: s += word(5) + quote + word(5); break;                                  // quote in unquoted
        case 7: s += quote + word(5) + quote + word(3); break;                          // text after the quote
        case 8: s += quote + word(5) + (rnd(2) ? "\n" : "\r\n") + word(5) + quote; break;  // quoted line end
        case 9: s += quote + word(70); break;                                           // no closing quote
        case 10: s += std::string(3, quote) + word(4) + quote; break;                 // """x"
        default: s += word(3) + quote + quote; break;
      }
    }
    switch (rnd(rare ? 8 : 4)) {
      case 0: case 1: s += '\n'; break;
      case 2: s += "\r\n"; break;
      case 3: if (r + 1 < rows) s += '\n'; break;
      case 4: s += '\r'; break;
      case 5: s += "\n\n"; break;
      case 6: s += "\r\n\r\n"; break;
      default: s += "\n\r"; break;
    }
  }
  return s;
}

}  // namespace

TEST_CASE("csv reader: the 64-byte block path gives exactly the rows of the row-at-a-time parser") {
  // One byte per feed never leaves 65 bytes for the block path: the reference.
  // Every instruction set this CPU runs (SSE2, AVX2, AVX-512) is checked.
  const std::vector<SimdLevel> levels = supportedSimdLevels();
  MESSAGE("block path instruction sets checked on this CPU: " << levels.size() << " (best: " << std::string(simdName(levels.back())) << ")");
  for (SimdLevel level : levels) {
  const std::string levelName = simdName(level);
  CAPTURE(levelName);
  setSimdLimit(level);
  uint32_t seed = 12345;
  uint64_t blockRows = 0;
  const struct {
    char delim, quote;
  } dialects[] = {{',', '"'}, {';', '"'}, {'\t', '\''}, {'|', '"'}};
  for (int iter = 0; iter < 3000; ++iter) {
    const auto& dd = dialects[iter % 4];
    std::string in = randomCsv(seed, dd.delim, dd.quote);
    Dialect d{dd.delim, dd.quote, 0};
    std::vector<size_t> everyByte;
    for (size_t i = 1; i < in.size(); ++i) everyByte.push_back(i);
    const size_t maxRow = iter % 7 == 0 ? 60 : 1 << 20;
    bool okWhole = false, okBytes = false;
    Reader r(d, maxRow);
    csvtest::Collect whole;
    okWhole = r.feed(in.data(), in.size(), whole) && r.finish(whole);
    blockRows += r.blockRows();
    auto bytes = parse(in, d, everyByte, &okBytes, maxRow);
    CAPTURE(in);
    REQUIRE(okWhole == okBytes);
    if (okWhole) {
      REQUIRE(whole.rows.size() == bytes.size());
      for (size_t i = 0; i < bytes.size(); ++i) {
        CAPTURE(i);
        CHECK(whole.rows[i] == bytes[i]);
      }
    } else {
      CHECK(r.errorLine() > 0);
    }
  }
  // The comparison above means something only if the block path took rows.
  CHECK(blockRows > 10000);
  }
  setSimdLimit(SimdLevel::Avx512);
}

TEST_CASE("csv reader: every instruction set gives the same rows, and the same ASCII/UTF-8 marks") {
  const std::vector<SimdLevel> levels = supportedSimdLevels();
  uint32_t seed = 777;
  uint64_t nonAscii = 0;
  const struct {
    char delim, quote;
  } dialects[] = {{',', '"'}, {';', '"'}, {'\t', '\''}, {'|', '"'}};
  for (int iter = 0; iter < 2000; ++iter) {
    const auto& dd = dialects[iter % 4];
    std::string in = randomCsv(seed, dd.delim, dd.quote);
    Dialect d{dd.delim, dd.quote, 0};
    CAPTURE(in);
    std::vector<csvtest::ParsedRow> first;
    bool firstOk = false;
    for (SimdLevel level : levels) {
      const std::string levelName = simdName(level);
  CAPTURE(levelName);
      setSimdLimit(level);
      Reader r(d, 1 << 20);
      CHECK(r.simd() == level);
      csvtest::Collect c;
      const bool ok = r.feed(in.data(), in.size(), c) && r.finish(c);
      if (level == levels.front()) {
        first = c.rows;
        firstOk = ok;
        for (auto& row : c.rows) nonAscii += row.text == Row::Text::NonAscii;
        continue;
      }
      REQUIRE(ok == firstOk);
      REQUIRE(c.rows.size() == first.size());
      for (size_t i = 0; i < first.size(); ++i) {
        CAPTURE(i);
        CHECK(c.rows[i] == first[i]);
        CHECK(c.rows[i].text == first[i].text);
      }
    }
  }
  setSimdLimit(SimdLevel::Avx512);
  CHECK(nonAscii > 100);  // the marks were exercised
}
