// Reader's 64-byte block path (reader_fast.inc) for AVX2 and AVX-512 (BW), with the
// quote parity by carry-less multiplication. Compiled for those instruction sets
// function by function (target pragmas), so the rest of the build stays baseline
// x86-64; Reader picks a version once, from what the CPU supports (reader.cc).
// Everything this file defines for the wider sets is in unnamed namespaces or is one of
// the two members below: no inline function shared with other files is compiled here
// with the wider instructions.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "csv/block_masks.h"
#include "csv/reader.h"
#include "csv/scan.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

namespace roost::csv {

// Bit i: the parity of x's bits 0..i (x multiplied, carry-less, by all ones). Both wide
// versions below inline it (their targets include pclmul).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("pclmul"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("pclmul")
#endif
namespace clmul {
namespace {
inline uint64_t prefixXor(uint64_t x) {
  const __m128i r = _mm_clmulepi64_si128(_mm_set_epi64x(0, static_cast<long long>(x)), _mm_set1_epi8(static_cast<char>(0xFF)), 0);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(r));
}
}  // namespace
}  // namespace clmul
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,pclmul"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,pclmul")
#endif
namespace avx2 {
namespace {
using detail::BlockMasks;
inline uint64_t movemask(__m256i v) { return static_cast<uint32_t>(_mm256_movemask_epi8(v)); }
struct Needles {
  __m256i q, d, lf, cr;
  Needles(char quote, char delim)
      : q(_mm256_set1_epi8(quote)), d(_mm256_set1_epi8(delim)), lf(_mm256_set1_epi8('\n')), cr(_mm256_set1_epi8('\r')) {}
  BlockMasks masks(const char* b) const {
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32));
    BlockMasks m;
    m.quote = movemask(_mm256_cmpeq_epi8(v0, q)) | movemask(_mm256_cmpeq_epi8(v1, q)) << 32;
    m.delim = movemask(_mm256_cmpeq_epi8(v0, d)) | movemask(_mm256_cmpeq_epi8(v1, d)) << 32;
    m.lf = movemask(_mm256_cmpeq_epi8(v0, lf)) | movemask(_mm256_cmpeq_epi8(v1, lf)) << 32;
    m.cr = movemask(_mm256_cmpeq_epi8(v0, cr)) | movemask(_mm256_cmpeq_epi8(v1, cr)) << 32;
    m.high = movemask(v0) | movemask(v1) << 32;
    return m;
  }
};
}  // namespace
}  // namespace avx2
#define ROOST_FAST_ROWS fastRowsAvx2
#define Needles avx2::Needles
#define prefixXor clmul::prefixXor
#include "csv/reader_fast.inc"
#undef prefixXor
#undef Needles
#undef ROOST_FAST_ROWS
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,pclmul"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,pclmul")
#endif
namespace avx512 {
namespace {
using detail::BlockMasks;
struct Needles {
  __m512i q, d, lf, cr;
  Needles(char quote, char delim)
      : q(_mm512_set1_epi8(quote)), d(_mm512_set1_epi8(delim)), lf(_mm512_set1_epi8('\n')), cr(_mm512_set1_epi8('\r')) {}
  BlockMasks masks(const char* b) const {
    const __m512i v = _mm512_loadu_si512(b);
    BlockMasks m;
    m.quote = _mm512_cmpeq_epi8_mask(v, q);
    m.delim = _mm512_cmpeq_epi8_mask(v, d);
    m.lf = _mm512_cmpeq_epi8_mask(v, lf);
    m.cr = _mm512_cmpeq_epi8_mask(v, cr);
    m.high = _mm512_movepi8_mask(v);
    return m;
  }
};
}  // namespace
}  // namespace avx512
#define ROOST_FAST_ROWS fastRowsAvx512
#define Needles avx512::Needles
#define prefixXor clmul::prefixXor
#include "csv/reader_fast.inc"
#undef prefixXor
#undef Needles
#undef ROOST_FAST_ROWS
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

}  // namespace roost::csv
#endif
