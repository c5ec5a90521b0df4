#include "csv/infer.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>

#include "csv/reader.h"
#include "csv/scan.h"
#include "csv/values.h"

namespace roost::csv {
namespace {

// Candidate-type lattice for one column: bits for every type a value could be.
enum : unsigned {
  kBool = 1,
  kInt = 2,
  kFloat = 4,
  kDate = 8,
  kDateTime = 16,
};

struct ColumnStats {
  unsigned possible = kBool | kInt | kFloat | kDate | kDateTime;
  bool sawValue = false;
  bool sawEmpty = false;
  uint64_t present = 0;  // values that are not empty (nor an unquoted \N)
  uint64_t seen = 0;     // rows that reach this column (a short row does not)
  bool sawNegative = false;
  bool intTooBig = false;  // beyond UInt64, or negative beyond Int64
  uint64_t maxPos = 0;     // largest non-negative magnitude
  uint64_t maxNeg = 0;     // largest negative magnitude
  int fractionDigits = 0;  // longest datetime fraction
  // Range of the dates (days) and of dates and datetimes (seconds since the
  // epoch) seen: a type is only suggested if every value fits it.
  int32_t minDay = INT32_MAX, maxDay = INT32_MIN;
  int64_t minSec = INT64_MAX, maxSec = INT64_MIN;

  void add(std::string_view raw, bool quoted) {
    ++seen;
    std::string_view v = trimSpaces(raw);
    // An unquoted \N is CSV's NULL (MySQL's and ClickHouse's exports): a missing value, as the
    // validator reads it in a Nullable column, not text that makes the column a String.
    if (v.empty() || (!quoted && v == "\\N")) {
      sawEmpty = true;
      return;
    }
    sawValue = true;
    ++present;
    unsigned can = 0;
    if ((possible & kBool) && (v == "true" || v == "false" || v == "TRUE" || v == "FALSE" || v == "True" || v == "False"))
      can |= kBool;
    if (possible & (kInt | kFloat)) {
      bool neg, over;
      uint64_t m;
      const char* d = v.data() + ((v[0] == '-' || v[0] == '+') ? 1 : 0);
      bool leadingZero = v.size() - static_cast<size_t>(d - v.data()) > 1 && d[0] == '0';
      if ((possible & kInt) && v[0] != '+' && !leadingZero && parseInt(v, neg, m, over)) {
        can |= kInt | kFloat;
        if (neg) {
          sawNegative = true;
          if (over || m > (1ull << 63)) intTooBig = true;
          maxNeg = std::max(maxNeg, m);
        } else {
          if (over) intTooBig = true;
          maxPos = std::max(maxPos, m);
        }
      } else if (possible & kFloat) {
        double x;
        bool plain = v.find_first_of("iInN") == std::string_view::npos;  // no inf/nan words
        if (plain && !leadingZero && parseDouble(v, x)) can |= kFloat;
        else if (plain && leadingZero && v.find('.') != std::string_view::npos && parseDouble(v, x))
          can |= kFloat;  // 0.5
      }
    }
    if (possible & (kDate | kDateTime)) {
      int32_t days;
      DateTimeParts dt;
      if (parseDate(v, days)) {
        can |= kDate | kDateTime;  // a date is also midnight of a DateTime column
        minDay = std::min(minDay, days);
        maxDay = std::max(maxDay, days);
        minSec = std::min<int64_t>(minSec, int64_t{days} * 86400);
        maxSec = std::max<int64_t>(maxSec, int64_t{days} * 86400);
      } else if ((possible & kDateTime) && parseDateTime(v, dt) && dt.hasTime) {
        can |= kDateTime;
        fractionDigits = std::max(fractionDigits, dt.fractionDigits);
        minSec = std::min(minSec, dt.seconds);
        maxSec = std::max(maxSec, dt.seconds);
      }
    }
    possible &= can;
  }

