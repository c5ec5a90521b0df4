#include <doctest/doctest.h>

#include "csv/reader.h"
#include "csv/scan.h"
#include "csv_test_util.h"

using csvtest::fieldsOf;
using csvtest::parse;
using roost::csv::Dialect;
using V = std::vector<std::vector<std::string>>;

TEST_CASE("csv reader: plain rows, LF, CRLF and lone CR line ends") {
  CHECK(fieldsOf(parse("a,b\n1,2\n")) == V{{"a", "b"}, {"1", "2"}});
  CHECK(fieldsOf(parse("a,b\r\n1,2\r\n")) == V{{"a", "b"}, {"1", "2"}});
  CHECK(fieldsOf(parse("a,b\r1,2\r")) == V{{"a", "b"}, {"1", "2"}});
  CHECK(fieldsOf(parse("a,b\n1,2")) == V{{"a", "b"}, {"1", "2"}});  // no final newline
  CHECK(fieldsOf(parse("a,,\n")) == V{{"a", "", ""}});
  CHECK(fieldsOf(parse(",\n")) == V{{"", ""}});
  CHECK(parse("").empty());
}

TEST_CASE("csv reader: quoted fields with delimiters, quotes and newlines") {
  auto rows = parse("\"a,b\",\"say \"\"hi\"\"\",\"line1\nline2\"\nx,y,z\n");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].fields == std::vector<std::string>{"a,b", "say \"hi\"", "line1\nline2"});
  CHECK(rows[0].quoted == std::vector<bool>{true, true, true});
  CHECK(rows[0].line == 1);
  CHECK(rows[1].line == 3);  // the quoted newline is a physical line
  CHECK(rows[0].raw == "\"a,b\",\"say \"\"hi\"\"\",\"line1\nline2\"");
  // An empty quoted field is an empty string, flagged as quoted.
  rows = parse("\"\",\n");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].fields == std::vector<std::string>{"", ""});
  CHECK(rows[0].quoted == std::vector<bool>{true, false});
}

TEST_CASE("csv reader: quotes inside unquoted fields are literal; text after a closing quote is kept and flagged") {
  CHECK(fieldsOf(parse("ab\"c,d\n")) == V{{"ab\"c", "d"}});
  CHECK(parse("ab\"c,d\n")[0].rowAfterQuote == false);
  const std::string in = "\"ab\"cd,e\n1,\"x\" \t,\"y\" \n\"p\"  q,\"r\"\n2,\"oops\n3,\"v\"\n";
  // Whole, and cut at every byte (the byte after a closing quote, or after its spaces, in the
  // next chunk).
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    auto rows = parse(in, {}, cut ? std::vector<size_t>{cut} : std::vector<size_t>{});
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].fields == std::vector<std::string>{"abcd", "e"});
    CHECK(rows[0].afterQuote == std::vector<bool>{true, false});
    CHECK(rows[0].rowAfterQuote);
    // Spaces and tabs after a closing quote are dropped, not text after it.
    CHECK(rows[1].fields == std::vector<std::string>{"1", "x", "y"});
    CHECK(rows[1].afterQuote == std::vector<bool>{false, false, false});
    CHECK_FALSE(rows[1].rowAfterQuote);
    CHECK(rows[2].fields == std::vector<std::string>{"p  q", "r"});
    CHECK(rows[2].afterQuote == std::vector<bool>{true, false});
    // A stray opening quote runs to the next quote; what follows that one flags the row.
    CHECK(rows[3].fields == std::vector<std::string>{"2", "oops\n3,v\""});
    CHECK(rows[3].afterQuote == std::vector<bool>{false, true});
    CHECK(rows[3].line == 4);
  }
  // A space delimiter is not dropped after a closing quote.
  Dialect sp{' ', '"', 0};
  CHECK(fieldsOf(parse("\"a\" b\n", sp)) == V{{"a", "b"}});
  CHECK_FALSE(parse("\"a\" b\n", sp)[0].rowAfterQuote);
}

