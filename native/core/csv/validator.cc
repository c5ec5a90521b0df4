#include "csv/validator.h"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "csv/cells.h"
#include "csv/native_block.h"
#include "csv/scan.h"

namespace roost::csv {

namespace {

void appendLE(std::string& s, const void* p, size_t n) { s.append(static_cast<const char*>(p), n); }

std::string joinNames(const std::vector<std::string>& names) {
  std::string s = "[";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ", ";
    s += names[i];
  }
  return s + "]";
}

// A row's fields into the batch: 16 bytes each, a few dozen of them; memcpy's call (rep movsb for
// this size) cost more than the copy.
inline void copyFields(Field* d, const Field* s, size_t n) {
  static_assert(sizeof(Field) == 16, "one 16-byte move per field");
#if defined(__SSE2__)
  for (size_t k = 0; k < n; ++k)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + k), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k)));
#else
  std::memcpy(d, s, n * sizeof(Field));
#endif
}

}  // namespace

std::string headerMismatch(const std::vector<std::string>& found, const std::vector<Column>& cols) {
  bool same = found.size() == cols.size();
  for (size_t i = 0; same && i < cols.size(); ++i) same = found[i] == cols[i].name;
  if (same) return {};
  std::vector<std::string> expected;
  for (const Column& c : cols) expected.push_back(c.name);
  return "CSV header does not match the schema: expected " + joinNames(expected) + ", found " + joinNames(found);
}

Validator::Validator(std::vector<Column> columns, ValidatorOptions opts)
    : cols_(std::move(columns)), opts_(opts), reader_(opts.dialect, opts.maxRowBytes), headerPending_(opts.hasHeader) {
  reader_.setBlankLinesAreRows(opts.blankLinesAreRows);
  for (const Column& c : cols_) {
    const Type& v = c.type.valueType();
    bool nullable = v.kind == Kind::Nullable;
    const Type* written = nullable ? &v.inner->valueType() : &v;
    Kind k = written->kind;
    bool stringy = k == Kind::String || k == Kind::FixedString;
    // A quoted empty cell is the text "": a value of String, and of an Enum with a label '' (as
    // ClickHouse reads it); an unquoted one is an empty cell (NULL, DEFAULT or refused).
    bool emptyLabel = false;
    if (k == Kind::Enum8 || k == Kind::Enum16)
      for (const auto& ev : written->enumValues) emptyLabel = emptyLabel || ev.first.empty();
    plans_.push_back(Plan{written, encoderFor(*written), nullptr, nullable, c.hasDefault, stringy || k == Kind::Array, stringy || emptyLabel, k});
    if (c.hasDefault) withDefaults_ = true;
  }
  if (!withDefaults_ && opts_.encoding == Encoding::Native) native_ = std::make_unique<NativeEncoder>(cols_);
  if (native_)
    for (size_t i = 0; i < plans_.size(); ++i) plans_[i].column = &native_->column(i);
  batchable_ = native_ != nullptr && opts_.columnBatches && !plans_.empty();
  for (const Plan& p : plans_)
    if (p.kind == Kind::Array) batchable_ = false;
  if (batchable_) {
    batchFields_.resize(kBatchRows * plans_.size());
    batchRows_.resize(kBatchRows);
  }
}

// A value the column's type refused that is CSV's NULL (`\N` unquoted): said as such, as the
// NDJSON path says a null ("not an integer" for `\N` read as if the text were at fault).
static Reason asNull(Reason r, const Field& f) {
  if (r == Reason::Ok || r == Reason::InvalidUtf8 || r == Reason::EmptyNotNullable || r == Reason::WrongColumnCount) return r;
  return !f.quoted && f.size == 2 && f.data[0] == '\\' && f.data[1] == 'N' ? Reason::NullNotNullable : r;
}