  std::string type() const {
    std::string t;
    if (!sawValue) t = "String";
    else if (possible & kBool) t = "Bool";
    else if (possible & kInt) {
      if (intTooBig) t = "String";
      else if (!sawNegative && maxPos > static_cast<uint64_t>(INT64_MAX)) t = "UInt64";
      else if (sawNegative && maxPos > static_cast<uint64_t>(INT64_MAX)) t = "String";
      // Int64 whatever the sample's range (as ClickHouse's own schema inference and the NDJSON
      // inference): the sample is the file's first rows, not the file. A growing id that stayed
      // under 32,768 in the sample made an Int16 that quarantined the other 967,232 rows of a
      // million-row file. The range still decides UInt64 and String.
      else t = "Int64";
    } else if (possible & kFloat) t = "Float64";
    else if (possible & kDate) {
      // Date: 1970-01-01..2149-06-06; Date32: 1900-01-01..2299-12-31.
      t = minDay >= 0 && maxDay <= 65535 ? "Date" : minDay >= -25567 && maxDay <= 120529 ? "Date32" : "String";
    } else if (possible & kDateTime) {
      // DateTime: 1970..2106-02-07 06:28:15; DateTime64: 1900..2299, and (9) to 2262-04-11 23:47:16.
      const int p = fractionDigits <= 3 ? 3 : fractionDigits <= 6 ? 6 : 9;
      if (fractionDigits == 0 && minSec >= 0 && maxSec <= 4294967295LL) t = "DateTime";
      else if (minSec < -2208988800LL || maxSec > (p == 9 ? 9223372035LL : 10413791999LL)) t = "String";
      else t = "DateTime64(" + std::to_string(p) + ")";
    } else t = "String";
    return sawEmpty ? "Nullable(" + t + ")" : t;
  }
  bool isString() const { return !sawValue || possible == 0 || ((possible & kInt) && intTooBig); }
  bool isInteger() const { return sawValue && (possible & kInt) && !intTooBig; }
  // Integers none of which repeats (an index: a filtered or sorted frame's has gaps, never twins).
  bool unique = true;
  std::set<int64_t> seenInts;
  void step(std::string_view raw) {
    if (!unique) return;
    std::string_view v = trimSpaces(raw);
    bool neg, over;
    uint64_t m;
    if (!parseInt(v, neg, m, over) || over || m > static_cast<uint64_t>(INT64_MAX)) { unique = false; return; }
    const int64_t n = neg ? -static_cast<int64_t>(m) : static_cast<int64_t>(m);
    if (!seenInts.insert(n).second) unique = false;
  }
};

struct Collector final : RowSink {
  size_t maxRows;
  std::vector<std::vector<std::string>> rows;  // only the first few, for the header
  std::vector<ColumnStats> stats;              // rows after the first
  uint64_t count = 0;
  bool invalidUtf8 = false;
  uint64_t invalidLine = 0;
  void onRow(const Row& row) override {
    if (count >= maxRows) return;
    if (row.unterminated) return;
    if (scan::firstInvalidUtf8(row.raw.data(), row.raw.data() + row.raw.size()) >= 0 && !invalidUtf8) {
      invalidUtf8 = true;
      invalidLine = row.line;
    }
    if (count == 0) {
      rows.emplace_back();
      for (size_t i = 0; i < row.count; ++i) {
        rows.back().emplace_back(row.fields[i].view());
      }
    } else {
      if (stats.size() < row.count) stats.resize(row.count);
      for (size_t i = 0; i < row.count; ++i) stats[i].add(row.fields[i].view(), row.fields[i].quoted);
      if (row.count > 0) stats[0].step(row.fields[0].view());
    }
    ++count;
  }
};

struct CountSink final : RowSink {
  std::vector<size_t> counts;
  size_t maxRows = 50;
  void onRow(const Row& row) override {
    if (counts.size() < maxRows) counts.push_back(row.count);
  }
};

// A code point past ASCII that may stand in a column name: the letters and digits of the world's
// scripts, roughly (Latin-1's and other letters from U+00C0 to U+1FFF without × and ÷; kana, CJK
// and Hangul from U+3040 to U+D7FF; compatibility ideographs and presentation forms to U+FDFF; CJK
// extensions from U+20000). Punctuation, symbols, currency, arrows and emoji are not. NDJSON keys
// use Unicode's letter and digit classes (src/ingest/ndjson-infer.ts); header cells use this
// table, which src/ingest/import.ts inferredColumnNames repeats so that a header still spells them.
bool nameCodePoint(uint32_t cp) {
  return (cp >= 0xC0 && cp <= 0x1FFF && cp != 0xD7 && cp != 0xF7) || (cp >= 0x3040 && cp <= 0xD7FF) ||
         (cp >= 0xF900 && cp <= 0xFDFF) || (cp >= 0x20000 && cp <= 0x3FFFF);
}

// The UTF-8 sequence at p (n bytes left): its length and code point, or 0 when it is not one.
size_t utf8At(const unsigned char* p, size_t n, uint32_t& cp) {
  const unsigned char c = p[0];
  size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (len == 0 || len > n) return 0;
  cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  return len;
}

}  // namespace

std::string sanitizeName(std::string_view raw, size_t index) {
  std::string s;
  raw = trimSpaces(raw);
  bool lastUnderscore = false;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  for (size_t i = 0; i < raw.size();) {
    const unsigned char c = p[i];
    size_t len = 1;
    bool ok = c < 0x80 && (std::isalnum(c) || c == '_');
    if (c >= 0x80) {
      uint32_t cp = 0;
      len = utf8At(p + i, raw.size() - i, cp);
      if (len == 0) len = 1;
      else ok = nameCodePoint(cp);
    }
    if (ok) {
      s.append(raw.data() + i, len);
      lastUnderscore = c == '_';
    } else if (!s.empty() && !lastUnderscore) {
      s += '_';
      lastUnderscore = true;
    }
    i += len;
  }
  while (!s.empty() && s.back() == '_' && s.size() > 1) s.pop_back();
  if (s.empty() || s == "_") {
    char buf[32];
    std::snprintf(buf, sizeof buf, "column_%02zu", index);
    return buf;
  }
  if (std::isdigit(static_cast<unsigned char>(s[0]))) s = "c_" + s;
  return s;
}

namespace {
bool separates(char c) { return c == '\n' || c == '\r' || c == ',' || c == ';' || c == '\t' || c == '|'; }

/** Text that stands for a missing value in exported files: never a column's name. */
bool nullLike(std::string_view v) {
  for (const char* w : {"null", "nan", "n/a", "na", "none", "nil", "-", "?", "unknown", "tbd", "undefined"})
    if (equalsLower(v, w)) return true;
  return false;
}

/** A header cell that reads as a name: up to 64 bytes, a letter or `_` first, not a placeholder. */
bool nameLike(std::string_view v) {
  return !v.empty() && v.size() <= 64 && (std::isalpha(static_cast<unsigned char>(v[0])) || v[0] == '_') && !nullLike(v);
}
}  // namespace

Sniffed sniff(std::string_view sample, size_t expectedColumns) {
  Sniffed out;
  if (sample.size() >= 3 && sample.substr(0, 3) == "\xEF\xBB\xBF") sample.remove_prefix(3);
  // Quote: `"` (RFC 4180, ClickHouse), unless the fields are plainly quoted with `'`: more of
  // them open with it, and every one that does closes before a separator (a value that only
  // starts with an apostrophe, 't Hooft or 's-Hertogenbosch, has no such close: it made `'` the
  // quote, the rows up to the next apostrophe became one value, and quotes were taken off
  // values). A `'`-quoted value may span lines (its close is found on a later line, before a
  // separator) when at least as many close on their own line: one such value made `"` the quote
  // and every value of the file kept its apostrophes; its row is quarantined instead
  // (quotesOnOneLine).
  size_t dq = 0, sq = 0, sqSpans = 0;
  bool sqClosed = true;
  for (size_t i = 0; i < sample.size(); ++i) {
    char prev = i ? sample[i - 1] : '\n';
    if (!separates(prev) || (i && prev == '\r' && sample[i] == '\n')) continue;
    if (sample[i] == '"') {
      ++dq;
    } else if (sample[i] == '\'' && sqClosed) {
      ++sq;
      bool spans = false;
      size_t j = i + 1;
      for (;; ++j) {
        if (j >= sample.size()) break;  // the sample's cut: not evidence either way
        char c = sample[j];
        if (c == '\n' || c == '\r') spans = true;
        if (c != '\'') continue;
        if (j + 1 < sample.size() && sample[j + 1] == '\'') { ++j; continue; }
        if (j + 1 < sample.size() && !separates(sample[j + 1])) sqClosed = false;
        else if (spans) ++sqSpans;
        break;
      }
      i = j < sample.size() ? j : sample.size();
    }
  }
  char quote = sqClosed && sq >= 2 * sqSpans && sq - sqSpans >= 2 && sq > dq * 2 ? '\'' : '"';
  // Delimiter: with the data source's column count known, the one giving that many fields in the
  // most rows (`,` first on a tie): a note holding `;` made `;` the delimiter of a two-column
  // file, whose rows were then refused. Else (or when none gives it) the one giving the most
  // consistent field count (> 1).
  static constexpr char kDelims[] = {',', ';', '\t', '|'};
  // Each delimiter's field count of every row of the sample, read once.
  std::vector<size_t> counts[4];
  for (size_t k = 0; k < 4; ++k) {
    Reader r(Dialect{kDelims[k], quote, 0}, sample.size() + 16);
    CountSink sink;
    r.feed(sample.data(), sample.size(), sink);
    if (sink.counts.empty()) r.finish(sink);
    counts[k] = std::move(sink.counts);
  }
  char bestDelim = ',';
  size_t bestRows = 0;
  if (expectedColumns > 0) {
    for (size_t k = 0; k < 4; ++k) {
      size_t rows = 0;
      for (size_t c : counts[k]) rows += c == expectedColumns;
      if (rows > bestRows) {
        bestRows = rows;
        bestDelim = kDelims[k];
      }
    }
  }
  double best = -1;
  for (size_t k = 0; k < 4 && bestRows == 0; ++k) {
    if (counts[k].empty()) continue;
    std::map<size_t, size_t> freq;
    for (size_t c : counts[k]) ++freq[c];
    size_t mode = 0, modeN = 0;
    for (auto& [c, n] : freq)
      if (n > modeN || (n == modeN && c > mode)) {
        mode = c;
        modeN = n;
      }
    if (mode < 2) continue;
    double score = static_cast<double>(modeN) / static_cast<double>(counts[k].size()) * 1000.0 +
                   std::min<size_t>(mode, 100);
    if (score > best) {
      best = score;
      bestDelim = kDelims[k];
    }
  }
  out.dialect = Dialect{bestDelim, quote, 0};
  // Newline: the first line end outside quotes.
  bool inQuote = false;
  for (size_t i = 0; i < sample.size(); ++i) {
    char c = sample[i];
    if (c == quote) inQuote = !inQuote;
    else if (!inQuote && (c == '\n' || c == '\r')) {
      out.newline = c == '\n' ? "\n" : (i + 1 < sample.size() && sample[i + 1] == '\n') ? "\r\n" : "\r";
      break;
    }
  }
  // Header: decided from the per-column evidence.
  Collector c;
  c.maxRows = 200;
  Reader r(out.dialect, sample.size() + 16);
  r.feed(sample.data(), sample.size(), c);
  if (c.count <= 1) r.finish(c);
  if (c.rows.empty()) return out;
  // Trailing empty cells over columns empty all the way down (Excel's trailing delimiter,
  // `a,b,`) say nothing either way: the rest of the row decides.
  std::vector<std::string> first = c.rows[0];
  while (first.size() > 1 && trimSpaces(first.back()).empty() &&
         (first.size() - 1 >= c.stats.size() || !c.stats[first.size() - 1].sawValue))
    first.pop_back();
  bool allNonEmpty = true, anyValueLooking = false, distinct = true;
  std::set<std::string> seen;
  for (const auto& f : first) {
    std::string_view v = trimSpaces(f);
    if (v.empty()) allNonEmpty = false;
    if (!seen.insert(std::string(v)).second) distinct = false;
    // A value, not a name: a number, a date or a time, a boolean.
    double x;
    int32_t days;
    DateTimeParts dt;
    if (parseDouble(v, x) || parseDate(v, days) || (parseDateTime(v, dt) && dt.hasTime) || equalsLower(v, "true") || equalsLower(v, "false") ||
        v == "\\N")
      anyValueLooking = true;
  }
  if (anyValueLooking) return out;
  // A placeholder (`null`, `NA`, `-`) in the first row is a value — unless another cell of it is
  // a name standing over numbers, dates or booleans (`month,NA,EMEA` over `2024-01,100,200`:
  // North America's column), which no data row's cell would be.
  {
    bool placeholder = false, nameOverTyped = false;
    for (size_t i = 0; i < first.size(); ++i) {
      std::string_view v = trimSpaces(first[i]);
      if (nullLike(v)) placeholder = true;
      else if (!v.empty() && i < c.stats.size() && !c.stats[i].isString()) nameOverTyped = true;
    }
    if (placeholder && !nameOverTyped) return out;
  }
  if (allNonEmpty && !distinct && c.count > 1) {
    // Repeated names (`id,name,id`, a join's export) over typed columns: a header, as with
    // distinct names, when every cell is a name (a letter or `_` first, not a placeholder) and a
    // repeated one stands over numbers, dates or booleans, which no data row of it would hold.
    // Over text only, or with a placeholder among them (`alice,null,null`), the row stays data.
    std::map<std::string, int> times;
    for (const auto& f : first) times[std::string(trimSpaces(f))]++;
    bool names = true, repeatedOverTyped = false;
    for (size_t i = 0; i < first.size(); ++i) {
      std::string_view v = trimSpaces(first[i]);
      if (!nameLike(v)) names = false;
      if (times[std::string(v)] > 1 && i < c.stats.size() && !c.stats[i].isString()) repeatedOverTyped = true;
    }
    if (names && repeatedOverTyped) {
      out.hasHeader = true;
      return out;
    }
  }
  if (!allNonEmpty || !distinct) {
    // pandas' to_csv() writes its index column unnamed: `,user_id,score`. Only that shape is
    // a header with an empty cell — the first cell alone empty, the others distinct names, not
    // placeholders (`null`, `n/a`, `-`) — and only with the index below it. Any other empty or
    // repeated first-row cell leaves the row data (`alice,,TBD`, `alice,null,null`).
    if (first.size() < 2 || !trimSpaces(first[0]).empty()) return out;
    std::set<std::string> names;
    for (size_t i = 1; i < first.size(); ++i) {
      std::string_view v = trimSpaces(first[i]);
      if (!nameLike(v) || !names.insert(std::string(v)).second)
        return out;
    }
    if (c.count == 1) {
      out.hasHeader = true;  // a header alone
      return out;
    }
    // The evidence is the index itself: integers in every row below (never an empty cell).
    // A name over numbers is not enough (`,alice,30` over `,bob,40` is data with an empty first
    // column), nor a first column with gaps (`,Alice,Smith` over `1043,Carol,White`).
    out.hasHeader = !c.stats.empty() && c.stats[0].isInteger() && !c.stats[0].sawEmpty && c.stats[0].unique;
    return out;
  }
  if (c.count == 1) {
    out.hasHeader = true;  // a single row of names
    return out;
  }
  bool typedColumnBelow = false;
  for (size_t i = 0; i < c.stats.size() && i < first.size(); ++i)
    if (!c.stats[i].isString()) typedColumnBelow = true;
  if (typedColumnBelow) {
    out.hasHeader = true;
    return out;
  }
  // All columns are text: a header if no first-row cell reappears below it and
  // the cells look like names (short, start with a letter).
  bool namey = true;
  for (const auto& f : first) {
    std::string_view v = trimSpaces(f);
    if (v.size() > 64 || !(std::isalpha(static_cast<unsigned char>(v[0])) || v[0] == '_')) namey = false;
  }
  out.hasHeader = namey;
  return out;
}

Inferred infer(std::string_view sample, const Dialect& d, bool hasHeader, bool complete, size_t maxRows) {
  Collector c;
  c.maxRows = maxRows + 1;
  Reader r(d, sample.size() + 16);
  r.feed(sample.data(), sample.size(), c);
  if (complete) r.finish(c);
  Inferred out;
  out.invalidUtf8 = c.invalidUtf8;
  out.invalidUtf8Line = c.invalidLine;
  if (c.rows.empty()) return out;
  const auto& first = c.rows[0];
  std::vector<ColumnStats> stats = c.stats;
  size_t n = std::max(first.size(), stats.size());
  if (!hasHeader) {
    // The first row is data too: fold it in.
    stats.resize(n);
    for (size_t i = 0; i < first.size(); ++i) {
      stats[i].add(first[i], false);
    }
  }
  stats.resize(n);
  // Under a header, the last columns that it does not name (past it, or an empty last cell of
  // it: `a,b,`) and that fewer than half the rows have a value in are no columns: a trailing
  // delimiter, or a stray row with a value too many (quarantined for its field count). Such a
  // column was an all-NULL one, or a String the header did not name, and the create refused its
  // own inferred schema. Half the rows with a value keep it (nothing of theirs is quarantined).
  const uint64_t dataRows = c.count - 1;
  // (A cell of nothing or spaces: what the validator and src/ingest/import.ts drop from a header line's end.)
  auto unnamed = [&](size_t i) { return i >= first.size() || trimSpaces(first[i]).empty(); };
  while (hasHeader && n > 1 && !first.empty() && unnamed(n - 1) && stats[n - 1].present * 2 < dataRows) --n;
  stats.resize(n);
  // The quarantine table's own columns are taken (a create refuses a column of those names):
  // a header cell `insertion_date` is suggested as `insertion_date_2`, as NDJSON inference does.
  // src/ingest/import.ts inferredColumnNames names header cells the same way.
  std::set<std::string> used = {"c__import_id", "c__error_column", "c__error", "c__line", "c__raw", "insertion_date"};
  for (size_t i = 0; i < n; ++i) {
    InferredColumn col;
    std::string name = hasHeader && i < first.size() ? sanitizeName(first[i], i) : sanitizeName("", i);
    std::string base = name;
    for (int k = 2; !used.insert(name).second; ++k) name = base + "_" + std::to_string(k);
    col.name = name;
    col.type = stats[i].type();
    col.nullable = stats[i].sawEmpty;
    // Past the header, a column some rows do not reach is NULL in them (read by position under
    // the header's names: validator.cc), so Nullable.
    if (hasHeader && i >= first.size() && stats[i].seen < dataRows && !col.nullable) {
      col.nullable = true;
      col.type = "Nullable(" + col.type + ")";
    }
    col.present = stats[i].present;
    col.seen = stats[i].seen;
    out.columns.push_back(std::move(col));
  }
  out.rowsSampled = c.count - (hasHeader ? 1 : 0);
  return out;
}

}  // namespace roost::csv
