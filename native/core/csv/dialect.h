// CSV dialect and the scanning primitives shared by the reader and the sniffer.
#pragma once
#include <cstddef>
#include <cstdint>

namespace roost::csv {

/// How a CSV file is written. `escape` 0 means "no escape character" (RFC 4180:
/// quotes inside quoted fields are doubled). An escape equal to `quote` is the
/// same as none.
struct Dialect {
  char delimiter = ',';
  char quote = '"';
  char escape = 0;
};

}  // namespace roost::csv
