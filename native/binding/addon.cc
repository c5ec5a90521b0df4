// The addon's only entry point: it runs every module's registration.
#include <cstdlib>  // defines __GLIBC__ on glibc
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "registry.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
#if defined(__GLIBC__)
  // Validated CSV batches leave as multi-megabyte buffers that JS frees only
  // when the GC finalizes them. With glibc's defaults (a dynamic mmap threshold
  // and a trim threshold of twice it) that memory went back to the kernel and
  // every batch faulted fresh pages in again: half the page faults and ~7% of
  // the parse CPU (docs/decisions.md). Blocks below 32 MiB now come from the
  // heap and up to 64 MiB of freed heap is kept for the next batches. Only the
  // server process loads the addon; tenant cells do not.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
  for (auto fn : roost::binding::registry()) fn(env, exports);
  return exports;
}

NODE_API_MODULE(roost_native, Init)