void Validator::reject(const Row& row, int column, Reason reason) {
  flushBatch();  // rows before this one first (a no-op inside a flush)
  if (column >= 0 && static_cast<size_t>(column) < row.count) reason = asNull(reason, row.fields[column]);
  std::string& r = out_->rejected;
  uint64_t line = row.line;
  int32_t col = column;
  std::string_view text = reasonText(reason);
  std::string counted;
  if (reason == Reason::WrongColumnCount) {
    // How many, so the row can be fixed without counting its delimiters by eye.
    const size_t want = order_.empty() ? cols_.size() : named_;
    counted = std::string(text) + ": " + std::to_string(row.count) + (row.count == 1 ? " field" : " fields") + ", expected " + std::to_string(want) +
              (prefixOnly_ ? " to " + std::to_string(cols_.size()) : "");
    text = counted;
  }
  uint8_t len = static_cast<uint8_t>(text.size());
  uint32_t rawLen = static_cast<uint32_t>(row.raw.size());
  appendLE(r, &line, 8);
  appendLE(r, &col, 4);
  appendLE(r, &len, 1);
  r.append(text);
  appendLE(r, &rawLen, 4);
  r.append(row.raw);
  // The row's other failing columns (a file with two bad columns took two rounds of fixes).
  const size_t countAt = r.size();
  uint8_t more = 0;
  r.push_back('\0');
  if (column >= 0 && reason != Reason::InvalidUtf8) {
    for (size_t j = static_cast<size_t>(column) + 1; j < row.count && j < plans_.size() && more < 255; ++j) {
      Reason why = asNull(checkOnly(j, row.fields[j]), row.fields[j]);
      if (why == Reason::Ok) continue;
      int32_t c = static_cast<int32_t>(j);
      std::string_view t = reasonText(why);
      uint8_t l = static_cast<uint8_t>(t.size());
      appendLE(r, &c, 4);
      appendLE(r, &l, 1);
      r.append(t);
      ++more;
    }
  }
  r[countAt] = static_cast<char>(more);
  ++out_->rejectedCount;
}

Reason Validator::checkOnly(size_t i, const Field& f) {
  const Plan& p = plans_[i];
  std::string_view v = f.view();
  if (v.empty() && (!f.quoted || !p.quotedEmptyIsValue)) {
    if (p.hasDefault || p.nullable) return Reason::Ok;
    if (!p.emptyIsValue) return Reason::EmptyNotNullable;
    if (p.value->kind == Kind::Array) return Reason::Ok;
  }
  if ((p.nullable || p.hasDefault) && !f.quoted && v.size() == 2 && v[0] == '\\' && v[1] == 'N') return Reason::Ok;
  if (p.value->kind == Kind::String) return Reason::Ok;
  checkBuf_.truncate(0);
  return p.encode(*p.value, v, checkBuf_);
}

bool Validator::knownUtf8(const char* p, size_t n) {
  if (p < utf8Begin_ || p + n > utf8Stop_) return false;  // carried over, or past a bad byte
  // Rows the reader's block path took were checked on their own: skip them.
  if (p > utf8End_) utf8End_ = p;
  constexpr size_t kSlice = 32 << 10;
  while (p + n > utf8End_) {
    const char* b = utf8End_;
    const char* e = static_cast<size_t>(utf8Stop_ - b) > kSlice ? b + kSlice : utf8Stop_;
    // End the slice before a continuation byte, so no character is cut in two
    // (unless the piece itself ends inside one: then that is where it stops).
    for (int i = 0; i < 3 && e < utf8Stop_ && (static_cast<unsigned char>(*e) & 0xC0) == 0x80; ++i) --e;
    std::ptrdiff_t bad = scan::firstInvalidUtf8(b, e);
    if (bad >= 0) {
      utf8End_ = utf8Stop_ = b + bad;
      return p + n <= utf8End_;
    }
    utf8End_ = e;
  }
  return true;
}

