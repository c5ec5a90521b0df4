// A process-wide cache of output buffers. A batch's buffers are handed to JS
// (the addon) and freed when V8 collects them, on the JS thread, long after the
// next batches were written: from malloc, each new batch then got memory that
// was not the memory just given back (another thread's arena, or fresh pages).
// The cache takes freed buffers back and hands them to the next buffer that
// starts, whichever thread asks. Bounded: beyond kMaxBytes buffers are freed.
#pragma once
#include <cstddef>

namespace roost::csv::bufcache {

/// At most this many bytes of capacity wait in the cache.
constexpr size_t kMaxBytes = 32u << 20;

/// A cached malloc'd buffer of at least `want` bytes (its capacity in `cap`), or
/// nullptr when none fits.
void* take(size_t want, size_t& cap);
/// Gives a malloc'd buffer of capacity `cap` back (or frees it when the cache is
/// full). `p` may be null.
void give(void* p, size_t cap);
/// Bytes of capacity waiting in the cache (for tests).
size_t cachedBytes();
/// Frees everything cached (for tests).
void clear();

}  // namespace roost::csv::bufcache
