// RowBinary rows -> one ClickHouse Native block (columnar). The engine reads
// Native about twice as fast as RowBinary (bench/csv-parse.mjs), so validated
// batches are transposed once here; validation itself stays row-wise, which
// keeps rejecting a half-written row trivial.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "csv/schema.h"
#include "csv/values.h"

namespace roost::csv {

/// The type written in the block for a column type: LowCardinality is dropped
/// (the engine converts String to LowCardinality(String) on read).
std::string nativeTypeName(const Type& t);

/// Transposes `rows` RowBinary rows (no default flags) of `cols` into one Native
/// block appended to `out`. Nothing is written for zero rows.
void rowBinaryToNative(std::string_view rowBinary, uint64_t rows, const std::vector<Column>& cols, ByteBuf& out);

}  // namespace roost::csv
