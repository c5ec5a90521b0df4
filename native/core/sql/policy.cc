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
#include "sql/functions_allowlist.inc"
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
