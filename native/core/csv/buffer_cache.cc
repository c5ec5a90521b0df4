#include "csv/buffer_cache.h"

#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

namespace roost::csv::bufcache {

namespace {

struct Cache {
  std::mutex mu;
  std::vector<std::pair<void*, size_t>> bufs;  // (pointer, capacity)
  size_t bytes = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: finalizers may run during exit
  return *c;
}

}  // namespace

void* take(size_t want, size_t& cap) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  // The smallest that fits, and not more than twice the size asked for (a small
  // buffer must not hold a large one's memory).
  size_t best = c.bufs.size();
  for (size_t i = 0; i < c.bufs.size(); ++i) {
    const size_t k = c.bufs[i].second;
    if (k >= want && k <= 2 * want + 4096 && (best == c.bufs.size() || k < c.bufs[best].second)) best = i;
  }
  if (best == c.bufs.size()) return nullptr;
  auto [p, k] = c.bufs[best];
  c.bufs[best] = c.bufs.back();
  c.bufs.pop_back();
  c.bytes -= k;
  cap = k;
  return p;
}

void give(void* p, size_t cap) {
  if (!p) return;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.bytes + cap <= kMaxBytes && cap >= 4096) {
      c.bufs.emplace_back(p, cap);
      c.bytes += cap;
      return;
    }
  }
  std::free(p);
}

size_t cachedBytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.bytes;
}

void clear() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [p, k] : c.bufs) std::free(p);
  c.bufs.clear();
  c.bytes = 0;
}

}  // namespace roost::csv::bufcache
