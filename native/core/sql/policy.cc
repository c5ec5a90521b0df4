#include "sql/policy.h"

#include "sql/ascii.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

namespace roost::sql {

namespace {

struct FunctionEntry {
  std::string_view name;
  uint8_t flags;
};

constexpr FunctionEntry kFunctions[] = {
#define F(name, flags) {name, flags},
#define D(name)
#include "sql/functions_allowlist.inc"
#undef D
#undef F
};

// Functions ClickHouse has that tenant queries may not use (reaching outside the workspace or
// the machine, revealing the server): refused as "not allowed"; other names are unknown.
constexpr std::string_view kDenied[] = {
#define F(name, flags)
#define D(name) name,
#include "sql/functions_allowlist.inc"
#undef D
#undef F
};

// Case-insensitive names, lowercased and sorted once.
struct LowerIndex {
  std::vector<std::pair<std::string, uint8_t>> items;
  LowerIndex() {
    for (const auto& f : kFunctions) {
      if (!(f.flags & kCaseInsensitive)) continue;
      std::string s(f.name);
      for (auto& c : s) c = asciiLower(c);
      items.emplace_back(std::move(s), f.flags);
    }
    std::sort(items.begin(), items.end());
  }
};

const LowerIndex& lowerIndex() {
  static const LowerIndex idx;
  return idx;
}

bool lookupPlain(std::string_view name, uint8_t& flags) noexcept {
  auto it = std::lower_bound(std::begin(kFunctions), std::end(kFunctions), name,
                             [](const FunctionEntry& e, std::string_view n) { return e.name < n; });
  if (it != std::end(kFunctions) && it->name == name) { flags = it->flags; return true; }
  if (name.size() > 64) return false;
  char buf[64];
  for (size_t i = 0; i < name.size(); ++i) buf[i] = asciiLower(name[i]);
  std::string_view low(buf, name.size());
  const auto& items = lowerIndex().items;
  auto jt = std::lower_bound(items.begin(), items.end(), low,
                             [](const std::pair<std::string, uint8_t>& e, std::string_view n) { return std::string_view(e.first) < n; });
  if (jt != items.end() && jt->first == low) { flags = jt->second; return true; }
  return false;
}

// Aggregate function combinators, as system.aggregate_function_combinators lists them.
constexpr std::string_view kCombinators[] = {"SimpleState", "OrDefault", "Distinct", "Resample", "ForEach", "ArgMax",
                                             "ArgMin",      "OrNull",    "Tuple",    "Merge",    "State",   "Array",
                                             "Null",        "Map",       "If"};

bool lookupWithCombinators(std::string_view name, uint8_t& flags, int depth) noexcept {
  if (lookupPlain(name, flags)) return depth == 0 || (flags & kAggregate);
  if (depth >= 4) return false;
  for (auto c : kCombinators) {
    if (name.size() > c.size() && name.substr(name.size() - c.size()) == c) {
      if (lookupWithCombinators(name.substr(0, name.size() - c.size()), flags, depth + 1) && (flags & kAggregate)) return true;
    }
  }
  return false;
}

}  // namespace

bool lookupFunction(std::string_view name, uint8_t& flags) noexcept {
  flags = 0;
  return lookupWithCombinators(name, flags, 0);
}

bool isDeniedFunction(std::string_view name) noexcept {
  if (!name.empty() && name[0] == '_') return true;  // internal functions
  for (auto d : kDenied)
    if (iequals(name, d)) return true;
  return false;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = asciiLower(c);
  return out;
}

/// Levenshtein distance of two short lower-case names, or `limit + 1` once past `limit`.
size_t distance(std::string_view a, std::string_view b, size_t limit) {
  if (a.size() > b.size() + limit || b.size() > a.size() + limit) return limit + 1;
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0], best = row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
      best = std::min(best, row[j]);
    }
    if (best > limit) return limit + 1;
  }
  return row[b.size()];
}

}  // namespace

std::string suggestFunction(std::string_view name) {
  if (name.empty() || name.size() > 64) return "";
  const std::string low = lower(name);
  // Only the letter case is wrong (COUNTIF: countIf), combinators included.
  for (const auto& f : kFunctions)
    if (lower(f.name) == low) return std::string(f.name);
  for (auto c : kCombinators) {
    if (low.size() <= c.size() || low.compare(low.size() - c.size(), c.size(), lower(c)) != 0) continue;
    const std::string base = suggestFunction(name.substr(0, name.size() - c.size()));
    uint8_t flags = 0;
    if (!base.empty() && lookupPlain(base, flags) && (flags & kAggregate)) return base + std::string(c);
  }
  // Else the nearest allowed name by a few edits (the first in name order among equals).
  const size_t limit = low.size() <= 4 ? 1 : low.size() <= 8 ? 2 : 3;
  size_t best = limit + 1;
  std::string_view found;
  for (const auto& f : kFunctions) {
    const size_t d = distance(low, lower(f.name), limit);
    if (d < best) { best = d; found = f.name; }
  }
  return best <= limit ? std::string(found) : "";
}

bool isSyntaxFunction(std::string_view name) noexcept {
  static constexpr std::string_view kWords[] = {"trim", "ltrim", "rtrim", "extract", "substring", "position",
                                                "exists", "columns", "cast", "interval", "date", "timestamp"};
  for (auto w : kWords)
    if (iequals(name, w)) return true;
  return false;
}

bool isAllowedTableFunction(std::string_view name) noexcept {
  // Generators only: they read nothing outside the query. null() is refused (it is
  // a sink for INSERT and has no use in a read-only query).
  static constexpr std::string_view kAllowed[] = {"numbers", "numbers_mt", "zeros", "zeros_mt", "generateRandom",
                                                  "values", "generateSeries", "generate_series", "primes"};
  for (auto w : kAllowed)
    if (iequals(name, w)) return true;
  return false;
}

bool isAllowedSetting(std::string_view name) noexcept {
  // Settings that change how a result is computed, never what may be read or how
  // much may be spent (limits belong to the operator's profile).
  static constexpr std::string_view kAllowed[] = {"max_threads", "join_use_nulls", "join_algorithm",
                                                  "optimize_read_in_order", "optimize_aggregation_in_order",
                                                  "aggregate_functions_null_for_empty",
                                                  "output_format_json_quote_64bit_integers"};
  for (auto w : kAllowed)
    if (name == w) return true;
  return false;
}

bool isAllowedFormat(std::string_view name) noexcept {
  static constexpr std::string_view kAllowed[] = {"CSV", "CSVWithNames", "TSV", "TSVWithNames", "JSONEachRow", "Parquet", "JSON"};
  for (auto w : kAllowed)
    if (name == w) return true;
  return false;
}

}  // namespace roost::sql
