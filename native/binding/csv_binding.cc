// Thin N-API shim over native/core/csv: converts arguments into plain structs,
// runs chunk parsing off the JS thread, converts results back.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "csv/infer.h"
#include "csv/schema.h"
#include "csv/validator.h"
#include "registry.h"

namespace {

using namespace roost::csv;

Napi::Error codedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

char charOption(const Napi::Object& o, const char* key, char fallback) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) return fallback;
  std::string s = v.As<Napi::String>().Utf8Value();
  return s.empty() ? 0 : s[0];
}

Dialect dialectFrom(const Napi::Object& o) {
  return Dialect{charOption(o, "delimiter", ','), charOption(o, "quote", '"'), charOption(o, "escape", 0)};
}

std::string charString(char c) { return c ? std::string(1, c) : std::string(); }

// Hands malloc'd bytes to a Buffer without copying. When V8 collects the Buffer
// its memory goes back to the buffer cache (its capacity rides in the hint), for
// the buffers of a later batch.
Napi::Buffer<char> takeBuffer(Napi::Env env, OwnedBytes&& b) {
  if (b.size == 0) return Napi::Buffer<char>::New(env, 0);
  char* data = b.data;
  size_t len = b.size;
  auto* cap = reinterpret_cast<void*>(static_cast<uintptr_t>(b.cap));
  b.data = nullptr;
  b.size = b.cap = 0;
  return Napi::Buffer<char>::New(
      env, data, len, [](Napi::Env, char* p, void* hint) { roost::csv::bufcache::give(p, static_cast<size_t>(reinterpret_cast<uintptr_t>(hint))); }, cap);
}

// Moves a std::string into a Buffer without copying.
Napi::Buffer<char> takeBuffer(Napi::Env env, std::string&& s) {
  if (s.empty()) return Napi::Buffer<char>::New(env, 0);
  auto owned = std::make_unique<std::string>(std::move(s));
  char* data = owned->data();
  size_t len = owned->size();
  return Napi::Buffer<char>::New(env, data, len, [](Napi::Env, char*, std::string* p) { delete p; }, owned.release());
}

Napi::Value Sniff(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "csvSniff expects a Buffer");
  auto buf = info[0].As<Napi::Buffer<char>>();
  size_t expected = info.Length() > 1 && info[1].IsNumber() ? static_cast<size_t>(info[1].As<Napi::Number>().Uint32Value()) : 0;
  Sniffed s = sniff(std::string_view(buf.Data(), buf.Length()), expected);
  Napi::Object o = Napi::Object::New(env);
  o.Set("delimiter", charString(s.dialect.delimiter));
  o.Set("quote", charString(s.dialect.quote));
  o.Set("escape", charString(s.dialect.escape));
  o.Set("hasHeader", s.hasHeader);
  o.Set("newline", s.newline);
  return o;
}

Napi::Object columnsToJs(Napi::Env env, const std::vector<Column>& cols) {
  Napi::Array arr = Napi::Array::New(env, cols.size());
  for (size_t i = 0; i < cols.size(); ++i) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("name", cols[i].name);
    c.Set("type", typeToString(cols[i].type));
    c.Set("nullable", cols[i].type.isNullable());
    c.Set("jsonPath", cols[i].jsonPath.empty() ? env.Null() : Napi::String::New(env, cols[i].jsonPath));
    c.Set("defaultExpr", cols[i].hasDefault ? Napi::String::New(env, cols[i].defaultExpr) : env.Null());
    arr.Set(static_cast<uint32_t>(i), c);
  }
  return arr;
}

Napi::Value ParseSchema(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "csvParseSchema expects a string");
  std::string text = info[0].As<Napi::String>().Utf8Value();
  std::vector<Column> cols;
  SchemaError err;
  Napi::Object o = Napi::Object::New(env);
  if (!parseSchema(text, cols, err)) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("code", err.unsupportedType ? "UNSUPPORTED_TYPE" : "SCHEMA_SYNTAX");
    e.Set("message", err.message);
    e.Set("offset", static_cast<double>(err.offset));
    o.Set("error", e);
    return o;
  }
  o.Set("columns", columnsToJs(env, cols));
  o.Set("structure", structureOf(cols, false));
  return o;
}

