// Each binding file registers its functions here with a static Registrar, so that
// adding a native module never means editing a shared list.
#pragma once
#include <napi.h>
#include <vector>

namespace roost::binding {

using InitFn = void (*)(Napi::Env env, Napi::Object exports);

inline std::vector<InitFn>& registry() {
  static std::vector<InitFn> fns;
  return fns;
}

struct Registrar {
  explicit Registrar(InitFn fn) { registry().push_back(fn); }
};

}  // namespace roost::binding
