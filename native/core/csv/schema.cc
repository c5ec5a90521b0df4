#include "csv/schema.h"

#include <cctype>

namespace roost::csv {
namespace {

bool isIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool isIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool fail(SchemaError& err, size_t at, std::string msg, bool unsupported = false) {
  err.offset = at;
  err.message = std::move(msg);
  err.unsupportedType = unsupported;
  return false;
}

void skipSpace(std::string_view s, size_t& i) {
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
}

bool startsWithWord(std::string_view s, size_t i, std::string_view word) {
  if (s.size() - i < word.size()) return false;
  for (size_t k = 0; k < word.size(); ++k)
    if (std::toupper(static_cast<unsigned char>(s[i + k])) != word[k]) return false;
  return i + word.size() == s.size() || !isIdentChar(s[i + word.size()]);
}

}  // namespace

std::string quoteIdentifier(std::string_view name) {
  std::string s = "`";
  for (char c : name) {
    if (c == '`' || c == '\\') s += '\\';
    s += c;
  }
  return s + "`";
}

bool parseSchema(std::string_view s, std::vector<Column>& out, SchemaError& err) {
  out.clear();
  size_t i = 0;
  skipSpace(s, i);
  if (i == s.size()) return fail(err, i, "empty schema");
  for (;;) {
    skipSpace(s, i);
    Column col;
    size_t nameAt = i;
    if (i < s.size() && s[i] == '`') {
      ++i;
      while (i < s.size() && s[i] != '`') col.name += s[i++];
      if (i == s.size()) return fail(err, nameAt, "unterminated `name`");
      ++i;
    } else if (i < s.size() && isIdentStart(s[i])) {
      while (i < s.size() && isIdentChar(s[i])) col.name += s[i++];
    } else {
      return fail(err, i, "expected a column name");
    }
    if (col.name.empty()) return fail(err, nameAt, "empty column name");
    for (const Column& c : out)
      if (c.name == col.name) return fail(err, nameAt, "duplicate column " + col.name);
    skipSpace(s, i);
    TypeError te;
    size_t typeAt = i;
    if (!parseType(s, i, col.type, te)) return fail(err, te.offset, te.message, te.unsupported);
    if (i == typeAt) return fail(err, typeAt, "expected a type for column " + col.name);
    skipSpace(s, i);
    // `json:$.path`, after the type or (as some write it) after the DEFAULT expression.
    auto jsonPath = [&]() -> bool {
      size_t at = i++;
      std::string inner;
      // A backtick in the path (a key holding one) is written twice, as in a quoted name.
      for (; i < s.size(); ++i) {
        if (s[i] != '`') inner += s[i];
        else if (i + 1 < s.size() && s[i + 1] == '`') inner += s[i++];
        else break;
      }
      if (i == s.size()) return fail(err, at, "unterminated `json:...`");
      ++i;
      if (inner.rfind("json:", 0) != 0) return fail(err, at, "expected `json:$.path`");
      col.jsonPath = inner.substr(5);
      if (col.jsonPath.empty() || col.jsonPath[0] != '$') return fail(err, at + 6, "a JSON path starts with $");
      skipSpace(s, i);
      return true;
    };
    if (i < s.size() && s[i] == '`' && !jsonPath()) return false;
    if (startsWithWord(s, i, "DEFAULT")) {
      i += 7;
      skipSpace(s, i);
      size_t at = i;
      int depth = 0;
      char q = 0;
      for (; i < s.size(); ++i) {
        char c = s[i];
        if (q) {
          if (c == '\\') ++i;
          else if (c == q) q = 0;
          continue;
        }
        if (c == '`' && depth == 0 && s.compare(i + 1, 5, "json:") == 0) break;
        if (c == '\'' || c == '"' || c == '`') q = c;
        else if (c == '(' || c == '[') ++depth;
        else if (c == ')' || c == ']') {
          if (--depth < 0) return fail(err, i, "unbalanced ')' in DEFAULT");
        } else if (c == ',' && depth == 0) break;
      }
      if (q) return fail(err, at, "unterminated quote in DEFAULT");
      if (depth) return fail(err, at, "unbalanced '(' in DEFAULT");
      size_t e = i;
      while (e > at && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
      if (e == at) return fail(err, at, "expected an expression after DEFAULT");
      col.defaultExpr = std::string(s.substr(at, e - at));
      col.hasDefault = true;
      if (i < s.size() && s[i] == '`') {
        if (!col.jsonPath.empty()) return fail(err, i, "a column takes one `json:` path");
        if (!jsonPath()) return false;
      }
    }
    out.push_back(std::move(col));
    skipSpace(s, i);
    if (i == s.size()) return true;
    if (s[i] != ',') {
      if (startsWithWord(s, i, "CODEC"))
        return fail(err, i, "CODEC(...) is not supported in a schema here: remove it (columns are stored with the engine's default compression)", true);
      for (const char* clause : {"MATERIALIZED", "ALIAS"})
        if (startsWithWord(s, i, clause))
          return fail(err, i, std::string(clause) + " columns are not supported in a schema here: remove the column, or compute the value in a pipe", true);
      return fail(err, i, "expected ',' or the end of the schema");
    }
    ++i;
  }
}

std::string structureOf(const std::vector<Column>& cols, bool withDefaults) {
  std::string s;
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i) s += ", ";
    s += quoteIdentifier(cols[i].name);
    s += ' ';
    s += typeToString(cols[i].type);
    if (withDefaults && cols[i].hasDefault) {
      s += " DEFAULT ";
      s += cols[i].defaultExpr;
    }
  }
  return s;
}

}  // namespace roost::csv
