// Tinybird's data source schema syntax:
//   `name` Type [`json:$.path`] [DEFAULT expr] [, ...]
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "csv/types.h"

namespace roost::csv {

struct Column {
  std::string name;
  Type type;
  std::string jsonPath;       // empty when absent
  std::string defaultExpr;    // empty when absent
  bool hasDefault = false;
};

struct SchemaError {
  size_t offset = 0;
  std::string message;
  bool unsupportedType = false;
};

bool parseSchema(std::string_view text, std::vector<Column>& out, SchemaError& err);

/// The column list for ClickHouse's file()/input structure argument, with
/// DEFAULT expressions when `withDefaults`.
std::string structureOf(const std::vector<Column>& cols, bool withDefaults);
/// Backquotes an identifier for ClickHouse.
std::string quoteIdentifier(std::string_view name);

}  // namespace roost::csv
