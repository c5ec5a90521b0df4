// Column-at-a-time batches (Validator::flushBatch) against row-by-row encoding: random files of
// every batchable column type, valid and invalid cells, quoting, "" pairs, NULLs, wrong column
// counts and bytes that are not UTF-8, pushed in random pieces, give the same block bytes and the
// same rejected rows in the same order.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "csv/schema.h"
#include "csv/validator.h"

using namespace roost::csv;

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

const char* kSchema =
    "a Int32, b Nullable(Float64), c DateTime64(3), d Nullable(String), e Decimal(12, 3), f UUID, "
    "g Enum8('x' = 1, 'y' = 2), h LowCardinality(Nullable(String)), i Bool, j FixedString(3), "
    "k Nullable(Date), l String, m UInt8, n DateTime, o Float32, p Int64, q Nullable(UInt16)";

// Per column: values mostly valid, some not (the last few of each list).
const std::vector<std::vector<std::string>> kCells = {
    {"1", "-2147483648", "2147483647", " 7 ", "+3", "2147483648", "x1", "1.5", ""},
    {"1.5", "-0.25", "1e3", "", "\\N", "inf", "12345678.123456", "abc", "1..2"},
    {"2024-01-02 03:04:05.678", "2024-01-02 03:04:05", "2024-01-02T03:04:05Z", "2299-12-31 23:59:59.999", "2024-13-01 00:00:00", "", "x"},
    {"plain", "", "\\N", "with space", "ünïcödé", "a,b"},
    {"12.345", "-0.5", "999999999.999", "0", "1234567890.1", "1e3", ""},
    {"123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000", "A23E4567-E89B-12D3-A456-426614174000", "zz3e4567-e89b-12d3-a456-426614174000", "123e4567e89b12d3a456426614174000", ""},
    {"x", "y", "1", "2", "z", ""},
    {"Madrid", "", "\\N", "Zürich"},
    {"true", "false", "1", "0", "TRUE", "yes", ""},
    {"abc", "ab", "", "abcd"},
    {"2024-02-29", "", "\\N", "2023-02-29", "1970-01-01", "x"},
    {"text", "", "longer text with more bytes than sixteen"},
    {"0", "255", "17", "256", "-1", ""},
    {"2024-01-02 03:04:05", "1970-01-01 00:00:00", "2024-01-02", "2106-02-07 06:28:16", "x", ""},
    {"1.25", "-3", "3.4e38", "nan", "1,5", ""},
    {"9223372036854775807", "-9223372036854775808", "42", "9223372036854775808", "4x2", ""},
    {"65535", "", "\\N", "65536", "7"},
};

std::string cell(Rng& r, size_t col, bool clean) {
  const auto& pool = kCells[col];
  // Clean rows take from the valid part of the pool (its first half).
  std::string v = pool[clean ? r.below((pool.size() + 1) / 2) : r.below(pool.size())];
  const size_t roll = r.below(100);
  // (Quoted, \N is the text \N: a NULL only bare, so not quoted in clean rows.)
  if ((roll < 8 && !(clean && v == "\\N")) || v.find(',') != std::string::npos) return "\"" + v + "\"";
  // A quoted value with "" pairs: in clean rows only where it is a value (the string columns).
  const bool stringy = col == 3 || col == 7 || col == 11;
  if (roll < 11 && (stringy || !clean) && !(clean && v == "\\N")) return "\"" + v + "\"\"q\"\"\"";
  if (roll < 12 && !clean) return v + "\xff";      // not UTF-8
  return v;
}

struct Out {
  std::string block, rejected;
  uint64_t rows = 0, bad = 0, batched = 0;
  bool ok = true;
};

Out run(const std::vector<Column>& cols, const std::string& in, const std::vector<size_t>& cuts, bool batches, bool header) {
  ValidatorOptions o;
  o.hasHeader = header;
  o.nativeParts = true;
  o.nativePartMin = 1;
  o.columnBatches = batches;
  Validator v(cols, o);
  Out out;
  size_t prev = 0;
  auto take = [&](Batch& b) {
    out.block.append(b.rows.view());
    for (const OwnedBytes& p : b.parts) out.block.append(p.view());
    out.rejected += b.rejected;
    out.rows += b.rowCount;
    out.bad += b.rejectedCount;
  };
  for (size_t cut : cuts) {
    // Each piece a copy of its own: nothing may be read outside it after its push.
    std::string piece = in.substr(prev, cut - prev);
    Batch b;
    out.ok = out.ok && v.push(piece.data(), piece.size(), b);
    piece.assign(piece.size(), '#');
    take(b);
    prev = cut;
  }
  Batch b;
  out.ok = out.ok && v.finish(b);
  take(b);
  out.batched = v.batchedRows();
  return out;
}

}  // namespace

TEST_CASE("csv batches: column-at-a-time encoding equals row by row on random files") {
  std::vector<Column> cols;
  SchemaError se;
  REQUIRE(parseSchema(kSchema, cols, se));
  REQUIRE(cols.size() == kCells.size());
  uint64_t batchedTotal = 0, rejectedTotal = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Rng r{seed * 0x9E3779B97F4A7C15ull};
    const bool header = seed % 3 == 0;
    std::string in;
    if (header) {
      for (size_t c = 0; c < cols.size(); ++c) in += (c ? "," : "") + cols[c].name;
      in += "\n";
    }
    // Runs of clean rows (whole batches) and of rows with bad cells, wrong counts, blank lines.
    const size_t rows = 300 + r.below(700);
    for (size_t i = 0; i < rows; ++i) {
      const bool clean = (i / 100) % 2 == 0 || r.below(10) > 2;
      size_t count = cols.size();
      if (!clean && r.below(50) == 0) count += r.below(2) ? 1 : -1;
      for (size_t c = 0; c < count; ++c) in += (c ? "," : "") + cell(r, c % cols.size(), clean);
      in += r.below(20) == 0 ? "\r\n" : "\n";
      if (r.below(200) == 0) in += "\n";
    }
    std::vector<size_t> cuts;
    for (size_t at = r.below(5000); at < in.size(); at += 1 + r.below(9000)) cuts.push_back(at);
    cuts.push_back(in.size());
    const Out a = run(cols, in, cuts, true, header);
    const Out b = run(cols, in, cuts, false, header);
    INFO("seed " << seed);
    CHECK(a.ok == b.ok);
    CHECK(a.rows == b.rows);
    CHECK(a.bad == b.bad);
    CHECK(a.rejected == b.rejected);
    CHECK(a.block == b.block);
    CHECK(b.batched == 0);
    batchedTotal += a.batched;
    rejectedTotal += a.bad;
  }
  // Both paths were really taken: rows went by batches, and rows were rejected.
  CHECK(batchedTotal > 5000);
  CHECK(rejectedTotal > 500);
}

TEST_CASE("csv batches: a schema with an Array column is encoded row by row") {
  std::vector<Column> cols;
  SchemaError se;
  REQUIRE(parseSchema("a Int32, b Array(Int32), c String", cols, se));
  std::string in;
  for (int i = 0; i < 500; ++i) in += std::to_string(i) + ",\"[1,2]\",some text here\n";
  const Out a = run(cols, in, {in.size()}, true, false);
  CHECK(a.rows == 500);
  CHECK(a.batched == 0);
}