// Schema inference off the JS thread: Execute() sees only plain C++ data (the
// sample stays alive through its reference); OnOK() builds the JS result.
class InferWorker final : public Napi::AsyncWorker {
 public:
  InferWorker(Napi::Env env, Napi::Buffer<char> sample, Dialect d, bool hasHeader, bool complete, size_t maxRows)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        sampleRef_(Napi::Persistent(sample)),
        data_(sample.Data()),
        len_(sample.Length()),
        d_(d),
        hasHeader_(hasHeader),
        complete_(complete),
        maxRows_(maxRows) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { result_ = infer(std::string_view(data_, len_), d_, hasHeader_, complete_, maxRows_); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    Napi::Array cols = Napi::Array::New(env, result_.columns.size());
    for (size_t i = 0; i < result_.columns.size(); ++i) {
      Napi::Object c = Napi::Object::New(env);
      c.Set("name", result_.columns[i].name);
      c.Set("type", result_.columns[i].type);
      c.Set("nullable", result_.columns[i].nullable);
      c.Set("present", static_cast<double>(result_.columns[i].present));
      c.Set("seen", static_cast<double>(result_.columns[i].seen));
      cols.Set(static_cast<uint32_t>(i), c);
    }
    o.Set("columns", cols);
    o.Set("rowsSampled", static_cast<double>(result_.rowsSampled));
    o.Set("invalidUtf8Line", result_.invalidUtf8 ? Napi::Number::New(env, static_cast<double>(result_.invalidUtf8Line))
                                                 : env.Null());
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Buffer<char>> sampleRef_;
  const char* data_;
  size_t len_;
  Dialect d_;
  bool hasHeader_, complete_;
  size_t maxRows_;
  Inferred result_;
};

Napi::Value Infer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsObject())
    throw Napi::TypeError::New(env, "csvInfer expects (Buffer, options)");
  Napi::Object o = info[1].As<Napi::Object>();
  bool hasHeader = o.Get("hasHeader").ToBoolean();
  bool complete = o.Get("complete").ToBoolean();
  Napi::Value mr = o.Get("maxRows");
  size_t maxRows = mr.IsNumber() ? static_cast<size_t>(mr.As<Napi::Number>().Int64Value()) : 10000;
  auto* w = new InferWorker(env, info[0].As<Napi::Buffer<char>>(), dialectFrom(o), hasHeader, complete, maxRows);
  Napi::Promise p = w->promise();
  w->Queue();  // the worker deletes itself after OnOK/OnError
  return p;
}

class CsvValidatorWrap final : public Napi::ObjectWrap<CsvValidatorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CsvValidator",
                       {InstanceMethod<&CsvValidatorWrap::Push>("push"),
                        InstanceMethod<&CsvValidatorWrap::Finish>("finish"),
                        InstanceAccessor<&CsvValidatorWrap::Structure>("structure"),
                        InstanceAccessor<&CsvValidatorWrap::Format>("format")});
  }

  // new CsvValidator(schemaText, {delimiter, quote, escape, hasHeader, maxRowBytes, format})
  explicit CsvValidatorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CsvValidatorWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject())
      throw Napi::TypeError::New(env, "CsvValidator expects (schema, options)");
    std::vector<Column> cols;
    SchemaError err;
    if (!parseSchema(info[0].As<Napi::String>().Utf8Value(), cols, err)) {
      Napi::Error e = codedError(env, err.unsupportedType ? "UNSUPPORTED_TYPE" : "SCHEMA_SYNTAX", err.message);
      e.Set("offset", Napi::Number::New(env, static_cast<double>(err.offset)));
      throw e;
    }
    Napi::Object o = info[1].As<Napi::Object>();
    ValidatorOptions opts;
    opts.dialect = dialectFrom(o);
    opts.hasHeader = o.Get("hasHeader").ToBoolean();
    Napi::Value m = o.Get("maxRowBytes");
    if (m.IsNumber()) opts.maxRowBytes = static_cast<size_t>(m.As<Napi::Number>().Int64Value());
    Napi::Value f = o.Get("format");
    if (f.IsString() && f.As<Napi::String>().Utf8Value() == "RowBinary") opts.encoding = Encoding::RowBinary;
    opts.nativeParts = true;  // a Native block's column buffers go to JS as they are, not copied into one
    opts.quotesOnOneLine = o.Get("quotesOnOneLine").ToBoolean();
    opts.blankLinesAreRows = o.Get("blankLinesAreRows").ToBoolean();
    validator_ = std::make_unique<Validator>(std::move(cols), opts);
  }

  bool busy = false;
  Validator* validator() { return validator_.get(); }

 private:
  Napi::Value Push(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);
  Napi::Value Structure(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), structureOf(validator_->columns(), validator_->usesDefaults()));
  }
  Napi::Value Format(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), validator_->formatName());
  }
  std::unique_ptr<Validator> validator_;
};

