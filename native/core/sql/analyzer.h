// The ClickHouse SQL analyzer: finds every table reference in a SELECT, enforces the
// read-only tenant policy, and rewrites user-visible names to qualified ones.
//
// It is not a full ClickHouse grammar. It scans the significant tokens once with a
// stack of bracket frames, tracking the clause of each query frame (WITH, SELECT,
// FROM, JOIN ... ON, ARRAY JOIN, WHERE, ORDER BY, SETTINGS, FORMAT). Where the scan
// cannot tell what ClickHouse would do, it refuses: a false refusal costs a user a
// rewrite of their query, a false acceptance costs a tenant its data.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sql/errors.h"

namespace roost::sql {

enum class EntryKind : uint8_t { Table = 0, Query = 1 };

struct NameEntry {
  std::string name;    // user-visible: "events", "tinybird.pipe_stats_rt"
  EntryKind kind;      // a table, or a query to inline as a subquery
  std::string sql;     // Table: qualified SQL ("`ws`.`events`"); Query: a SELECT
  std::string dotted;  // Table: "ws.events", for dictGet/joinGet literals ("" if not a plain name)
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class NameMap {
 public:
  // Returns false when a Table entry's SQL is not a (db.)name, or the name is empty.
  bool add(std::string name, EntryKind kind, std::string sql);
  const NameEntry* find(std::string_view name) const noexcept;
  // Whether some entry is named "<db>.<something>".
  bool hasDatabase(std::string_view db) const noexcept;
  size_t size() const noexcept { return entries_.size(); }
  const NameEntry& at(size_t i) const noexcept { return entries_[i]; }
  uint32_t indexOf(const NameEntry* e) const noexcept { return static_cast<uint32_t>(e - entries_.data()); }
  void reserve(size_t n) { entries_.reserve(n); }
  // Replaces the SQL of a Query entry (pipes fill in nodes as they compile them).
  // A Query entry's SQL is kept without max_threads in its final SETTINGS (withoutMaxThreads).
  void setQuerySql(size_t i, std::string sql);

 private:
  std::vector<NameEntry> entries_;
  std::unordered_map<std::string, size_t, StringHash, std::equal_to<>> index_;
  std::unordered_set<std::string, StringHash, std::equal_to<>> databases_;
};

enum class RefKind : uint8_t { From = 0, In = 1, Literal = 2 };

struct TableRef {
  uint32_t offset;  // byte offset of the reference in the original query
  uint32_t length;
  uint32_t entry;   // index into the NameMap
  RefKind kind;
};

struct Options {
  // Bounds the query and also its rewritten SQL (inlined queries included), counted as the
  // rewrite goes: the engine parses that SQL under its own max_query_size (256 KiB by default).
  size_t max_query_size = 256 * 1024;
  uint32_t max_depth = 128;
  bool allow_format = true;  // pipe nodes may not carry FORMAT
  // Refuse any alias a WITH clause defines (`WITH 'acme' AS org`, `WITH tuple('acme' AS org) AS z`)
  // in a query that reads a query entry (a pipe, a node): ClickHouse's old query analyzer replaces
  // that name inside it, and a pipe's condition on a fixed parameter (`org = 'acme'`) then held for
  // every row. For credentials whose boundary is such a condition.
  bool guard_aliases = false;
};

struct Analysis {
  std::string sql;               // rewritten: qualified names, no FORMAT, no trailing ';'
  std::vector<TableRef> refs;    // in query order
  std::string format;            // FORMAT name, "" if none
  int64_t format_offset = -1;    // offset of the FORMAT name token
};

// Never throws except std::bad_alloc. On failure returns false and fills err.
bool analyze(std::string_view query, const NameMap& names, const Options& options, Analysis& out, Error& err);

// Decodes a quoted identifier or string token (`x`, "x", 'x') into out. Only the
// escapes \\ \' \" \` and doubled quotes are accepted: any other escape makes the
// name ambiguous between this analyzer and the engine, so it is refused.
bool decodeQuoted(std::string_view token, std::string& out);

// `expr` (a row filter: one expression over a table's columns) with every reference to one of
// `columns` written qualified, `<qualifier>.<name>` (or `<qualifier>.<a.b>` for a chain starting
// at a column). A server running ClickHouse's old query analyzer carries an enclosing query's
// `WITH 'acme' AS org` into the subquery the filter stands in and replaces a bare `org` there (a
// dotted alias `n.x` replaces a bare chain `n.x` too): the filter then held for every row. A
// qualified name is never replaced. Left bare: function names, lambda parameters (every use of
// their names), names after AS or ::, keywords, a word right after an operand (INTERVAL 1 day)
// or before a literal (DATE '2024-01-01'), the unit in EXTRACT(day FROM …). False when the
// expression does not lex (err says why).
bool qualifyColumns(std::string_view expr, const std::vector<std::string>& columns, std::string_view qualifier, std::string& out, Error& err);

// `sql` without max_threads in the SETTINGS clause that ends it (the clause goes when nothing else
// is left in it); any other SQL as given. Query entries of a NameMap are kept so: ClickHouse applies
// a subquery's SETTINGS as written, and Roost caps max_threads only in the outer query's.
std::string withoutMaxThreads(const std::string& sql);

}  // namespace roost::sql
