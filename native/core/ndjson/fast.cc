#include "ndjson/fast.h"

#include <cstring>

#include "csv/scan.h"

namespace roost::ndjson {

namespace {
constexpr int kMaxDepth = 64;
inline bool isDigit(char c) { return c >= '0' && c <= '9'; }
inline bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
}  // namespace

bool shortestNumber(const char* p, const char* e) {
  if (p < e && *p == '-') ++p;
  if (p == e) return false;
  const char* intStart = p;
  while (p < e && isDigit(*p)) ++p;
  const size_t intDigits = static_cast<size_t>(p - intStart);
  if (intDigits == 0 || (intDigits > 1 && *intStart == '0')) return false;
  if (p == e) return intDigits <= 15;  // an integer of up to 15 digits
  if (*p != '.') return false;         // an exponent
  ++p;
  const char* fracStart = p;
  while (p < e && isDigit(*p)) ++p;
  if (p != e || p == fracStart || e[-1] == '0') return false;
  const size_t fracDigits = static_cast<size_t>(e - fracStart);
  size_t significant;
  if (*intStart != '0') {
    significant = intDigits + fracDigits;
  } else {
    // 0.000001 is the smallest JavaScript writes without an exponent.
    size_t zeros = 0;
    while (zeros < fracDigits && fracStart[zeros] == '0') ++zeros;
    if (zeros >= 6) return false;
    significant = fracDigits - zeros;
  }
  return significant <= 15;
}

size_t FastConverter::run(const char* p, const char* end) {
  base_ = p;
  const char* ls = p;
  while (ls < end) {
    const void* nlp = std::memchr(ls, '\n', static_cast<size_t>(end - ls));
    const char* nl = nlp ? static_cast<const char*>(nlp) : end;
    const char* le = nl;
    if (le > ls && le[-1] == '\r') --le;
    // Blank lines, other values than objects, byte order marks: JavaScript's.
    if (le == ls || *ls != '{') break;
    if (csv::scan::firstInvalidUtf8(ls, le) >= 0) break;
    if (!parse(ls, le)) break;
    const size_t mark = out_.size();
    if (!row()) {
      out_.resize(mark);
      break;
    }
    spans_.push_back(static_cast<uint32_t>(ls - p));
    spans_.push_back(static_cast<uint32_t>(le - p));
    ls = nl < end ? nl + 1 : end;
  }
  return static_cast<size_t>(ls - p);
}

bool FastConverter::parse(const char* s, const char* e) {
  s_ = s;
  e_ = e;
  nodes_.clear();
  const int32_t root = value(0);
  if (root < 0) return false;
  while (s_ < e_ && (*s_ == ' ' || *s_ == '\t' || *s_ == '\n' || *s_ == '\r')) ++s_;
  return s_ == e_ && nodes_[static_cast<size_t>(root)].type == 'o';
}

int32_t FastConverter::value(int depth) {
  auto ws = [this] {
    while (s_ < e_ && (*s_ == ' ' || *s_ == '\t' || *s_ == '\n' || *s_ == '\r')) ++s_;
  };
  // A string from its opening quote: [start, end) of its text, and whether it holds an escape.
  auto str = [this](uint32_t& start, uint32_t& end, bool& escaped) {
    ++s_;
    start = static_cast<uint32_t>(s_ - base_);
    escaped = false;
    for (;;) {
      if (s_ >= e_) return false;
      const auto c = static_cast<unsigned char>(*s_);
      if (c == '"') {
        end = static_cast<uint32_t>(s_ - base_);
        ++s_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        escaped = true;
        if (e_ - s_ < 2) return false;
        const char x = s_[1];
        if (x == 'u') {
          if (e_ - s_ < 6 || !isHex(s_[2]) || !isHex(s_[3]) || !isHex(s_[4]) || !isHex(s_[5])) return false;
          s_ += 6;
          continue;
        }
        if (x != '"' && x != '\\' && x != '/' && x != 'b' && x != 'f' && x != 'n' && x != 'r' && x != 't') return false;
        s_ += 2;
        continue;
      }
      ++s_;
    }
  };
  ws();
  if (s_ >= e_) return -1;
  const auto id = static_cast<int32_t>(nodes_.size());
  nodes_.push_back(Node{});
  const char c = *s_;
  if (c == '{' || c == '[') {
    if (depth >= kMaxDepth) return -1;
    const bool object = c == '{';
    nodes_[id].type = object ? 'o' : 'a';
    ++s_;
    ws();
    if (s_ < e_ && *s_ == (object ? '}' : ']')) {
      ++s_;
      return id;
    }
    int32_t prev = -1;
    for (;;) {
      uint32_t ks = 0, ke = 0;
      bool kesc = false;
      if (object) {
        ws();
        if (s_ >= e_ || *s_ != '"' || !str(ks, ke, kesc)) return -1;
        ws();
        if (s_ >= e_ || *s_ != ':') return -1;
        ++s_;
      }
      const int32_t v = value(depth + 1);
      if (v < 0) return -1;
      Node& n = nodes_[static_cast<size_t>(v)];
      n.keyStart = ks;
      n.keyEnd = ke;
      n.keyEscaped = kesc;
      if (prev < 0) nodes_[static_cast<size_t>(id)].first = v;
      else nodes_[static_cast<size_t>(prev)].next = v;
      prev = v;
      ws();
      if (s_ >= e_) return -1;
      if (*s_ == ',') {
        ++s_;
        continue;
      }
      if (*s_ == (object ? '}' : ']')) {
        ++s_;
        return id;
      }
      return -1;
    }
  }
  if (c == '"') {
    uint32_t st = 0, en = 0;
    bool esc = false;
    if (!str(st, en, esc)) return -1;
    Node& n = nodes_[static_cast<size_t>(id)];
    n.type = 's';
    n.start = st;
    n.end = en;
    n.valueEscaped = esc;
    return id;
  }
  auto literal = [this](const char* w, size_t len) {
    if (static_cast<size_t>(e_ - s_) < len || std::memcmp(s_, w, len) != 0) return false;
    s_ += len;
    return true;
  };
  if (c == 't' || c == 'f' || c == 'n') {
    const bool ok = c == 't' ? literal("true", 4) : c == 'f' ? literal("false", 5) : literal("null", 4);
    if (!ok) return -1;
    nodes_[static_cast<size_t>(id)].type = c == 'n' ? 'z' : c;
    return id;
  }
  // A number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  const char* st = s_;
  if (*s_ == '-') ++s_;
  if (s_ >= e_) return -1;
  if (*s_ == '0') ++s_;
  else if (*s_ >= '1' && *s_ <= '9') while (s_ < e_ && isDigit(*s_)) ++s_;
  else return -1;
  if (s_ < e_ && *s_ == '.') {
    ++s_;
    if (s_ >= e_ || !isDigit(*s_)) return -1;
    while (s_ < e_ && isDigit(*s_)) ++s_;
  }
  if (s_ < e_ && (*s_ == 'e' || *s_ == 'E')) {
    ++s_;
    if (s_ < e_ && (*s_ == '+' || *s_ == '-')) ++s_;
    if (s_ >= e_ || !isDigit(*s_)) return -1;
    while (s_ < e_ && isDigit(*s_)) ++s_;
  }
  Node& n = nodes_[static_cast<size_t>(id)];
  n.type = 'n';
  n.start = static_cast<uint32_t>(st - base_);
  n.end = static_cast<uint32_t>(s_ - base_);
  return id;
}

bool FastConverter::row() {
  for (size_t i = 0; i < cols_.size(); ++i) {
    const Column& c = cols_[i];
    int32_t n = 0;  // the root object
    for (const std::string& key : c.path) {
      const Node& x = nodes_[static_cast<size_t>(n)];
      if (x.type == 'a') return false;  // a name looked up in an array: JavaScript's rules
      if (x.type != 'o') {
        n = -1;
        break;
      }
      int32_t found = -1;
      for (int32_t m = x.first; m >= 0; m = nodes_[static_cast<size_t>(m)].next) {
        const Node& y = nodes_[static_cast<size_t>(m)];
        if (y.keyEscaped) return false;
        // The last of duplicate keys wins, as with JSON.parse.
        if (y.keyEnd - y.keyStart == key.size() && std::memcmp(base_ + y.keyStart, key.data(), key.size()) == 0) found = m;
      }
      n = found;
      if (n < 0) break;
    }
    if (i) out_.push_back(',');
    if (!field(c, n)) return false;
  }
  out_.push_back('\n');
  return true;
}

bool FastConverter::field(const Column& c, int32_t n) {
  if (n < 0) {
    out_ += c.missing;
    return true;
  }
  const Node& x = nodes_[static_cast<size_t>(n)];
  switch (x.type) {
    case 'z':
      out_ += c.nul;
      return true;
    case 's':
      if (x.valueEscaped) return false;
      // Unescaped JSON text holds no quote: the CSV field is the text in quotes.
      out_.push_back('"');
      out_.append(base_ + x.start, x.end - x.start);
      out_.push_back('"');
      return true;
    case 'n':
      if (c.time) return false;
      if (!c.numbersVerbatim && !shortestNumber(base_ + x.start, base_ + x.end)) return false;
      out_.append(base_ + x.start, x.end - x.start);
      return true;
    case 't':
    case 'f':
      out_ += c.intLike ? (x.type == 't' ? "1" : "0") : (x.type == 't' ? "true" : "false");
      return true;
    case 'a': {
      if (c.text) return false;
      out_ += "\"[";
      bool firstEl = true;
      for (int32_t m = x.first; m >= 0; m = nodes_[static_cast<size_t>(m)].next) {
        if (!firstEl) out_.push_back(',');
        firstEl = false;
        if (!element(c, m, 0)) return false;
      }
      out_ += "]\"";
      return true;
    }
    default:
      return false;  // an object: its JSON text, JavaScript's
  }
}

bool FastConverter::element(const Column& c, int32_t n, size_t level) {
  const Node& x = nodes_[static_cast<size_t>(n)];
  switch (x.type) {
    case 'z':
      out_ += "NULL";
      return true;
    case 's':
      if (x.valueEscaped) return false;
      out_.push_back('\'');
      for (const char* p = base_ + x.start; p < base_ + x.end; ++p) {
        if (*p == '\'') out_.push_back('\\');
        out_.push_back(*p);
      }
      out_.push_back('\'');
      return true;
    case 'n':
      if (!c.numbersVerbatim && !shortestNumber(base_ + x.start, base_ + x.end)) return false;
      out_.append(base_ + x.start, x.end - x.start);
      return true;
    case 't':
      out_ += "true";
      return true;
    case 'f':
      out_ += "false";
      return true;
    case 'a': {
      if (level < c.elementText.size() && c.elementText[level]) return false;  // JSON text in a text element
      out_.push_back('[');
      bool firstEl = true;
      for (int32_t m = x.first; m >= 0; m = nodes_[static_cast<size_t>(m)].next) {
        if (!firstEl) out_.push_back(',');
        firstEl = false;
        if (!element(c, m, level + 1)) return false;
      }
      out_.push_back(']');
      return true;
    }
    default:
      return false;
  }
}

}  // namespace roost::ndjson
