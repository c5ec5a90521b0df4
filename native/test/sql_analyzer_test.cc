#include <doctest/doctest.h>

#include <string>

#include "sql/analyzer.h"
#include "sql/pipe.h"
#include "sql/policy.h"

using namespace roost::sql;

namespace {

NameMap testMap() {
  NameMap m;
  m.add("events", EntryKind::Table, "`ws`.`events`");
  m.add("users", EntryKind::Table, "`ws`.`users`");
  m.add("tinybird.pipe_stats_rt", EntryKind::Table, "`ws`.`tb_pipe_stats_rt`");
  m.add("dict", EntryKind::Table, "`ws`.`dict`");
  m.add("other_pipe", EntryKind::Query, "SELECT 1 AS x");
  return m;
}

std::string ok(std::string_view q) {
  static const NameMap m = testMap();
  Analysis a;
  Error e;
  bool r = analyze(q, m, Options{}, a, e);
  INFO(q, " -> ", errorCodeName(e.code), " @", e.offset, " ", e.message);
  REQUIRE(r);
  return a.sql;
}

Error refused(std::string_view q) {
  static const NameMap m = testMap();
  Analysis a;
  Error e;
  bool r = analyze(q, m, Options{}, a, e);
  INFO(q, " -> ", a.sql);
  REQUIRE_FALSE(r);
  return e;
}

}  // namespace

TEST_CASE("rewrite keeps aliases working") {
  CHECK(ok("SELECT events.a FROM events") == "SELECT events.a FROM `ws`.`events` AS events");
  CHECK(ok("SELECT e.a FROM events e") == "SELECT e.a FROM `ws`.`events` e");
  CHECK(ok("SELECT * FROM \"events\"") == "SELECT * FROM `ws`.`events` AS \"events\"");
  CHECK(ok("SELECT * FROM tinybird.pipe_stats_rt") == "SELECT * FROM `ws`.`tb_pipe_stats_rt` AS pipe_stats_rt");
  CHECK(ok("SELECT * FROM events FINAL") == "SELECT * FROM `ws`.`events` AS events FINAL");
  CHECK(ok("SELECT * FROM other_pipe") == "SELECT * FROM (SELECT 1 AS x) AS other_pipe");
  CHECK(ok("SELECT 1 FROM events FORMAT JSON;") == "SELECT 1 FROM `ws`.`events` AS events");
}

TEST_CASE("comments do not survive the rewrite") {
  // Regression: a trailing line comment swallowed the ')' of an inlined pipe node.
  CHECK(ok("SELECT 1 -- x") == "SELECT 1");
  // Regression: comments inside a rewritten span overlapped its edit.
  CHECK(ok("SELECT 1 FROM tinybird /* a */ . /* b */ pipe_stats_rt FORMAT /* c */ JSON") ==
        "SELECT 1 FROM `ws`.`tb_pipe_stats_rt` AS pipe_stats_rt");
  CHECK(ok("SELECT /* a */ 1 # b\nFROM events") == "SELECT   1  \nFROM `ws`.`events` AS events");
  NameMap m = testMap();
  std::vector<PipeNode> nodes{{"a", "SELECT * FROM events -- trailing"}, {"b", "SELECT * FROM a WHERE 1"}};
  PipeResult r;
  Error e;
  REQUIRE(compilePipe(nodes, m, "b", Options{}, r, e));
  CHECK(r.sql == "SELECT * FROM (SELECT * FROM `ws`.`events` AS events) AS a WHERE 1");
}

TEST_CASE("every table position is found") {
  CHECK(ok("SELECT * FROM events, users") == "SELECT * FROM `ws`.`events` AS events, `ws`.`users` AS users");
  CHECK(ok("SELECT * FROM events ANY LEFT JOIN users USING id") ==
        "SELECT * FROM `ws`.`events` AS events ANY LEFT JOIN `ws`.`users` AS users USING id");
  CHECK(ok("SELECT * FROM events ARRAY JOIN a AS x, b AS users") ==
        "SELECT * FROM `ws`.`events` AS events ARRAY JOIN a AS x, b AS users");
  CHECK(ok("SELECT 1 WHERE x IN users") == "SELECT 1 WHERE x IN `ws`.`users`");
  CHECK(ok("SELECT 1 WHERE x GLOBAL NOT IN (users)") == "SELECT 1 WHERE x GLOBAL NOT IN (`ws`.`users`)");
  // Regression: ClickHouse reads "IN (t AS a)" as the table t.
  CHECK(ok("SELECT 1 WHERE x IN (users AS u)") == "SELECT 1 WHERE x IN (`ws`.`users` AS u)");
  CHECK(ok("SELECT (SELECT 1 FROM (SELECT * FROM events))") == "SELECT (SELECT 1 FROM (SELECT * FROM `ws`.`events` AS events))");
  CHECK(ok("SELECT dictGet('dict', 'a', 1)") == "SELECT dictGet('ws.dict', 'a', 1)");
  CHECK(ok("SELECT joinGet('dict', 'a', 1)") == "SELECT joinGet('ws.dict', 'a', 1)");
  // Regression: a comma after a JOIN ... ON condition starts another table.
  CHECK(refused("SELECT * FROM events JOIN users ON 1, nope").code == ErrorCode::UNKNOWN_TABLE);
}

