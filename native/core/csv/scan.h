// SIMD-friendly byte searches over unquoted and quoted runs. Plain SSE2 on x86-64
// (always present there), a scalar loop elsewhere.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace roost::csv::scan {

/// First byte in [p, end) equal to one of a, b, c, d; `end` if none.
inline const char* findAny4(const char* p, const char* end, char a, char b, char c, char d) {
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b), vc = _mm_set1_epi8(c), vd = _mm_set1_epi8(d);
  while (end - p >= 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)),
                             _mm_or_si128(_mm_cmpeq_epi8(x, vc), _mm_cmpeq_epi8(x, vd)));
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(m));
    if (mask) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  for (; p < end; ++p) {
    char x = *p;
    if (x == a || x == b || x == c || x == d) return p;
  }
  return end;
}

/// True when every byte of [p, end) is ASCII.
inline bool allAscii(const char* p, const char* end) {
  while (end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if (w & 0x8080808080808080ull) return false;
    p += 8;
  }
  for (; p < end; ++p)
    if (static_cast<unsigned char>(*p) & 0x80) return false;
  return true;
}

/// Offset of the first byte that starts an invalid UTF-8 sequence in [p, end),
/// or -1 when the whole range is valid. Overlongs, surrogates and code points
/// above U+10FFFF are invalid.
inline std::ptrdiff_t firstInvalidUtf8(const char* begin, const char* end) {
  const auto* p = reinterpret_cast<const unsigned char*>(begin);
  const auto* e = reinterpret_cast<const unsigned char*>(end);
  while (p < e) {
#if defined(__SSE2__)
    if (e - p >= 16) {
      __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      if (_mm_movemask_epi8(x) == 0) {
        p += 16;
        continue;
      }
    }
#endif
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::ptrdiff_t at = reinterpret_cast<const char*>(p) - begin;
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) { n = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) n = 2;
    else if (c == 0xED) { n = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) n = 2;
    else if (c == 0xF0) { n = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else if (c == 0xF4) { n = 3; hi = 0x8F; }
    else return at;
    if (e - p <= n) return at;
    if (p[1] < lo || p[1] > hi) return at;
    for (int i = 2; i <= n; ++i)
      if ((p[i] & 0xC0) != 0x80) return at;
    p += n + 1;
  }
  return -1;
}

}  // namespace roost::csv::scan
