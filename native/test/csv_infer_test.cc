#include <doctest/doctest.h>

#include "csv/infer.h"

using namespace roost::csv;

namespace {
std::vector<std::string> types(const std::string& csv, bool header) {
  Inferred r = infer(csv, Sniffed{}.dialect, header, true, 1000);
  std::vector<std::string> out;
  for (auto& c : r.columns) out.push_back(c.name + " " + c.type);
  return out;
}
}  // namespace

TEST_CASE("csv sniff: delimiter, quote, newline, header") {
  Sniffed s = sniff("a;b;c\r\n1;2;3\r\n4;5;6\r\n");
  CHECK(s.dialect.delimiter == ';');
  CHECK(s.newline == "\r\n");
  CHECK(s.hasHeader);
  s = sniff("1|x|2024-01-01\n2|y|2024-01-02\n");
  CHECK(s.dialect.delimiter == '|');
  CHECK_FALSE(s.hasHeader);
  s = sniff("name\tcity\nann\tmadrid\nbob\tparis\n");
  CHECK(s.dialect.delimiter == '\t');
  CHECK(s.hasHeader);
  s = sniff("'a,b',c\n'd',e\n'f',g\n");
  CHECK(s.dialect.quote == '\'');
  s = sniff("\"a;b\",c\n\"d;e\",f\n");  // the quoted semicolons do not fool it
  CHECK(s.dialect.delimiter == ',');
  s = sniff("x\ry\r");
  CHECK(s.newline == "\r");
}

TEST_CASE("csv sniff: a header with an empty or repeated name, over typed columns") {
  // pandas' to_csv(): an unnamed index column.
  Sniffed s = sniff(",user_id,score\n0,123,4.5\n1,124,3.5\n");
  CHECK(s.hasHeader);
  CHECK(types(",user_id,score\n0,123,4.5\n1,124,3.5\n", s.hasHeader) ==
        std::vector<std::string>{"column_00 Int64", "user_id Int64", "score Float64"});
  // The unnamed index over text columns: the index (integers) is the evidence.
  CHECK(sniff(",name,city\n0,alice,paris\n1,bob,rome\n").hasHeader);
  // A header alone.
  CHECK(sniff(",user_id,score\n").hasHeader);
  // Repeated names over typed columns (a join's export): a header, the repeat named `_2`.
  CHECK(sniff("a,a,b\n1,2,x\n3,4,y\n").hasHeader);
  CHECK(types("id,name,id\n1,x,3\n4,y,6\n", true) == std::vector<std::string>{"id Int64", "name String", "id_2 Int64"});
  // A repeated cell over a text column only, or a placeholder among the cells: data.
  CHECK_FALSE(sniff("a,b,b\n1,x,y\n3,z,w\n").hasHeader);
  CHECK_FALSE(sniff("a,null,null\n1,2,3\n3,4,5\n").hasHeader);
  // The quarantine's own column names are taken: suggested with _2.
  CHECK(types("id,insertion_date,c__error\n1,2026-01-01,x\n", true) ==
        std::vector<std::string>{"id Int64", "insertion_date_2 Date", "c__error_2 String"});
  // An empty cell elsewhere than first, placeholders: data.
  CHECK_FALSE(sniff("alice,,TBD\nbob,3,2020-01-02\ncarol,4,2020-01-03\n").hasHeader);
  CHECK_FALSE(sniff("alice,null,null\nbob,3,2020-01-02\ncarol,4,2020-01-03\n").hasHeader);
  CHECK_FALSE(sniff(",n/a,-\n1,3,2020-01-02\n2,4,2020-01-03\n").hasHeader);
  CHECK_FALSE(sniff(",,\n1,x,2020-01-01\n3,y,2020-01-02\n").hasHeader);
  // Over text columns only (no integer index), an empty first cell is data, as before.
  CHECK_FALSE(sniff(",x,y\na,b,c\nd,e,f\n").hasHeader);
  CHECK_FALSE(sniff("x,x,y\na,b,c\nd,e,f\n").hasHeader);
  // A row of data with an empty cell over numbers is data.
  CHECK_FALSE(sniff(",1,2\n3,4,5\n6,7,8\n").hasHeader);
  // An unnamed first column with gaps is no index: the first row is data.
  CHECK_FALSE(sniff(",Alice,Smith\n,Bob,Jones\n1043,Carol,White\n").hasHeader);
  CHECK_FALSE(sniff(",alice,30\n,bob,40\n").hasHeader);
  // Integers that are no index (a repeated parent id) are no evidence either; a filtered or sorted frame's index is.
  CHECK_FALSE(sniff(",Electronics,root\n1,Phones,child\n1,Laptops,child\n").hasHeader);
  CHECK(sniff(",user_id,score\n5,123,4.5\n6,124,3.5\n").hasHeader);
  CHECK(sniff(",user_id,score\n1,123,4.5\n3,124,3.5\n0,125,2.5\n").hasHeader);
  // A header cell that reads like a placeholder, beside names over numbers: a header.
  CHECK(sniff("month,NA,EMEA,APAC\n2024-01,100,200,300\n2024-02,110,210,310\n").hasHeader);
  CHECK(sniff("answer,Yes,No,Unknown\nq1,10,20,5\nq2,11,21,6\n").hasHeader);
  // \N and placeholders in the first row are values.
  CHECK_FALSE(sniff("alice,\\N,paris\nbob,3,rome\ncarol,\\N,berlin\n").hasHeader);
  CHECK_FALSE(sniff("alice,null,paris\nbob,3,rome\ncarol,4,berlin\n").hasHeader);
  // Excel's trailing delimiter: an empty last cell over an empty column leaves the header a header.
  CHECK(sniff("a,b,\n1,2,\n3,4,\n").hasHeader);
  // ... and is no column (every row leaves it empty).
  CHECK(types("a,b,\n1,2,\n3,4,\n", true) == std::vector<std::string>{"a Int64", "b Int64"});
  CHECK(types("a,b,\n1,2\n3,4\n", true) == std::vector<std::string>{"a Int64", "b Int64"});
  CHECK(types("a,b,,\n1,2,,\n", true) == std::vector<std::string>{"a Int64", "b Int64"});
  // An empty header cell over values is a column.
  CHECK(types("a,b,\n1,2,x\n3,4,y\n", true) == std::vector<std::string>{"a Int64", "b Int64", "column_02 String"});
  // Booleans and times in the first row are values, not names.
  CHECK_FALSE(sniff("x,2024-01-02 10:00:00,click\ny,2024-01-03 11:00:00,view\n").hasHeader);
  CHECK_FALSE(sniff("alice,true,x\nbob,false,y\n").hasHeader);
  // An unquoted \N is NULL: the column keeps its type, Nullable.
  CHECK(types("a,b\n1,\\N\n2,3.5\n", true) == std::vector<std::string>{"a Int64", "b Nullable(Float64)"});
}