void Validator::onRow(const Row& row) {
  if (error_ != ValidatorError::None) return;
  if (headerPending_) {
    headerPending_ = false;
    // A header that is not UTF-8 is told as that (the file's encoding), not as names that do not
    // match: a Latin-1 file whose header spells the schema's names was told to rename them.
    if (scan::firstInvalidUtf8(row.raw.data(), row.raw.data() + row.raw.size()) >= 0) return reject(row, -1, Reason::InvalidUtf8);
    std::vector<std::string> found;
    for (size_t i = 0; i < row.count; ++i) found.emplace_back(row.fields[i].view());
    // A trailing delimiter on the header line (`a,b,`): a cell of nothing or spaces is no name, no
    // column (as infer.cc and src/ingest/import.ts take it, quoted or not).
    size_t named = found.size();
    while (named > cols_.size() && trimSpaces(found[named - 1]).empty()) --named;
    found.resize(named);
    std::string msg = headerMismatch(found, cols_);
    if (!msg.empty() && !columnsByName(found)) {
      error_ = ValidatorError::HeaderMismatch;
      errorMessage_ = std::move(msg);
      headerFound_ = std::move(found);
      errorLine_ = row.line;
    }
    return;
  }
  // The fields a row has: the header's count when it named the columns (by name), else the
  // schema's. Empty unquoted fields past them are a trailing delimiter, as Excel and ERP exports
  // write one, not values (an append of the very file a create took was quarantined for them).
  const size_t width = order_.empty() ? cols_.size() : named_;
  bool trailing = row.count > width;
  for (size_t j = width; trailing && j < row.count; ++j) trailing = row.fields[j].size == 0 && !row.fields[j].quoted;
  // A header naming the first columns in their order, the others left out (an inferred schema's
  // unnamed columns past it): a row reaching past the header is read by position, the columns it
  // does not reach empty (their DEFAULT, or NULL).
  if (prefixOnly_ && row.count > named_ && row.count <= cols_.size() && !trailing) {
    static const char kNothing = 0;
    for (size_t j = 0; j < cols_.size(); ++j) ordered_[j] = j < row.count ? row.fields[j] : Field{&kNothing, 0, false};
    Row r = row;
    r.fields = ordered_.data();
    r.count = cols_.size();
    return validateRow(r);
  }
  if (!order_.empty() && (row.count == named_ || trailing)) {
    // The header named the columns in another order, or some of them: each row's fields are
    // taken by name; a column the header left out is an empty cell (its DEFAULT, or NULL).
    static const char kNothing = 0;
    for (size_t j = 0; j < order_.size(); ++j)
      ordered_[j] = order_[j] == kAbsent ? Field{&kNothing, 0, false} : row.fields[order_[j]];
    Row r = row;
    r.fields = ordered_.data();
    r.count = order_.size();
    return validateRow(r);
  }
  if (trailing) {
    Row r = row;
    r.count = cols_.size();
    return validateRow(r);
  }
  // Under a header, a row of another field count than the header's is refused: one of the
  // schema's count under a header naming fewer columns was stored by position (columns swapped).
  validateRow(row, !order_.empty());
}

bool Validator::columnsByName(const std::vector<std::string>& found) {
  if (found.size() > cols_.size() || found.empty()) return false;
  std::vector<uint32_t> order(cols_.size(), kAbsent);
  size_t named = 0;
  for (size_t j = 0; j < cols_.size(); ++j) {
    for (size_t i = 0; i < found.size(); ++i) {
      if (found[i] != cols_[j].name) continue;
      if (order[j] != kAbsent) return false;  // named twice
      order[j] = static_cast<uint32_t>(i);
      ++named;
    }
    // Left out: only a column that has a value without one (its DEFAULT, or NULL).
    if (order[j] == kAbsent && !plans_[j].hasDefault && !plans_[j].nullable) return false;
  }
  if (named != found.size()) return false;  // a name that is no column
  order_ = std::move(order);
  ordered_.resize(order_.size());
  named_ = found.size();
  prefixOnly_ = named_ < cols_.size();
  for (size_t j = 0; prefixOnly_ && j < cols_.size(); ++j) prefixOnly_ = order_[j] == (j < named_ ? static_cast<uint32_t>(j) : kAbsent);
  return true;
}

