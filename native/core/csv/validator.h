// Streaming CSV validator: rows in, RowBinary(WithDefaults) for valid rows and a
// compact record of rejected rows out.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <memory>

#include "csv/native_block.h"
#include "csv/reader.h"
#include "csv/schema.h"
#include "csv/values.h"

namespace roost::csv {

/// What valid rows are encoded as. Native unless a column has a DEFAULT, which
/// needs RowBinaryWithDefaults' per-cell "use the default" flag.
enum class Encoding : uint8_t { Native, RowBinary };

struct ValidatorOptions {
  Dialect dialect;
  Encoding encoding = Encoding::Native;
  bool hasHeader = false;
  size_t maxRowBytes = 8 << 20;
  /// Native only: hand each batch's block over as `Batch::parts` (the block's
  /// column buffers themselves, small ones merged) instead of copying it into
  /// `Batch::rows`. What a socket or file write takes as it is.
  bool nativeParts = false;
  /// Column buffers smaller than this are copied into the pieces between the big ones.
  size_t nativePartMin = 8 << 10;
  /// A row whose quoted value spans lines is rejected (QuoteSpansLines): set when the quote was
  /// sniffed as `'` from the file's start, where a value opening with an apostrophe later on
  /// would join rows into one value, silently.
  bool quotesOnOneLine = false;
  /// Native: rows the reader's block path took are encoded a column at a time, in batches
  /// (Validator::flushBatch). Off: row by row (the same bytes; the reference tests compare with).
  bool columnBatches = true;
  /// Every line is a row (an empty one: one empty field), as Reader::setBlankLinesAreRows.
  bool blankLinesAreRows = false;
};

/// What one push/finish produced.
///  rows: formatName(): one Native block per batch; or RowBinary; or
///        RowBinaryWithDefaults when any column has a DEFAULT (one UInt8 "use the
///        default" flag before every column).
///  rejected: repeated records, little-endian:
///        u64 line | i32 column (-1: the whole row) | u8 reason length | reason |
///        u32 raw length | raw row text |
///        u8 n | n × (i32 column | u8 reason length | reason): the row's other failing
///        columns after the first (at most 255)

struct Batch {
  OwnedBytes rows;
  /// With ValidatorOptions::nativeParts (Native): the block in pieces, to be
  /// written one after another; `rows` is then empty.
  std::vector<OwnedBytes> parts;
  uint64_t rowCount = 0;
  std::string rejected;
  uint64_t rejectedCount = 0;
  uint64_t bytesConsumed = 0;  // input bytes of complete rows (and skipped bytes) so far
};

enum class ValidatorError : uint8_t { None, RowTooLarge, HeaderMismatch };

class Validator final : private RowSink {
 public:
  Validator(std::vector<Column> columns, ValidatorOptions opts);

  bool push(const char* data, size_t n, Batch& out);
  /// The same as pushing the pieces one after another, in one batch: a body that
  /// arrived in many small pieces needs no copy into one buffer first.
  bool push(const std::string_view* pieces, size_t count, Batch& out);
  bool finish(Batch& out);

  bool usesDefaults() const { return withDefaults_; }
  /// The ClickHouse input format name of Batch::rows.
  const char* formatName() const {
    return withDefaults_ ? "RowBinaryWithDefaults" : opts_.encoding == Encoding::Native ? "Native" : "RowBinary";
  }
  const std::vector<Column>& columns() const { return cols_; }
  /// Rows encoded by column batches so far (not rolled back and redone row by row); for tests.
  uint64_t batchedRows() const { return batchedRows_; }
  ValidatorError error() const { return error_; }
  const std::string& errorMessage() const { return errorMessage_; }
  uint64_t errorLine() const { return errorLine_; }
  /// HEADER_MISMATCH: the header cells as found.
  const std::vector<std::string>& headerFound() const { return headerFound_; }
  /// When the header named the schema's columns in another order: for each schema column, the
  /// index of its field in the file's rows (rejected rows' raw text is in the file's order), or
  /// kAbsent (UINT32_MAX) for a column the header left out. Empty when the file's order is the schema's.
  const std::vector<uint32_t>& columnOrder() const { return order_; }