TEST_CASE("csv sniff: an apostrophe that opens a value is no quote; the schema's column count picks the delimiter") {
  // A value starting with an apostrophe made ' the quote: rows up to the next one became one value.
  Sniffed s = sniff("1,'t Hooft\n2,'s-Hertogenbosch\n3,ok\n");
  CHECK(s.dialect.quote == '"');
  s = sniff("1,'abc'x\n2,'def'\n");  // closed, but not before a separator
  CHECK(s.dialect.quote == '"');
  s = sniff("'a, b',c\n'it''s',e\n");  // plainly quoted with '
  CHECK(s.dialect.quote == '\'');
  // Plainly quoted with ', one value spanning lines: still ' (the value kept its apostrophes
  // everywhere else); a value spanning lines among few that close on theirs is no evidence.
  CHECK(sniff("1,'multi\nline'\n2,'x'\n3,'y'\n").dialect.quote == '\'');
  CHECK(sniff("1,'t Hooft\n2,'x'\n").dialect.quote == '"');
  // A note holding ; made ; the delimiter of a two-column file (more fields, as consistent).
  CHECK(sniff("alice,a;b;c\nbob,d;e;f\ncarol,g;h;i\n").dialect.delimiter == ';');
  CHECK(sniff("alice,a;b;c\nbob,d;e;f\ncarol,g;h;i\n", 2).dialect.delimiter == ',');
  CHECK(sniff("x,a\tb\tc\ny,d\te\tf\n", 2).dialect.delimiter == ',');
  CHECK(sniff("1,a|b|c\n2,d|e|f\n", 2).dialect.delimiter == ',');
  // A real ;-file of that many columns keeps ;, and a count no delimiter gives falls back.
  CHECK(sniff("a;1,5\nb;2\nc;3\n", 2).dialect.delimiter == ';');
  CHECK(sniff("a;b;c\n1;2;3\n", 5).dialect.delimiter == ';');
}

TEST_CASE("csv infer: integer widths, floats, dates, bools, nullables") {
  // Int64 whatever the sample's range (the rest of the file may not fit a narrower one).
  CHECK(types("a,b,c,d\n1,-32768,32768,9223372036854775807\n", true) ==
        std::vector<std::string>{"a Int64", "b Int64", "c Int64", "d Int64"});
  CHECK(types("a,b\n18446744073709551615,-9223372036854775809\n", true) ==
        std::vector<std::string>{"a UInt64", "b String"});
  CHECK(types("a,b,c,d\n1.5,1e3,007,0.5\n2,3,1,1\n", true) ==
        std::vector<std::string>{"a Float64", "b Float64", "c String", "d Float64"});
  CHECK(types("a,b,c\n2024-01-02,2024-01-02 03:04:05,true\n2024-01-03,2024-01-03,false\n", true) ==
        std::vector<std::string>{"a Date", "b DateTime", "c Bool"});
  CHECK(types("a,b\n2024-01-02T03:04:05.1Z,2024-01-02 03:04:05.1234\n", true) ==
        std::vector<std::string>{"a DateTime64(3)", "b DateTime64(6)"});
  CHECK(types("a,b,c\n1,,x\n,,2\n", true) ==
        std::vector<std::string>{"a Nullable(Int64)", "b Nullable(String)", "c String"});
  CHECK(types("1,x\n2,y\n", false) == std::vector<std::string>{"column_00 Int64", "column_01 String"});
  CHECK(types("inf,nan\n", false) == std::vector<std::string>{"column_00 String", "column_01 String"});
}