TEST_CASE("csv reader: escape character") {
  Dialect d{',', '"', '\\'};
  CHECK(fieldsOf(parse("\"a\\\"b\",c\\,d\n", d)) == V{{"a\"b", "c,d"}});
  CHECK(fieldsOf(parse("\"a\"\"b\"\n", d)) == V{{"a\"b"}});  // doubling still works
  Dialect same{',', '"', '"'};
  CHECK(fieldsOf(parse("\"a\"\"b\"\n", same)) == V{{"a\"b"}});
}

TEST_CASE("csv reader: with a backslash escape, \\N alone in an unquoted field stays the NULL marker") {
  Dialect d{',', '"', '\\'};
  const std::string in = "1,\\N,\\N\n\\N,x\\N,\\Nx,\\\\N\n\"\\N\",\\N";
  // Whole, and cut at every byte (the marker split across chunks).
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    auto rows = parse(in, d, cut ? std::vector<size_t>{cut} : std::vector<size_t>{});
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].fields == std::vector<std::string>{"1", "\\N", "\\N"});
    // Only the whole field is the marker: elsewhere the escape makes N a letter; an escaped
    // backslash before N is a backslash and an N.
    CHECK(rows[1].fields == std::vector<std::string>{"\\N", "xN", "Nx", "\\N"});
    CHECK(rows[1].quoted == std::vector<bool>{false, false, false, false});
    // Quoted, the escape applies as before.
    CHECK(rows[2].fields == std::vector<std::string>{"N", "\\N"});
    CHECK(rows[2].quoted == std::vector<bool>{true, false});
  }
  // Another escape character: no marker.
  Dialect caret{',', '"', '^'};
  CHECK(fieldsOf(parse("^N,\\N\n", caret)) == V{{"N", "\\N"}});
}

TEST_CASE("csv reader: BOM, blank lines and line numbers") {
  auto rows = parse("\xEF\xBB\xBF" "a,b\n\n\r\n1,2\r\r3,4\n");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].fields[0] == "a");
  CHECK(rows[0].line == 1);
  CHECK(rows[1].line == 4);
  CHECK(rows[2].line == 6);
  // A BOM-like prefix that is not a BOM is data.
  CHECK(fieldsOf(parse("\xEF\xBB" "x\n")) == V{{"\xEF\xBB" "x"}});
}

TEST_CASE("csv reader: other delimiters") {
  CHECK(fieldsOf(parse("a;b\n", Dialect{';', '"', 0})) == V{{"a", "b"}});
  CHECK(fieldsOf(parse("a\tb|c\n", Dialect{'\t', '"', 0})) == V{{"a", "b|c"}});
  CHECK(fieldsOf(parse("'a|b'|c\n", Dialect{'|', '\'', 0})) == V{{"a|b", "c"}});
}

TEST_CASE("csv reader: unterminated quote at the end of the stream") {
  auto rows = parse("a,b\n\"open,x\ny\n");
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].unterminated);
  CHECK(rows[1].line == 2);
  CHECK(rows[1].fields[0] == "open,x\ny\n");
}

TEST_CASE("csv reader: maximum row size is an error, not a crash") {
  bool ok = true;
  parse("a,b\n" + std::string(100, 'x') + "\n", {}, {}, &ok, 50);
  CHECK_FALSE(ok);
  ok = true;
  // Also when the big row arrives in small pieces.
  std::string big = "a\n\"" + std::string(200, 'y');
  std::vector<size_t> cuts;
  for (size_t i = 1; i < big.size(); i += 7) cuts.push_back(i);
  parse(big, {}, cuts, &ok, 50);
  CHECK_FALSE(ok);
  ok = false;
  parse("a,b\n" + std::string(50, 'x') + "\n", {}, {}, &ok, 50);
  CHECK(ok);
}

