// Helpers shared by the csv_*_test.cc files.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "csv/reader.h"

namespace csvtest {

struct ParsedRow {
  std::vector<std::string> fields;
  std::vector<bool> quoted;
  std::vector<bool> afterQuote;  // Field::afterQuote
  bool rowAfterQuote = false;    // Row::afterQuote
  uint64_t line;
  std::string raw;
  bool unterminated;
  // What the reader said of raw's bytes (not compared by ==: the block path knows,
  // the row-at-a-time parser leaves it to the validator).
  roost::csv::Row::Text text = roost::csv::Row::Text::Unknown;
  bool operator==(const ParsedRow& o) const {
    return fields == o.fields && quoted == o.quoted && afterQuote == o.afterQuote && rowAfterQuote == o.rowAfterQuote && line == o.line && raw == o.raw && unterminated == o.unterminated;
  }
};

struct Collect final : roost::csv::RowSink {
  std::vector<ParsedRow> rows;
  void onRow(const roost::csv::Row& r) override {
    ParsedRow p;
    for (size_t i = 0; i < r.count; ++i) {
      p.fields.emplace_back(r.fields[i].view());
      p.quoted.push_back(r.fields[i].quoted);
      p.afterQuote.push_back(r.fields[i].afterQuote);
    }
    p.rowAfterQuote = r.afterQuote;
    p.line = r.line;
    p.raw = std::string(r.raw);
    p.unterminated = r.unterminated;
    p.text = r.text;
    rows.push_back(std::move(p));
  }
};

/// Feeds `in` in chunks cut at the given offsets (ascending).
inline std::vector<ParsedRow> parse(const std::string& in, roost::csv::Dialect d = {},
                                    std::vector<size_t> cuts = {}, bool* ok = nullptr, size_t maxRow = 1 << 20) {
  roost::csv::Reader r(d, maxRow);
  Collect c;
  size_t prev = 0;
  bool good = true;
  cuts.push_back(in.size());
  for (size_t cut : cuts) {
    if (cut < prev) continue;
    // Copy each chunk so the reader cannot rely on bytes outside it.
    std::string chunk = in.substr(prev, cut - prev);
    good = good && r.feed(chunk.data(), chunk.size(), c);
    prev = cut;
  }
  good = good && r.finish(c);
  if (ok) *ok = good;
  return c.rows;
}

/// Bytes as lowercase hex, two digits each.
inline std::string hexOf(std::string_view bytes) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : bytes) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

inline std::vector<std::vector<std::string>> fieldsOf(const std::vector<ParsedRow>& rows) {
  std::vector<std::vector<std::string>> out;
  for (auto& r : rows) out.push_back(r.fields);
  return out;
}

}  // namespace csvtest
