// Tokens of ClickHouse SQL: a type and two pointers into the caller's text.
#pragma once
#include <cstdint>
#include <string_view>

namespace roost::sql {

// Error types come after EndOfStream so that isError() is one comparison.
#define ROOST_SQL_TOKENS(M) \
  M(Whitespace) M(Comment) M(BareWord) M(Number) M(StringLiteral) M(QuotedIdentifier) M(HereDoc) \
  M(OpeningRoundBracket) M(ClosingRoundBracket) M(OpeningSquareBracket) M(ClosingSquareBracket) \
  M(OpeningCurlyBrace) M(ClosingCurlyBrace) M(Comma) M(Semicolon) M(Dot) M(Asterisk) M(DollarSign) \
  M(Plus) M(Minus) M(Slash) M(Percent) M(Arrow) M(QuestionMark) M(Colon) M(DoubleColon) M(Equals) \
  M(NotEquals) M(Less) M(Greater) M(LessOrEquals) M(GreaterOrEquals) M(Spaceship) M(Concatenation) \
  M(PipeMark) M(At) M(DoubleAt) M(Caret) M(VerticalDelimiter) M(EndOfStream) \
  M(Error) M(ErrorMultilineCommentIsNotClosed) M(ErrorSingleQuoteIsNotClosed) \
  M(ErrorDoubleQuoteIsNotClosed) M(ErrorBackQuoteIsNotClosed) M(ErrorSingleExclamationMark) \
  M(ErrorWrongNumber) M(ErrorMaxQuerySizeExceeded)

enum class TokenType : uint8_t {
#define M(name) name,
  ROOST_SQL_TOKENS(M)
#undef M
};

const char* tokenName(TokenType t) noexcept;

struct Token {
  TokenType type = TokenType::EndOfStream;
  const char* begin = nullptr;
  const char* end = nullptr;

  bool isSignificant() const noexcept { return type != TokenType::Whitespace && type != TokenType::Comment; }
  bool isError() const noexcept { return type > TokenType::EndOfStream; }
  bool isEnd() const noexcept { return type == TokenType::EndOfStream; }
  bool isIdentifier() const noexcept { return type == TokenType::BareWord || type == TokenType::QuotedIdentifier; }
  std::string_view text() const noexcept { return {begin, static_cast<size_t>(end - begin)}; }
  size_t size() const noexcept { return static_cast<size_t>(end - begin); }
};

}  // namespace roost::sql
