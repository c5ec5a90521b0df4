#include "sql/pipe.h"

#include <algorithm>

namespace roost::sql {

namespace {

// The compiled SQL of one node is at most the maximum query size (the analyzer bounds its
// output), but compilePipe keeps the compiled SQL of every node the target needs until the
// target is done: a long chain of nodes, each a little larger than the one it reads, would
// hold chain length x max_query_size. This bounds them together (generous: 64 nodes of the
// default 256 KiB; ordinary pipes are far below).
constexpr size_t kMaxCompiledTotal = 16u << 20;

// A name map holding the caller's entries plus the pipe's nodes, each node an entry
// of kind Query whose SQL is a placeholder until that node is compiled. Nodes are
// compiled dependencies first, so a node only ever sees compiled SQL.
NameMap withNodes(const NameMap& names, const std::vector<PipeNode>& nodes, std::vector<uint32_t>& node_entry) {
  NameMap m;
  m.reserve(names.size() + nodes.size());
  node_entry.assign(nodes.size(), UINT32_MAX);
  for (size_t i = 0; i < nodes.size(); ++i) {
    m.add(nodes[i].name, EntryKind::Query, "SELECT 1");
    node_entry[i] = static_cast<uint32_t>(m.size() - 1);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    const NameEntry& e = names.at(i);
    if (!m.find(e.name)) m.add(e.name, e.kind, e.sql);
  }
  return m;
}

}  // namespace

bool compilePipe(const std::vector<PipeNode>& nodes, const NameMap& names, std::string_view target,
                 const Options& options, PipeResult& out, Error& err) {
  out = PipeResult{};
  err = Error{};
  Options opt = options;
  opt.allow_format = false;
  size_t target_idx = SIZE_MAX;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].name.empty()) {
      err = {ErrorCode::INVALID_NAME_MAP, 0, "a node has no name", ""};
      return false;
    }
    for (size_t j = 0; j < i; ++j)
      if (nodes[j].name == nodes[i].name) {
        err = {ErrorCode::DUPLICATE_NODE, 0, "two nodes are named '" + nodes[i].name + "'", nodes[i].name};
        return false;
      }
    if (nodes[i].name == target) target_idx = i;
  }
  if (target_idx == SIZE_MAX) {
    err = {ErrorCode::UNKNOWN_NODE, 0, "no node named '" + std::string(target) + "'", std::string(target)};
    return false;
  }

  // Pass 1: dependencies of every node (placeholder SQL for nodes).
  std::vector<uint32_t> node_entry;
  NameMap probe = withNodes(names, nodes, node_entry);
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> edges(nodes.size());  // (node, offset)
  out.depends.resize(nodes.size());
  Analysis a;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!analyze(nodes[i].sql, probe, opt, a, err)) {
      err.node = nodes[i].name;
      return false;
    }
    for (const auto& r : a.refs) {
      const std::string& dep = probe.at(r.entry).name;
      auto& d = out.depends[i];
      if (std::find(d.begin(), d.end(), dep) == d.end()) d.push_back(dep);
      if (r.entry < nodes.size()) edges[i].push_back({r.entry, r.offset});
    }
  }

  // Depth-first order from the target; a grey node seen again is a cycle. Then from every node
  // the target does not reach, for cycles only: a cycle among nodes the last node does not read
  // was saved (the engine, or nothing with ignore_sql_errors, was left to find it), and published
  // later as the endpoint.
  std::vector<uint8_t> color(nodes.size(), 0);
  struct Step { uint32_t node; size_t next; };
  auto walk = [&](uint32_t start, bool record) -> bool {
    std::vector<Step> stack{{start, 0}};
    color[start] = 1;
    while (!stack.empty()) {
      Step& s = stack.back();
      if (s.next < edges[s.node].size()) {
        auto [dep, offset] = edges[s.node][s.next++];
        if (color[dep] == 1) {
          std::string path = nodes[dep].name;
          bool on = false;
          for (const auto& st : stack) {
            if (st.node == dep) on = true;
            if (on && st.node != dep) path += " -> " + nodes[st.node].name;
          }
          path += " -> " + nodes[dep].name;
          err = {ErrorCode::PIPE_CYCLE, offset, "nodes depend on each other: " + path, nodes[s.node].name};
          return false;
        }
        if (color[dep] == 0) {
          color[dep] = 1;
          stack.push_back({dep, 0});
        }
      } else {
        color[s.node] = 2;
        if (record) out.order.push_back(s.node);
        stack.pop_back();
      }
    }
    return true;
  };
  if (!walk(static_cast<uint32_t>(target_idx), true)) return false;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (color[i] == 0 && !walk(static_cast<uint32_t>(i), false)) return false;

  // Pass 2: compile in dependency order; each node sees the compiled SQL of the others.
  // The target comes last (the order is depth-first post-order from it).
  const size_t budget = std::max(kMaxCompiledTotal, opt.max_query_size);
  size_t total = 0;
  for (uint32_t idx : out.order) {
    if (!analyze(nodes[idx].sql, probe, opt, a, err)) {
      err.node = nodes[idx].name;
      return false;
    }
    total += a.sql.size();
    if (total > budget) {
      err = {ErrorCode::QUERY_TOO_LARGE, 0,
             "the compiled nodes of the pipe are larger than " + std::to_string(budget) +
                 " bytes together (each node inlines the nodes it reads); use fewer or smaller nodes",
             nodes[idx].name};
      return false;
    }
    if (idx == target_idx) {
      out.sql = std::move(a.sql);
    } else {
      probe.setQuerySql(node_entry[idx], std::move(a.sql));
    }
  }
  return true;
}

}  // namespace roost::sql
