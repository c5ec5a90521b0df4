// Dialect sniffing and ClickHouse type inference from a sample.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "csv/dialect.h"

namespace roost::csv {

struct Sniffed {
  Dialect dialect;
  bool hasHeader = false;
  std::string newline = "\n";  // "\n", "\r\n" or "\r"
};

/// Guesses delimiter (, ; TAB |), quote (" or ') and whether the first row is a
/// header, from the first rows of `sample`. With `expectedColumns` (the data source's
/// column count), the delimiter is the one giving that many fields in the most rows.
Sniffed sniff(std::string_view sample, size_t expectedColumns = 0);

struct InferredColumn {
  std::string name;
  std::string type;  // full ClickHouse type, Nullable(...) included
  bool nullable = false;
  uint64_t present = 0;  // sampled rows with a value in this column (not empty, not missing)
  uint64_t seen = 0;     // sampled rows that reach this column (a short row does not: it is refused, not NULL)
};

struct Inferred {
  std::vector<InferredColumn> columns;
  uint64_t rowsSampled = 0;
  bool invalidUtf8 = false;
  uint64_t invalidUtf8Line = 0;
};

/// Infers a schema from the complete rows of `sample` (a trailing partial row is
/// ignored unless `complete`). Types:
///   integers: Int16, Int32, Int64 by the sampled range (UInt64 only above
///   Int64's range; beyond UInt64 -> String); leading zeros ("007") -> String;
///   decimals/exponents -> Float64; true/false -> Bool; YYYY-MM-DD -> Date;
///   date-times -> DateTime, or DateTime64(3|6|9) by the longest fraction;
///   mixes that no single type reads -> String; an empty cell -> Nullable(T).
Inferred infer(std::string_view sample, const Dialect& d, bool hasHeader, bool complete, size_t maxRows);

/// A valid ClickHouse identifier from a header cell: [A-Za-z0-9_], not starting
/// with a digit; empty -> column_NN.
std::string sanitizeName(std::string_view raw, size_t index);

}  // namespace roost::csv
