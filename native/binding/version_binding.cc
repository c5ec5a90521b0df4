#include "registry.h"
#include "version.h"

namespace {

Napi::Value CoreVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), std::string(roost::kCoreVersion));
}

Napi::Value Fnv1a64(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), "fnv1a64 expects a Buffer");
  }
  auto buf = info[0].As<Napi::Buffer<char>>();
  uint64_t h = roost::fnv1a64(std::string_view(buf.Data(), buf.Length()));
  return Napi::BigInt::New(info.Env(), h);
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("coreVersion", Napi::Function::New(env, CoreVersion));
  exports.Set("fnv1a64", Napi::Function::New(env, Fnv1a64));
}

roost::binding::Registrar registrar(Register);

}  // namespace
