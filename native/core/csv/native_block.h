// RowBinary rows -> one ClickHouse Native block (columnar). The engine reads
// Native about twice as fast as RowBinary (bench/csv-parse.mjs), so validated
// batches are transposed once here; validation itself stays row-wise, which
// keeps rejecting a half-written row trivial.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "csv/schema.h"
#include "csv/values.h"

namespace roost::csv {

/// The type written in the block for a column type: LowCardinality is dropped
/// (the engine converts String to LowCardinality(String) on read).
std::string nativeTypeName(const Type& t);

struct NativeColumn;

/// Transposes RowBinary rows (no default flags) into Native blocks. Keeps its
/// column buffers between batches: fresh memory per batch cost page faults.
class NativeEncoder {
 public:
  explicit NativeEncoder(const std::vector<Column>& cols);
  ~NativeEncoder();
  NativeEncoder(const NativeEncoder&) = delete;
  NativeEncoder& operator=(const NativeEncoder&) = delete;
  /// Appends one block of `rows` rows to `out`; nothing for zero rows.
  void encode(std::string_view rowBinary, uint64_t rows, ByteBuf& out);

 private:
  const std::vector<Column>& cols_;
  std::vector<std::unique_ptr<NativeColumn>> columns_;
};

/// One-shot form of NativeEncoder::encode.
void rowBinaryToNative(std::string_view rowBinary, uint64_t rows, const std::vector<Column>& cols, ByteBuf& out);

}  // namespace roost::csv
