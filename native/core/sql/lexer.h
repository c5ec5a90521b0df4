// A ClickHouse SQL lexer: one switch on the current byte, no copies, no allocation,
// no exceptions. It follows ClickHouse's own tokenization rules, because any place
// where the two disagree (what is a comment, where a string ends) is a place where
// the analyzer would check different SQL from what the engine runs.
#pragma once
#include <cstddef>
#include "sql/token.h"

namespace roost::sql {

class Lexer {
 public:
  // max_query_size == 0 means unlimited; a token ending past it is ErrorMaxQuerySizeExceeded.
  Lexer(const char* begin, const char* end, size_t max_query_size = 0) noexcept
      : begin_(begin), pos_(begin), end_(end), max_size_(max_query_size) {}

  Token next() noexcept;

 private:
  Token nextImpl() noexcept;
  Token number(const char* start) noexcept;
  Token quoted(char quote, TokenType ok, TokenType err) noexcept;

  const char* begin_;
  const char* pos_;
  const char* end_;
  size_t max_size_;
  TokenType prev_significant_ = TokenType::Whitespace;
};

}  // namespace roost::sql
