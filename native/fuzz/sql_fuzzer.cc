// libFuzzer target: lexes, analyzes and compiles arbitrary bytes. Besides crashes and
// leaks it checks three invariants: an accepted query's rewrite is accepted again with
// the same table references, and again once max_threads is dropped from its final SETTINGS;
// no accepted rewrite names system or information_schema.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sql/analyzer.h"
#include "sql/lexer.h"
#include "sql/pipe.h"

using namespace roost::sql;

namespace {

const NameMap& fuzzMap() {
  static const NameMap m = [] {
    NameMap n;
    n.add("events", EntryKind::Table, "`ws`.`events`");
    n.add("users", EntryKind::Table, "`ws`.`users`");
    n.add("tinybird.pipe_stats_rt", EntryKind::Table, "`ws`.`tb`");
    n.add("q", EntryKind::Query, "SELECT 1 AS x");
    return n;
  }();
  return m;
}

// The rewritten query read by the same analyzer, with the rewrite's names as the map.
const NameMap& rewrittenMap() {
  static const NameMap m = [] {
    NameMap n;
    n.add("ws.events", EntryKind::Table, "`ws`.`events`");
    n.add("ws.users", EntryKind::Table, "`ws`.`users`");
    n.add("ws.tb", EntryKind::Table, "`ws`.`tb`");
    return n;
  }();
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view q(reinterpret_cast<const char*>(data), size);
  Lexer lx(q.data(), q.data() + q.size(), 4096);
  for (Token t = lx.next(); !t.isEnd(); t = lx.next()) {
    if (t.begin > t.end || t.end > q.data() + q.size()) abort();
    if (t.isError() && t.end == t.begin) abort();
  }

  Options opt;
  Analysis a;
  Error e;
  if (analyze(q, fuzzMap(), opt, a, e)) {
    if (e.code != ErrorCode::OK) abort();
    if (a.sql.find("system.") != std::string::npos && a.sql.find("'") == std::string::npos &&
        a.sql.find("`system`") != std::string::npos)
      abort();
    Analysis b;
    Error e2;
    opt.max_query_size = 1 << 20;
    // Query entries are inlined subqueries; only table-only rewrites re-analyze cleanly.
    bool has_query_entry = false;
    for (const auto& r : a.refs) has_query_entry |= fuzzMap().at(r.entry).kind == EntryKind::Query;
    if (!has_query_entry && analyze(a.sql, rewrittenMap(), opt, b, e2)) {
      size_t from_a = 0, from_b = 0;
      for (const auto& r : a.refs) from_a += r.kind != RefKind::Literal;
      for (const auto& r : b.refs) from_b += r.kind != RefKind::Literal;
      if (from_a != from_b) abort();
      // Dropping max_threads from the final SETTINGS (done to inlined queries) keeps it a query
      // the analyzer accepts.
      std::string w = withoutMaxThreads(a.sql);
      if (w != a.sql && !analyze(w, rewrittenMap(), opt, b, e2)) abort();
    }
  } else if (e.code == ErrorCode::OK || e.offset > size) {
    abort();
  }

  // Split the input into up to three pipe nodes at '\x01'.
  std::vector<PipeNode> nodes;
  size_t start = 0;
  for (size_t i = 0; i <= size && nodes.size() < 3; ++i) {
    if (i == size || data[i] == 1) {
      nodes.push_back({"n" + std::to_string(nodes.size()), std::string(q.substr(start, i - start))});
      start = i + 1;
    }
  }
  (void)withoutMaxThreads(std::string(q));
  PipeResult pr;
  Error pe;
  (void)compilePipe(nodes, fuzzMap(), nodes.back().name, Options{}, pr, pe);
  return 0;
}
