// N-API shim over native/core/sql: converts arguments, calls the analyzer, converts
// the result. Analysis takes microseconds, so the calls are synchronous.
#include <memory>

#include "registry.h"
#include "sql/analyzer.h"
#include "sql/pipe.h"

namespace {

using roost::sql::Error;
using roost::sql::NameMap;

// Errors are returned as values ({code, offset, message, node}); the TypeScript
// wrapper turns them into SqlError. TypeErrors are for misuse of the binding.
Napi::Object errorObject(Napi::Env env, const Error& err) {
  auto o = Napi::Object::New(env);
  o.Set("code", roost::sql::errorCodeName(err.code));
  o.Set("offset", Napi::Number::New(env, err.offset));
  o.Set("message", err.message);
  if (!err.node.empty()) o.Set("node", err.node);
  return o;
}

const NameMap& nameMapArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a name map handle");
  return *info[i].As<Napi::External<NameMap>>().Data();
}

roost::sql::Options optionsArg(const Napi::CallbackInfo& info, size_t i) {
  roost::sql::Options o;
  if (info.Length() > i && info[i].IsNumber()) {
    double v = info[i].As<Napi::Number>().DoubleValue();
    if (v > 0) o.max_query_size = static_cast<size_t>(v);
  }
  if (info.Length() > i + 1 && info[i + 1].IsBoolean()) o.guard_aliases = info[i + 1].As<Napi::Boolean>().Value();
  return o;
}

// (names: string[], kinds: Uint8Array, sqls: string[]) => External | {code, offset=index}
Napi::Value CreateNameMap(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsTypedArray() || !info[2].IsArray())
    throw Napi::TypeError::New(env, "sqlCreateNameMap(names, kinds, sqls)");
  auto names = info[0].As<Napi::Array>();
  auto kinds = info[1].As<Napi::Uint8Array>();
  auto sqls = info[2].As<Napi::Array>();
  uint32_t n = names.Length();
  if (kinds.ElementLength() != n || sqls.Length() != n) throw Napi::TypeError::New(env, "name map arrays differ in length");
  auto map = std::make_unique<NameMap>();
  map->reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Value name = names[i], sql = sqls[i];
    if (!name.IsString() || !sql.IsString()) throw Napi::TypeError::New(env, "name map entries must be strings");
    auto kind = kinds[i] == 1 ? roost::sql::EntryKind::Query : roost::sql::EntryKind::Table;
    if (!map->add(name.As<Napi::String>().Utf8Value(), kind, sql.As<Napi::String>().Utf8Value())) {
      Error err;
      err.code = roost::sql::ErrorCode::INVALID_NAME_MAP;
      err.offset = i;
      err.message = "name map entry '" + name.As<Napi::String>().Utf8Value() + "' is a duplicate or its SQL is not a qualified name";
      return errorObject(env, err);
    }
  }
  return Napi::External<NameMap>::New(env, map.release(), [](Napi::Env, NameMap* m) { delete m; });
}

// (sql: string, map: External, maxQuerySize?: number, guardAliases?: boolean) =>
//   {sql, format, formatOffset, refs: Uint32Array [offset, length, entry, kind]*} | {code, offset, message}
Napi::Value Analyze(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "sqlAnalyze(sql, nameMap)");
  std::string sql = info[0].As<Napi::String>().Utf8Value();
  const NameMap& names = nameMapArg(info, 1);
  roost::sql::Analysis a;
  Error err;
  if (!roost::sql::analyze(sql, names, optionsArg(info, 2), a, err)) return errorObject(env, err);
  auto o = Napi::Object::New(env);
  o.Set("sql", a.sql);
  if (!a.format.empty()) {
    o.Set("format", a.format);
    o.Set("formatOffset", Napi::Number::New(env, static_cast<double>(a.format_offset)));
  }
  auto refs = Napi::Uint32Array::New(env, a.refs.size() * 4);
  for (size_t i = 0; i < a.refs.size(); ++i) {
    refs[i * 4] = a.refs[i].offset;
    refs[i * 4 + 1] = a.refs[i].length;
    refs[i * 4 + 2] = a.refs[i].entry;
    refs[i * 4 + 3] = static_cast<uint32_t>(a.refs[i].kind);
  }
  o.Set("refs", refs);
  return o;
}

// (nodeNames: string[], nodeSqls: string[], map: External, target: string, maxQuerySize?) =>
//   {sql, order: Uint32Array, depends: string[][]} | {code, offset, message, node}
Napi::Value CompilePipe(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 4 || !info[0].IsArray() || !info[1].IsArray() || !info[3].IsString())
    throw Napi::TypeError::New(env, "sqlCompilePipe(nodeNames, nodeSqls, nameMap, target)");
  auto names = info[0].As<Napi::Array>();
  auto sqls = info[1].As<Napi::Array>();
  if (names.Length() != sqls.Length()) throw Napi::TypeError::New(env, "node arrays differ in length");
  std::vector<roost::sql::PipeNode> nodes(names.Length());
  for (uint32_t i = 0; i < names.Length(); ++i) {
    Napi::Value n = names[i], s = sqls[i];
    if (!n.IsString() || !s.IsString()) throw Napi::TypeError::New(env, "node names and SQL must be strings");
    nodes[i].name = n.As<Napi::String>().Utf8Value();
    nodes[i].sql = s.As<Napi::String>().Utf8Value();
  }
  const NameMap& map = nameMapArg(info, 2);
  roost::sql::PipeResult r;
  Error err;
  if (!roost::sql::compilePipe(nodes, map, info[3].As<Napi::String>().Utf8Value(), optionsArg(info, 4), r, err))
    return errorObject(env, err);
  auto o = Napi::Object::New(env);
  o.Set("sql", r.sql);
  auto order = Napi::Uint32Array::New(env, r.order.size());
  for (size_t i = 0; i < r.order.size(); ++i) order[i] = r.order[i];
  o.Set("order", order);
  auto deps = Napi::Array::New(env, r.depends.size());
  for (size_t i = 0; i < r.depends.size(); ++i) {
    auto d = Napi::Array::New(env, r.depends[i].size());
    for (size_t j = 0; j < r.depends[i].size(); ++j) d.Set(static_cast<uint32_t>(j), r.depends[i][j]);
    deps.Set(static_cast<uint32_t>(i), d);
  }
  o.Set("depends", deps);
  return o;
}

// (expr: string, columns: string[], qualifier: string) => string | {code, offset, message}
Napi::Value QualifyColumns(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsString())
    throw Napi::TypeError::New(env, "sqlQualifyColumns(expr, columns, qualifier)");
  auto cols = info[1].As<Napi::Array>();
  std::vector<std::string> columns;
  columns.reserve(cols.Length());
  for (uint32_t i = 0; i < cols.Length(); ++i) {
    Napi::Value c = cols[i];
    if (!c.IsString()) throw Napi::TypeError::New(env, "column names must be strings");
    columns.push_back(c.As<Napi::String>().Utf8Value());
  }
  std::string out;
  Error err;
  if (!roost::sql::qualifyColumns(info[0].As<Napi::String>().Utf8Value(), columns, info[2].As<Napi::String>().Utf8Value(), out, err))
    return errorObject(env, err);
  return Napi::String::New(env, out);
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("sqlQualifyColumns", Napi::Function::New(env, QualifyColumns));
  exports.Set("sqlCreateNameMap", Napi::Function::New(env, CreateNameMap));
  exports.Set("sqlAnalyze", Napi::Function::New(env, Analyze));
  exports.Set("sqlCompilePipe", Napi::Function::New(env, CompilePipe));
}

roost::binding::Registrar registrar(Register);

}  // namespace