 private:
  void onRow(const Row& row) override;
  /// `wrongCount`: the row's field count is not the header's (a header naming some of the columns).
  void validateRow(const Row& row, bool wrongCount = false);
  /// A header naming every schema column once, in another order: sets order_.
  bool columnsByName(const std::vector<std::string>& found);
  std::vector<uint32_t> order_;
  /// order_'s mark of a column the header left out (it takes its DEFAULT, or NULL).
  static constexpr uint32_t kAbsent = UINT32_MAX;
  /// How many fields the header named (rows of another count are refused as before).
  size_t named_ = 0;
  /// The header named the first named_ columns in their order and left out the rest.
  bool prefixOnly_ = false;
  std::vector<Field> ordered_;
  void reject(const Row& row, int column, Reason reason);
  /// Whether field i of a row would be taken, without writing it anywhere (the columns after a
  /// rejected row's first failing one: the quarantine names every failing column).
  Reason checkOnly(size_t i, const Field& f);
  ByteBuf checkBuf_;
  bool readerFailed();
  void takeRows(Batch& out);
  void encodeNative(const Row& row);
  // Native rows the reader's block path took (their fields point into the piece being pushed)
  // wait here and are encoded a column at a time, kBatchRows at once (encodeCells); a batch with
  // a cell that fails is rolled back and encoded row by row by encodeNative, which rejects
  // exactly as before. Flushed before anything else reaches the block or the rejected rows
  // (another row, a rejection, the end of each piece), so the order of both is the rows' order.
  static constexpr size_t kBatchRows = 64;
  bool batchable_ = false;
  std::vector<Field> batchFields_;
  std::vector<Row> batchRows_;
  size_t batchCount_ = 0;
  uint64_t batchedRows_ = 0;
  // Unescaped fields ("" pairs) of the batch's rows, copied: their text, and which fields hold
  // an offset into it until the flush.
  std::string batchText_;
  std::vector<uint32_t> batchUnesc_;
  void flushBatch();

  struct Plan {
    const Type* value;   // the written type (LowCardinality and Nullable removed)
    ValueEncoder encode;  // encoderFor(*value)
    NativeColumn* column = nullptr;  // Native: the column written to
    bool nullable;
    bool hasDefault;
    bool emptyIsValue;   // String/FixedString/Array: an empty cell is a value
    bool quotedEmptyIsValue;  // String/FixedString, and an Enum with a label '': a quoted empty cell is a value
    Kind kind;  // value->kind, kept here: read for every cell
  };

  std::vector<Column> cols_;
  std::vector<Plan> plans_;
  ValidatorOptions opts_;
  Reader reader_;
  bool withDefaults_ = false;
  bool headerPending_;
  uint64_t fed_ = 0;
  // The part of the piece being pushed known to be valid UTF-8: [utf8Begin_,
  // utf8End_), checked ahead of the rows in slices of a few dozen KiB (while
  // they are still in cache); rows inside it skip their own check. utf8Stop_
  // is where checking stops: the piece's end, or its first invalid byte.
  bool knownUtf8(const char* p, size_t n);
  const char* utf8Begin_ = nullptr;
  const char* utf8End_ = nullptr;
  const char* utf8Stop_ = nullptr;
  Batch* out_ = nullptr;
  ByteBuf rows_;
  std::unique_ptr<NativeEncoder> native_;  // set when writing Native blocks
  ByteBuf scratch_;
  ValidatorError error_ = ValidatorError::None;
  std::string errorMessage_;
  std::vector<std::string> headerFound_;
  uint64_t errorLine_ = 0;
};

/// Compares a header row with the schema's column names. Empty when they match,
/// else a message listing expected and found names.
std::string headerMismatch(const std::vector<std::string>& found, const std::vector<Column>& cols);

}  // namespace roost::csv
