// The addon's only entry point: it runs every module's registration.
#include "registry.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (auto fn : roost::binding::registry()) fn(env, exports);
  return exports;
}

NODE_API_MODULE(roost_native, Init)
