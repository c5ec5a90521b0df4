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

/// Four bytes to search for, broadcast once (not at every search).
struct Needles4 {
  char x, y, z, w;  // for tails shorter than a vector
#if defined(__SSE2__)
  __m128i a, b, c, d;
  Needles4(char x_, char y_, char z_, char w_)
      : x(x_), y(y_), z(z_), w(w_), a(_mm_set1_epi8(x_)), b(_mm_set1_epi8(y_)), c(_mm_set1_epi8(z_)), d(_mm_set1_epi8(w_)) {}
  unsigned mask16(const char* p) const {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i e = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, a), _mm_cmpeq_epi8(v, b)),
                             _mm_or_si128(_mm_cmpeq_epi8(v, c), _mm_cmpeq_epi8(v, d)));
    return static_cast<unsigned>(_mm_movemask_epi8(e));
  }
#else
  Needles4(char x_, char y_, char z_, char w_) : x(x_), y(y_), z(z_), w(w_) {}
#endif
  bool is(char ch) const { return ch == x || ch == y || ch == z || ch == w; }
  /// Bit i set when p[i] is a needle; reads exactly p[0..63].
  uint64_t mask64(const char* p) const {
#if defined(__SSE2__)
    return static_cast<uint64_t>(mask16(p)) | static_cast<uint64_t>(mask16(p + 16)) << 16 |
           static_cast<uint64_t>(mask16(p + 32)) << 32 | static_cast<uint64_t>(mask16(p + 48)) << 48;
#else
    uint64_t m = 0;
    for (int i = 0; i < 64; ++i)
      if (is(p[i])) m |= uint64_t{1} << i;
    return m;
#endif
  }
  /// First needle in [p, end); `end` if none.
  const char* find(const char* p, const char* end) const {
#if defined(__SSE2__)
    while (end - p >= 16) {
      unsigned m = mask16(p);
      if (m) return p + __builtin_ctz(m);
      p += 16;
    }
#endif
    for (; p < end; ++p)
      if (is(*p)) return p;
    return end;
  }
};

/// Needles4::find for many short searches moving forward through one buffer: keeps
/// the bitmask of one 64-byte block, so consecutive fields in the same block
/// cost a shift and a count, not a fresh vector scan each. The block always
/// lies inside [the buffer, end) that was passed when it was computed: call
/// reset() whenever the buffer changes (or may have been rewritten).
class BlockFinder {
 public:
  void reset() { base_ = 0; }
  const char* find(const char* p, const char* end, const Needles4& n) {
    for (;;) {
      uintptr_t off = reinterpret_cast<uintptr_t>(p) - base_;
      if (base_ && off < 64) {
        uint64_t m = mask_ >> off;
        if (m) return p + __builtin_ctzll(m);
        p = reinterpret_cast<const char*>(base_ + 64);
        if (p >= end) return end;  // (base_ + 64 <= end always; equal here)
      }
      if (end - p < 64) {
        base_ = 0;
        return n.find(p, end);
      }
      base_ = reinterpret_cast<uintptr_t>(p);
      mask_ = n.mask64(p);
    }
  }

 private:
  uintptr_t base_ = 0;
  uint64_t mask_ = 0;
};

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
    // ASCII runs: 64 bytes per test, then 16, then straight to the first byte
    // with the high bit set.
    while (e - p >= 64) {
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
      __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
      __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48));
      if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))) != 0) break;
      p += 64;
    }
    if (p == e) break;  // (a range of whole 64-byte blocks of ASCII ends here)
    if (e - p >= 16) {
      unsigned m = static_cast<unsigned>(_mm_movemask_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
      if (m == 0) {
        p += 16;
        continue;
      }
      p += __builtin_ctz(m);
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