void Validator::validateRow(const Row& row, bool wrongCount) {
  // Text that is not UTF-8 first: it fails the whole request (the body is in the
  // wrong encoding), whatever else is wrong with the row.
  const char* raw = row.raw.data();
  const bool badText = row.text == Row::Text::Ascii      ? false
                       : row.text == Row::Text::NonAscii ? scan::firstInvalidUtf8(raw, raw + row.raw.size()) >= 0
                                                         : !knownUtf8(raw, row.raw.size()) &&
                                                               scan::firstInvalidUtf8(raw, raw + row.raw.size()) >= 0;
  if (badText) {
    int col = -1;
    for (size_t i = 0; i < row.count && i < cols_.size(); ++i) {
      const Field& f = row.fields[i];
      if (scan::firstInvalidUtf8(f.data, f.data + f.size) >= 0) {
        col = static_cast<int>(i);
        break;
      }
    }
    return reject(row, col, Reason::InvalidUtf8);
  }
  if (row.unterminated) return reject(row, -1, Reason::UnterminatedQuote);
  if (opts_.quotesOnOneLine && (std::memchr(raw, '\n', row.raw.size()) || std::memchr(raw, '\r', row.raw.size()))) return reject(row, -1, Reason::QuoteSpansLines);
  if (row.afterQuote) {
    // `"x"y`: not CSV (ClickHouse refuses it). Stored leniently as `xy` before, and a stray
    // opening quote joined the lines after it into one value, silently.
    int col = -1;
    for (size_t i = 0; i < row.count && col < 0; ++i)
      if (row.fields[i].afterQuote) col = static_cast<int>(i);
    return reject(row, col, Reason::TextAfterQuote);
  }
  if (wrongCount || row.count != cols_.size()) return reject(row, -1, Reason::WrongColumnCount);
  if (native_) {
    if (!batchable_ || !row.inPiece) {
      flushBatch();
      return encodeNative(row);
    }
    const size_t n = plans_.size();
    Field* fs = &batchFields_[batchCount_ * n];
    copyFields(fs, row.fields, n);
    if (row.unescaped) {
      for (size_t k = 0; k < n; ++k) {
        if (!fs[k].unescaped) continue;
        const size_t off = batchText_.size();
        batchText_.append(fs[k].data, fs[k].size);
        fs[k].data = reinterpret_cast<const char*>(static_cast<uintptr_t>(off));
        batchUnesc_.push_back(static_cast<uint32_t>(fs - batchFields_.data() + k));
      }
    }
    batchRows_[batchCount_] = row;
    if (++batchCount_ == kBatchRows) flushBatch();
    return;
  }
  const size_t mark = rows_.size();
  for (size_t i = 0; i < row.count; ++i) {
    const Field& f = row.fields[i];
    const Plan& p = plans_[i];
    std::string_view v = f.view();
    if (withDefaults_) rows_.putByte(0);
    if (v.empty() && (!f.quoted || !p.quotedEmptyIsValue)) {
      if (p.hasDefault) {
        // RowBinaryWithDefaults: flag 1 and no value; the engine evaluates DEFAULT
        // (a Nullable column's too, as ClickHouse reads an empty CSV cell; \N is NULL).
        rows_.setLastByte(1);
        continue;
      }
      if (p.nullable) {
        rows_.putByte(1);
        continue;
      }
      if (!p.emptyIsValue) {
        rows_.truncate(mark);
        return reject(row, static_cast<int>(i), Reason::EmptyNotNullable);
      }
      if (p.value->kind == Kind::Array) {
        rows_.putVarUInt(0);  // an empty cell is [] (as ClickHouse reads it)
        continue;
      }
    }
    if (p.hasDefault && !p.nullable && !f.quoted && v.size() == 2 && v[0] == '\\' && v[1] == 'N') {
      // CSV's NULL in a column that is not Nullable but has a DEFAULT: the DEFAULT, as an empty
      // cell is (and as ClickHouse reads it, and as an NDJSON null is read); it was the text
      // "\N" in a String column and a rejection in others. Without a DEFAULT it stays as
      // documented (docs/decisions.md: the text in a String, else quarantined).
      rows_.setLastByte(1);
      continue;
    }
    if (p.nullable) {
      if (!f.quoted && v.size() == 2 && v[0] == '\\' && v[1] == 'N') {
        rows_.putByte(1);
        continue;
      }
      rows_.putByte(0);
    }
    if (p.value->kind == Kind::String) {  // the most common column: no call
      rows_.putVarString(v.data(), v.size());
      continue;
    }
    Reason r = p.encode(*p.value, v, rows_);
    if (r != Reason::Ok) {
      rows_.truncate(mark);
      return reject(row, static_cast<int>(i), r);
    }
  }
  ++out_->rowCount;
}

void Validator::takeRows(Batch& out) {
  OwnedBytes b;
  out.parts.clear();
  if (native_ && opts_.nativeParts) {
    native_->finishBlockParts(out.rowCount, out.parts, opts_.nativePartMin);
  } else if (native_) {
    ByteBuf block;
    native_->finishBlock(out.rowCount, block);
    b.data = block.release(b.size, b.cap);
  } else {
    b.data = rows_.release(b.size, b.cap);
  }
  out.rows = std::move(b);
}

// The same rules as the RowBinary path in onRow, written straight into the
// Native block's columns; a rejected row is rolled back column by column.
void Validator::encodeNative(const Row& row) {
  native_->beginRow();
  for (size_t i = 0; i < row.count; ++i) {
    const Field& f = row.fields[i];
    const Plan& p = plans_[i];
    std::string_view v = f.view();
    NativeColumn& col = *p.column;
    NativeColumn* target = &col;
    if (v.empty() && (!f.quoted || !p.quotedEmptyIsValue)) {
      if (p.nullable) {
        col.nulls.putByte(1);
        col.nested->writeDefault();
        continue;
      }
      if (!p.emptyIsValue) {
        native_->rollbackRow(out_->rowCount);
        return reject(row, static_cast<int>(i), Reason::EmptyNotNullable);
      }
      if (p.kind == Kind::Array) {
        col.data.putLE(col.offset);  // []
        continue;
      }
    }
    if (p.nullable) {
      if (!f.quoted && v.size() == 2 && v[0] == '\\' && v[1] == 'N') {
        col.nulls.putByte(1);
        col.nested->writeDefault();
        continue;
      }
      col.nulls.putByte(0);
      target = col.nested.get();
    }
    Reason r;
    if (p.kind == Kind::String) {
      target->data.putVarString(v.data(), v.size());
      continue;
    }
    if (p.kind == Kind::Array) {
      // Arrays are parsed to RowBinary, then appended through the transposer.
      scratch_.truncate(0);
      r = p.encode(*p.value, v, scratch_);
      if (r == Reason::Ok) {
        const char* q = scratch_.data();
        target->read(q);
        continue;
      }
    } else {
      r = p.encode(*p.value, v, target->data);
      if (r == Reason::Ok) continue;
    }
    native_->rollbackRow(out_->rowCount);
    return reject(row, static_cast<int>(i), r);
  }
  ++out_->rowCount;
}

