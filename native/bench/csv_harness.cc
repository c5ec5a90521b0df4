// Stand-alone harness for profiling the CSV parse+validate path (not part of
// the addon or the unit tests). Runs the Validator over a file the way the
// upload path does (2 MiB pushes) and prints MB/s; optionally the reader alone.
//   g++ -std=c++20 -O3 -g -fno-omit-frame-pointer -Inative/core native/core/csv/*.cc \
//       native/bench/csv_harness.cc -o /tmp/csv_harness
//   /tmp/csv_harness bench/out/csv-bench.csv [runs] [native|parts|rowbinary|reader|columns]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "csv/reader.h"
#include "csv/schema.h"
#include "csv/validator.h"

using namespace roost::csv;

static const char* kSchema =
    "`id` UInt64, `user_id` Int32, `amount` Float64, `price` Decimal(12, 2), `qty` Int16, "
    "`ts` DateTime, `day` Date, `ts_ms` DateTime64(3), `active` Bool, `name` String, "
    "`city` LowCardinality(String), `note` String, `uid` UUID, `score` Float32, "
    "`maybe` Nullable(Int32), `email` String, `country` LowCardinality(String), `version` UInt8, "
    "`lat` Float64, `label` Nullable(String)";

struct CountSink : RowSink {
  uint64_t rows = 0, fields = 0;
  void onRow(const Row& r) override {
    ++rows;
    fields += r.count;
  }
};

// Every cell of every column, copied out, for timing encodeValue per column.
struct CellSink : RowSink {
  std::vector<std::vector<std::string>> cells;
  bool header = true;
  void onRow(const Row& r) override {
    if (header) {
      header = false;
      return;
    }
    if (cells.size() < r.count) cells.resize(r.count);
    for (size_t i = 0; i < r.count; ++i) cells[i].emplace_back(r.fields[i].view());
  }
};

static void perColumn(const std::string& buf, const std::vector<Column>& cols, int runs) {
  Reader rd(Dialect{}, 8 << 20);
  CellSink s;
  rd.feed(buf.data(), buf.size(), s);
  rd.finish(s);
  double total = 0;
  for (size_t c = 0; c < cols.size(); ++c) {
    const Type& v = cols[c].type.valueType();
    const Type& t = v.kind == Kind::Nullable ? v.inner->valueType() : v;
    std::vector<double> ms;
    for (int r = 0; r < runs; ++r) {
      ByteBuf out;
      out.reserve(64 << 20);
      auto t0 = std::chrono::steady_clock::now();
      for (const std::string& x : s.cells[c])
        if (!x.empty()) encodeValue(t, x, out);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    total += ms[0];
    std::printf("%-10s %-22s %6.2f ms (min)\n", cols[c].name.c_str(), typeToString(cols[c].type).c_str(), ms[0]);
  }
  std::printf("total encodeValue %.1f ms\n", total);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  std::ifstream in(argv[1], std::ios::binary);
  std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  std::string mode = argc > 3 ? argv[3] : "native";
  std::vector<Column> cols;
  SchemaError err;
  if (!parseSchema(kSchema, cols, err)) {
    std::fprintf(stderr, "schema: %s\n", err.message.c_str());
    return 1;
  }
  if (mode == "columns") {
    perColumn(buf, cols, runs);
    return 0;
  }
  const size_t chunk = 2 << 20;  // as the upload path groups body pieces
  std::vector<double> ms;
  uint64_t rows = 0, rejected = 0, outBytes = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    rows = rejected = outBytes = 0;
    if (mode == "reader") {
      Reader rd(Dialect{}, 8 << 20);
      CountSink s;
      for (size_t o = 0; o < buf.size(); o += chunk) rd.feed(buf.data() + o, std::min(chunk, buf.size() - o), s);
      rd.finish(s);
      rows = s.rows;
    } else {
      ValidatorOptions opts;
      opts.hasHeader = true;
      opts.encoding = mode == "rowbinary" ? Encoding::RowBinary : Encoding::Native;
      opts.nativeParts = mode == "parts";  // the block's buffers handed over, as the addon does
      Validator v(cols, opts);
      for (size_t o = 0; o < buf.size(); o += chunk) {
        Batch b;
        v.push(buf.data() + o, std::min(chunk, buf.size() - o), b);
        rows += b.rowCount;
        rejected += b.rejectedCount;
        outBytes += b.rows.size;
        for (const OwnedBytes& o : b.parts) outBytes += o.size;
      }
      Batch b;
      v.finish(b);
      rows += b.rowCount;
      rejected += b.rejectedCount;
      outBytes += b.rows.size;
      for (const OwnedBytes& o : b.parts) outBytes += o.size;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> s = ms;
  std::sort(s.begin(), s.end());
  double med = s[s.size() / 2];
  std::printf("%s: %zu bytes, rows %llu, rejected %llu, out %llu bytes; median %.1f ms (%.0f MB/s), min %.1f ms\n",
              mode.c_str(), buf.size(), (unsigned long long)rows, (unsigned long long)rejected,
              (unsigned long long)outBytes, med, buf.size() / 1e3 / med, s[0]);
  return rejected ? 1 : 0;
}
