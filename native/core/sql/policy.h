// What a tenant query may use: scalar and aggregate functions (an allowlist
// generated from ClickHouse's own list), table functions, SETTINGS keys, FORMAT names.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace roost::sql {

enum FunctionFlags : uint8_t {
  kAggregate = 1,
  kCaseInsensitive = 2,
  kTableLiteral = 4,  // first argument names a dictionary/table as a string literal
};

// Looks a function name up, resolving case-insensitive names and aggregate
// combinators (sumIf, uniqMergeState, countOrNull...). Returns false if refused.
bool lookupFunction(std::string_view name, uint8_t& flags) noexcept;

// A function ClickHouse has that tenant queries may not use (else, when not allowed, unknown).
bool isDeniedFunction(std::string_view name) noexcept;

// The allowed function a name not found probably meant: the same letters in another case
// (COUNTIF: countIf), else the nearest name by a few edits; "" when none is near.
std::string suggestFunction(std::string_view name);

// Words ClickHouse's parser treats specially before '(' (EXTRACT(... FROM ...),
// TRIM(BOTH ...), EXISTS(subquery), COLUMNS('re')): calls to them are not looked up.
bool isSyntaxFunction(std::string_view name) noexcept;

bool isAllowedTableFunction(std::string_view name) noexcept;
bool isAllowedSetting(std::string_view name) noexcept;
bool isAllowedFormat(std::string_view name) noexcept;

}  // namespace roost::sql
