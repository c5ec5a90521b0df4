// Fuzzes the CSV core: the reader must give identical rows whether the input
// arrives whole or in chunks cut anywhere; the validator, sniffer, inference and
// schema parser must never crash or leak on any input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "csv/infer.h"
#include "csv/native_block.h"
#include "csv/reader.h"
#include "csv/schema.h"
#include "csv/validator.h"

namespace {

using namespace roost::csv;

struct Rows final : RowSink {
  std::string log;  // every field of every row, length-prefixed, plus line and flags
  bool withText = false;  // and what the reader said of the row's bytes (ASCII or not)
  void onRow(const Row& r) override {
    log += std::to_string(r.line) + (r.unterminated ? "u" : "t") + std::to_string(r.count) + ":";
    if (withText) log += static_cast<char>('0' + static_cast<int>(r.text));
    for (size_t i = 0; i < r.count; ++i) {
      log += std::to_string(r.fields[i].size) + (r.fields[i].quoted ? "q" : "p");
      log.append(r.fields[i].data, r.fields[i].size);
    }
    log += "|" + std::string(r.raw) + "\n";
  }
};

bool run(const std::string& in, Dialect d, size_t maxRow, const std::vector<size_t>& cuts, std::string& log,
         bool withText = false) {
  Reader r(d, maxRow);
  Rows rows;
  rows.withText = withText;
  size_t prev = 0;
  bool ok = true;
  for (size_t c : cuts) {
    if (c < prev || c > in.size()) continue;
    std::string chunk = in.substr(prev, c - prev);  // a fresh allocation: ASan sees overreads
    ok = ok && r.feed(chunk.data(), chunk.size(), rows);
    prev = c;
  }
  std::string rest = in.substr(prev);
  ok = ok && r.feed(rest.data(), rest.size(), rows) && r.finish(rows);
  log = rows.log;
  return ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static constexpr char kDelims[] = {',', ';', '\t', '|'};
  Dialect d{kDelims[data[0] & 3], (data[0] & 4) ? '\'' : '"', (data[0] & 8) ? '\\' : '\0'};
  size_t maxRow = (data[0] & 16) ? 24 : 1 << 20;
  uint8_t seed = data[1];
  std::string in(reinterpret_cast<const char*>(data + 2), size - 2);

  std::string whole, split;
  bool okWhole = run(in, d, maxRow, {}, whole);
  std::vector<size_t> cuts;
  for (size_t pos = seed % 7 + 1; pos < in.size(); pos += (seed % 13) + 1 + (pos % 5)) cuts.push_back(pos);
  bool okSplit = run(in, d, maxRow, cuts, split);
  if (okWhole != okSplit) std::abort();
  if (okWhole && whole != split) std::abort();
  // Every instruction set of the block path (SSE2, AVX2, AVX-512, as this CPU has
  // them) gives the same rows and the same ASCII marks.
  {
    static const std::vector<SimdLevel> levels = supportedSimdLevels();
    std::string ref;
    bool okRef = false;
    for (SimdLevel level : levels) {
      setSimdLimit(level);
      std::string log;
      bool ok = run(in, d, maxRow, {}, log, true);
      if (level == levels.front()) {
        ref.swap(log);
        okRef = ok;
      } else if (ok != okRef || (ok && log != ref)) {
        std::abort();
      }
    }
    setSimdLimit(SimdLevel::Avx512);
  }
  // Without an escape character the reader takes a fast path for plain
  // fields; with one that never occurs in the input it must not, and the rows
  // must be the same.
  if (!d.escape) {
    char unused = 0;
    for (char c : {'\\', '~', '^', '`'})
      if (c != d.delimiter && c != d.quote && in.find(c) == std::string::npos) {
        unused = c;
        break;
      }
    if (unused) {
      std::string general;
      bool okGeneral = run(in, Dialect{d.delimiter, d.quote, unused}, maxRow, cuts, general);
      if (okGeneral != okWhole || (okWhole && general != whole)) std::abort();
    }
  }
  std::vector<size_t> bytewise;
  if (in.size() < 512) {
    for (size_t i = 1; i < in.size(); ++i) bytewise.push_back(i);
    std::string one;
    bool okOne = run(in, d, maxRow, bytewise, one);
    if (okOne != okWhole || (okWhole && one != whole)) std::abort();
  }

  // The validator over a schema exercising every encoder.
  std::vector<Column> cols;
  SchemaError se;
  if (!parseSchema("a Int32, b Nullable(Float64), c DateTime64(3), d Array(Nullable(String)), e Decimal(12, 3), "
                   "f UUID, g Enum8('x' = 1, 'y' = 2), h LowCardinality(Nullable(String)), i Bool, j Array(Array(String))",
                   cols, se))
    std::abort();
  // Native written directly must equal RowBinary transposed, batch by batch;
  // and handed over in pieces (every column buffer its own), the same bytes.
  std::string blocks[3];
  uint64_t counts[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) {
    ValidatorOptions opts;
    opts.dialect = d;
    opts.hasHeader = seed & 1;
    opts.maxRowBytes = maxRow;
    opts.encoding = k == 0 ? Encoding::RowBinary : Encoding::Native;
    opts.nativeParts = k == 2;
    opts.nativePartMin = 1;
    Validator v(cols, opts);
    size_t half = in.size() / 2;
    Batch b[3];
    bool ok = v.push(in.data(), half, b[0]) && v.push(in.data() + half, in.size() - half, b[1]) && v.finish(b[2]);
    for (auto& x : b) {
      counts[k] += x.rowCount + x.rejectedCount;
      if (k == 0) {
        ByteBuf nb;
        rowBinaryToNative(x.rows.view(), x.rowCount, cols, nb);
        blocks[0].append(nb.data(), nb.size());
      } else {
        blocks[k].append(x.rows.view());
        for (const OwnedBytes& p : x.parts) blocks[k].append(p.view());
      }
    }
    (void)ok;
  }
  if (counts[0] != counts[1] || blocks[0] != blocks[1]) std::abort();
  if (counts[2] != counts[1] || blocks[2] != blocks[1]) std::abort();
  // Column-at-a-time batches (every column type but Array) against row by row: the same block
  // bytes, the same rejected rows (reasons, columns, raw text), in the same order.
  {
    std::vector<Column> flat;
    if (!parseSchema("a Int32, b Nullable(Float64), c DateTime64(3), d Nullable(String), e Decimal(12, 3), f UUID, "
                     "g Enum8('x' = 1, 'y' = 2), h LowCardinality(Nullable(String)), i Bool, j FixedString(3), "
                     "k Nullable(Date), l String, m UInt8, n DateTime, o Float32",
                     flat, se))
      std::abort();
    std::string out[2], rejected[2];
    uint64_t rows[2] = {0, 0}, bad[2] = {0, 0};
    bool oks[2];
    for (int k = 0; k < 2; ++k) {
      ValidatorOptions opts;
      opts.dialect = d;
      opts.hasHeader = seed & 1;
      opts.maxRowBytes = maxRow;
      opts.columnBatches = k == 0;
      Validator v(flat, opts);
      Batch b[3];
      const size_t third = in.size() / 3;
      oks[k] = v.push(in.data(), third, b[0]) && v.push(in.data() + third, in.size() - third, b[1]) && v.finish(b[2]);
      for (auto& x : b) {
        out[k].append(x.rows.view());
        rejected[k] += x.rejected;
        rows[k] += x.rowCount;
        bad[k] += x.rejectedCount;
      }
    }
    if (oks[0] != oks[1] || out[0] != out[1] || rejected[0] != rejected[1] || rows[0] != rows[1] || bad[0] != bad[1]) std::abort();
  }
  {
    std::vector<Column> withDefault;
    if (!parseSchema("a Int32 DEFAULT 1, b String DEFAULT 'z', c Nullable(Date)", withDefault, se)) std::abort();
    ValidatorOptions opts;
    opts.dialect = d;
    Validator v(withDefault, opts);
    Batch b;
    if (v.push(in.data(), in.size(), b)) v.finish(b);
  }

  // Sniffing, inference and the schema/type parsers on arbitrary text.
  Sniffed s = sniff(in);
  (void)infer(in, s.dialect, s.hasHeader, seed & 2, 1000);
  std::vector<Column> parsed;
  if (parseSchema(in, parsed, se)) (void)structureOf(parsed, true);
  Type t;
  TypeError te;
  if (parseTypeString(in, t, te)) (void)typeToString(t);
  return 0;
}
