#include "sql/analyzer.h"

#include "sql/ascii.h"

#include <algorithm>

#include "sql/lexer.h"
#include "sql/policy.h"

namespace roost::sql {

const char* errorCodeName(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::OK: return "OK";
#define M(name) case ErrorCode::name: return #name;
    ROOST_SQL_ERRORS(M)
#undef M
  }
  return "?";
}

namespace {

// What a lexer error token means, in words a user can act on.
std::string lexErrorMessage(const Token& t, const char* queryEnd) {
  switch (t.type) {
    case TokenType::ErrorMultilineCommentIsNotClosed: return "a /* comment is not closed: end it with */";
    case TokenType::ErrorSingleQuoteIsNotClosed: return "a string is not closed: end it with '";
    case TokenType::ErrorDoubleQuoteIsNotClosed: return "a \"quoted\" name is not closed: end it with \"";
    case TokenType::ErrorBackQuoteIsNotClosed: return "a `quoted` name is not closed: end it with `";
    case TokenType::ErrorSingleExclamationMark: return "'!' alone is not an operator: use != or NOT";
    case TokenType::ErrorWrongNumber: return "malformed number";
    default: break;
  }
  if (t.begin >= queryEnd) return "unexpected end of the query";
  // One unexpected character, shown as written: its whole UTF-8 sequence when it is one.
  const auto* p = reinterpret_cast<const unsigned char*>(t.begin);
  const size_t avail = static_cast<size_t>(queryEnd - t.begin);
  size_t want = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC0 ? 2 : 1;
  size_t n = 1;
  while (n < want && n < avail && (p[n] & 0xC0) == 0x80) ++n;
  static const char* hex = "0123456789ABCDEF";
  if (p[0] < 0x20 || p[0] == 0x7F || (p[0] >= 0x80 && n != want) || (want == 1 && p[0] >= 0x80))
    return std::string("unexpected byte 0x") + hex[p[0] >> 4] + hex[p[0] & 15];
  std::string ch(t.begin, n);
  // Typographic quotes (as word processors and chat apps write them) are a common paste.
  if (ch == "\u2018" || ch == "\u2019" || ch == "\u201C" || ch == "\u201D")
    return "unexpected character " + ch + ": typographic quotes are not SQL quotes; write strings in ' and names in ` or \"";
  return "unexpected character " + ch;
}

template <size_t N>
bool inSet(std::string_view w, const std::string_view (&set)[N]) noexcept {
  for (auto s : set)
    if (iequals(w, s)) return true;
  return false;
}

// Words that end a FROM clause or start another clause of the query they stand in.
enum class Kw : uint8_t { None, Select, From, Where, Group, Order, Having, Limit, Window, Qualify, Settings, Format, SetOp, Into, With, Join };

Kw clauseKeyword(std::string_view w) noexcept {
  switch (asciiLower(w.empty() ? ' ' : w[0])) {
    case 's': if (iequals(w, "select")) return Kw::Select; if (iequals(w, "settings")) return Kw::Settings; break;
    case 'f': if (iequals(w, "from")) return Kw::From; if (iequals(w, "format")) return Kw::Format; break;
    case 'w': if (iequals(w, "where")) return Kw::Where; if (iequals(w, "window")) return Kw::Window; if (iequals(w, "with")) return Kw::With; break;
    case 'p': if (iequals(w, "prewhere")) return Kw::Where; break;
    case 'g': if (iequals(w, "group")) return Kw::Group; break;
    case 'o': if (iequals(w, "order")) return Kw::Order; break;
    case 'h': if (iequals(w, "having")) return Kw::Having; break;
    case 'l': if (iequals(w, "limit")) return Kw::Limit; break;
    case 'q': if (iequals(w, "qualify")) return Kw::Qualify; break;
    case 'u': if (iequals(w, "union")) return Kw::SetOp; break;
    case 'i': if (iequals(w, "intersect")) return Kw::SetOp; if (iequals(w, "into")) return Kw::Into; break;
    case 'e': if (iequals(w, "except")) return Kw::SetOp; break;
    case 'j': if (iequals(w, "join")) return Kw::Join; break;
    default: break;
  }
  return Kw::None;
}

constexpr std::string_view kJoinWords[] = {"global", "local", "any", "all", "asof", "semi", "anti", "inner",
                                           "left", "right", "full", "cross", "paste", "outer", "array", "join",
                                           "natural", "only"};

// Words that cannot be an implicit table alias.
constexpr std::string_view kNotAlias[] = {"final", "sample", "as", "on", "using", "offset", "global", "local", "any",
                                          "all", "asof", "semi", "anti", "inner", "left", "right", "full", "cross",
                                          "paste", "outer", "array", "join", "natural", "only", "stream"};

// Words that may stand before '(' without being a function call.
constexpr std::string_view kSyntaxParens[] = {
    "and", "or", "not", "is", "as", "on", "using", "by", "where", "prewhere", "having", "qualify", "select",
    "from", "join", "with", "then", "else", "when", "case", "end", "between", "like", "ilike", "limit", "offset",
    "except", "intersect", "union", "apply", "over", "filter", "distinct", "all", "any", "some", "exists",
    "interval", "sets", "rollup", "cube", "interpolate", "order", "group", "partition", "rows", "range", "top",
    "global", "array", "settings", "asc", "desc", "recursive", "window", "step", "to", "fill", "ties", "nulls",
    "first", "last", "lambda", "values"};

// Keywords after which an operand is expected (so IN there is the function in()).
constexpr std::string_view kOperatorWords[] = {
    "select", "where", "prewhere", "and", "or", "not", "having", "on", "when", "then", "else", "by", "distinct",
    "case", "between", "qualify", "is", "like", "ilike", "in", "global", "with", "all", "any", "as", "from",
    "join", "using", "limit", "offset", "settings", "array", "interval", "top", "union", "except", "intersect"};

enum class FK : uint8_t { Query, Parens, Func, TableFunc, Square, Brace };
enum class CL : uint8_t { Start, With, Select, FromTable, FromAfter, FromExpr, JoinOn, ArrayJoin, Other, OrderBy, Settings, Format };
// A query that stops in this clause is not whole: no SELECT yet, or FROM without its table.
inline bool incomplete(CL c) { return c == CL::Start || c == CL::With || c == CL::FromTable; }
enum class OnClose : uint8_t { None, FromAfter, RegisterCte };

struct Frame {
  FK kind;
  CL clause = CL::Start;
  OnClose on_close = OnClose::None;
  bool must_query = false;   // a '(' in FROM: only a subquery may be inside
  bool fill = false;         // ORDER BY ... WITH FILL: FROM/TO/STEP are not clauses
  bool with_elem = false;    // at the start of a WITH list element
  bool alias_ok = false;     // just after a table expression: an alias may follow
  bool is_cast = false;
  bool is_position = false;
  bool is_matcher = false;   // COLUMNS(...) or a * EXCEPT/REPLACE/APPLY (...) group
  bool recursive = false;
  uint32_t open = 0;         // token index of the bracket
  uint32_t cte_mark = 0;     // scope size when the frame opened
  uint32_t union_mark = UINT32_MAX;  // scope size at the first UNION/EXCEPT/INTERSECT of this query
  std::string cte_name;      // OnClose::RegisterCte
  // The body of a WITH RECURSIVE element: its own name, in scope in the members of its UNION ALL
  // after the first (where ClickHouse recurses) and nowhere else in it.
  std::string self_cte;
  bool self_cleared = false;  // a recursive body whose first set operation was not UNION ALL
  // This query (its current UNION member) has a WITH of its own. In a later member of a UNION (or
  // EXCEPT, INTERSECT), or in a query within one, ClickHouse does not give it the first member's
  // CTEs (see hidden()); read there, such a name was a table of the session's current database.
  bool own_with = false;
  bool first_with = false;   // the first member of this UNION had a WITH (ClickHouse gives it to every later member)
  bool member = false;       // a bracket standing as a member of a set operation (see run())
  bool member_with = false;  // a bracketed member inside this one had a WITH: `(WITH e … SELECT 1) UNION ALL …`
};

struct ScopeName {
  std::string name;
  bool scalar;  // WITH expr AS name (only for IN), not a CTE
};

struct Edit {
  uint32_t begin, end;
  std::string text;
};

class Scanner {
 public:
  Scanner(std::string_view q, const NameMap& names, const Options& opt, Analysis& out, Error& err)
      : q_(q), names_(names), opt_(opt), out_(out), err_(err) {}

  bool run();

 private:
  using TT = TokenType;
  const Token& tok(size_t i) const noexcept { return toks_[std::min(i, toks_.size() - 1)]; }
  TT type(size_t i) const noexcept { return tok(i).type; }
  uint32_t off(size_t i) const noexcept { return static_cast<uint32_t>(tok(i).begin - q_.data()); }
  uint32_t off_of(const char* p) const noexcept { return static_cast<uint32_t>(p - q_.data()); }
  bool word(size_t i) const noexcept { return type(i) == TT::BareWord; }
  bool kw(size_t i, std::string_view w) const noexcept { return word(i) && iequals(tok(i).text(), w); }
  bool ident(size_t i) const noexcept { return tok(i).isIdentifier(); }

  bool fail(ErrorCode c, size_t i, std::string msg) {
    err_.code = c;
    err_.offset = off(i);
    err_.message = std::move(msg);
    return false;
  }
  bool failAt(ErrorCode c, uint32_t offset, std::string msg) {
    err_.code = c;
    err_.offset = offset;
    err_.message = std::move(msg);
    return false;
  }

