// A pipe is an ordered list of SQL nodes. A node reads data sources, other nodes of
// the same pipe and other pipes' endpoints (name map entries of kind Query). This
// builds the dependency graph, refuses cycles, and compiles one node into a single
// query in which every node reference is an inlined subquery.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "sql/analyzer.h"

namespace roost::sql {

struct PipeNode {
  std::string name;
  std::string sql;
};

struct PipeResult {
  std::string sql;                                 // the target node, compiled
  std::vector<uint32_t> order;                     // node indexes the target needs, dependencies first, target last
  std::vector<std::vector<std::string>> depends;   // per node: names it references (nodes or map entries), first use order
};

// Node names shadow name map entries of the same name inside the pipe.
bool compilePipe(const std::vector<PipeNode>& nodes, const NameMap& names, std::string_view target,
                 const Options& options, PipeResult& out, Error& err);

}  // namespace roost::sql
