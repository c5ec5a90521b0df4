// What the CSV splitter's 64-byte block path (reader_fast.inc) knows of one block, whichever
// instruction set computed it (reader.cc: SSE2; reader_simd.cc: AVX2, AVX-512).
#pragma once
#include <cstdint>

namespace roost::csv::detail {

/// Bit i of each mask describes b[i], for the 64 bytes at b.
struct BlockMasks {
  uint64_t quote, delim, lf, cr, high;  // high: a byte >= 0x80
};

}  // namespace roost::csv::detail