TEST_CASE("CTEs are scoped and are not tables") {
  CHECK(ok("WITH c AS (SELECT 1) SELECT * FROM c") == "WITH c AS (SELECT 1) SELECT * FROM c");
  CHECK(ok("WITH c AS (SELECT 1) SELECT * FROM c UNION ALL SELECT * FROM c") ==
        "WITH c AS (SELECT 1) SELECT * FROM c UNION ALL SELECT * FROM c");
  // A CTE defined in a subquery is not visible outside it.
  CHECK(refused("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c), c").code == ErrorCode::UNKNOWN_TABLE);
  // A scalar WITH alias is not a table in FROM.
  CHECK(refused("WITH 1 AS c SELECT * FROM c").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(ok("WITH (1, 2) AS c SELECT 1 IN c") == "WITH (1, 2) AS c SELECT 1 IN c");
  // Without RECURSIVE the body's own name is the table.
  CHECK(ok("WITH events AS (SELECT * FROM events) SELECT * FROM events") ==
        "WITH events AS (SELECT * FROM `ws`.`events` AS events) SELECT * FROM events");
  CHECK(ok("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r") ==
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r");
  // ClickHouse recurses only in the UNION ALL members after the first (subqueries included);
  // elsewhere the name is a table of the session's current database, where chdb's default
  // database reads files: qualified or refused here, never passed on bare.
  CHECK(ok("WITH RECURSIVE r AS ((SELECT 1 AS n) UNION ALL (SELECT n + 1 FROM (SELECT * FROM r) WHERE n < 3)) SELECT * FROM r") ==
        "WITH RECURSIVE r AS ((SELECT 1 AS n) UNION ALL (SELECT n + 1 FROM (SELECT * FROM r) WHERE n < 3)) SELECT * FROM r");
  CHECK(ok("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3 UNION ALL SELECT n FROM r WHERE n = 9) SELECT * FROM r") ==
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3 UNION ALL SELECT n FROM r WHERE n = 9) SELECT * FROM r");
  CHECK(refused("WITH RECURSIVE `/etc/passwd` AS (SELECT * FROM `/etc/passwd`) SELECT * FROM `/etc/passwd`").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("WITH RECURSIVE r AS (SELECT * FROM r UNION ALL SELECT 1) SELECT * FROM r").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("WITH RECURSIVE r AS (WITH f AS (SELECT * FROM f) SELECT * FROM f) SELECT * FROM r").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL (WITH f AS (SELECT * FROM f) SELECT n FROM r)) SELECT * FROM r").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("WITH RECURSIVE r AS (SELECT * FROM (SELECT 1 UNION ALL SELECT * FROM r)) SELECT * FROM r").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(ok("WITH RECURSIVE events AS (SELECT * FROM events) SELECT * FROM events") ==
        "WITH RECURSIVE events AS (SELECT * FROM `ws`.`events` AS events) SELECT * FROM events");
  // A CTE after a recursive one, and a recursive one inside another CTE's body, are in scope after their bodies.
  CHECK(ok("WITH RECURSIVE a AS (SELECT 5 AS n), r AS (SELECT n FROM a UNION ALL SELECT n + 1 FROM r WHERE n < 7) SELECT * FROM r, a") ==
        "WITH RECURSIVE a AS (SELECT 5 AS n), r AS (SELECT n FROM a UNION ALL SELECT n + 1 FROM r WHERE n < 7) SELECT * FROM r, a");
  CHECK(ok("WITH o AS (WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r) SELECT * FROM o") ==
        "WITH o AS (WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r) SELECT * FROM o");
  // Only the first SELECT's WITH reaches the other SELECTs of a UNION/EXCEPT/INTERSECT: a later
  // SELECT's WITH is its own, and ClickHouse reads the name after it as a table of the session's
  // current database (unqualified, never rewritten): that must be refused, not passed on.
  CHECK(refused("SELECT 1 UNION ALL WITH c AS (SELECT 1) SELECT * FROM c UNION ALL SELECT * FROM c").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("SELECT 1 EXCEPT WITH c AS (SELECT 1) SELECT * FROM c INTERSECT SELECT * FROM c").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("SELECT 1 UNION ALL WITH [1] AS c SELECT 2 UNION ALL SELECT 1 IN c").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(ok("SELECT 1 UNION ALL WITH c AS (SELECT 1) SELECT * FROM c UNION ALL SELECT * FROM events") ==
        "SELECT 1 UNION ALL WITH c AS (SELECT 1) SELECT * FROM c UNION ALL SELECT * FROM `ws`.`events` AS events");
  // The first SELECT's WITH stays visible to all of them, its own later ones included.
  CHECK(ok("WITH c AS (SELECT 1) SELECT * FROM c UNION ALL WITH d AS (SELECT 2) SELECT * FROM d EXCEPT SELECT * FROM c") ==
        "WITH c AS (SELECT 1) SELECT * FROM c UNION ALL WITH d AS (SELECT 2) SELECT * FROM d EXCEPT SELECT * FROM c");
  CHECK(refused("WITH c AS (SELECT 1) SELECT * FROM c UNION ALL WITH d AS (SELECT 2) SELECT * FROM d EXCEPT SELECT * FROM d").code == ErrorCode::UNKNOWN_TABLE);
  // A recursive body's members may only be joined by UNION ALL: any other set operation makes
  // ClickHouse read the body as no recursion, and its name as a table of the current database.
  CHECK(refused("WITH RECURSIVE q AS (SELECT 1 AS n UNION ALL SELECT n FROM q EXCEPT SELECT 99) SELECT * FROM q").code == ErrorCode::SYNTAX_ERROR);
  // A first set operation other than UNION ALL: no recursion; the name is a table there (refused when none).
  CHECK(refused("WITH RECURSIVE q AS (SELECT 1 AS n UNION DISTINCT SELECT n FROM q UNION ALL SELECT n + 1 FROM q WHERE n < 3) SELECT * FROM q").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("WITH RECURSIVE q AS (SELECT 1 AS n INTERSECT SELECT n FROM q) SELECT * FROM q").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(ok("WITH RECURSIVE q AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM q WHERE n < 3), r AS (SELECT 5 EXCEPT SELECT 6) SELECT * FROM r") ==
        "WITH RECURSIVE q AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM q WHERE n < 3), r AS (SELECT 5 EXCEPT SELECT 6) SELECT * FROM r");
  CHECK(ok("WITH RECURSIVE r AS (SELECT 1 UNION DISTINCT SELECT 2) SELECT * FROM r") == "WITH RECURSIVE r AS (SELECT 1 UNION DISTINCT SELECT 2) SELECT * FROM r");
  // ClickHouse recurses after a first member `A EXCEPT B`: a later UNION ALL there is refused.
  CHECK(refused("WITH RECURSIVE r AS (SELECT 1 AS n EXCEPT SELECT 2 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r").code == ErrorCode::SYNTAX_ERROR);
  CHECK(refused("WITH RECURSIVE q AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM q WHERE n < 3 UNION ALL SELECT 5 EXCEPT SELECT 5) SELECT * FROM q").code == ErrorCode::SYNTAX_ERROR);
  CHECK(ok("WITH RECURSIVE q AS (SELECT 1 AS n UNION ALL (SELECT n + 1 FROM q WHERE n < 3 EXCEPT SELECT 9)) SELECT * FROM q") ==
        "WITH RECURSIVE q AS (SELECT 1 AS n UNION ALL (SELECT n + 1 FROM q WHERE n < 3 EXCEPT SELECT 9)) SELECT * FROM q");
  // Outside a recursive body other set operations are as before.
  CHECK(ok("WITH RECURSIVE q AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM q WHERE n < 3) SELECT * FROM q EXCEPT SELECT 2") ==
        "WITH RECURSIVE q AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM q WHERE n < 3) SELECT * FROM q EXCEPT SELECT 2");
}

TEST_CASE("a WITH alias after IN is its own SELECT's only") {
  // Older servers read it as a table of the connection's current database elsewhere: nested
  // subqueries, later members of a UNION.
  CHECK(ok("WITH (1, 2) AS c SELECT 1 IN c, (2 IN c)") == "WITH (1, 2) AS c SELECT 1 IN c, (2 IN c)");
  CHECK(refused("WITH 'a' AS x SELECT (SELECT 'b' IN x) AS hit").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("WITH 0 AS pins SELECT n FROM (SELECT 1 AS n WHERE n IN pins)").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(refused("WITH 'a' AS x SELECT 0 AS r UNION ALL SELECT 'b' IN x AS r").code == ErrorCode::UNKNOWN_TABLE);
  CHECK(ok("WITH 'a' AS x SELECT 0 AS r UNION ALL WITH 'b' AS y SELECT 'b' IN y AS r") ==
        "WITH 'a' AS x SELECT 0 AS r UNION ALL WITH 'b' AS y SELECT 'b' IN y AS r");
  // A nested SELECT's own alias is fine; an outer CTE (not a scalar) is still a table there.
  CHECK(ok("SELECT (WITH (1, 2) AS c SELECT 1 IN c)") == "SELECT (WITH (1, 2) AS c SELECT 1 IN c)");
  CHECK(ok("WITH c AS (SELECT 1) SELECT (SELECT 1 IN c)") == "WITH c AS (SELECT 1) SELECT (SELECT 1 IN c)");
  // The message says what to do.
  CHECK(refused("WITH 'a' AS x SELECT (SELECT 'b' IN x)").message.find("define it in the WITH of this SELECT") != std::string::npos);
}

TEST_CASE("policy refusals carry code and offset") {
  struct Case { const char* q; ErrorCode code; uint32_t offset; };
  const Case cases[] = {
      {"SELECT * FROM system.one", ErrorCode::FORBIDDEN_DATABASE, 14},
      {"SELECT * FROM `system` /**/ . one", ErrorCode::FORBIDDEN_DATABASE, 14},
      {"SELECT * FROM INFORMATION_SCHEMA.tables", ErrorCode::FORBIDDEN_DATABASE, 14},
      {"SELECT * FROM db2.t", ErrorCode::FORBIDDEN_DATABASE, 14},
      {"SELECT * FROM tinybird.nope", ErrorCode::UNKNOWN_TABLE, 14},
      {"SELECT * FROM file('x')", ErrorCode::FORBIDDEN_TABLE_FUNCTION, 14},
      {"SELECT * FROM events JOIN remote('h', db.t) ON 1", ErrorCode::FORBIDDEN_TABLE_FUNCTION, 26},
      {"SELECT url('x')", ErrorCode::UNKNOWN_FUNCTION, 7},  // a table function only: no such function
      {"SELECT toStartOfDya(now())", ErrorCode::UNKNOWN_FUNCTION, 7},
      {"SELECT HOSTNAME()", ErrorCode::FORBIDDEN_FUNCTION, 7},
      {"SELECT arrayMap(file, ['/etc/hostname'])", ErrorCode::FORBIDDEN_FUNCTION, 16},  // a function by its bare name
      {"SELECT mapApply(getSetting, m) FROM events", ErrorCode::FORBIDDEN_FUNCTION, 16},
      {"SELECT displayName()", ErrorCode::FORBIDDEN_FUNCTION, 7},  // the server's name
      {"SELECT in(1, events)", ErrorCode::FORBIDDEN_FUNCTION, 7},
      {"SELECT * APPLY(sleep) FROM events", ErrorCode::FORBIDDEN_FUNCTION, 15},
      {"SELECT 1; SELECT 2", ErrorCode::MULTIPLE_STATEMENTS, 10},
      {"ALTER TABLE events DELETE WHERE 1", ErrorCode::NOT_A_SELECT, 0},
      {"SHOW TABLES", ErrorCode::NOT_A_SELECT, 0},
      {"selec 1", ErrorCode::SYNTAX_ERROR, 0},  // a typo is not a forbidden statement
      {"1 + 1", ErrorCode::SYNTAX_ERROR, 0},
      {"SELECT 1 INTO OUTFILE 'x'", ErrorCode::FORBIDDEN_CLAUSE, 9},
      {"SELECT 1 SETTINGS readonly = 0", ErrorCode::FORBIDDEN_SETTING, 18},
      {"SELECT 1 FORMAT Native", ErrorCode::UNSUPPORTED_FORMAT, 16},
      {"SELECT (SELECT 1 FORMAT JSON)", ErrorCode::FORMAT_NOT_ALLOWED, 17},
      {"SELECT dictGet('nope', 'a', 1)", ErrorCode::UNKNOWN_TABLE, 15},
      {"SELECT dictGet('other_pipe', 'a', 1)", ErrorCode::UNKNOWN_TABLE, 15},
      {"SELECT #x", ErrorCode::SYNTAX_ERROR, 7},
      {"SELECT * FROM (events)", ErrorCode::SYNTAX_ERROR, 15},
  };
  for (const auto& c : cases) {
    Error e = refused(c.q);
    INFO(c.q, " -> ", errorCodeName(e.code), " @", e.offset);
    CHECK(e.code == c.code);
    CHECK(e.offset == c.offset);
  }
}

TEST_CASE("every setting of a SETTINGS clause is checked, whatever its place in the clause") {
  // A quoted name after a comma passed as a plain identifier: a subquery's max_threads escaped
  // the tenant's thread cap, and forbidden settings reached the engine.
  struct Case { std::string q; ErrorCode code; uint32_t offset; };
  const Case cases[] = {
      {"SELECT 1 SETTINGS join_use_nulls = 0, `readonly` = 0", ErrorCode::SYNTAX_ERROR, 38},
      {"SELECT 1 SETTINGS join_use_nulls = 0, \"readonly\" = 0", ErrorCode::SYNTAX_ERROR, 38},
      {"SELECT 1 SETTINGS `join_use_nulls` = 0", ErrorCode::SYNTAX_ERROR, 18},
      {"SELECT 1 SETTINGS join_use_nulls = 0, readonly = 0", ErrorCode::FORBIDDEN_SETTING, 38},
      {"SELECT * FROM (SELECT 1 SETTINGS join_use_nulls = 0, `max_threads` = 8)", ErrorCode::SYNTAX_ERROR, 53},
      {"SELECT * FROM (SELECT 1 SETTINGS join_use_nulls = 0, max_threads = 8)", ErrorCode::FORBIDDEN_SETTING, 53},
      {"SELECT * FROM (SELECT 1 SETTINGS join_use_nulls = 0, join_use_nulls = 1, max_threads = 8)", ErrorCode::FORBIDDEN_SETTING, 73},
      {"SELECT 1 SETTINGS max_threads = 1e3", ErrorCode::FORBIDDEN_SETTING, 32},
      {"SELECT 1 SETTINGS max_threads = 0x10", ErrorCode::FORBIDDEN_SETTING, 32},
  };
  for (const auto& c : cases) {
    Error e = refused(c.q);
    INFO(c.q, " -> ", errorCodeName(e.code), " @", e.offset, " ", e.message);
    CHECK(e.code == c.code);
    CHECK(e.offset == c.offset);
  }
  CHECK(ok("SELECT 1 SETTINGS join_use_nulls = 1, max_threads = 2, join_algorithm = 'hash'") ==
        "SELECT 1 SETTINGS join_use_nulls = 1, max_threads = 2, join_algorithm = 'hash'");
  CHECK(ok("SELECT * FROM (SELECT 1 SETTINGS join_use_nulls = 1, join_use_nulls = 0) SETTINGS max_threads = 1") ==
        "SELECT * FROM (SELECT 1 SETTINGS join_use_nulls = 1, join_use_nulls = 0) SETTINGS max_threads = 1");
}

TEST_CASE("lexer errors say what is wrong in words, showing the character as written") {
  struct Case { std::string q; const char* message; uint32_t offset; };
  const Case cases[] = {
      {"SELECT \u2018a\u2019", "unexpected character \u2018: typographic quotes are not SQL quotes; write strings in ' and names in ` or \"", 7},
      {"SELECT \u201Ca\u201D", "unexpected character \u201C: typographic quotes are not SQL quotes; write strings in ' and names in ` or \"", 7},
      {"SELECT 1 \u00A7 2", "unexpected character \u00A7", 9},
      {"SELECT `a", "a `quoted` name is not closed: end it with `", 7},
      {"SELECT 'a", "a string is not closed: end it with '", 7},
      {"SELECT 1 /* x", "a /* comment is not closed: end it with */", 9},
      {"SELECT 1 ! 2", "'!' alone is not an operator: use != or NOT", 9},
      {std::string("SELECT \x01"), "unexpected byte 0x01", 7},
      {std::string("SELECT \xE2\x80"), "unexpected byte 0xE2", 7},  // a cut UTF-8 sequence at the end
      {std::string("SELECT \xFF 1"), "unexpected byte 0xFF", 7},
  };
  for (const auto& c : cases) {
    Error e = refused(c.q);
    INFO(c.q, " -> ", errorCodeName(e.code), " @", e.offset, ": ", e.message);
    CHECK(e.code == ErrorCode::SYNTAX_ERROR);
    CHECK(e.message == c.message);
    CHECK(e.offset == c.offset);
  }
}

TEST_CASE("function lookup: allowlist, case, combinators") {
  uint8_t f = 0;
  CHECK(lookupFunction("count", f));
  CHECK(lookupFunction("COUNT", f));
  CHECK_FALSE(lookupFunction("TOSTRING", f));
  CHECK(lookupFunction("sumIf", f));
  CHECK(lookupFunction("uniqMergeState", f));
  CHECK(lookupFunction("avgOrNullIf", f));
  CHECK_FALSE(lookupFunction("toStringIf", f));  // combinators apply to aggregates only
  CHECK_FALSE(lookupFunction("file", f));
  CHECK_FALSE(lookupFunction("hostName", f));
  CHECK_FALSE(lookupFunction("OrNull", f));  // a combinator alone is not a function
  CHECK(lookupFunction("dictGet", f));
  CHECK((f & kTableLiteral) != 0);
}

TEST_CASE("name map refuses SQL that is not a qualified name") {
  NameMap m;
  CHECK(m.add("a", EntryKind::Table, "`db`.`t`"));
  CHECK_FALSE(m.add("a", EntryKind::Table, "`db`.`t`"));
  CHECK_FALSE(m.add("b", EntryKind::Table, "db.t; DROP TABLE x"));
  CHECK_FALSE(m.add("c", EntryKind::Table, "db.t /* x */"));
  CHECK_FALSE(m.add("d", EntryKind::Table, "a.b.c"));
  CHECK(m.add("e", EntryKind::Query, "SELECT 1"));
}

TEST_CASE("pipes: order, dependencies, cycles") {
  NameMap m = testMap();
  std::vector<PipeNode> nodes{{"a", "SELECT * FROM events"}, {"b", "SELECT * FROM a JOIN users USING id"}, {"c", "SELECT count() FROM b"}};
  PipeResult r;
  Error e;
  REQUIRE(compilePipe(nodes, m, "c", Options{}, r, e));
  CHECK(r.order == std::vector<uint32_t>{0, 1, 2});
  CHECK(r.depends[1] == std::vector<std::string>{"a", "users"});
  CHECK(r.sql ==
        "SELECT count() FROM (SELECT * FROM (SELECT * FROM `ws`.`events` AS events) AS a JOIN `ws`.`users` AS users USING id) AS b");
  nodes[0].sql = "SELECT * FROM c";
  CHECK_FALSE(compilePipe(nodes, m, "c", Options{}, r, e));
  CHECK(e.code == ErrorCode::PIPE_CYCLE);
  CHECK(e.node == "a");
  CHECK(e.offset == 14);
}

TEST_CASE("keywords where a table is expected are table names to ClickHouse: resolved or refused, never passed on") {
  // ClickHouse reads "FROM where", "JOIN group ON ...", "FROM t, limit" and "x IN where" as
  // tables named where, group, limit: passed on unqualified they would reach the engine's
  // current database (on a tenant's own server, the connection user's default database).
  struct Case { const char* q; ErrorCode code; uint32_t offset; };
  const Case cases[] = {
      {"SELECT * FROM WHERE", ErrorCode::SYNTAX_ERROR, 14},
      {"SELECT * FROM FROM", ErrorCode::SYNTAX_ERROR, 14},
      {"SELECT * FROM select", ErrorCode::SYNTAX_ERROR, 14},
      {"SELECT 1 FROM events JOIN WHERE ON 1", ErrorCode::SYNTAX_ERROR, 26},
      {"SELECT * FROM events AS e JOIN GROUP USING (a)", ErrorCode::SYNTAX_ERROR, 31},
      {"SELECT * FROM events, LIMIT", ErrorCode::SYNTAX_ERROR, 22},
      {"SELECT * FROM events, users, ORDER", ErrorCode::SYNTAX_ERROR, 29},
      {"SELECT a FROM events WHERE a IN WHERE", ErrorCode::UNKNOWN_TABLE, 32},
      {"SELECT a FROM events WHERE a IN (LIMIT)", ErrorCode::UNKNOWN_TABLE, 33},
      {"SELECT a FROM events WHERE a NOT IN having", ErrorCode::UNKNOWN_TABLE, 36},
  };
  for (const Case& c : cases) {
    Error e = refused(c.q);
    INFO(c.q, " -> ", e.message);
    CHECK(e.code == c.code);
    CHECK(e.offset == c.offset);
  }
  CHECK(refused("SELECT * FROM where").message.find("`where`") != std::string::npos);
  // Subqueries, FROM-first queries and ordinary names are read as before.
  CHECK(ok("SELECT a FROM events WHERE a IN (SELECT 1)") == "SELECT a FROM `ws`.`events` AS events WHERE a IN (SELECT 1)");
  CHECK(ok("SELECT a FROM events WHERE a IN (FROM users SELECT a)") ==
        "SELECT a FROM `ws`.`events` AS events WHERE a IN (FROM `ws`.`users` AS users SELECT a)");
  CHECK(ok("SELECT a FROM events WHERE a IN (WITH 1 AS b SELECT b)") ==
        "SELECT a FROM `ws`.`events` AS events WHERE a IN (WITH 1 AS b SELECT b)");
  CHECK(ok("SELECT a FROM events WHERE a IN users") == "SELECT a FROM `ws`.`events` AS events WHERE a IN `ws`.`users`");
  CHECK(ok("FROM events SELECT a") == "FROM `ws`.`events` AS events SELECT a");
}

TEST_CASE("a data source named like a keyword is read when quoted") {
  NameMap m;
  m.add("where", EntryKind::Table, "`ws`.`where`");
  Analysis a;
  Error e;
  REQUIRE(analyze("SELECT * FROM `where` WHERE 1 IN `where`", m, Options{}, a, e));
  CHECK(a.sql == "SELECT * FROM `ws`.`where` AS `where` WHERE 1 IN `ws`.`where`");
}

TEST_CASE("max_threads is dropped from the final SETTINGS of SQL inlined as a subquery") {
  CHECK(withoutMaxThreads("SELECT 1 SETTINGS max_threads = 8") == "SELECT 1");
  CHECK(withoutMaxThreads("SELECT 1 settings max_threads=8, join_use_nulls = 1") == "SELECT 1 SETTINGS join_use_nulls = 1");
  CHECK(withoutMaxThreads("SELECT 1 SETTINGS join_use_nulls = 1, `max_threads` = 8") == "SELECT 1 SETTINGS join_use_nulls = 1");
  CHECK(withoutMaxThreads("SELECT 1 SETTINGS join_use_nulls = 1") == "SELECT 1 SETTINGS join_use_nulls = 1");
  // Only the clause that ends the query: a subquery's is already refused by the analyzer, and a
  // column named settings is not a clause.
  CHECK(withoutMaxThreads("SELECT settings FROM t") == "SELECT settings FROM t");
  CHECK(withoutMaxThreads("SELECT * FROM (SELECT 1 SETTINGS max_threads = 2)") == "SELECT * FROM (SELECT 1 SETTINGS max_threads = 2)");
  CHECK(withoutMaxThreads("SELECT 1 AS settings") == "SELECT 1 AS settings");
  CHECK(withoutMaxThreads("SELECT 'SETTINGS max_threads = 8'") == "SELECT 'SETTINGS max_threads = 8'");
  CHECK(withoutMaxThreads("SELECT 1 SETTINGS max_threads = 8 /* c */") == "SELECT 1 /* c */");

  // Found by the fuzzer: a SETTINGS clause after a WITH with no SELECT was taken as a query.
  CHECK(refused("WITH c AS (SELECT 1) SETTINGS max_threads = 1").message == "incomplete query before SETTINGS");
  CHECK(refused("WITH c AS (SELECT 1) q y SETTINGS max_threads = 1").code == ErrorCode::SYNTAX_ERROR);
  CHECK(refused("SETTINGS max_threads = 1").code == ErrorCode::SYNTAX_ERROR);
  // The same at a closing bracket: a subquery that is only a WITH (ClickHouse refuses it too).
  CHECK(refused("SELECT * FROM (WITH c AS (SELECT 1))").message == "incomplete query before ')'");
  CHECK(refused("SELECT 1 IN (WITH 1 AS x)").code == ErrorCode::SYNTAX_ERROR);
  CHECK(!ok("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c)").empty());

  NameMap m;
  REQUIRE(m.add("p", EntryKind::Query, "SELECT number FROM numbers(10) SETTINGS max_threads = 16"));
  Analysis a;
  Error e;
  REQUIRE(analyze("SELECT * FROM p SETTINGS max_threads = 1", m, Options{}, a, e));
  CHECK(a.sql == "SELECT * FROM (SELECT number FROM numbers(10)) AS p SETTINGS max_threads = 1");

  // A pipe's node that sets max_threads, read by a later node: inlined without it.
  std::vector<PipeNode> nodes{{"a", "SELECT number FROM numbers(10) SETTINGS max_threads = 16, join_use_nulls = 1"},
                              {"b", "SELECT count() FROM a"}};
  PipeResult r;
  REQUIRE(compilePipe(nodes, m, "b", Options{}, r, e));
  CHECK(r.sql == "SELECT count() FROM (SELECT number FROM numbers(10) SETTINGS join_use_nulls = 1) AS a");
  // The node itself, as the endpoint, keeps its SETTINGS (the server caps the value).
  REQUIRE(compilePipe(nodes, m, "a", Options{}, r, e));
  CHECK(r.sql == "SELECT number FROM numbers(10) SETTINGS max_threads = 16, join_use_nulls = 1");
}

namespace {

// "SELECT '<n x>' AS s": n + 14 bytes.
std::string literalQuery(size_t n) { return "SELECT '" + std::string(n, 'x') + "' AS s"; }

std::string repeated(std::string_view head, std::string_view item, std::string_view sep, size_t n) {
  std::string s(head);
  for (size_t i = 0; i < n; ++i) {
    if (i) s += sep;
    s += item;
  }
  return s;
}

}  // namespace

// Audit: the rewrite copied an inlined query in whole at every reference and only then checked
// the size (the pipe compiler, at 16 MiB): a 200 KB request built gigabytes.
TEST_CASE("inlining is counted against the maximum query size while the query is rewritten") {
  NameMap m;
  REQUIRE(m.add("p1", EntryKind::Query, literalQuery(100'000)));
  REQUIRE(m.add("events", EntryKind::Table, "`ws`.`events`"));
  Analysis a;
  Error e;
  // Two references fit in 256 KiB; the third is refused where it stands.
  REQUIRE(analyze("SELECT count() FROM p1, p1", m, Options{}, a, e));
  CHECK(a.sql.size() == 26 + 2 * (100'014 + 2 + 4 + 2 - 2));
  const std::string three = "SELECT count() FROM p1, p1, p1";
  REQUIRE_FALSE(analyze(three, m, Options{}, a, e));
  CHECK(e.code == ErrorCode::QUERY_TOO_LARGE);
  CHECK(e.offset == three.rfind("p1"));
  CHECK(e.message.find("'p1' is copied in whole at each reference") != std::string::npos);
  CHECK(e.message.find("262144") != std::string::npos);
  CHECK(a.sql.empty());

  // The audit's /v0/sql request: 20 000 references (80 KB), refused at the second.
  const std::string many = repeated("SELECT count() FROM ", "p1", ", ", 20'000);
  REQUIRE_FALSE(analyze(many, m, Options{}, a, e));
  CHECK(e.code == ErrorCode::QUERY_TOO_LARGE);
  CHECK(e.offset == 20 + 4);

  // IN and a bracketed IN are references too.
  const std::string in = "SELECT 1 WHERE 1 IN p1 AND 2 IN (p1) AND 3 NOT IN p1";
  REQUIRE_FALSE(analyze(in, m, Options{}, a, e));
  CHECK(e.code == ErrorCode::QUERY_TOO_LARGE);
  CHECK(e.offset == in.rfind("p1"));

  // A CTE names it once: read many times, inlined once.
  REQUIRE(analyze(repeated("WITH t AS (SELECT * FROM p1) SELECT count() FROM ", "t", ", ", 1000), m, Options{}, a, e));

  // The bound is exact: a rewrite of exactly max_query_size bytes is accepted, one byte more is not.
  Options small;
  small.max_query_size = 26 + 2 * (100'014 + 2 + 4 + 2 - 2);
  REQUIRE(analyze("SELECT count() FROM p1, p1", m, small, a, e));
  CHECK(a.sql.size() == small.max_query_size);
  small.max_query_size -= 1;
  REQUIRE_FALSE(analyze("SELECT count() FROM p1, p1", m, small, a, e));
  CHECK(e.code == ErrorCode::QUERY_TOO_LARGE);

  // Qualified table names count too (the engine would refuse the longer query).
  Options tiny;
  tiny.max_query_size = 200;
  const std::string tables = repeated("SELECT 1 FROM ", "events", ", ", 12);  // 14 + 12*6 + 11*2 = 108 bytes
  REQUIRE(tables.size() == 108);
  REQUIRE_FALSE(analyze(tables, m, tiny, a, e));
  CHECK(e.code == ErrorCode::QUERY_TOO_LARGE);
  CHECK(e.message.find("qualified") != std::string::npos);
}

TEST_CASE("the endpoint's result read many times by q= (table _) is refused at the reference past the limit") {
  NameMap m;
  REQUIRE(m.add("_", EntryKind::Query, literalQuery(200'000)));
  const std::string q = repeated("SELECT count() FROM ", "_", ", ", 10'000);
  Analysis a;
  Error e;
  REQUIRE_FALSE(analyze(q, m, Options{}, a, e));
  CHECK(e.code == ErrorCode::QUERY_TOO_LARGE);
  CHECK(e.offset == 20 + 3);  // the second _
}

TEST_CASE("pipes: a node past the maximum query size once inlined is refused as it is compiled") {
  NameMap m = testMap();
  // The audit's pipe: n2 reads n1 (200 KB) 80 times, n3 reads n2 100 times. n2 is refused at
  // its second reference to n1 (it used to compile to 16 MB and n3 to gigabytes).
  std::vector<PipeNode> nodes{{"n1", literalQuery(200'000)},
                              {"n2", repeated("", "SELECT s FROM n1", " UNION ALL ", 80)},
                              {"n3", repeated("", "SELECT s FROM n2", " UNION ALL ", 100)}};
  PipeResult r;
  Error e;
  REQUIRE_FALSE(compilePipe(nodes, m, "n3", Options{}, r, e));
  CHECK(e.code == ErrorCode::QUERY_TOO_LARGE);
  CHECK(e.node == "n2");
  CHECK(e.offset == std::string("SELECT s FROM n1 UNION ALL SELECT s FROM ").size());
  CHECK(e.message.find("'n1'") != std::string::npos);

  // Deep pipes within the limit compile as before.
  std::vector<PipeNode> deep{{"n0", "SELECT number AS x FROM numbers(10)"}};
  for (int i = 1; i < 100; ++i)
    deep.push_back({"n" + std::to_string(i), "SELECT x FROM n" + std::to_string(i - 1) + " UNION ALL SELECT x + 1 FROM n0"});
  REQUIRE(compilePipe(deep, m, "n99", Options{}, r, e));
  CHECK(r.order.size() == 100);
  CHECK(r.sql.size() < 20'000);
}

TEST_CASE("pipes: the compiled nodes a target needs are bounded together") {
  // A chain of nodes, each a little larger than the one it reads, each under the maximum query
  // size: compiling it held chain length x 200 KB (a 10 KB request made gigabytes at 10 000 nodes).
  NameMap m;
  std::vector<PipeNode> chain{{"c0", literalQuery(200'000)}};
  for (int i = 1; i < 200; ++i) chain.push_back({"c" + std::to_string(i), "SELECT * FROM c" + std::to_string(i - 1)});
  PipeResult r;
  Error e;
  REQUIRE_FALSE(compilePipe(chain, m, "c199", Options{}, r, e));
  CHECK(e.code == ErrorCode::QUERY_TOO_LARGE);
  CHECK(e.message.find("together") != std::string::npos);
  CHECK(e.node == "c83");  // 16 MiB / ~200 KB per node
  // A shorter chain compiles.
  REQUIRE(compilePipe(chain, m, "c40", Options{}, r, e));
  CHECK(r.sql.size() < 210'000);
}
