// Stable error codes of the SQL analyzer. The strings are part of the API: the
// TypeScript wrapper, the HTTP layer and tests switch on them.
#pragma once
#include <cstdint>
#include <string>

namespace roost::sql {

#define ROOST_SQL_ERRORS(M)                                                          \
  M(SYNTAX_ERROR)             /* the lexer or the structure scan failed */          \
  M(QUERY_TOO_LARGE)          /* over the maximum query size */                     \
  M(NESTING_TOO_DEEP)         /* brackets nested past the limit */                  \
  M(MULTIPLE_STATEMENTS)      /* something after the first statement's ';' */       \
  M(NOT_A_SELECT)             /* INSERT, ALTER, SHOW, EXPLAIN, ... */               \
  M(UNKNOWN_TABLE)            /* a table, dictionary or node not in the name map */ \
  M(FORBIDDEN_DATABASE)       /* system, information_schema, other databases */     \
  M(FORBIDDEN_TABLE_FUNCTION) /* file(), url(), remote(), ... */                    \
  M(FORBIDDEN_FUNCTION)       /* a function ClickHouse has that is not allowed */   \
  M(UNKNOWN_FUNCTION)         /* a function ClickHouse does not have */             \
  M(FORBIDDEN_SETTING)        /* SETTINGS key not on the allowlist, or bad value */ \
  M(FORBIDDEN_CLAUSE)         /* INTO OUTFILE, query parameters */                  \
  M(UNSUPPORTED_FORMAT)       /* FORMAT name the server does not serve */           \
  M(FORMAT_NOT_ALLOWED)       /* FORMAT where it may not be (subquery, pipe node) */ \
  M(PIPE_CYCLE)               /* nodes that depend on each other */                 \
  M(UNKNOWN_NODE)             /* the requested node is not in the pipe */           \
  M(DUPLICATE_NODE)           /* two nodes with one name */                         \
  M(INVALID_NAME_MAP)         /* a name map entry the analyzer cannot use */

enum class ErrorCode : uint8_t {
  OK = 0,
#define M(name) name,
  ROOST_SQL_ERRORS(M)
#undef M
};

const char* errorCodeName(ErrorCode c) noexcept;

struct Error {
  ErrorCode code = ErrorCode::OK;
  uint32_t offset = 0;   // byte offset of the offending token in the query text
  std::string message;   // for people; never parse it
  std::string node;      // pipe compilation: the node whose SQL has the error
  explicit operator bool() const noexcept { return code != ErrorCode::OK; }
};

}  // namespace roost::sql