// Every split position (one cut and two cuts) of inputs that exercise each quirk
// must give exactly the rows of the unsplit parse.
TEST_CASE("csv reader: a row split at any byte parses the same") {
  const std::string inputs[] = {
      "\xEF\xBB\xBF" "id,\"na,me\",note\r\n1,\"a \"\"q\"\" b\",\"l1\r\nl2\"\r\n\r\n2,,x\r3,\"\",\"\"\"\"\n4,\"end\"",
      "a,b\r\n\"x\r\ny\",\"\"\r\n\r\r\n\"z\"tail,w\r",
      "\"unterminated,\n\"\"x",
      "p|\"q|r\"\n|\n\"\"|\"s\"\"\"\n",
  };
  const Dialect dialects[] = {Dialect{}, Dialect{}, Dialect{}, Dialect{'|', '"', 0}};
  for (size_t k = 0; k < 4; ++k) {
    const std::string& in = inputs[k];
    auto whole = parse(in, dialects[k]);
    REQUIRE(!whole.empty());
    for (size_t i = 0; i <= in.size(); ++i) {
      CAPTURE(k);
      CAPTURE(i);
      CHECK(parse(in, dialects[k], {i}) == whole);
      for (size_t j = i; j <= in.size(); j += 3) {
        CAPTURE(j);
        REQUIRE(parse(in, dialects[k], {i, j}) == whole);
      }
    }
    std::vector<size_t> every;
    for (size_t i = 1; i < in.size(); ++i) every.push_back(i);
    CHECK(parse(in, dialects[k], every) == whole);
  }
  // With an escape character.
  Dialect e{',', '"', '\\'};
  std::string in = "\"a\\\"b\\\\\",c\\,d\\\ne\nx,\"y\"\"\\\n\"\n";
  auto whole = parse(in, e);
  CHECK(whole.size() == 2);
  for (size_t i = 0; i <= in.size(); ++i) {
    CAPTURE(i);
    CHECK(parse(in, e, {i}) == whole);
  }
}

TEST_CASE("csv scan: UTF-8 validation") {
  auto bad = [](const std::string& s) { return roost::csv::scan::firstInvalidUtf8(s.data(), s.data() + s.size()); };
  CHECK(bad("plain ascii text that is longer than sixteen bytes") == -1);
  CHECK(bad("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == -1);
  CHECK(bad("ab\xC3") == 2);             // truncated
  CHECK(bad("\xC0\xAF") == 0);           // overlong
  CHECK(bad("x\xED\xA0\x80") == 1);      // surrogate
  CHECK(bad("\xF4\x90\x80\x80") == 0);   // above U+10FFFF
  CHECK(bad("0123456789abcdef\xFF") == 16);
}

TEST_CASE("csv reader: blank lines as rows (NDJSON converted to CSV, one column)") {
  // Skipped by default; with setBlankLinesAreRows each is a row of one empty field, at every
  // chunk cut and line end (LF, CRLF, lone CR), past the block path's 64-byte blocks too.
  std::string in = "a\n\nb\r\n\r\n\rc\n";
  for (int i = 0; i < 20; ++i) in += i % 3 ? "xxxxxxxxxx\n" : "\n";
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    roost::csv::Reader r(Dialect{}, 1 << 20);
    r.setBlankLinesAreRows(true);
    csvtest::Collect c;
    std::string a = in.substr(0, cut), b = in.substr(cut);
    REQUIRE(r.feed(a.data(), a.size(), c));
    REQUIRE(r.feed(b.data(), b.size(), c));
    REQUIRE(r.finish(c));
    V want{{"a"}, {""}, {"b"}, {""}, {""}, {"c"}};
    for (int i = 0; i < 20; ++i) want.push_back({i % 3 ? "xxxxxxxxxx" : ""});
    CHECK(fieldsOf(c.rows) == want);
  }
  CHECK(fieldsOf(parse("a\n\nb\n")) == V{{"a"}, {"b"}});
}