  bool lex();
  bool grow(size_t i, size_t replaced, size_t text_size, const NameEntry& entry);
  bool identText(size_t i, std::string& out);
  size_t chainEnd(size_t i) const noexcept;
  bool prevIsOperandEnd(size_t i) const noexcept;
  bool inScope(std::string_view name, bool allow_scalar) const noexcept;
  /// The innermost scope entry of `name` is a scalar WITH alias defined outside the SELECT at
  /// the top of frames_ (an enclosing query, or before this UNION member).
  bool outerScalar(std::string_view name) const noexcept;

  bool push(FK kind, size_t i);
  bool pop(size_t i);
  bool onWord(size_t& i);
  bool onClause(Kw k, size_t& i);
  bool tableExpression(size_t& i);
  bool resolveTable(size_t begin, size_t end, RefKind kind, bool has_alias);
  bool inOperator(size_t& i);
  bool functionCall(size_t& i, size_t name_end);
  bool skipType(size_t& i, bool to_frame_end);
  bool setting(size_t& i);
  bool endsQuery(size_t k) const;
  bool format(size_t& i);
  bool joinWords(size_t& i, bool& matched);
  std::string render();

  std::string_view q_;
  const NameMap& names_;
  const Options& opt_;
  Analysis& out_;
  Error& err_;
  std::vector<Token> toks_;
  std::vector<Frame> frames_;
  std::vector<ScopeName> scope_;
  std::vector<Edit> edits_;
  size_t matcher_end_ = SIZE_MAX;   // token index where a column matcher ended
  bool pending_modifier_ = false;   // the next '(' opens a matcher modifier group
  size_t skip_chain_ = SIZE_MAX;    // an identifier chain already resolved by IN
  size_t semicolon_ = SIZE_MAX;
  uint32_t format_begin_ = 0, format_end_ = 0;
  size_t grown_ = 0;                // bytes the edits add to the query, at most (see grow)
  size_t with_alias_ = SIZE_MAX;    // the first `AS name` of a WITH clause (Options::guard_aliases)
  /// scope_[k] is out of scope here: a first UNION member's name, seen from a member with its own WITH.
  bool hidden(size_t k) const noexcept;
};

// Every rewrite of a reference is counted before its text is built: the rewritten SQL (the
// query, plus what its edits add) may not pass the maximum query size either. An inlined
// query is copied in whole at each reference, so without this bound a small query naming a
// large pipe thousands of times built gigabytes before any size check; now no analysis holds
// more than a few times max_query_size. The engine refuses a query over its max_query_size
// (256 KiB by default, and Roost does not raise it) anyway. Edits that shrink (comments,
// FORMAT, ';') are not subtracted, so the sum is an upper bound of the output's size.
bool Scanner::grow(size_t i, size_t replaced, size_t text_size, const NameEntry& entry) {
  if (text_size <= replaced) return true;
  grown_ += text_size - replaced;
  if (q_.size() + grown_ <= opt_.max_query_size) return true;
  std::string limit = std::to_string(opt_.max_query_size);
  if (entry.kind == EntryKind::Query)
    return fail(ErrorCode::QUERY_TOO_LARGE, i,
                "query is larger than the maximum query size (" + limit + " bytes) once the pipes and nodes it reads are inlined: '" + entry.name +
                    "' is copied in whole at each reference to it; name it fewer times (once in WITH t AS (SELECT * FROM " + entry.name +
                    ") to read t many times) or make it smaller");
  return fail(ErrorCode::QUERY_TOO_LARGE, i, "query is larger than the maximum query size (" + limit + " bytes) once its table names are qualified");
}

bool Scanner::lex() {
  if (q_.size() > opt_.max_query_size) return failAt(ErrorCode::QUERY_TOO_LARGE, static_cast<uint32_t>(opt_.max_query_size), "query is larger than the maximum query size");
  Lexer lexer(q_.data(), q_.data() + q_.size(), opt_.max_query_size);
  toks_.reserve(q_.size() / 4 + 8);
  for (;;) {
    Token t = lexer.next();
    if (t.type == TT::Comment) {
      // Comments leave the rewritten SQL: a trailing "-- x" would otherwise swallow
      // whatever the caller puts after it (an inlined node's ')', a row filter).
      edits_.push_back({off_of(t.begin), off_of(t.end), " "});
      continue;
    }
    if (!t.isSignificant()) continue;
    if (t.isError()) {
      toks_.push_back(t);
      if (t.type == TT::ErrorMaxQuerySizeExceeded) return fail(ErrorCode::QUERY_TOO_LARGE, toks_.size() - 1, "query is larger than the maximum query size");
      return fail(ErrorCode::SYNTAX_ERROR, toks_.size() - 1, lexErrorMessage(t, q_.data() + q_.size()));
    }
    toks_.push_back(t);
    if (t.isEnd()) break;
  }
  return true;
}

bool Scanner::identText(size_t i, std::string& out) {
  const Token& t = tok(i);
  if (t.type == TT::BareWord) { out.assign(t.begin, t.end); return true; }
  if (!decodeQuoted(t.text(), out)) return fail(ErrorCode::SYNTAX_ERROR, i, "escape sequence not accepted in a name");
  return true;
}

// End (exclusive) of the identifier chain a.b.c starting at i.
size_t Scanner::chainEnd(size_t i) const noexcept {
  size_t j = i + 1;
  while (type(j) == TT::Dot && ident(j + 1)) j += 2;
  return j;
}

bool Scanner::prevIsOperandEnd(size_t i) const noexcept {
  if (i == 0) return false;
  const Token& p = tok(i - 1);
  switch (p.type) {
    case TT::QuotedIdentifier: case TT::Number: case TT::StringLiteral: case TT::HereDoc:
    case TT::ClosingRoundBracket: case TT::ClosingSquareBracket: case TT::ClosingCurlyBrace:
      return true;
    case TT::BareWord:
      return !inSet(p.text(), kOperatorWords);
    default:
      return false;
  }
}

bool Scanner::hidden(size_t k) const noexcept {
  // ClickHouse gives a UNION's first member's WITH to each later member without a WITH of its own;
  // a later member with one (its own, a bracketed member's, or one an enclosing UNION's first
  // member gave it) does not see the first member's CTEs (its scalar aliases it merges in). Such
  // a name read there was a table of the session's current database.
  if (scope_[k].scalar) return false;
  for (size_t u = 0; u < frames_.size(); ++u) {
    const Frame& U = frames_[u];
    if (U.kind != FK::Query || U.union_mark == UINT32_MAX || k < U.cte_mark || k >= U.union_mark) continue;
    // The member being read: U's current one, and the brackets standing as members within it (a
    // subquery in it sees the member's names as any subquery does).
    for (size_t f = u; f < frames_.size() && (f == u || frames_[f].member); ++f)
      if (frames_[f].kind == FK::Query && frames_[f].own_with) return true;
    for (size_t g = 0; g < u; ++g)
      if (frames_[g].kind == FK::Query && frames_[g].union_mark != UINT32_MAX && frames_[g].first_with) return true;
  }
  return false;
}

bool Scanner::inScope(std::string_view name, bool allow_scalar) const noexcept {
  for (size_t k = 0; k < scope_.size(); ++k)
    if (scope_[k].name == name && (allow_scalar || !scope_[k].scalar) && !hidden(k)) return true;
  return false;
}

bool Scanner::outerScalar(std::string_view name) const noexcept {
  // The innermost name of that spelling decides.
  size_t at = scope_.size();
  while (at > 0 && (scope_[at - 1].name != name || hidden(at - 1))) --at;
  if (at == 0 || !scope_[at - 1].scalar) return false;
  // The SELECT the reference is in: the innermost query frame.
  for (size_t k = frames_.size(); k > 0; --k) {
    const Frame& q = frames_[k - 1];
    if (q.kind != FK::Query) continue;
    const uint32_t own = q.union_mark == UINT32_MAX ? q.cte_mark : q.union_mark;
    return at - 1 < own;
  }
  return false;
}

bool Scanner::push(FK kind, size_t i) {
  if (frames_.size() >= opt_.max_depth) return fail(ErrorCode::NESTING_TOO_DEEP, i, "brackets nested too deep");
  Frame f;
  f.kind = kind;
  f.open = static_cast<uint32_t>(i);
  f.cte_mark = static_cast<uint32_t>(scope_.size());
  frames_.push_back(std::move(f));
  return true;
}

bool Scanner::pop(size_t i) {
  if (frames_.size() <= 1) return fail(ErrorCode::SYNTAX_ERROR, i, "unbalanced closing bracket");
  Frame f = std::move(frames_.back());
  frames_.pop_back();
  TT t = type(i);
  bool match = (t == TT::ClosingRoundBracket && (f.kind == FK::Query || f.kind == FK::Parens || f.kind == FK::Func || f.kind == FK::TableFunc)) ||
               (t == TT::ClosingSquareBracket && f.kind == FK::Square) || (t == TT::ClosingCurlyBrace && f.kind == FK::Brace);
  if (!match) return fail(ErrorCode::SYNTAX_ERROR, i, "mismatched bracket");
  if (f.kind == FK::Query && incomplete(f.clause)) return fail(ErrorCode::SYNTAX_ERROR, i, "incomplete query before ')'");
  if (f.must_query && f.kind != FK::Query) return fail(ErrorCode::SYNTAX_ERROR, f.open, "expected a subquery");
  scope_.resize(f.cte_mark);
  if (f.is_matcher) matcher_end_ = i;
  Frame& parent = frames_.back();
  // A bracketed member with a WITH: to ClickHouse, the WITH of the member it stands as.
  if (f.member && (f.own_with || f.member_with)) parent.member_with = true;
  if (parent.must_query && parent.kind == FK::Parens && f.kind == FK::Query) parent.kind = FK::Query;  // FROM ((SELECT 1))
  if (parent.kind == FK::Query && parent.clause == CL::Start) parent.clause = CL::Select;  // (SELECT 1) UNION ALL (SELECT 2)
  if (f.on_close == OnClose::FromAfter) {
    parent.clause = CL::FromAfter;
    parent.alias_ok = true;
  } else if (f.on_close == OnClose::RegisterCte) {
    scope_.push_back({std::move(f.cte_name), false});
  }
  return true;
}

bool Scanner::resolveTable(size_t b, size_t e, RefKind kind, bool has_alias) {
  // b..e is an identifier chain: name or db.name
  size_t parts = (e - b + 1) / 2;
  std::string first, second, key;
  if (!identText(b, first)) return false;
  if (parts > 2) return fail(ErrorCode::UNKNOWN_TABLE, b, "unknown table");
  if (parts == 2) {
    if (first == "system" || iequals(first, "information_schema"))
      return fail(ErrorCode::FORBIDDEN_DATABASE, b, "database '" + first + "' may not be read");
    if (!identText(b + 2, second)) return false;
    key = first + "." + second;
  } else {
    // `x IN name` with a WITH alias of an outer SELECT (or of the first SELECT of a UNION, seen
    // from a later one): ClickHouse before 20.x, and later ones without the global WITH, read
    // the name as a table of the connection's current database — a tenant's own server's
    // `default` database was read so. The alias is visible after IN only in its own SELECT.
    if (kind == RefKind::In && outerScalar(first))
      return fail(ErrorCode::UNKNOWN_TABLE, b, "'" + first + "' after IN is a WITH alias of an enclosing query (or of the first SELECT of a UNION): "
                  "define it in the WITH of this SELECT, or write its value after IN");
    if (inScope(first, kind == RefKind::In)) return true;  // a CTE (or, after IN, a WITH alias)
    key = first;
  }
  const NameEntry* entry = names_.find(key);
  if (!entry) {
    if (parts == 2 && !names_.hasDatabase(first))
      return fail(ErrorCode::FORBIDDEN_DATABASE, b, "database '" + first + "' may not be read");
    return fail(ErrorCode::UNKNOWN_TABLE, b, "unknown table '" + key + "'");
  }
  uint32_t begin = off(b);
  uint32_t end = static_cast<uint32_t>(tok(e - 1).end - q_.data());
  const bool alias = kind == RefKind::From && !has_alias;
  const size_t size = entry->sql.size() + (entry->kind == EntryKind::Query ? 2 : 0) + (alias ? 4 + tok(e - 1).size() : 0);
  if (!grow(b, end - begin, size, *entry)) return false;
  out_.refs.push_back({begin, end - begin, names_.indexOf(entry), kind});
  std::string text;
  text.reserve(size);
  if (entry->kind == EntryKind::Query) {
    text += '(';
    text += entry->sql;
    text += ')';
  } else {
    text += entry->sql;
  }
  if (alias) {
    // Keep "events.col" (and "node.col") working in the rest of the query.
    text += " AS ";
    text.append(tok(e - 1).begin, tok(e - 1).end);
  }
  edits_.push_back({begin, end, std::move(text)});
  return true;
}

bool Scanner::tableExpression(size_t& i) {
  Frame& f = frames_.back();
  if (type(i) == TT::OpeningRoundBracket) {
    if (!push(FK::Parens, i)) return false;
    Frame& sub = frames_.back();
    sub.must_query = true;
    sub.on_close = OnClose::FromAfter;
    if (kw(i + 1, "select") || kw(i + 1, "with") || kw(i + 1, "from")) sub.kind = FK::Query;
    else if (type(i + 1) != TT::OpeningRoundBracket) return fail(ErrorCode::SYNTAX_ERROR, i + 1, "expected a subquery");
    frames_[frames_.size() - 2].clause = CL::FromExpr;  // until the subquery closes
    ++i;
    return true;
  }
  if (!ident(i)) return fail(ErrorCode::SYNTAX_ERROR, i, "expected a table");
  if (word(i) && clauseKeyword(tok(i).text()) != Kw::None)
    return fail(ErrorCode::SYNTAX_ERROR, i,
                "expected a table: " + std::string(tok(i).text()) + " is a keyword (a table of that name is written `" +
                    std::string(tok(i).text()) + "`)");
  size_t e = chainEnd(i);
  if (type(e) == TT::OpeningRoundBracket) {
    std::string name;
    if (!identText(i, name)) return false;
    if (e != i + 1 || !isAllowedTableFunction(name))
      return fail(ErrorCode::FORBIDDEN_TABLE_FUNCTION, i, "table function '" + name + "' is not allowed");
    f.clause = CL::FromExpr;
    if (!push(FK::TableFunc, e)) return false;
    frames_.back().on_close = OnClose::FromAfter;
    i = e + 1;
    return true;
  }
  bool alias = kw(e, "as") || type(e) == TT::QuotedIdentifier ||
               (word(e) && clauseKeyword(tok(e).text()) == Kw::None && !inSet(tok(e).text(), kNotAlias));
  if (!resolveTable(i, e, RefKind::From, alias)) return false;
  f.clause = CL::FromAfter;
  f.alias_ok = true;
  i = e;
  return true;
}

// At i: a join keyword in a FROM clause. Consumes "[GLOBAL] [ANY] LEFT [OUTER] JOIN" etc.
bool Scanner::joinWords(size_t& i, bool& matched) {
  size_t j = i;
  bool array = false;
  while (word(j) && inSet(tok(j).text(), kJoinWords) && type(j + 1) != TT::Dot &&
         (kw(j, "join") || type(j + 1) != TT::OpeningRoundBracket)) {
    if (kw(j, "array")) array = true;
    if (kw(j, "join")) {
      Frame& f = frames_.back();
      f.clause = array ? CL::ArrayJoin : CL::FromTable;
      f.alias_ok = false;
      i = j + 1;
      matched = true;
      return true;
    }
    ++j;
  }
  matched = false;
  return true;
}

bool Scanner::skipType(size_t& i, bool to_frame_end) {
  // A data type: words, then optional (arguments) holding only names, literals and '='.
  if (!ident(i)) return fail(ErrorCode::SYNTAX_ERROR, i, "expected a type");
  while (ident(i)) {
    ++i;
    if (type(i) == TT::OpeningRoundBracket) {
      int depth = 0;
      do {
        switch (type(i)) {
          case TT::OpeningRoundBracket: ++depth; break;
          case TT::ClosingRoundBracket: --depth; break;
          case TT::BareWord: case TT::QuotedIdentifier: case TT::Number: case TT::StringLiteral:
          case TT::Comma: case TT::Equals: case TT::Minus: case TT::Plus: case TT::Dot:
            break;
          default:
            return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected token in a type");
        }
        ++i;
      } while (depth > 0);
    }
    if (!to_frame_end) break;
  }
  return true;
}

bool Scanner::functionCall(size_t& i, size_t name_end) {
  // i: name, name_end: the '('
  std::string name;
  if (name_end != i + 1) {
    std::string part;
    for (size_t k = i; k < name_end; k += 2) {
      if (!identText(k, part)) return false;
      name += (k == i ? "" : ".") + part;
    }
    return fail(ErrorCode::FORBIDDEN_FUNCTION, i, "function '" + name + "' is not allowed");
  }
  if (!identText(i, name)) return false;
  FK kind = FK::Func;
  bool syntax = word(i) && inSet(name, kSyntaxParens);
  if (pending_modifier_) {
    syntax = true;
  }
  uint8_t flags = 0;
  if (!syntax && !isSyntaxFunction(name) && !lookupFunction(name, flags)) {
    if (isDeniedFunction(name)) return fail(ErrorCode::FORBIDDEN_FUNCTION, i, "function '" + name + "' is not allowed");
    const std::string near = suggestFunction(name);
    return fail(ErrorCode::UNKNOWN_FUNCTION, i, "unknown function '" + name + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?"));
  }
  if (syntax) kind = FK::Parens;
  if (!push(kind, name_end)) return false;
  Frame& f = frames_.back();
  if (pending_modifier_) { f.is_matcher = true; pending_modifier_ = false; }
  f.is_cast = iequals(name, "cast");
  f.is_position = iequals(name, "position");
  f.is_matcher = f.is_matcher || iequals(name, "columns");
  if (kw(name_end + 1, "select") || kw(name_end + 1, "with") || (syntax && kw(name_end + 1, "from"))) f.kind = FK::Query;
  i = name_end + 1;
  // A higher-order function takes a function by its bare name where a lambda goes
  // (arrayMap(toString, a)), and ClickHouse looks through brackets, aliases, ALL and unary plus
  // around it ((file), file AS f, ALL file, +file): arrayMap(file, ['/etc/x']) read files. So a
  // first argument that is no lambda may hold no name of a refused function at all (a column of
  // such a name there must be qualified); empty parameters (arrayMap()(file, ...)) are refused.
  if (istartsWith(name, "array") || istartsWith(name, "map")) {
    if (type(i) == TT::ClosingRoundBracket && type(i + 1) == TT::OpeningRoundBracket)
      return fail(ErrorCode::FORBIDDEN_FUNCTION, i, "'" + name + "()(...)' is not allowed: call " + name + "(...) without the empty parameters");
    size_t depth = 0;
    bool lambda = false;
    size_t end = i;
    for (; end < toks_.size(); ++end) {
      TT t = type(end);
      if (t == TT::OpeningRoundBracket || t == TT::OpeningSquareBracket) ++depth;
      else if (t == TT::ClosingRoundBracket || t == TT::ClosingSquareBracket) { if (depth == 0) break; --depth; }
      else if (t == TT::Comma && depth == 0) break;
      else if (t == TT::Arrow) lambda = true;
      else if (t == TT::EndOfStream) break;
    }
    for (size_t k = i; !lambda && k < end; ++k) {
      if (type(k) != TT::BareWord && type(k) != TT::QuotedIdentifier) continue;
      if (type(k + 1) == TT::OpeningRoundBracket || type(k + 1) == TT::Dot || (k > 0 && type(k - 1) == TT::Dot)) continue;
      std::string ref;
      if (!identText(k, ref)) return false;
      if (isDeniedFunction(ref))
        return fail(ErrorCode::FORBIDDEN_FUNCTION, k, "function '" + ref + "' is not allowed (as the function " + name + " applies); a column of that name: qualify it (t." + ref + ")");
    }
  }
  if (flags & kTableLiteral) {
    // dictGet('dict', ...), joinGet('table', ...): the literal must name a map entry.
    if (type(i) != TT::StringLiteral || *tok(i).begin != '\'' || (type(i + 1) != TT::Comma && type(i + 1) != TT::ClosingRoundBracket))
      return fail(ErrorCode::FORBIDDEN_FUNCTION, i, "'" + name + "' needs a dictionary or table name as a string literal");
    std::string target;
    if (!decodeQuoted(tok(i).text(), target)) return fail(ErrorCode::SYNTAX_ERROR, i, "escape sequence not accepted in a name");
    const NameEntry* e = names_.find(target);
    if (!e) {
      auto dot = target.find('.');
      if (dot != std::string::npos) {
        std::string db = target.substr(0, dot);
        if (db == "system" || iequals(db, "information_schema") || !names_.hasDatabase(db))
          return fail(ErrorCode::FORBIDDEN_DATABASE, i, "database '" + db + "' may not be read");
      }
      return fail(ErrorCode::UNKNOWN_TABLE, i, "unknown dictionary or table '" + target + "'");
    }
    if (e->kind != EntryKind::Table || e->dotted.empty())
      return fail(ErrorCode::UNKNOWN_TABLE, i, "'" + target + "' is not a table or dictionary");
    if (!grow(i, tok(i).size(), 2 * e->dotted.size() + 2, *e)) return false;
    std::string lit = "'";
    for (char c : e->dotted) {
      if (c == '\'' || c == '\\') lit += '\\';
      lit += c;
    }
    lit += '\'';
    out_.refs.push_back({off(i), static_cast<uint32_t>(tok(i).size()), names_.indexOf(e), RefKind::Literal});
    edits_.push_back({off(i), off(i) + static_cast<uint32_t>(tok(i).size()), std::move(lit)});
  }
  return true;
}

// At i: the word IN used as an operator.
bool Scanner::inOperator(size_t& i) {
  size_t j = i + 1;
  // "x IN (t)" is "x IN t": a lone name in brackets is a table too.
  while (type(j) == TT::OpeningRoundBracket) ++j;
  // A subquery starts with SELECT, WITH or FROM in brackets; any other word, keywords
  // included ("x IN where"), is a name ClickHouse may take for a table.
  const Kw first = word(j) ? clauseKeyword(tok(j).text()) : Kw::None;
  const bool subquery = j > i + 1 && (first == Kw::Select || first == Kw::With || first == Kw::From);
  if (ident(j) && !subquery) {
    size_t e = chainEnd(j);
    // In brackets: "(t)", "(t AS a)", "(t a)" are all the table t to ClickHouse.
    bool lone = j == i + 1 ? type(e) != TT::OpeningRoundBracket
                           : (type(e) == TT::ClosingRoundBracket || kw(e, "as") ||
                              (ident(e) && type(e + 1) == TT::ClosingRoundBracket));
    if (lone) {
      if (!resolveTable(j, e, RefKind::In, true)) return false;
      skip_chain_ = j;
    }
  }
  ++i;
  return true;
}

// Whether the settings list that goes on at token k (after a value) ends the query at the
// outermost level: only "name = literal" pairs, then the end, a ';' or FORMAT.
bool Scanner::endsQuery(size_t k) const {
  if (frames_.size() != 1) return false;
  while (type(k) == TT::Comma) {
    if (!ident(k + 1) || type(k + 2) != TT::Equals) return false;
    k += 3;
    if (type(k) == TT::Minus) ++k;
    ++k;
  }
  return type(k) == TT::EndOfStream || type(k) == TT::Semicolon || kw(k, "format");
}

bool Scanner::setting(size_t& i) {
  // Every "name = literal" of the clause, here: the main loop saw only bare words as settings, so
  // a quoted name after a comma (consumed here) passed as a plain identifier, unchecked
  // (`SETTINGS join_use_nulls = 0, `max_threads` = 8` in a subquery escaped the tenant's thread
  // cap). Names are bare and values plain literals, so that Roost's split of the final clause
  // (query/run.ts, splitUserSettings) reads every clause this accepts.
  for (;;) {
    std::string name;
    if (ident(i) && !word(i))
      return fail(ErrorCode::SYNTAX_ERROR, i, "write a setting's name without quotes");
    if (!word(i) || !identText(i, name)) return fail(ErrorCode::SYNTAX_ERROR, i, "expected a setting name");
    if (!isAllowedSetting(name)) return fail(ErrorCode::FORBIDDEN_SETTING, i, "setting '" + name + "' may not be changed");
    if (type(i + 1) != TT::Equals) return fail(ErrorCode::SYNTAX_ERROR, i + 1, "expected '='");
    size_t v = i + 2;
    if (type(v) == TT::Minus && type(v + 1) == TT::Number) ++v;
    bool plainNumber = false;
    if (type(v) == TT::Number) {
      std::string_view t = tok(v).text();
      plainNumber = !t.empty() && t.find_first_not_of("0123456789.") == std::string_view::npos;
    }
    bool literal = plainNumber || (type(v) == TT::StringLiteral && *tok(v).begin == '\'') || kw(v, "true") || kw(v, "false");
    if (!literal) return fail(ErrorCode::FORBIDDEN_SETTING, v, "setting values must be literals (a number in digits, a 'string', true or false)");
    if (name == "max_threads" && !endsQuery(v + 1)) {
      // Roost caps the query's own (final) SETTINGS at the tenant's share of the CPU; a SETTINGS
      // clause of a subquery, or of one SELECT of a UNION, is applied by ClickHouse as written.
      return fail(ErrorCode::FORBIDDEN_SETTING, i,
                  "max_threads may only be set in the SETTINGS clause at the end of the query, not in a subquery or before "
                  "UNION");
    }
    i = v + 1;
    if (type(i) != TT::Comma && type(i) != TT::ClosingRoundBracket && type(i) != TT::Semicolon && type(i) != TT::EndOfStream &&
        !kw(i, "format"))
      return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected token after a setting");
    if (type(i) != TT::Comma) return true;
    ++i;
  }
}

bool Scanner::format(size_t& i) {
  // i: the FORMAT keyword
  if (frames_.size() != 1) return fail(ErrorCode::FORMAT_NOT_ALLOWED, i, "FORMAT is only allowed at the end of the query");
  if (!opt_.allow_format) return fail(ErrorCode::FORMAT_NOT_ALLOWED, i, "FORMAT is not allowed here");
  if (!out_.format.empty()) return fail(ErrorCode::SYNTAX_ERROR, i, "FORMAT given twice");
  std::string name;
  if (!ident(i + 1)) return fail(ErrorCode::SYNTAX_ERROR, i + 1, "expected a format name");
  if (!identText(i + 1, name)) return false;
  if (!isAllowedFormat(name)) return fail(ErrorCode::UNSUPPORTED_FORMAT, i + 1, "format '" + name + "' is not supported");
  out_.format = name;
  out_.format_offset = off(i + 1);
  format_begin_ = off(i);
  format_end_ = static_cast<uint32_t>(tok(i + 1).end - q_.data());
  frames_.back().clause = CL::Format;
  i += 2;
  return true;
}

bool Scanner::onClause(Kw k, size_t& i) {
  Frame& f = frames_.back();
  switch (k) {
    case Kw::Select:
      f.clause = CL::Select;
      f.with_elem = false;
      break;
    case Kw::From:
      if (f.clause == CL::OrderBy && f.fill) break;
      f.clause = CL::FromTable;
      break;
    case Kw::Join:
      f.clause = (i > 0 && kw(i - 1, "array")) ? CL::ArrayJoin : CL::FromTable;
      break;
    case Kw::Where: case Kw::Group: case Kw::Having: case Kw::Limit: case Kw::Window: case Kw::Qualify:
      f.clause = CL::Other;
      break;
    case Kw::Order:
      f.clause = CL::OrderBy;
      f.fill = false;
      break;
    case Kw::Settings:
      // "WITH c AS (SELECT 1) SETTINGS …" is no query: said here, as at its end.
      if (f.kind == FK::Query && incomplete(f.clause))
        return fail(ErrorCode::SYNTAX_ERROR, i, "incomplete query before SETTINGS");
      f.clause = CL::Settings;
      ++i;
      return setting(i);
    case Kw::Format:
      return format(i);
    case Kw::SetOp:
      // ClickHouse applies the first SELECT's WITH to every SELECT of the union: those CTEs and
      // aliases stay visible. A later SELECT's own WITH is its own: after it, a name it defined is
      // a table of the session's current database to ClickHouse, so it leaves the scope here.
      // A recursive CTE's body: from its second member on, its name is the CTE itself — when
      // the body is a UNION ALL. Any other set operation there (a later EXCEPT, a first member
      // `A UNION DISTINCT B`) makes ClickHouse read the body as no recursion at all, and the
      // name as a table of the session's current database: refused.
      {
        const bool unionAll = iequals(tok(i).text(), "union") && kw(i + 1, "all");
        if (!f.self_cte.empty() && !unionAll) {
          // The body's first set operation is another one: no recursion so far, its name in
          // scope nowhere in it (an element of a WITH RECURSIVE list need not recurse). After a
          // UNION ALL the name was in scope already: refused.
          if (f.union_mark != UINT32_MAX)
            return fail(ErrorCode::SYNTAX_ERROR, i, "the members of a WITH RECURSIVE body may only be joined by UNION ALL; put other set operations in brackets inside a member");
          f.self_cte.clear();
          f.self_cleared = true;
        } else if (f.self_cleared && unionAll) {
          // `A EXCEPT B UNION ALL C`: ClickHouse recurses in C, where the name was left a table.
          return fail(ErrorCode::SYNTAX_ERROR, i, "the members of a WITH RECURSIVE body may only be joined by UNION ALL; put the first member's set operation in brackets");
        }
      }
      if (f.union_mark == UINT32_MAX) {
        f.union_mark = static_cast<uint32_t>(scope_.size());
        f.first_with = f.own_with || f.member_with;
      } else {
        scope_.resize(f.union_mark);
      }
      if (!f.self_cte.empty()) scope_.push_back({f.self_cte, false});
      f.clause = CL::Start;
      f.own_with = false;
      break;
    case Kw::Into:
      return fail(ErrorCode::FORBIDDEN_CLAUSE, i, "INTO OUTFILE is not allowed");
    case Kw::With:
      if (f.clause == CL::Start) {
        f.clause = CL::With;
        f.with_elem = true;
        f.own_with = true;
        if (kw(i + 1, "recursive")) { f.recursive = true; ++i; }
      } else if (kw(i + 1, "fill")) {
        f.fill = true;
      }
      break;
    case Kw::None:
      break;
  }
  ++i;
  return true;
}

bool Scanner::onWord(size_t& i) {
  Frame& f = frames_.back();
  if (opt_.guard_aliases && with_alias_ == SIZE_MAX && kw(i, "as") && ident(i + 1)) {
    for (size_t k = frames_.size(); k > 0; --k) {
      if (frames_[k - 1].kind != FK::Query) continue;
      if (frames_[k - 1].clause == CL::With) with_alias_ = i;
      break;
    }
  }
  if (i == skip_chain_) { i = chainEnd(i); return true; }
  bool after_dot = i > 0 && type(i - 1) == TT::Dot;
  if (after_dot) { ++i; return true; }
  size_t e = chainEnd(i);
  if (e > i + 1) {
    // Defence in depth: no db.name anywhere may name system or information_schema.
    std::string first;
    if (!identText(i, first)) return false;
    if (first == "system" || iequals(first, "information_schema"))
      return fail(ErrorCode::FORBIDDEN_DATABASE, i, "database '" + first + "' may not be read");
  }
  const bool bare = word(i) && e == i + 1;
  std::string_view w = tok(i).text();

  if (f.kind == FK::Query && f.clause == CL::Settings && bare && !kw(i, "format")) return setting(i);
  if (f.kind == FK::Query && f.clause == CL::Format) {
    if (bare && kw(i, "settings")) { f.clause = CL::Settings; ++i; return setting(i); }
    return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected token after FORMAT");
  }

  // Where a table is expected, ClickHouse reads any word as a table name: "FROM where",
  // "JOIN group ON ...", "FROM t, limit" name tables called where, group and limit. They
  // are resolved like any other name (a data source may be called so), never passed on
  // unqualified (they would reach the engine's current database).
  if (bare && f.kind == FK::Query && f.clause == CL::FromTable && type(i + 1) != TT::OpeningRoundBracket &&
      clauseKeyword(w) != Kw::None)
    return tableExpression(i);

  // Clause keywords of the enclosing query.
  Kw k = bare ? clauseKeyword(w) : Kw::None;
  if (k == Kw::Format && type(i + 1) == TT::OpeningRoundBracket) k = Kw::None;  // format('{}', x)
  if (k == Kw::Select && f.kind == FK::Func) return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected SELECT");
  if (k != Kw::None) {
    if (f.kind == FK::Parens && (k == Kw::Select || k == Kw::From || k == Kw::With)) {
      f.kind = FK::Query;  // ((SELECT 1) UNION ALL SELECT 2), (FROM t SELECT x)
    }
    if (f.kind == FK::Query) {
      if (k == Kw::SetOp && w.size() == 6 && i == matcher_end_ + 1) {
        // SELECT * EXCEPT (a, b) / EXCEPT a: a column matcher modifier, not a set operation.
        if (type(i + 1) == TT::OpeningRoundBracket) { pending_modifier_ = true; ++i; return true; }
        i += 1;
        if (ident(i)) { matcher_end_ = i; ++i; }
        return true;
      }
      if (k == Kw::Join) {
        if (f.clause == CL::Select || f.clause == CL::Start || f.clause == CL::With)
          return fail(ErrorCode::SYNTAX_ERROR, i, "JOIN without FROM");
      }
      if (k == Kw::With && f.clause != CL::Start && !kw(i + 1, "fill") && !kw(i + 1, "totals") && !kw(i + 1, "rollup") &&
          !kw(i + 1, "cube") && !kw(i + 1, "ties"))
        return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected WITH");
      if (!(k == Kw::From && f.clause == CL::OrderBy && f.fill)) return onClause(k, i);
    }
  }

  if (f.kind == FK::Query) {
    switch (f.clause) {
      case CL::Start:
        if (frames_.size() == 1 && i == 0) return fail(ErrorCode::NOT_A_SELECT, i, "only SELECT queries are allowed");
        if (bare && (kw(i, "all") || kw(i, "distinct"))) { ++i; return true; }
        return fail(ErrorCode::SYNTAX_ERROR, i, "expected SELECT");
      case CL::FromTable:
        return tableExpression(i);
      case CL::FromAfter: case CL::FromExpr: case CL::JoinOn: case CL::ArrayJoin: {
        if (bare && inSet(w, kJoinWords)) {
          bool matched = false;
          if (!joinWords(i, matched)) return false;
          if (matched) return true;
        }
        if (bare && (kw(i, "on") || kw(i, "using")) && f.clause != CL::ArrayJoin) {
          f.clause = CL::JoinOn;
          f.alias_ok = false;
          ++i;
          return true;
        }
        if (f.clause == CL::FromAfter) {
          if (bare && (kw(i, "final") || kw(i, "stream"))) { f.alias_ok = false; ++i; return true; }
          if (bare && kw(i, "sample")) { f.clause = CL::FromExpr; ++i; return true; }
          if (bare && kw(i, "as") && ident(i + 1)) { f.alias_ok = false; i += 2; return true; }
          if (f.alias_ok && e == i + 1 && !(bare && inSet(w, kNotAlias))) { f.alias_ok = false; ++i; return true; }
          return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected word after a table");
        }
        break;
      }
      case CL::With:
        if (f.with_elem && e == i + 1 && kw(i + 1, "as") && type(i + 2) == TT::OpeningRoundBracket &&
            (kw(i + 3, "select") || kw(i + 3, "with") || kw(i + 3, "from") || type(i + 3) == TT::OpeningRoundBracket)) {
          // WITH name AS (subquery): a common table expression, not a table.
          std::string name;
          if (!identText(i, name)) return false;
          f.with_elem = false;
          // WITH RECURSIVE: ClickHouse recurses only in the members of the body's UNION ALL after
          // the first (and the subqueries inside them). Anywhere else — a body without UNION, its
          // first member, a nested WITH — the name is a table of the session's current database,
          // which the analyzer must qualify or refuse: it was in scope in the whole body (and in
          // nested WITHs), and `WITH RECURSIVE `/path` AS (SELECT * FROM `/path`) …` read files.
          const bool recursive = f.recursive;
          if (!push(FK::Parens, i + 2)) return false;
          Frame& body = frames_.back();
          body.kind = type(i + 3) == TT::OpeningRoundBracket ? FK::Parens : FK::Query;
          body.must_query = true;
          body.on_close = OnClose::RegisterCte;
          if (recursive) body.self_cte = name;
          body.cte_name = std::move(name);
          i += 3;
          return true;
        }
        f.with_elem = false;
        if (bare && kw(i, "as") && ident(i + 1)) {
          std::string name;
          if (!identText(i + 1, name)) return false;
          scope_.push_back({std::move(name), true});
          i += 2;
          return true;
        }
        break;
      default:
        break;
    }
  }

  // APPLY after a column matcher takes a function name.
  if (bare && kw(i, "apply") && i == matcher_end_ + 1) {
    size_t n = i + 1;
    bool parens = type(n) == TT::OpeningRoundBracket;
    if (parens) ++n;
    if (ident(n) && type(n + 1) != TT::OpeningRoundBracket && type(n + 1) != TT::Arrow && type(n + 1) != TT::Dot &&
        (!parens || type(n + 1) == TT::ClosingRoundBracket)) {
      std::string fn;
      uint8_t flags;
      if (!identText(n, fn)) return false;
      if (!lookupFunction(fn, flags) || (flags & kTableLiteral))
        return fail(ErrorCode::FORBIDDEN_FUNCTION, n, "function '" + fn + "' is not allowed");
      i = parens ? n + 2 : n + 1;
      matcher_end_ = i - 1;
      return true;
    }
    if (parens) pending_modifier_ = true;
    ++i;
    return true;
  }
  if (bare && kw(i, "replace") && i == matcher_end_ + 1 && type(i + 1) == TT::OpeningRoundBracket) {
    pending_modifier_ = true;
    ++i;
    return true;
  }

  // CAST(x AS Type)
  if (bare && f.kind == FK::Func && f.is_cast && kw(i, "as")) {
    ++i;
    return skipType(i, true);
  }

  // The IN operator (x IN t, x NOT IN (t), x GLOBAL IN db.t); position(a IN b) is not.
  // Whatever stands before it, "IN name" is read as a table reference: the safe reading.
  if (bare && kw(i, "in") && !(f.kind == FK::Func && f.is_position)) {
    size_t p = i;
    if (p > 0 && kw(p - 1, "not")) --p;
    if (p > 0 && kw(p - 1, "global")) --p;
    if (type(i + 1) != TT::OpeningRoundBracket || prevIsOperandEnd(p)) return inOperator(i);
  }

  if (type(e) == TT::OpeningRoundBracket) return functionCall(i, e);
  i = e;
  return true;
}

bool Scanner::run() {
  if (!lex()) return false;
  if (toks_.size() == 1) return fail(ErrorCode::SYNTAX_ERROR, 0, "empty query");
  Frame top;
  top.kind = FK::Query;
  frames_.push_back(std::move(top));
  // Only SELECT, WITH ... SELECT, FROM ... SELECT or a bracketed SELECT.
  if (!(kw(0, "select") || kw(0, "with") || kw(0, "from") || type(0) == TT::OpeningRoundBracket)) {
    // A statement ClickHouse knows is refused as not a SELECT; anything else (a typo like
    // "selec") is a syntax error, which is what the user has to fix.
    static constexpr const char* kStatements[] = {
        "insert", "alter", "create", "drop", "truncate", "rename", "exchange", "attach", "detach", "optimize",
        "system", "kill", "set", "use", "grant", "revoke", "show", "describe", "desc", "explain", "check", "exists",
        "delete", "update", "undrop", "backup", "restore", "watch", "move", "begin", "commit", "rollback", "replace",
        "values", "table", "parallel"};
    for (const char* st : kStatements)
      if (kw(0, st)) return fail(ErrorCode::NOT_A_SELECT, 0, "only SELECT queries are allowed");
    if (type(0) == TT::BareWord)
      return fail(ErrorCode::SYNTAX_ERROR, 0, "unknown statement \"" + std::string(tok(0).text()) + "\": a query starts with SELECT (or WITH)");
    return fail(ErrorCode::SYNTAX_ERROR, 0, "a query starts with SELECT (or WITH)");
  }
  size_t i = 0;
  while (type(i) != TT::EndOfStream) {
    Frame& f = frames_.back();
    switch (type(i)) {
      case TT::BareWord: case TT::QuotedIdentifier:
        if (!onWord(i)) return false;
        continue;
      case TT::OpeningRoundBracket: {
        if (f.kind == FK::Query && f.clause == CL::FromTable) {
          if (!tableExpression(i)) return false;
          continue;
        }
        if (f.kind == FK::Query && f.clause == CL::FromAfter) return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected '(' after a table");
        bool modifier = pending_modifier_;
        pending_modifier_ = false;
        bool inner_must = f.must_query && f.kind == FK::Parens && i == f.open + 1;
        // A bracketed member of a set operation: `(…) UNION ALL (…)`, `((…))` (not a subquery in FROM or IN).
        const bool member = (f.kind == FK::Query && f.clause == CL::Start) || (f.member && f.kind == FK::Parens && i == f.open + 1);
        if (!push(FK::Parens, i)) return false;
        Frame& p = frames_.back();
        p.is_matcher = modifier;
        p.must_query = inner_must;
        p.member = member;
        if (kw(i + 1, "select") || kw(i + 1, "with") || kw(i + 1, "from")) p.kind = FK::Query;
        else if (inner_must && type(i + 1) != TT::OpeningRoundBracket) return fail(ErrorCode::SYNTAX_ERROR, i + 1, "expected a subquery");
        ++i;
        continue;
      }
      case TT::OpeningSquareBracket:
        if (!push(FK::Square, i)) return false;
        ++i;
        continue;
      case TT::OpeningCurlyBrace:
        // {name:Type} is a query parameter: the server never binds them, refuse.
        if (ident(i + 1) && type(i + 2) == TT::Colon) return fail(ErrorCode::FORBIDDEN_CLAUSE, i, "query parameters are not allowed");
        if (!push(FK::Brace, i)) return false;
        ++i;
        continue;
      case TT::ClosingRoundBracket: case TT::ClosingSquareBracket: case TT::ClosingCurlyBrace:
        if (!pop(i)) return false;
        ++i;
        continue;
      case TT::Comma:
        if (f.kind == FK::Query) {
          if (f.clause == CL::FromAfter || f.clause == CL::FromExpr || f.clause == CL::JoinOn) f.clause = CL::FromTable;
          else if (f.clause == CL::With) f.with_elem = true;
          else if (f.clause == CL::OrderBy) f.fill = false;
          else if (f.clause == CL::Settings) { ++i; if (!setting(i)) return false; continue; }
          else if (f.clause == CL::FromTable) return fail(ErrorCode::SYNTAX_ERROR, i, "expected a table");
        }
        ++i;
        continue;
      case TT::Semicolon:
        if (frames_.size() != 1) return fail(ErrorCode::SYNTAX_ERROR, i, "';' inside brackets");
        if (type(i + 1) != TT::EndOfStream) return fail(ErrorCode::MULTIPLE_STATEMENTS, i + 1, "only one statement is allowed");
        semicolon_ = i;
        ++i;
        continue;
      case TT::DoubleColon:
        ++i;
        if (!skipType(i, false)) return false;
        continue;
      case TT::Asterisk: {
        TT p = i > 0 ? type(i - 1) : TT::Comma;
        if (p == TT::Comma || p == TT::OpeningRoundBracket || p == TT::Dot ||
            (i > 0 && (kw(i - 1, "select") || kw(i - 1, "distinct") || kw(i - 1, "all"))))
          matcher_end_ = i;
        ++i;
        continue;
      }
      case TT::DollarSign: case TT::At: case TT::DoubleAt: case TT::VerticalDelimiter:
        return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected token");
      default:
        if (f.kind == FK::Query && (f.clause == CL::FromTable || f.clause == CL::Start))
          return fail(ErrorCode::SYNTAX_ERROR, i, f.clause == CL::Start ? "expected SELECT" : "expected a table");
        if (f.kind == FK::Query && f.clause == CL::FromAfter) return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected token after a table");
        if (f.kind == FK::Query && f.clause == CL::Format) return fail(ErrorCode::SYNTAX_ERROR, i, "unexpected token after FORMAT");
        ++i;
        continue;
    }
  }
  if (frames_.size() != 1) return fail(ErrorCode::SYNTAX_ERROR, frames_.back().open, "unclosed bracket");
  if (incomplete(frames_.back().clause)) return fail(ErrorCode::SYNTAX_ERROR, i, "incomplete query");
  // Options::guard_aliases: ClickHouse's old query analyzer carries every alias a WITH clause
  // defines (`WITH 'acme' AS org`, or nested: `WITH tuple('acme' AS org) AS z`) into the
  // subqueries of its query and replaces that name there — inside an inlined pipe too, where a
  // condition on a fixed parameter then held for every row. So no WITH alias where a pipe or node
  // is read (whatever its name: naming the clash would tell the pipe's hidden names one query at a time).
  if (with_alias_ != SIZE_MAX) {
    for (const TableRef& r : out_.refs)
      if (names_.at(r.entry).kind == EntryKind::Query)
        return fail(ErrorCode::FORBIDDEN_CLAUSE, with_alias_,
                    "a query reading a pipe may not define aliases in WITH with this credential (it has fixed parameters): a ClickHouse server "
                    "with the old query analyzer carries them into the pipe; write the value where it is used, or name it in the SELECT list");
  }
  out_.sql = render();
  return true;
}

std::string Scanner::render() {
  if (format_end_ > format_begin_) edits_.push_back({format_begin_, format_end_, std::string()});
  if (semicolon_ != SIZE_MAX) edits_.push_back({off(semicolon_), off(semicolon_) + 1, std::string()});
  // A comment inside a rewritten span (db /* c */ . t, FORMAT /* c */ JSON) goes with the span.
  std::sort(edits_.begin(), edits_.end(),
            [](const Edit& a, const Edit& b) { return a.begin != b.begin ? a.begin < b.begin : a.end > b.end; });
  size_t extra = 0;
  for (const auto& e : edits_) extra += e.text.size();
  std::string s;
  s.reserve(q_.size() + extra);
  size_t pos = 0;
  for (const auto& e : edits_) {
    if (e.begin < pos) continue;  // inside the previous edit
    s.append(q_.data() + pos, e.begin - pos);
    s += e.text;
    pos = e.end;
  }
  s.append(q_.data() + pos, q_.size() - pos);
  // Trailing whitespace left by a stripped FORMAT or ';' is noise.
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

bool decodeQuoted(std::string_view t, std::string& out) {
  out.clear();
  if (t.size() < 2) return false;
  char q = t.front();
  if ((q != '\'' && q != '"' && q != '`') || t.back() != q) return false;
  for (size_t i = 1; i + 1 < t.size(); ++i) {
    char c = t[i];
    if (c == '\\') {
      char n = t[i + 1];
      if (i + 2 >= t.size() + 0 && i + 1 == t.size() - 1) return false;
      if (n != '\\' && n != '\'' && n != '"' && n != '`') return false;
      out += n;
      ++i;
    } else if (c == q) {
      if (t[i + 1] != q || i + 1 == t.size() - 1) return false;
      out += q;
      ++i;
    } else {
      out += c;
    }
  }
  return true;
}

// The SQL of a query inlined as a subquery, without max_threads in its final SETTINGS clause.
// Roost caps max_threads in the final SETTINGS of the query it runs at the tenant's share of the
// CPU, but ClickHouse applies a subquery's own SETTINGS as written: a pipe node that sets
// max_threads, read by another pipe or by /v0/sql, would otherwise run on more threads than the
// tenant has. max_threads changes only speed, never results, so dropping it is safe; the outer
// query's (capped) value applies. Other settings are kept as written.
std::string withoutMaxThreads(const std::string& sql) {
  struct Tok {
    TokenType type;
    size_t begin, end;
  };
  std::vector<Tok> toks;
  Lexer lx(sql.data(), sql.data() + sql.size());
  for (;;) {
    Token t = lx.next();
    if (t.isError()) return sql;  // not ours to fix: the analysis of the outer query reports it
    if (!t.isSignificant()) continue;
    toks.push_back({t.type, static_cast<size_t>(t.begin - sql.data()), static_cast<size_t>(t.end - sql.data())});
    if (t.isEnd()) break;
  }
  auto word = [&](size_t k, std::string_view w) {
    return toks[k].type == TokenType::BareWord && iequals(std::string_view(sql).substr(toks[k].begin, toks[k].end - toks[k].begin), w);
  };
  // The last SETTINGS at the outermost level followed only by "name = literal" pairs up to the end
  // (or ';' or FORMAT).
  size_t depth = 0;
  for (size_t k = 0; k + 1 < toks.size(); ++k) {
    TokenType ty = toks[k].type;
    if (ty == TokenType::OpeningRoundBracket || ty == TokenType::OpeningSquareBracket || ty == TokenType::OpeningCurlyBrace) {
      ++depth;
      continue;
    }
    if (ty == TokenType::ClosingRoundBracket || ty == TokenType::ClosingSquareBracket || ty == TokenType::ClosingCurlyBrace) {
      if (depth > 0) --depth;
      continue;
    }
    if (depth != 0 || !word(k, "settings")) continue;
    struct Pair {
      size_t first, last;  // token indexes of the name and of the value
      bool drop;
    };
    std::vector<Pair> pairs;
    size_t j = k + 1;
    bool ok = true;
    for (;;) {
      if (toks[j].type != TokenType::BareWord && toks[j].type != TokenType::QuotedIdentifier) {
        ok = false;
        break;
      }
      if (toks[j + 1].type != TokenType::Equals) {
        ok = false;
        break;
      }
      size_t v = j + 2;
      if (toks[v].type == TokenType::Minus) ++v;
      TokenType vt = toks[v].type;
      if (vt != TokenType::Number && vt != TokenType::StringLiteral && vt != TokenType::BareWord) {
        ok = false;
        break;
      }
      std::string name;
      std::string_view raw = std::string_view(sql).substr(toks[j].begin, toks[j].end - toks[j].begin);
      if (toks[j].type == TokenType::QuotedIdentifier) {
        if (!decodeQuoted(raw, name)) name.clear();
      } else {
        name.assign(raw);
      }
      pairs.push_back({j, v, name == "max_threads"});
      j = v + 1;
      if (toks[j].type == TokenType::Comma) {
        ++j;
        continue;
      }
      break;
    }
    if (!ok || !(toks[j].type == TokenType::EndOfStream || toks[j].type == TokenType::Semicolon || word(j, "format"))) continue;
    bool any = false;
    for (const Pair& p : pairs) any = any || p.drop;
    if (!any) return sql;
    std::string kept;
    for (const Pair& p : pairs) {
      if (p.drop) continue;
      kept += kept.empty() ? "SETTINGS " : ", ";
      kept.append(sql, toks[p.first].begin, toks[p.last].end - toks[p.first].begin);
    }
    size_t cut_begin = toks[k].begin, cut_end = toks[pairs.back().last].end;
    std::string out = sql.substr(0, cut_begin);
    if (kept.empty()) {
      while (!out.empty() && (out.back() == ' ' || out.back() == '\n' || out.back() == '\t' || out.back() == '\r')) out.pop_back();
    }
    out += kept;
    out.append(sql, cut_end, std::string::npos);
    return out;
  }
  return sql;
}

void NameMap::setQuerySql(size_t i, std::string sql) {
  if (entries_[i].kind == EntryKind::Query) entries_[i].sql = withoutMaxThreads(sql);
}

bool NameMap::add(std::string name, EntryKind kind, std::string sql) {
  if (name.empty() || index_.count(name)) return false;
  NameEntry e{std::move(name), kind, std::move(sql), {}};
  if (kind == EntryKind::Query) e.sql = withoutMaxThreads(e.sql);
  if (kind == EntryKind::Table) {
    // The qualified SQL must be `db`.`name` (or a bare name): it is spliced into queries.
    Lexer lx(e.sql.data(), e.sql.data() + e.sql.size());
    std::string dotted, part;
    bool want_ident = true;
    int parts = 0;
    for (;;) {
      Token t = lx.next();
      if (!t.isSignificant()) {
        if (t.type == TokenType::Comment) return false;
        continue;
      }
      if (t.isEnd()) break;
      if (want_ident && t.isIdentifier()) {
        if (t.type == TokenType::BareWord) part.assign(t.begin, t.end);
        else if (!decodeQuoted(t.text(), part)) return false;
        if (!dotted.empty()) dotted += '.';
        dotted += part;
        ++parts;
        want_ident = false;
      } else if (!want_ident && t.type == TokenType::Dot) {
        want_ident = true;
      } else {
        return false;
      }
    }
    if (want_ident || parts > 2) return false;
    e.dotted = std::move(dotted);
  }
  auto dot = e.name.find('.');
  if (dot != std::string::npos) databases_.insert(e.name.substr(0, dot));
  index_.emplace(e.name, entries_.size());
  entries_.push_back(std::move(e));
  return true;
}

const NameEntry* NameMap::find(std::string_view name) const noexcept {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

bool NameMap::hasDatabase(std::string_view db) const noexcept { return databases_.find(db) != databases_.end(); }

bool analyze(std::string_view query, const NameMap& names, const Options& options, Analysis& out, Error& err) {
  out = Analysis{};
  err = Error{};
  Scanner s(query, names, options, out, err);
  return s.run();
}

namespace {
// Words after which an operand follows, in a filter: kOperatorWords and these infix or special
// syntax words (`100 DIV id`: id is an operand, not a word after one).
constexpr std::string_view kFilterOperatorWords[] = {"div", "mod", "regexp", "escape", "for", "both", "leading", "trailing", "collate", "placing"};
// Functions whose first argument, a bare interval unit, is a keyword to ClickHouse's parser.
constexpr std::string_view kUnitFunctions[] = {"dateadd", "date_add", "timestampadd", "timestamp_add", "datesub", "date_sub", "timestampsub",
                                               "timestamp_sub", "datediff", "date_diff", "timestampdiff", "timestamp_diff"};
// Interval units as ClickHouse's parser reads them (ParserIntervalKind), in lower case.
constexpr std::string_view kIntervalUnits[] = {
    "nanosecond", "nanoseconds", "sql_tsi_nanosecond", "ns", "microsecond", "microseconds", "sql_tsi_microsecond", "mcs",
    "millisecond", "milliseconds", "sql_tsi_millisecond", "ms", "second", "seconds", "sql_tsi_second", "ss", "s",
    "minute", "minutes", "sql_tsi_minute", "mi", "n", "hour", "hours", "sql_tsi_hour", "hh", "h",
    "day", "days", "sql_tsi_day", "dd", "d", "week", "weeks", "sql_tsi_week", "wk", "ww",
    "month", "months", "sql_tsi_month", "mm", "m", "quarter", "quarters", "sql_tsi_quarter", "qq", "q",
    "year", "years", "sql_tsi_year", "yyyy", "yy"};
// Literals, whatever columns there are: ClickHouse reads a bare `inf` as infinity even beside a
// column named inf (qualified, the filter would read the column: another meaning).
constexpr std::string_view kLiteralWords[] = {"null", "true", "false", "inf", "nan", "infinity"};
// Keywords that may start an operand (`NOT x`, `CASE …`, `INTERVAL 1 day`, `(SELECT …)`,
// `TRIM(BOTH …)`): where an operand stands, such a word is a column only when what follows can
// only follow an operand. Any other keyword (`limit`, `from`, `in`, `and`) standing where an
// operand stands can only be a column.
constexpr std::string_view kPrefixWords[] = {"not", "case", "when", "then", "else", "interval", "all", "any", "distinct",
                                             "select", "with", "array", "both", "leading", "trailing", "exists"};
// Infix keywords: one after a word means that word ended an operand.
constexpr std::string_view kInfixWords[] = {"and", "or", "is", "in", "like", "ilike", "between", "div", "mod", "regexp", "global"};
// Infix keywords NOT (or GLOBAL) may stand before: `x NOT IN`, `x GLOBAL IN`, `x NOT LIKE`.
constexpr std::string_view kNegatableWords[] = {"in", "like", "ilike", "between", "regexp"};
// Of the prefix words, the ones whose keyword use is often followed by a signed operand (`WHEN -1`, `NOT -x`).
constexpr std::string_view kSignedWords[] = {"not", "when", "then", "else", "interval"};

bool isOperatorWord(std::string_view w) { return inSet(w, kOperatorWords) || inSet(w, kFilterOperatorWords); }
}  // namespace

bool qualifyColumns(std::string_view expr, const std::vector<std::string>& columns, std::string_view qualifier, std::string& out, Error& err) {
  using TT = TokenType;
  std::vector<Token> toks;
  Lexer lexer(expr.data(), expr.data() + expr.size());
  for (;;) {
    Token t = lexer.next();
    if (!t.isSignificant()) continue;
    if (t.isError()) {
      err.code = ErrorCode::SYNTAX_ERROR;
      err.offset = static_cast<uint32_t>(t.begin - expr.data());
      err.message = lexErrorMessage(t, expr.data() + expr.size());
      return false;
    }
    toks.push_back(t);
    if (t.isEnd()) break;
  }
  const auto type = [&](size_t i) { return i < toks.size() ? toks[i].type : TT::EndOfStream; };
  const auto ident = [&](size_t i) { return i < toks.size() && toks[i].isIdentifier(); };
  const auto bareIs = [&](size_t i, std::string_view w) { return i < toks.size() && toks[i].type == TT::BareWord && iequals(toks[i].text(), w); };
  const auto name = [&](size_t i, std::string& n) {
    if (toks[i].type == TT::BareWord) { n.assign(toks[i].begin, toks[i].end); return true; }
    return decodeQuoted(toks[i].text(), n);
  };
  const std::unordered_set<std::string_view> cols(columns.begin(), columns.end());
  // Lambdas: `x -> …` and `(x, y) -> …`. Their parameters shadow columns from the parameter list
  // to the end of the lambda (the `,` or closing bracket at the arrow's depth), nowhere else.
  struct Lambda { size_t begin, end; std::vector<std::string> params; };
  std::vector<Lambda> lambdas;
  std::string n;
  for (size_t k = 1; k < toks.size(); ++k) {
    if (toks[k].type != TT::Arrow) continue;
    Lambda l{k - 1, toks.size(), {}};
    if (ident(k - 1)) {
      if (name(k - 1, n)) l.params.push_back(n);
    } else if (type(k - 1) == TT::ClosingRoundBracket) {
      size_t depth = 0;
      for (size_t j = k - 1; j > 0; --j) {
        if (toks[j].type == TT::ClosingRoundBracket) ++depth;
        else if (toks[j].type == TT::OpeningRoundBracket && --depth == 0) { l.begin = j; break; }
        else if (depth == 1 && ident(j) && name(j, n)) l.params.push_back(n);
      }
    }
    int depth = 0;
    for (size_t j = k + 1; j < toks.size(); ++j) {
      const TT t = toks[j].type;
      if (t == TT::OpeningRoundBracket || t == TT::OpeningSquareBracket || t == TT::OpeningCurlyBrace) ++depth;
      else if (t == TT::ClosingRoundBracket || t == TT::ClosingSquareBracket || t == TT::ClosingCurlyBrace) {
        if (depth-- == 0) { l.end = j; break; }
      } else if (t == TT::Comma && depth == 0) { l.end = j; break; }
    }
    lambdas.push_back(std::move(l));
  }
  // Subqueries in the filter (`x IN (SELECT …)`): their tokens, from `(SELECT` or `(WITH` to the
  // bracket that closes it.
  std::vector<std::pair<size_t, size_t>> subqueries;
  for (size_t k = 0; k + 1 < toks.size(); ++k) {
    // (`(select) = 3` with a column named select is that column: a word the table has as a column
    // never starts a subquery here.)
    if (toks[k].type != TT::OpeningRoundBracket || !(bareIs(k + 1, "select") || bareIs(k + 1, "with"))) continue;
    if (cols.count(toks[k + 1].text())) continue;
    size_t depth = 0, j = k;
    for (; j < toks.size(); ++j) {
      if (toks[j].type == TT::OpeningRoundBracket) ++depth;
      else if (toks[j].type == TT::ClosingRoundBracket && --depth == 0) break;
    }
    subqueries.emplace_back(k, j);
    k = j;
  }
  const auto inSubquery = [&](size_t i) {
    for (const auto& r : subqueries)
      if (i > r.first && i < r.second) return true;
    return false;
  };
  const auto shadowed = [&](size_t i, const std::string& nm) {
    for (const auto& l : lambdas)
      if (i >= l.begin && i < l.end && std::find(l.params.begin(), l.params.end(), nm) != l.params.end()) return true;
    return false;
  };
  out.clear();
  out.reserve(expr.size() + 64);
  size_t copied = 0;
  size_t lastQualified = SIZE_MAX;
  std::string chain;
  for (size_t i = 0; i < toks.size(); ++i) {
    if (!ident(i)) continue;
    const TT prev = i > 0 ? toks[i - 1].type : TT::Whitespace;
    if (prev == TT::Dot || prev == TT::DoubleColon) continue;  // inside a chain; a type after ::
    const TT next = type(i + 1);
    if (next == TT::OpeningRoundBracket || next == TT::Arrow || next == TT::StringLiteral || next == TT::Number) continue;
    const bool bare = toks[i].type == TT::BareWord;
    if (!name(i, n)) continue;  // (a name the analyzer refuses anyway)
    if (bare && inSet(toks[i].text(), kLiteralWords)) continue;
    if (bare && inSet(toks[i].text(), kPrefixWords)) {
      // A column named like a keyword that may start an operand: a reference where an operand
      // stands (the rule below: not right after one) and what follows can only follow an operand
      // (a comparison or other binary operator, a closing bracket, a comma, the end).
      const bool operandNext = next == TT::Equals || next == TT::NotEquals || next == TT::Less || next == TT::Greater ||
                               next == TT::LessOrEquals || next == TT::GreaterOrEquals || next == TT::Spaceship ||
                               next == TT::Concatenation || next == TT::Slash || next == TT::Percent || next == TT::Asterisk ||
                               next == TT::OpeningSquareBracket || next == TT::ClosingRoundBracket ||
                               next == TT::ClosingSquareBracket || next == TT::Comma || next == TT::EndOfStream || next == TT::Dot ||
                               next == TT::QuestionMark || next == TT::DoubleColon ||
                               (i + 1 < toks.size() && toks[i + 1].type == TT::BareWord && inSet(toks[i + 1].text(), kInfixWords)) ||
                               (bareIs(i + 1, "not") && !bareIs(i, "not")) ||
                               // `case + 1`, `all - 1`: a column (`WHEN -1`, `NOT -x`, `INTERVAL -1 day` are keywords).
                               ((next == TT::Minus || next == TT::Plus) && !inSet(toks[i].text(), kSignedWords));
      if (!operandNext) continue;
    }
    // `x NOT IN`, `x GLOBAL IN`, `x NOT LIKE`: the keyword, whatever columns there are.
    if (bare && i >= 2 && (bareIs(i - 1, "not") || bareIs(i - 1, "global")) && lastQualified != i - 1 &&
        inSet(toks[i].text(), kNegatableWords))
      continue;
    if (inSubquery(i)) continue;  // a subquery's names are its own (qualified, they read as correlated)
    if (i > 0) {
      const Token& p = toks[i - 1];
      if (p.type == TT::BareWord && iequals(p.text(), "as")) continue;
      // A word right after an operand is not one (INTERVAL 1 day, an alias without AS).
      // (A column named like a keyword, qualified just before, is an operand too: `from` in
      // `substring(from from 1)`.)
      const bool operandEnd = p.type == TT::Number || p.type == TT::StringLiteral || p.type == TT::QuotedIdentifier ||
                              p.type == TT::HereDoc || p.type == TT::ClosingRoundBracket || p.type == TT::ClosingSquareBracket ||
                              (p.type == TT::BareWord && (!isOperatorWord(p.text()) || lastQualified == i - 1));
      if (bare && operandEnd) continue;
      // EXTRACT(day FROM ts): the unit (extract(s, 're') is the regular expression function).
      if (bare && p.type == TT::OpeningRoundBracket && i > 1 && bareIs(i - 2, "extract") && bareIs(i + 1, "from")) continue;
      // date_diff(day, a, b), timestampadd(hour, 1, t): the unit.
      if (bare && p.type == TT::OpeningRoundBracket && i > 1 && toks[i - 2].type == TT::BareWord && inSet(toks[i - 2].text(), kUnitFunctions) &&
          next == TT::Comma && inSet(toks[i].text(), kIntervalUnits))
        continue;
    }
    if (shadowed(i, n)) continue;
    bool qualify = cols.count(n) != 0;
    chain = n;
    for (size_t j = i + 1; !qualify && type(j) == TT::Dot && ident(j + 1); j += 2) {
      std::string part;
      if (!name(j + 1, part)) break;
      chain += '.';
      chain += part;
      qualify = cols.count(chain) != 0;
    }
    if (!qualify) continue;
    lastQualified = i;
    const size_t at = static_cast<size_t>(toks[i].begin - expr.data());
    out.append(expr.substr(copied, at - copied));
    out.append(qualifier);
    out += '.';
    copied = at;
  }
  out.append(expr.substr(copied));
  return true;
}

}  // namespace roost::sql