TEST_CASE("csv infer: dates and times outside Date and DateTime take a type that holds them") {
  // The validator rejects these in Date/DateTime: inferring those types rejected
  // the sample's own rows.
  CHECK(types("a,b,c\n1960-01-01,2200-01-01,1970-01-01\n2020-01-01,2020-01-01,2149-06-06\n", true) ==
        std::vector<std::string>{"a Date32", "b Date32", "c Date"});
  CHECK(types("a,b\n1899-12-31,0001-01-01\n", true) == std::vector<std::string>{"a String", "b String"});
  CHECK(types("a,b,c,d\n1960-01-01 10:00:00,2200-01-01 00:00:00,1970-01-01 00:30:00+01:00,2106-02-07 06:28:15\n", true) ==
        std::vector<std::string>{"a DateTime64(3)", "b DateTime64(3)", "c DateTime64(3)", "d DateTime"});
  CHECK(types("a,b\n1960-01-01,2106-02-08\n2020-01-01 00:00:00,2020-01-01 00:00:00\n", true) ==
        std::vector<std::string>{"a DateTime64(3)", "b DateTime64(3)"});
  CHECK(types("a,b,c\n2290-01-01 00:00:00.123456789,2262-04-11 23:47:15.999999999,1800-01-01 00:00:00\n", true) ==
        std::vector<std::string>{"a String", "b DateTime64(9)", "c String"});
  CHECK(types("a\n2290-01-01 00:00:00.123456\n", true) == std::vector<std::string>{"a DateTime64(6)"});
}

TEST_CASE("csv infer: names are sanitised identifiers, unique") {
  CHECK(types("Full Name,e-mail,1st,,a,a\nx,y,z,w,v,u\n", true) ==
        std::vector<std::string>{"Full_Name String", "e_mail String", "c_1st String", "column_03 String", "a String",
                                 "a_2 String"});
  // Letters past ASCII are kept (Spanish, German, Greek, Cyrillic, CJK); symbols are not.
  CHECK(sanitizeName("  ünï code ", 4) == "ünï_code");
  CHECK(sanitizeName("Año", 0) == "Año");
  CHECK(sanitizeName("Größe (cm)", 0) == "Größe_cm");
  CHECK(sanitizeName("Цена × 2", 0) == "Цена_2");
  CHECK(sanitizeName("売上", 0) == "売上");
  CHECK(sanitizeName("Revenue €", 0) == "Revenue");
  CHECK(sanitizeName("a—b", 0) == "a_b");
  CHECK(sanitizeName("\xC3(", 3) == "column_03");
  CHECK(sanitizeName("!!!", 7) == "column_07");
}

TEST_CASE("csv infer: a trailing partial row of a sample is ignored") {
  Inferred r = infer("a,b\n1,2\n3,\"x", Sniffed{}.dialect, true, false, 100);
  CHECK(r.rowsSampled == 1);
  CHECK(r.columns[1].type == "Int64");
}

TEST_CASE("csv infer: columns past the header that most rows leave empty or do not reach are cut") {
  // A stray row with a value too many: no column for it (the row is refused for its count).
  CHECK(types("id,name\n1,a\n2,b,extra\n3,c\n", true) == std::vector<std::string>{"id Int64", "name String"});
  // A trailing delimiter on every row.
  CHECK(types("id,name\n1,a,\n2,b,\n", true) == std::vector<std::string>{"id Int64", "name String"});
  // Values past the header in most rows are a column (the create says it looks like a title line).
  // (Nullable: a row that does not reach it is NULL there.)
  CHECK(types("id,name\n1,a,x\n2,b,y\n3,c\n", true) == std::vector<std::string>{"id Int64", "name String", "column_02 Nullable(String)"});
  CHECK(types("id,name\n1,a,x\n2,b,y\n", true) == std::vector<std::string>{"id Int64", "name String", "column_02 String"});
  // Without a header every field is a column.
  CHECK(types("1,a\n2,b,extra\n", false) == std::vector<std::string>{"column_00 Int64", "column_01 String", "column_02 String"});
  // Half the rows with a value past the header keep the column.
  CHECK(types("id,name\n1,a\n2,b,x\n", true) == std::vector<std::string>{"id Int64", "name String", "column_02 Nullable(String)"});
}
