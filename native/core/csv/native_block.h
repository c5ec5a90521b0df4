// RowBinary rows -> one ClickHouse Native block (columnar). The engine reads
// Native about twice as fast as RowBinary (bench/csv-parse.mjs), so validated
// batches are transposed once here; validation itself stays row-wise, which
// keeps rejecting a half-written row trivial.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "csv/schema.h"
#include "csv/values.h"

namespace roost::csv {

/// The type written in the block for a column type: LowCardinality is dropped
/// (the engine converts String to LowCardinality(String) on read).
std::string nativeTypeName(const Type& t);

/// One column of a block being built: values (or UInt64 offsets for Array), the
/// null map for Nullable, the element column for Array / inner for Nullable.
struct NativeColumn {
  const Type* type;  // LowCardinality stripped
  size_t fixed = 0;  // bytes per value; 0 for String, Array, Nullable
  ByteBuf data;
  ByteBuf nulls;
  std::unique_ptr<NativeColumn> nested;
  uint64_t offset = 0;  // Array: elements so far

  explicit NativeColumn(const Type& t);
  void reset();
  /// The zero value written under a NULL.
  void writeDefault();
  /// Appends one value given in RowBinary, advancing p.
  void read(const char*& p);
  /// Appends the column's buffers to `small`; with `parts`, those of at least `minPart`
  /// bytes become pieces of their own instead (see NativeEncoder::finishBlockParts).
  void serialize(ByteBuf& small, std::vector<OwnedBytes>* parts, size_t minPart);
  /// Sizes the buffers given up by serialize() as pieces reached: reserved again at reset().
  size_t dataHint = 0, nullsHint = 0;
  size_t byteSize() const;
};

/// Transposes RowBinary rows (no default flags) into Native blocks. Keeps its
/// column buffers between batches: fresh memory per batch cost page faults.
class NativeEncoder {
 public:
  explicit NativeEncoder(const std::vector<Column>& cols);
  ~NativeEncoder();
  NativeEncoder(const NativeEncoder&) = delete;
  NativeEncoder& operator=(const NativeEncoder&) = delete;
  /// Appends one block of `rows` RowBinary rows to `out`; nothing for zero rows.
  void encode(std::string_view rowBinary, uint64_t rows, ByteBuf& out);

  // Direct use, row by row: write values into column(i), then either keep the
  // row or roll it back; finishBlock() emits what was kept and resets.
  NativeColumn& column(size_t i) { return *columns_[i]; }
  void beginRow() {
    for (size_t i = 0; i < varBufs_.size(); ++i) varMarks_[i] = varBufs_[i]->size();
    for (size_t i = 0; i < offsets_.size(); ++i) offsetMarks_[i] = *offsets_[i];
  }
  /// Undoes the row begun last; `keptRows` rows came before it in this block.
  void rollbackRow(uint64_t keptRows) {
    for (const auto& [buf, width] : fixedBufs_) buf->truncate(keptRows * width);
    for (size_t i = 0; i < varBufs_.size(); ++i) varBufs_[i]->truncate(varMarks_[i]);
    for (size_t i = 0; i < offsets_.size(); ++i) *offsets_[i] = offsetMarks_[i];
  }
  void finishBlock(uint64_t rows, ByteBuf& out);
  /// finishBlock without the copy: the block as pieces that, written one after
  /// another, are finishBlock's bytes. Column buffers of at least `minPart`
  /// bytes become pieces of their own (and are given up: the next block's are
  /// reserved at the size these reached); smaller ones are copied in between.
  void finishBlockParts(uint64_t rows, std::vector<OwnedBytes>& parts, size_t minPart = 8 << 10);

 private:
  const std::vector<Column>& cols_;
  std::vector<std::unique_ptr<NativeColumn>> columns_;
  // The buffers of the column trees, flattened. Those that grow by a fixed
  // width per row (values, null maps, Array offsets; not under an Array) are
  // rolled back by the row count; only the others (strings, Array elements)
  // have their sizes marked at every row.
  void addBuffers(NativeColumn* n, bool perRow);
  /// The block (header, then every column) into `head`, or into pieces (see
  /// finishBlockParts); nothing for zero rows. Resets the columns.
  void writeBlock(uint64_t rows, ByteBuf& head, std::vector<OwnedBytes>* parts, size_t minPart);
  std::vector<std::pair<ByteBuf*, size_t>> fixedBufs_;
  std::vector<ByteBuf*> varBufs_;
  std::vector<size_t> varMarks_;
  std::vector<uint64_t*> offsets_;
  std::vector<uint64_t> offsetMarks_;
};

/// One-shot form of NativeEncoder::encode.
void rowBinaryToNative(std::string_view rowBinary, uint64_t rows, const std::vector<Column>& cols, ByteBuf& out);

}  // namespace roost::csv
