// Streaming RFC 4180 reader: feed chunks split at any byte, get complete rows.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "csv/dialect.h"
#include "csv/scan.h"

namespace roost::csv {

/// One field of a row. `data` points into the caller's chunk, the reader's carry
/// buffer, or its unescape buffer; valid only during RowSink::onRow.
struct Field {
  const char* data;
  uint32_t size;
  bool quoted;  // written as "..." (an empty quoted field is an empty string, not NULL)
  /// Its text had "" pairs: `data` points into the reader's unescape buffer (valid only during
  /// onRow, also in rows marked inPiece).
  bool unescaped = false;
  /// Text (other than spaces or tabs) followed its closing quote: `"x"y`. The row is not valid
  /// CSV (ClickHouse refuses it); the validator quarantines it.
  bool afterQuote = false;
  std::string_view view() const { return {data, size}; }
};

struct Row {
  const Field* fields;
  size_t count;
  uint64_t line;          // 1-based physical line where the row starts
  std::string_view raw;   // the row's bytes without its line terminator
  bool unterminated;      // the stream ended inside a quoted field
  /// What the reader saw of raw's bytes: all ASCII, some ≥ 0x80 (UTF-8 still
  /// to check), or not looked at.
  enum class Text : uint8_t { Unknown, Ascii, NonAscii } text = Text::Unknown;
  /// Every field's data points into the chunk being fed (valid until feed() returns, not only
  /// during onRow), except those marked `unescaped`; `unescaped`: some field is.
  bool inPiece = false;
  bool unescaped = false;
  /// Some field has Field::afterQuote.
  bool afterQuote = false;
};

class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual void onRow(const Row& row) = 0;
};

enum class ReaderError : uint8_t { None, RowTooLarge };

/// The vector instructions the 64-byte block path uses. Chosen once from what the CPU
/// (and the OS) supports; ROOST_CSV_SIMD=sse2|avx2 in the environment caps it.
enum class SimdLevel : uint8_t { Sse2, Avx2, Avx512 };
/// The level new Readers take: the CPU's best, capped by ROOST_CSV_SIMD and setSimdLimit.
SimdLevel simdLevel();
/// For tests: cap the level of Readers constructed from now on (never above the CPU's).
void setSimdLimit(SimdLevel limit);
/// For tests: every level this CPU can run, lowest first.
std::vector<SimdLevel> supportedSimdLevels();
const char* simdName(SimdLevel level);

/// Grammar (shared by the fast row parser and the resumable boundary finder, so
/// that a row split across chunks parses exactly like an unsplit one):
///   field start: quote opens a quoted field; delimiter ends an empty field;
///                CR, LF or CRLF ends the row; an empty line is skipped.
///   unquoted:    runs to delimiter or line end; quotes are literal; the escape
///                character (if any) makes the next byte literal.
///   quoted:      runs to the closing quote; "" is one quote; escape+byte is the
///                byte; newlines are data. Spaces and tabs after the closing quote
///                are dropped; other bytes after it up to the delimiter are kept
///                literally and flag the field (Field::afterQuote: the validator
///                quarantines the row, as ClickHouse refuses it).
/// A UTF-8 BOM at the very start of the stream is skipped.
class Reader {
 public:
  Reader(Dialect dialect, size_t maxRowBytes);
  /// An empty line is a row of one empty field instead of being skipped: for input that has a
  /// row on every line (NDJSON converted to CSV, where a one-column row may be empty).
  void setBlankLinesAreRows(bool on) { blankRows_ = on; }

  /// Parses `n` bytes; calls sink.onRow for every complete row. Returns false on
  /// a fatal error (see error(), errorLine()); the reader is then unusable.
  bool feed(const char* data, size_t n, RowSink& sink);
  /// Ends the stream: emits the last row (even without a line terminator).
  bool finish(RowSink& sink);

  ReaderError error() const { return error_; }
  uint64_t errorLine() const { return errorLine_; }
  /// Bytes that belong to an incomplete row held back for the next feed.
  size_t pendingBytes() const { return carry_.size() + bomPrefix_.size(); }
  uint64_t nextLine() const { return line_; }
  /// Rows taken by the 64-byte block path (fastRows) so far; for tests.
  uint64_t blockRows() const { return blockRows_; }
  SimdLevel simd() const { return simd_; }

 private:
  enum class State : uint8_t { FieldStart, Unquoted, UnquotedEscape, Quoted, QuotedEscape, QuotedQuote };

  bool feedBody(const char* p, const char* end, RowSink& sink);
  // Parses one row at p. Returns the position after its terminator, or null when
  // the row is not complete in [p, end) and !eof.
  const char* parseRow(const char* p, const char* end, bool eof);
  const char* endRow(const char* t, const char* end, bool eof);
  // Parses complete rows from p with 64-byte block masks while every field is
  // plain: unquoted without quotes, or quoted (with "" pairs and line ends
  // inside, but no text after the closing quote).
  // Returns where it stopped: a row start (the first row it could not take, or
  // one within 64 bytes of end). Rows it emitted are exactly what parseRow
  // gives; everything else is left to parseRow. Needs no escape character.
  const char* fastRows(const char* p, const char* end, RowSink& sink);
  // fastRows for each instruction set (reader_fast.inc; reader.cc, reader_simd.cc).
  const char* fastRowsSse2(const char* p, const char* end, RowSink& sink);
  const char* fastRowsAvx2(const char* p, const char* end, RowSink& sink);
  const char* fastRowsAvx512(const char* p, const char* end, RowSink& sink);
  // Resumable search for the end of the carried row; returns the position after
  // the terminator or null.
  const char* findRowEnd(const char* p, const char* end);
  bool emit(RowSink& sink, const char* rowStart);
  bool fail(ReaderError e);

  Dialect d_;
  SimdLevel simd_;
  char esc_;  // escape char, or the delimiter when there is none (never matches alone)
  size_t maxRowBytes_;
  uint64_t line_ = 1;
  bool pendingCR_ = false;
  bool bomDone_ = false;
  std::string bomPrefix_;
  std::string carry_;
  State finderState_ = State::FieldStart;
  ReaderError error_ = ReaderError::None;
  uint64_t errorLine_ = 0;

  // Unquoted field ends (delimiter, CR, LF, escape) in the buffer being parsed.
  scan::BlockFinder unquotedEnds_;
  // What ends an unquoted run, and a quoted one (quote, escape, CR, LF).
  scan::Needles4 unquotedNeedles_;
  scan::Needles4 quotedNeedles_;

  // Per-row scratch, reused: no allocation per field once warm.
  std::vector<Field> fields_;
  std::vector<uint32_t> bufFields_;  // fields whose data is an offset into unesc_
  std::string unesc_;
  uint64_t rowExtraLines_ = 0;
  const char* rowRawEnd_ = nullptr;
  bool rowUnterminated_ = false;
  bool rowAfterQuote_ = false;
  bool rowBlank_ = false;
  bool blankRows_ = false;
  // fastRows: its field scratch, and how many rows to leave to parseRow after
  // it made no progress several times in a row (input full of "" escapes or
  // quoted newlines would otherwise be scanned twice).
  std::vector<Field> fastFields_;
  uint32_t fastMisses_ = 0;
  uint32_t fastOff_ = 0;
  uint64_t blockRows_ = 0;
};

}  // namespace roost::csv
