// NdjsonFast: the NDJSON → CSV fast path (core/ndjson/fast.h) for the NDJSON worker threads.
//   new NdjsonFast([{ path: string[], text, numbersVerbatim, time, intLike, elementText: bool[],
//                     missing, nul }, ...])
//   run(buf, start, end) → [consumed, csv: Buffer, spans: Uint32Array]: the lines of
//   buf[start, end) converted from the first until one left to JavaScript (consumed bytes), their
//   CSV rows, and each one's [start, end) (relative to start). Synchronous: a piece of a body
//   (64 KiB to 1 MiB) takes well under a millisecond, and the caller is a worker thread.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ndjson/fast.h"
#include "registry.h"

namespace {

using roost::ndjson::Column;
using roost::ndjson::FastConverter;

class NdjsonFastWrap final : public Napi::ObjectWrap<NdjsonFastWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NdjsonFast", {InstanceMethod<&NdjsonFastWrap::Run>("run")});
  }

  explicit NdjsonFastWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NdjsonFastWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "NdjsonFast expects (columns: object[])");
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<Column> cols;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value v = a.Get(i);
      if (!v.IsObject()) throw Napi::TypeError::New(env, "NdjsonFast: a column is not an object");
      Napi::Object o = v.As<Napi::Object>();
      Column c;
      Napi::Value path = o.Get("path");
      if (!path.IsArray()) throw Napi::TypeError::New(env, "NdjsonFast: a column's path is not an array");
      Napi::Array pa = path.As<Napi::Array>();
      for (uint32_t k = 0; k < pa.Length(); ++k) c.path.push_back(pa.Get(k).ToString().Utf8Value());
      c.text = o.Get("text").ToBoolean();
      c.numbersVerbatim = o.Get("numbersVerbatim").ToBoolean();
      c.time = o.Get("time").ToBoolean();
      c.intLike = o.Get("intLike").ToBoolean();
      Napi::Value et = o.Get("elementText");
      if (et.IsArray()) {
        Napi::Array ea = et.As<Napi::Array>();
        for (uint32_t k = 0; k < ea.Length(); ++k) c.elementText.push_back(ea.Get(k).ToBoolean());
      }
      c.missing = o.Get("missing").ToString().Utf8Value();
      c.nul = o.Get("nul").ToString().Utf8Value();
      cols.push_back(std::move(c));
    }
    conv_ = std::make_unique<FastConverter>(std::move(cols));
  }

 private:
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsNumber())
      throw Napi::TypeError::New(env, "run expects (buf: Uint8Array, start: number, end: number)");
    Napi::Uint8Array buf = info[0].As<Napi::Uint8Array>();
    const int64_t start = info[1].As<Napi::Number>().Int64Value();
    const int64_t end = info[2].As<Napi::Number>().Int64Value();
    if (start < 0 || end < start || static_cast<size_t>(end) > buf.ElementLength())
      throw Napi::RangeError::New(env, "run: start and end must lie within the buffer");
    const char* base = reinterpret_cast<const char*>(buf.Data());
    const size_t consumed = conv_->run(base + start, base + end);
    std::string& out = conv_->out();
    std::vector<uint32_t>& spans = conv_->spans();
    Napi::Array r = Napi::Array::New(env, 3);
    r.Set(0u, Napi::Number::New(env, static_cast<double>(consumed)));
    r.Set(1u, Napi::Buffer<char>::Copy(env, out.data(), out.size()));
    Napi::Uint32Array s = Napi::Uint32Array::New(env, spans.size());
    if (!spans.empty()) std::memcpy(s.Data(), spans.data(), spans.size() * sizeof(uint32_t));
    r.Set(2u, s);
    out.clear();
    spans.clear();
    return r;
  }

  std::unique_ptr<FastConverter> conv_;
};

void Register(Napi::Env env, Napi::Object exports) { exports.Set("NdjsonFast", NdjsonFastWrap::Define(env)); }

roost::binding::Registrar registrar(Register);

}  // namespace
