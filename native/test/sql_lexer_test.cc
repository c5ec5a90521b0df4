#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "sql/lexer.h"

using roost::sql::Lexer;
using roost::sql::Token;
using roost::sql::TokenType;

namespace {

std::vector<std::pair<TokenType, std::string>> lexAll(std::string_view q, size_t max = 0) {
  Lexer lx(q.data(), q.data() + q.size(), max);
  std::vector<std::pair<TokenType, std::string>> out;
  for (;;) {
    Token t = lx.next();
    if (t.isEnd()) break;
    if (!t.isSignificant()) continue;
    out.emplace_back(t.type, std::string(t.text()));
    if (t.isError()) break;
  }
  return out;
}

TokenType only(std::string_view q) {
  auto v = lexAll(q);
  REQUIRE(v.size() == 1);
  return v[0].first;
}

}  // namespace

TEST_CASE("numbers in every ClickHouse form are one token") {
  for (const char* n : {"0", "123", "1_000_000", "0x1F", "0xdead_beef", "0b1010", "0b1_0", "1e10", "1.5e-3", "1E+9",
                        ".5", "1.", "0x1.8p3", "1.5_5"})
    CHECK_MESSAGE(only(n) == TokenType::Number, n);
  // 1abc is an identifier in ClickHouse; 1.5abc is an error.
  CHECK(only("1abc") == TokenType::BareWord);
  CHECK(only("1.5abc") == TokenType::ErrorWrongNumber);
  // x.1.1 is two tuple accesses: the lexer must not read "1.1" after a dot.
  auto v = lexAll("x.1.1");
  REQUIRE(v.size() == 5);
  CHECK(v[2].first == TokenType::Number);
  CHECK(v[2].second == "1");
}

TEST_CASE("strings and quoted identifiers with escapes") {
  CHECK(only("'a\\'b'") == TokenType::StringLiteral);
  CHECK(only("'a''b'") == TokenType::StringLiteral);
  CHECK(only("`a``b`") == TokenType::QuotedIdentifier);
  CHECK(only("\"a\\\"b\"") == TokenType::QuotedIdentifier);
  CHECK(only("x'4142'") == TokenType::StringLiteral);
  CHECK(only("b'0101'") == TokenType::StringLiteral);
  CHECK(only("'unterminated") == TokenType::ErrorSingleQuoteIsNotClosed);
  CHECK(only("`unterminated") == TokenType::ErrorBackQuoteIsNotClosed);
  CHECK(only("\"x") == TokenType::ErrorDoubleQuoteIsNotClosed);
  // A backslash before the closing quote escapes it: the string is not closed.
  CHECK(only("'abc\\'") == TokenType::ErrorSingleQuoteIsNotClosed);
}

TEST_CASE("comments: --, //, '# ', '#!', nested /* */") {
  CHECK(lexAll("-- x\n1").size() == 1);
  CHECK(lexAll("// x\n1").size() == 1);
  CHECK(lexAll("# x\n1").size() == 1);
  CHECK(lexAll("#!/bin/sh\n1").size() == 1);
  // ClickHouse reads "#x" as an error, not a comment: hiding SQL behind it must not work.
  CHECK(lexAll("#x")[0].first == TokenType::Error);
  CHECK(lexAll("/* a /* b */ c */ 1").size() == 1);
  CHECK(lexAll("/* a /* b */ 1")[0].first == TokenType::ErrorMultilineCommentIsNotClosed);
}

TEST_CASE("heredocs") {
  CHECK(only("$$a'b$$") == TokenType::HereDoc);
  CHECK(only("$tag$ x $$ y $tag$") == TokenType::HereDoc);
  CHECK(only("$a b$ x $a b$") == TokenType::HereDoc);
  CHECK(lexAll("$ x")[0].first == TokenType::DollarSign);
  CHECK(only("$abc") == TokenType::BareWord);
}

TEST_CASE("operators") {
  auto v = lexAll("a->b::c || d <> e != f <= g >= h == i <=> j ? k : l");
  std::vector<TokenType> ops;
  for (auto& [t, s] : v)
    if (t != TokenType::BareWord) ops.push_back(t);
  std::vector<TokenType> want{TokenType::Arrow,     TokenType::DoubleColon,   TokenType::Concatenation, TokenType::NotEquals,
                              TokenType::NotEquals, TokenType::LessOrEquals, TokenType::GreaterOrEquals, TokenType::Equals,
                              TokenType::Spaceship, TokenType::QuestionMark,  TokenType::Colon};
  CHECK(ops == want);
  CHECK(lexAll("!")[0].first == TokenType::ErrorSingleExclamationMark);
}

TEST_CASE("unicode spaces are whitespace, other non-ASCII bytes are errors") {
  CHECK(lexAll("SELECT\xC2\xA0" "1").size() == 2);
  CHECK(lexAll("SELECT \xE2\x80\x83 1").size() == 2);
  CHECK(lexAll("\xD0\xB0")[0].first == TokenType::Error);
}

TEST_CASE("maximum query size") {
  auto v = lexAll("SELECT 1234567890", 10);
  CHECK(v.back().first == TokenType::ErrorMaxQuerySizeExceeded);
  CHECK(lexAll("SELECT 1", 10).back().first == TokenType::Number);
}

TEST_CASE("empty input and lone characters never crash") {
  CHECK(lexAll("").empty());
  for (char c = 1; c < 127; ++c) {
    std::string s(1, c);
    (void)lexAll(s);
  }
}
