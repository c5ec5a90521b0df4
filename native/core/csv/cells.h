// Column-at-a-time encoding of a batch of rows (Validator::flushBatch): one column's cells of
// several rows in one loop, its type's encoder inlined there, instead of a call through a
// function pointer per cell.
#pragma once
#include <cstddef>

#include "csv/reader.h"
#include "csv/values.h"

namespace roost::csv {

/// One column of a batch of rows.
struct ColumnCells {
  const Type* type;     // the written type (LowCardinality and Nullable removed); not Array
  const Field* first;   // the column's field in the batch's first row
  size_t stride;        // fields from one row's to the next's
  size_t rows;
  bool nullable;
  bool emptyIsValue;        // String/FixedString: an empty cell is a value
  bool quotedEmptyIsValue;  // and an Enum with a label ''
  size_t nullWidth;     // bytes of the zero value written under a NULL (NativeColumn::fixed); 0 for String (an empty one)
};

/// Encodes every cell by the validator's rules (empty cells, \N, the type's encoder) as Native:
/// values appended to `data`, null flags to `nulls` (Nullable). False at the first cell that
/// fails: what was written is the caller's to roll back.
bool encodeCells(const ColumnCells& c, ByteBuf& data, ByteBuf* nulls);

}  // namespace roost::csv