void Validator::flushBatch() {
  const size_t rows = batchCount_;
  if (rows == 0) return;
  batchCount_ = 0;
  const size_t n = plans_.size();
  for (uint32_t k : batchUnesc_) batchFields_[k].data = batchText_.data() + reinterpret_cast<uintptr_t>(batchFields_[k].data);
  batchUnesc_.clear();
  native_->beginRow();  // marks the variable-size buffers; fixed ones roll back by row count
  bool ok = true;
  for (size_t i = 0; ok && i < n; ++i) {
    const Plan& p = plans_[i];
    NativeColumn& col = *p.column;
    NativeColumn& values = p.nullable ? *col.nested : col;
    const ColumnCells cells{p.value, &batchFields_[i], n, rows, p.nullable, p.emptyIsValue, p.quotedEmptyIsValue, values.fixed};
    ok = encodeCells(cells, values.data, p.nullable ? &col.nulls : nullptr);
  }
  if (ok) {
    out_->rowCount += rows;
    batchedRows_ += rows;
  } else {
    // A cell failed: the batch again, row by row, with the rejections in their places.
    native_->rollbackRow(out_->rowCount);
    for (size_t r = 0; r < rows; ++r) {
      Row row = batchRows_[r];
      row.fields = &batchFields_[r * n];
      encodeNative(row);
    }
  }
  // Only now: clear() writes a terminator over the text's first byte.
  batchText_.clear();
}

bool Validator::readerFailed() {
  if (error_ != ValidatorError::None) return true;
  if (reader_.error() == ReaderError::RowTooLarge) {
    error_ = ValidatorError::RowTooLarge;
    errorLine_ = reader_.errorLine();
    errorMessage_ = "row starting at line " + std::to_string(errorLine_) + " is larger than " +
                    std::to_string(opts_.maxRowBytes) + " bytes";
    return true;
  }
  return false;
}

bool Validator::push(const char* data, size_t n, Batch& out) {
  std::string_view piece(data, n);
  return push(&piece, 1, out);
}

bool Validator::push(const std::string_view* pieces, size_t count, Batch& out) {
  if (error_ != ValidatorError::None) return false;
  out.rowCount = 0;
  out.rejectedCount = 0;
  out.rejected.clear();
  out_ = &out;
  if (!native_) {
    size_t n = 0;
    for (size_t i = 0; i < count; ++i) n += pieces[i].size();
    rows_.reserve(n + n / 2 + 64);
  }
  bool ok = true;
  for (size_t i = 0; ok && i < count; ++i) {
    const char* data = pieces[i].data();
    const size_t n = pieces[i].size();
    // Rows wholly inside the valid prefix need no check of their own; rows
    // carried over from the previous piece (and everything after a bad byte,
    // or a character split at the piece's end) are checked one by one.
    utf8Begin_ = utf8End_ = data;
    utf8Stop_ = data + n;
    ok = reader_.feed(data, n, *this);
    flushBatch();  // its rows' fields point into this piece
    utf8Begin_ = utf8End_ = utf8Stop_ = nullptr;
    fed_ += n;
  }
  takeRows(out);
  out.bytesConsumed = fed_ - reader_.pendingBytes();
  out_ = nullptr;
  if (!ok) readerFailed();
  return error_ == ValidatorError::None;
}

bool Validator::finish(Batch& out) {
  if (error_ != ValidatorError::None) return false;
  out.rowCount = 0;
  out.rejectedCount = 0;
  out.rejected.clear();
  out_ = &out;
  bool ok = reader_.finish(*this);
  flushBatch();
  takeRows(out);
  out.bytesConsumed = fed_;
  out_ = nullptr;
  if (!ok) readerFailed();
  return error_ == ValidatorError::None;
}

}  // namespace roost::csv