class ValidateWorker final : public Napi::AsyncWorker {
 public:
  // chunks: the pieces of one push (kept alive while we run); null for finish.
  ValidateWorker(Napi::Env env, CsvValidatorWrap* wrap, Napi::Object self, const std::vector<Napi::Buffer<char>>* chunks)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), wrap_(wrap) {
    selfRef_ = Napi::Persistent(self);
    if (chunks) {
      for (const auto& c : *chunks) {
        chunkRefs_.push_back(Napi::Persistent(c));
        pieces_.emplace_back(c.Data(), c.Length());
      }
      finish_ = false;
    }
    wrap_->busy = true;
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    Validator* v = wrap_->validator();
    ok_ = finish_ ? v->finish(batch_) : v->push(pieces_.data(), pieces_.size(), batch_);
    if (!ok_) {
      code_ = v->error() == ValidatorError::HeaderMismatch ? "HEADER_MISMATCH" : "ROW_TOO_LARGE";
      message_ = v->errorMessage();
      line_ = v->errorLine();
      found_ = v->headerFound();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    wrap_->busy = false;
    if (!ok_) {
      Napi::Error e = codedError(env, code_, message_);
      e.Set("line", Napi::Number::New(env, static_cast<double>(line_)));
      if (code_ == std::string("HEADER_MISMATCH")) {
        Napi::Array found = Napi::Array::New(env, found_.size());
        for (size_t i = 0; i < found_.size(); ++i) found.Set(static_cast<uint32_t>(i), found_[i]);
        e.Set("found", found);
      }
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("rowCount", static_cast<double>(batch_.rowCount));
    o.Set("rejectedCount", static_cast<double>(batch_.rejectedCount));
    o.Set("bytesConsumed", static_cast<double>(batch_.bytesConsumed));
    // The rows as pieces to write one after another: the block's buffers, or the one RowBinary buffer.
    Napi::Array parts = Napi::Array::New(env);
    if (!batch_.parts.empty()) {
      for (size_t i = 0; i < batch_.parts.size(); ++i) parts.Set(static_cast<uint32_t>(i), takeBuffer(env, std::move(batch_.parts[i])));
      batch_.parts.clear();
    } else if (batch_.rows.size) {
      parts.Set(0u, takeBuffer(env, std::move(batch_.rows)));
    }
    o.Set("parts", parts);
    o.Set("rejected", takeBuffer(env, std::move(batch_.rejected)));
    // The header named the columns in another order: where each schema column is in a row.
    const std::vector<uint32_t>& order = wrap_->validator()->columnOrder();
    if (!order.empty()) {
      Napi::Array a = Napi::Array::New(env, order.size());
      for (size_t i = 0; i < order.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, order[i]));
      o.Set("columnOrder", a);
    }
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override {
    wrap_->busy = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  CsvValidatorWrap* wrap_;
  Napi::ObjectReference selfRef_;  // keeps the validator alive while we run
  std::vector<Napi::Reference<Napi::Buffer<char>>> chunkRefs_;
  std::vector<std::string_view> pieces_;
  bool finish_ = true;
  bool ok_ = false;
  Batch batch_;
  const char* code_ = "";
  std::string message_;
  uint64_t line_ = 0;
  std::vector<std::string> found_;
};

Napi::Value CsvValidatorWrap::Push(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // One Buffer, or an array of Buffers validated as if concatenated.
  std::vector<Napi::Buffer<char>> chunks;
  if (info.Length() >= 1 && info[0].IsBuffer()) {
    chunks.push_back(info[0].As<Napi::Buffer<char>>());
  } else if (info.Length() >= 1 && info[0].IsArray()) {
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      if (!e.IsBuffer()) throw Napi::TypeError::New(env, "push expects a Buffer or an array of Buffers");
      chunks.push_back(e.As<Napi::Buffer<char>>());
    }
  } else {
    throw Napi::TypeError::New(env, "push expects a Buffer or an array of Buffers");
  }
  if (busy) throw codedError(env, "BUSY", "CsvValidator: wait for the previous push/finish to settle");
  auto* w = new ValidateWorker(env, this, info.This().As<Napi::Object>(), &chunks);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value CsvValidatorWrap::Finish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy) throw codedError(env, "BUSY", "CsvValidator: wait for the previous push/finish to settle");
  auto* w = new ValidateWorker(env, this, info.This().As<Napi::Object>(), nullptr);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("csvSimd", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Napi::String::New(info.Env(), roost::csv::simdName(roost::csv::simdLevel()));
  }));
  exports.Set("csvSniff", Napi::Function::New(env, Sniff));
  exports.Set("csvInfer", Napi::Function::New(env, Infer));
  exports.Set("csvParseSchema", Napi::Function::New(env, ParseSchema));
  exports.Set("CsvValidator", CsvValidatorWrap::Define(env));
}

roost::binding::Registrar registrar(Register);

}  // namespace
