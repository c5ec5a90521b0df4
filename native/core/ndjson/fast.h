// The fast path of the NDJSON → CSV conversion (src/ingest/ndjson.ts). For each line of
// plain events it writes the CSV row the JavaScript conversion writes, byte for byte; any
// line it is not sure of (not a JSON object, an escape in a value used, a number not in its
// shortest form, an object where a value is taken, nesting past 64, invalid UTF-8, ...) it
// leaves to the JavaScript, which owns every rule (quarantine reasons included). Plain C++20,
// no N-API.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace roost::ndjson {

struct Column {
  std::vector<std::string> path;  // object keys from the line's root
  bool text = false;              // String/FixedString: arrays and objects are JSON text (left to JavaScript)
  bool numbersVerbatim = false;   // a text column or an array of text: numbers keep their text as written
  bool time = false;              // DateTime*: a number is epoch seconds (left to JavaScript)
  bool intLike = false;           // an integer column: true/false are 1/0
  std::vector<bool> elementText;  // Array(...) levels: true where the element type is text
  std::string missing;            // the field for a missing path
  std::string nul;                // the field for null
};

class FastConverter {
 public:
  explicit FastConverter(std::vector<Column> columns) : cols_(std::move(columns)) {}

  // Converts the lines of [p, end) from the first on, one by one, until a line it leaves to
  // JavaScript or the end. Lines end with '\n' (a '\r' before it is not part of the line);
  // the last one need not. Returns the offset (from p) of the first line not converted, or
  // end - p. For each converted line: its CSV row in out() and its [start, end) in spans().
  size_t run(const char* p, const char* end);

  std::string& out() { return out_; }
  std::vector<uint32_t>& spans() { return spans_; }

 private:
  struct Node {
    char type = 0;              // 'o' object, 'a' array, 's' string, 'n' number, 't' true, 'f' false, 'z' null
    bool valueEscaped = false;  // a string with a backslash escape
    bool keyEscaped = false;    // a member whose key has one
    uint32_t start = 0, end = 0;        // the value's text ([start, end) without quotes for strings)
    uint32_t keyStart = 0, keyEnd = 0;  // a member's key (without quotes)
    int32_t first = -1, next = -1;
  };
  bool parse(const char* s, const char* e);
  int32_t value(int depth);
  bool row();
  bool field(const Column& c, int32_t n);
  bool element(const Column& c, int32_t n, size_t level);

  std::vector<Column> cols_;
  std::vector<Node> nodes_;
  std::string out_;
  std::vector<uint32_t> spans_;
  const char* s_ = nullptr;  // parse cursor
  const char* e_ = nullptr;
  const char* base_ = nullptr;
};

// True when the JSON number text [p, e) is written exactly as JavaScript's String(Number(text))
// writes it (at most 15 significant digits, no exponent, no trailing fraction zero, no leading
// zero, at least 1e-6 unless zero).
bool shortestNumber(const char* p, const char* e);

}  // namespace roost::ndjson
