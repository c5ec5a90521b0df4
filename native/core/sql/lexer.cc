#include "sql/lexer.h"

#include <cstring>
#include <string_view>

namespace roost::sql {

const char* tokenName(TokenType t) noexcept {
  switch (t) {
#define M(name) case TokenType::name: return #name;
    ROOST_SQL_TOKENS(M)
#undef M
  }
  return "?";
}

namespace {

inline bool isWordChar(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
inline bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool isHex(char c) noexcept {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
inline bool isSpace(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Length of a UTF-8 encoded Unicode space at p (no-break space, the U+2000 block,
// ideographic space...), 0 if none. ClickHouse skips these as whitespace so that
// queries pasted from word processors work; treating fewer as whitespace than it does
// would only refuse a query, never let one through.
size_t unicodeSpace(const char* p, const char* end) noexcept {
  auto u = [](char c) { return static_cast<unsigned char>(c); };
  if (end - p >= 2 && u(p[0]) == 0xC2 && (u(p[1]) == 0xA0 || u(p[1]) == 0x85)) return 2;
  if (end - p >= 3 && u(p[0]) == 0xE2 && u(p[1]) == 0x80 && (u(p[2]) <= 0x8A || u(p[2]) == 0xA8 || u(p[2]) == 0xA9 || u(p[2]) == 0xAF)) return 3;
  if (end - p >= 3 && u(p[0]) == 0xE2 && u(p[1]) == 0x81 && u(p[2]) == 0x9F) return 3;
  if (end - p >= 3 && u(p[0]) == 0xE3 && u(p[1]) == 0x80 && u(p[2]) == 0x80) return 3;
  return 0;
}

// An underscore inside a number separates digit groups (1_000_000) only when digits
// of the same base stand on both sides of it.
inline bool isSeparator(bool block_start, bool hex, const char* p, const char* end) noexcept {
  if (block_start || p + 1 >= end || *p != '_') return false;
  return hex ? (isHex(p[-1]) && isHex(p[1])) : (isDigit(p[-1]) && isDigit(p[1]));
}

}  // namespace

Token Lexer::next() noexcept {
  Token t = nextImpl();
  if (max_size_ && static_cast<size_t>(t.end - begin_) > max_size_) t.type = TokenType::ErrorMaxQuerySizeExceeded;
  if (t.isSignificant()) prev_significant_ = t.type;
  return t;
}

Token Lexer::quoted(char quote, TokenType ok, TokenType err) noexcept {
  const char* start = pos_;
  ++pos_;
  while (pos_ < end_) {
    char c = *pos_;
    if (c == quote) {
      ++pos_;
      if (pos_ < end_ && *pos_ == quote) { ++pos_; continue; }
      return {ok, start, pos_};
    }
    if (c == '\\') {
      pos_ += 2;
      continue;
    }
    ++pos_;
  }
  pos_ = end_;
  return {err, start, end_};
}

Token Lexer::number(const char* start) noexcept {
  // The task is to find where the number ends, not to check its value.
  if (prev_significant_ == TokenType::Dot) {
    // After a dot only a plain integer: x.1.1 is two tuple accesses, not x . 1.1
    ++pos_;
    while (pos_ < end_ && (isDigit(*pos_) || isSeparator(false, false, pos_, end_))) ++pos_;
  } else {
    bool hex = false, block_start = false;
    if (end_ - pos_ > 2 && *pos_ == '0' && (pos_[1] == 'x' || pos_[1] == 'X' || pos_[1] == 'b' || pos_[1] == 'B')) {
      bool valid = (pos_[1] == 'x' || pos_[1] == 'X') ? isHex(pos_[2]) : (pos_[2] == '0' || pos_[2] == '1');
      hex = valid && (pos_[1] == 'x' || pos_[1] == 'X');
      if (valid) { pos_ += 2; block_start = true; } else { ++pos_; }
    } else {
      ++pos_;
    }
    auto digits = [&](bool h) {
      while (pos_ < end_ && ((h ? isHex(*pos_) : isDigit(*pos_)) || isSeparator(block_start, h, pos_, end_))) {
        ++pos_;
        block_start = false;
      }
    };
    digits(hex);
    if (pos_ < end_ && *pos_ == '.') { ++pos_; block_start = true; digits(hex); }
    if (end_ - pos_ > 1 && (hex ? (*pos_ == 'p' || *pos_ == 'P') : (*pos_ == 'e' || *pos_ == 'E'))) {
      ++pos_;
      block_start = true;
      if (end_ - pos_ > 1 && (*pos_ == '-' || *pos_ == '+')) ++pos_;
      digits(false);
    }
  }
  // 1abc is an identifier; 1.5abc is an error.
  if (pos_ < end_ && isWordChar(*pos_)) {
    while (pos_ < end_ && isWordChar(*pos_)) ++pos_;
    for (const char* p = start; p < pos_; ++p)
      if (!isWordChar(*p)) return {TokenType::ErrorWrongNumber, start, pos_};
    return {TokenType::BareWord, start, pos_};
  }
  return {TokenType::Number, start, pos_};
}

Token Lexer::nextImpl() noexcept {
  if (pos_ >= end_) return {TokenType::EndOfStream, end_, end_};
  const char* start = pos_;
  auto one = [&](TokenType t) { ++pos_; return Token{t, start, pos_}; };
  auto lineComment = [&]() {
    const void* nl = std::memchr(pos_, '\n', static_cast<size_t>(end_ - pos_));
    pos_ = nl ? static_cast<const char*>(nl) : end_;
    return Token{TokenType::Comment, start, pos_};
  };
  switch (*pos_) {
    case ' ': case '\t': case '\n': case '\r': case '\f': case '\v':
      ++pos_;
      while (pos_ < end_ && isSpace(*pos_)) ++pos_;
      return {TokenType::Whitespace, start, pos_};
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
      return number(start);
    case '\'': return quoted('\'', TokenType::StringLiteral, TokenType::ErrorSingleQuoteIsNotClosed);
    case '"': return quoted('"', TokenType::QuotedIdentifier, TokenType::ErrorDoubleQuoteIsNotClosed);
    case '`': return quoted('`', TokenType::QuotedIdentifier, TokenType::ErrorBackQuoteIsNotClosed);
    case '(': return one(TokenType::OpeningRoundBracket);
    case ')': return one(TokenType::ClosingRoundBracket);
    case '[': return one(TokenType::OpeningSquareBracket);
    case ']': return one(TokenType::ClosingSquareBracket);
    case '{': return one(TokenType::OpeningCurlyBrace);
    case '}': return one(TokenType::ClosingCurlyBrace);
    case ',': return one(TokenType::Comma);
    case ';': return one(TokenType::Semicolon);
    case '+': return one(TokenType::Plus);
    case '*': return one(TokenType::Asterisk);
    case '%': return one(TokenType::Percent);
    case '?': return one(TokenType::QuestionMark);
    case '^': return one(TokenType::Caret);
    case '.': {
      // A dot after something that can be qualified is the qualifier or tuple access
      // operator; otherwise it may start a number (.5).
      bool digit_follows = end_ - pos_ > 1 && isDigit(pos_[1]);
      if (pos_ > begin_ && (!digit_follows || prev_significant_ == TokenType::ClosingRoundBracket ||
                            prev_significant_ == TokenType::ClosingSquareBracket ||
                            prev_significant_ == TokenType::BareWord ||
                            prev_significant_ == TokenType::QuotedIdentifier ||
                            prev_significant_ == TokenType::Number))
        return one(TokenType::Dot);
      if (!digit_follows) return one(TokenType::Dot);
      ++pos_;
      bool block_start = true;
      while (pos_ < end_ && (isDigit(*pos_) || isSeparator(block_start, false, pos_, end_))) { ++pos_; block_start = false; }
      if (end_ - pos_ > 1 && (*pos_ == 'e' || *pos_ == 'E')) {
        ++pos_;
        block_start = true;
        if (end_ - pos_ > 1 && (*pos_ == '-' || *pos_ == '+')) ++pos_;
        while (pos_ < end_ && (isDigit(*pos_) || isSeparator(block_start, false, pos_, end_))) { ++pos_; block_start = false; }
      }
      return {TokenType::Number, start, pos_};
    }
    case '-':
      ++pos_;
      if (pos_ < end_ && *pos_ == '>') { ++pos_; return {TokenType::Arrow, start, pos_}; }
      if (pos_ < end_ && *pos_ == '-') { ++pos_; return lineComment(); }
      return {TokenType::Minus, start, pos_};
    case '/':
      ++pos_;
      if (pos_ < end_ && *pos_ == '/') { ++pos_; return lineComment(); }
      if (pos_ < end_ && *pos_ == '*') {
        ++pos_;
        size_t depth = 1;  // comments nest, as in the SQL standard and ClickHouse
        while (end_ - pos_ >= 2) {
          if (pos_[0] == '/' && pos_[1] == '*') { pos_ += 2; ++depth; }
          else if (pos_[0] == '*' && pos_[1] == '/') {
            pos_ += 2;
            if (--depth == 0) return {TokenType::Comment, start, pos_};
          } else ++pos_;
        }
        pos_ = end_;
        return {TokenType::ErrorMultilineCommentIsNotClosed, start, end_};
      }
      return {TokenType::Slash, start, pos_};
    case '#':
      // Only "# " and "#!" start a comment, as in ClickHouse; "#x" is an error.
      ++pos_;
      if (pos_ < end_ && (*pos_ == ' ' || *pos_ == '!')) return lineComment();
      return {TokenType::Error, start, pos_};
    case '=':
      ++pos_;
      if (pos_ < end_ && *pos_ == '=') ++pos_;
      return {TokenType::Equals, start, pos_};
    case '!':
      ++pos_;
      if (pos_ < end_ && *pos_ == '=') { ++pos_; return {TokenType::NotEquals, start, pos_}; }
      return {TokenType::ErrorSingleExclamationMark, start, pos_};
    case '<':
      ++pos_;
      if (end_ - pos_ >= 2 && pos_[0] == '=' && pos_[1] == '>') { pos_ += 2; return {TokenType::Spaceship, start, pos_}; }
      if (pos_ < end_ && *pos_ == '=') { ++pos_; return {TokenType::LessOrEquals, start, pos_}; }
      if (pos_ < end_ && *pos_ == '>') { ++pos_; return {TokenType::NotEquals, start, pos_}; }
      return {TokenType::Less, start, pos_};
    case '>':
      ++pos_;
      if (pos_ < end_ && *pos_ == '=') { ++pos_; return {TokenType::GreaterOrEquals, start, pos_}; }
      return {TokenType::Greater, start, pos_};
    case ':':
      ++pos_;
      if (pos_ < end_ && *pos_ == ':') { ++pos_; return {TokenType::DoubleColon, start, pos_}; }
      return {TokenType::Colon, start, pos_};
    case '|':
      ++pos_;
      if (pos_ < end_ && *pos_ == '|') { ++pos_; return {TokenType::Concatenation, start, pos_}; }
      return {TokenType::PipeMark, start, pos_};
    case '@':
      ++pos_;
      if (pos_ < end_ && *pos_ == '@') { ++pos_; return {TokenType::DoubleAt, start, pos_}; }
      return {TokenType::At, start, pos_};
    case '\\':
      ++pos_;
      if (pos_ < end_ && *pos_ == 'G') { ++pos_; return {TokenType::VerticalDelimiter, start, pos_}; }
      return {TokenType::Error, start, pos_};
    default:
      break;
  }
  if (*pos_ == '$') {
    // $tag$ ... $tag$ where the tag is anything up to the next '$' (possibly empty).
    std::string_view rest(pos_, static_cast<size_t>(end_ - pos_));
    size_t tag_end = rest.find('$', 1);
    if (tag_end != std::string_view::npos) {
      std::string_view tag = rest.substr(0, tag_end + 1);
      size_t close = rest.find(tag, tag.size());
      if (close != std::string_view::npos) {
        pos_ += close + tag.size();
        return {TokenType::HereDoc, start, pos_};
      }
    }
    if (end_ - pos_ == 1 || !isWordChar(pos_[1])) return one(TokenType::DollarSign);
  }
  if (end_ - pos_ > 2 && pos_[1] == '\'' && (*pos_ == 'x' || *pos_ == 'X' || *pos_ == 'b' || *pos_ == 'B')) {
    bool hex = *pos_ == 'x' || *pos_ == 'X';
    pos_ += 2;
    while (pos_ < end_ && (hex ? isHex(*pos_) : (*pos_ == '0' || *pos_ == '1'))) ++pos_;
    if (pos_ >= end_ || *pos_ != '\'') { pos_ = end_; return {TokenType::ErrorSingleQuoteIsNotClosed, start, end_}; }
    ++pos_;
    return {TokenType::StringLiteral, start, pos_};
  }
  if (isWordChar(*pos_) || *pos_ == '$') {
    ++pos_;
    while (pos_ < end_ && (isWordChar(*pos_) || *pos_ == '$')) ++pos_;
    return {TokenType::BareWord, start, pos_};
  }
  if (size_t n = unicodeSpace(pos_, end_)) {
    pos_ += n;
    while (pos_ < end_) {
      if (isSpace(*pos_)) ++pos_;
      else if (size_t m = unicodeSpace(pos_, end_)) pos_ += m;
      else break;
    }
    return {TokenType::Whitespace, start, pos_};
  }
  return one(TokenType::Error);
}

}  // namespace roost::sql
