#include "csv/reader.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "csv/block_masks.h"
#include "csv/scan.h"

namespace roost::csv {

namespace {
SimdLevel detectSimd() {
  SimdLevel best = SimdLevel::Sse2;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();  // (its checks include the OS saving the vector registers)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul")) {
    best = SimdLevel::Avx2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) best = SimdLevel::Avx512;
  }
#endif
  if (const char* cap = std::getenv("ROOST_CSV_SIMD")) {
    if (std::strcmp(cap, "sse2") == 0) best = SimdLevel::Sse2;
    else if (std::strcmp(cap, "avx2") == 0 && best > SimdLevel::Avx2) best = SimdLevel::Avx2;
  }
  return best;
}
SimdLevel cpuSimd() {
  static const SimdLevel level = detectSimd();
  return level;
}
std::atomic<uint8_t> simdLimit{static_cast<uint8_t>(SimdLevel::Avx512)};
}  // namespace

SimdLevel simdLevel() {
  const auto limit = static_cast<SimdLevel>(simdLimit.load(std::memory_order_relaxed));
  const SimdLevel cpu = cpuSimd();
  return limit < cpu ? limit : cpu;
}
void setSimdLimit(SimdLevel limit) { simdLimit.store(static_cast<uint8_t>(limit), std::memory_order_relaxed); }
std::vector<SimdLevel> supportedSimdLevels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::Sse2, SimdLevel::Avx2, SimdLevel::Avx512})
    if (l <= cpuSimd()) out.push_back(l);
  return out;
}
const char* simdName(SimdLevel level) {
  return level == SimdLevel::Avx512 ? "avx512" : level == SimdLevel::Avx2 ? "avx2" : "sse2";
}

namespace {
Dialect normalized(Dialect d) {
  if (d.escape == d.quote) d.escape = 0;
  return d;
}

#if defined(__SSE2__)
using detail::BlockMasks;
inline uint64_t movemask(__m128i v) { return static_cast<uint32_t>(_mm_movemask_epi8(v)); }
struct Needles {
  __m128i q, d, lf, cr;
  Needles(char quote, char delim)
      : q(_mm_set1_epi8(quote)), d(_mm_set1_epi8(delim)), lf(_mm_set1_epi8('\n')), cr(_mm_set1_epi8('\r')) {}
  BlockMasks masks(const char* b) const {
    BlockMasks m{0, 0, 0, 0, 0};
    for (int k = 0; k < 4; ++k) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * k));
      m.quote |= movemask(_mm_cmpeq_epi8(v, q)) << (16 * k);
      m.delim |= movemask(_mm_cmpeq_epi8(v, d)) << (16 * k);
      m.lf |= movemask(_mm_cmpeq_epi8(v, lf)) << (16 * k);
      m.cr |= movemask(_mm_cmpeq_epi8(v, cr)) << (16 * k);
      m.high |= movemask(v) << (16 * k);
    }
    return m;
  }
};
// Bit i: the parity of the set bits at 0..i (1 inside a quoted run, counting
// its opening quote and not its closing one).
inline uint64_t prefixXor(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}
#endif
}  // namespace

Reader::Reader(Dialect dialect, size_t maxRowBytes)
    : d_(normalized(dialect)),
      simd_(simdLevel()),
      esc_(d_.escape ? d_.escape : d_.delimiter),
      maxRowBytes_(maxRowBytes),
      unquotedNeedles_(d_.delimiter, '\n', '\r', esc_),
      quotedNeedles_(d_.quote, d_.escape ? d_.escape : d_.quote, '\n', '\r') {
  fields_.reserve(64);
  bufFields_.reserve(16);
}

bool Reader::fail(ReaderError e) {
  error_ = e;
  errorLine_ = line_;
  return false;
}

// The row ends at the CR or LF at t: LF, CRLF or a lone CR (a CR that ends
// the buffer may be the first half of a CRLF: the next feed skips its LF).
const char* Reader::endRow(const char* t, const char* end, bool eof) {
  rowRawEnd_ = t;
  if (*t == '\n') return t + 1;
  if (t + 1 < end) return t[1] == '\n' ? t + 2 : t + 1;
  if (!eof) pendingCR_ = true;
  return t + 1;
}

const char* Reader::parseRow(const char* p, const char* end, bool eof) {
  fields_.clear();
  bufFields_.clear();
  unesc_.clear();
  rowExtraLines_ = 0;
  rowUnterminated_ = false;
  rowAfterQuote_ = false;
  rowBlank_ = false;
  const char delim = d_.delimiter, quote = d_.quote, esc = d_.escape;

  if (!blankRows_ && (*p == '\n' || *p == '\r')) {  // an empty line: skipped, but counted
    rowBlank_ = true;
    return endRow(p, end, eof);
  }

  for (;;) {
    // Fast path for a run of plain fields when the dialect has no escape
    // character: an unquoted field ends at the next delimiter or line end.
    // Anything else (no end in the buffer, a quoted field that is not simple)
    // goes the general way below, from the same field start.
    // A quoted field takes it too when it holds no quote, CR or LF and its
    // closing quote is followed by a delimiter or line end in the buffer.
    if (!esc) {
      while (p != end) {
        const char* t;  // the delimiter or line end after the field
        if (*p != quote) {
          t = unquotedEnds_.find(p, end, unquotedNeedles_);
          if (t == end) break;
          fields_.push_back({p, static_cast<uint32_t>(t - p), false});
        } else {
          const char* q = quotedNeedles_.find(p + 1, end);  // quote, CR or LF
          if (end - q < 2 || *q != quote) break;
          t = q + 1;
          if (*t != delim && *t != '\n' && *t != '\r') break;  // "" or text after the quote
          fields_.push_back({p + 1, static_cast<uint32_t>(q - p - 1), true});
        }
        if (*t != delim) return endRow(t, end, eof);  // CR or LF: the row ends here
        p = t + 1;
      }
    }
    if (p == end) {  // after a delimiter
      if (!eof) return nullptr;
      fields_.push_back({p, 0, false});
      rowRawEnd_ = end;
      return end;
    }
    bool inBuf = false;
    uint32_t bufOff = 0;
    auto toBuf = [&](const char* a, const char* b) {
      if (!inBuf) {
        inBuf = true;
        bufOff = static_cast<uint32_t>(unesc_.size());
      }
      unesc_.append(a, static_cast<size_t>(b - a));
    };
    const char* fs;
    const char* fe;
    bool quoted = false;
    bool after = false;  // text after the closing quote
    if (*p == quote) {
      quoted = true;
      fs = ++p;
      for (;;) {
        const char* q = quotedNeedles_.find(p, end);
        if (q == end) {
          if (!eof) return nullptr;
          rowUnterminated_ = true;
          fe = p = end;
          break;
        }
        char h = *q;
        if (h == '\n') {
          ++rowExtraLines_;
          p = q + 1;
          continue;
        }
        if (h == '\r') {
          if (q + 1 == end) {
            if (!eof) return nullptr;  // an LF may follow in the next chunk
            ++rowExtraLines_;
            p = q + 1;
            continue;
          }
          ++rowExtraLines_;
          p = q[1] == '\n' ? q + 2 : q + 1;
          continue;
        }
        if (h == quote) {
          if (q + 1 == end) {
            if (!eof) return nullptr;  // "" or a closing quote: the next byte decides
            fe = q;
            p = end;
            break;
          }
          if (q[1] == quote) {
            toBuf(fs, q + 1);
            fs = p = q + 2;
            continue;
          }
          fe = q;
          p = q + 1;
          break;
        }
        // the escape character
        if (q + 1 == end) {
          if (!eof) return nullptr;
          rowUnterminated_ = true;
          fe = p = end;
          break;
        }
        toBuf(fs, q);
        unesc_.push_back(q[1]);
        if (q[1] == '\n' || q[1] == '\r') ++rowExtraLines_;
        fs = p = q + 2;
      }
      if (!rowUnterminated_ && p < end && *p != delim && *p != '\n' && *p != '\r') {
        // Spaces or tabs after the closing quote (`"x" ,`) are dropped, as ClickHouse drops them.
        const char* w = p;
        while (w < end && (*w == ' ' || *w == '\t') && *w != delim) ++w;
        if (w == end && !eof) return nullptr;  // the next byte decides
        if (w == end || *w == delim || *w == '\n' || *w == '\r') p = w;
        else after = true;
      }
      if (after) {
        // Text after the closing quote: kept literally up to the delimiter, and the row flagged.
        rowAfterQuote_ = true;
        toBuf(fs, fe);
        fs = fe = p;
        while (p < end) {
          char c = *p;
          if (c == delim || c == '\n' || c == '\r') break;
          if (esc && c == esc) {
            if (p + 1 == end) {
              if (!eof) return nullptr;
              unesc_.push_back(c);
              ++p;
              break;
            }
            unesc_.push_back(p[1]);
            if (p[1] == '\n' || p[1] == '\r') ++rowExtraLines_;
            p += 2;
            continue;
          }
          unesc_.push_back(c);
          ++p;
        }
        fs = fe = p;
      }
    } else {
      fs = p;
      for (;;) {
        const char* q = unquotedEnds_.find(p, end, unquotedNeedles_);
        if (q == end) {
          if (!eof) return nullptr;
          fe = p = end;
          break;
        }
        char h = *q;
        if (h == delim || h == '\n' || h == '\r') {
          fe = p = q;
          break;
        }
        if (q + 1 == end) {  // escape as the last byte
          if (!eof) return nullptr;
          fe = p = end;
          break;
        }
        // `\N` alone in an unquoted field is the NULL marker (MySQL's and ClickHouse's exports
        // write it so, with backslash escapes): kept as it is, not unescaped to the letter N.
        if (d_.escape == '\\' && !inBuf && q == fs && q[1] == 'N') {
          const char* after = q + 2;
          if (after == end) {
            if (!eof) return nullptr;
            fe = p = end;
            break;
          }
          if (*after == delim || *after == '\n' || *after == '\r') {
            fe = p = after;
            break;
          }
        }
        toBuf(fs, q);
        unesc_.push_back(q[1]);
        if (q[1] == '\n' || q[1] == '\r') ++rowExtraLines_;
        fs = p = q + 2;
      }
    }
    if (inBuf) {
      toBuf(fs, fe);
      // Points into unesc_, which may still move: fixed up in emit().
      bufFields_.push_back(static_cast<uint32_t>(fields_.size()));
      fields_.push_back({reinterpret_cast<const char*>(static_cast<uintptr_t>(bufOff)),
                         static_cast<uint32_t>(unesc_.size() - bufOff), quoted});
    } else {
      fields_.push_back({fs, static_cast<uint32_t>(fe - fs), quoted});
    }
    fields_.back().afterQuote = after;
    if (p == end) {
      if (!eof) return nullptr;
      rowRawEnd_ = end;
      return end;
    }
    if (*p == delim) {
      ++p;
      continue;
    }
    return endRow(p, end, eof);
  }
}

#if defined(__SSE2__)
#define ROOST_FAST_ROWS fastRowsSse2
#include "csv/reader_fast.inc"
#undef ROOST_FAST_ROWS
#endif

const char* Reader::fastRows(const char* p, const char* end, RowSink& sink) {
#if defined(__x86_64__)
  if (simd_ == SimdLevel::Avx512) return fastRowsAvx512(p, end, sink);
  if (simd_ == SimdLevel::Avx2) return fastRowsAvx2(p, end, sink);
#endif
#if defined(__SSE2__)
  return fastRowsSse2(p, end, sink);
#else
  (void)end;
  (void)sink;
  return p;
#endif
}

const char* Reader::findRowEnd(const char* p, const char* end) {
  State s = finderState_;
  const char delim = d_.delimiter, quote = d_.quote, esc = d_.escape;
  for (; p < end; ++p) {
    char c = *p;
    switch (s) {
      case State::FieldStart:
        if (c == quote) {
          s = State::Quoted;
          break;
        }
        [[fallthrough]];
      case State::Unquoted:
        if (c == delim) s = State::FieldStart;
        else if (c == '\n' || c == '\r') {
          finderState_ = State::FieldStart;
          return p + 1;
        } else if (esc && c == esc) s = State::UnquotedEscape;
        else s = State::Unquoted;
        break;
      case State::UnquotedEscape:
        s = State::Unquoted;
        break;
      case State::Quoted:
        if (c == quote) s = State::QuotedQuote;
        else if (esc && c == esc) s = State::QuotedEscape;
        break;
      case State::QuotedEscape:
        s = State::Quoted;
        break;
      case State::QuotedQuote:
        if (c == quote) s = State::Quoted;
        else if (c == delim) s = State::FieldStart;
        else if (c == '\n' || c == '\r') {
          finderState_ = State::FieldStart;
          return p + 1;
        } else if (esc && c == esc) s = State::UnquotedEscape;
        else s = State::Unquoted;
        break;
    }
  }
  finderState_ = s;
  return nullptr;
}

bool Reader::emit(RowSink& sink, const char* rowStart) {
  if (rowBlank_) {
    line_ += 1;
    return true;
  }
  size_t rawLen = static_cast<size_t>(rowRawEnd_ - rowStart);
  if (rawLen > maxRowBytes_) return fail(ReaderError::RowTooLarge);
  for (uint32_t i : bufFields_)
    fields_[i].data = unesc_.data() + reinterpret_cast<uintptr_t>(fields_[i].data);
  Row row{fields_.data(), fields_.size(), line_, std::string_view(rowStart, rawLen), rowUnterminated_};
  row.afterQuote = rowAfterQuote_;
  sink.onRow(row);
  line_ += 1 + rowExtraLines_;
  return true;
}

bool Reader::feedBody(const char* p, const char* end, RowSink& sink) {
  unquotedEnds_.reset();  // a new buffer (possibly at the address of an old one)
  if (!carry_.empty() && p < end) {
    const char* e = findRowEnd(p, end);
    const char* stop = e ? e : end;
    carry_.append(p, static_cast<size_t>(stop - p));
    p = stop;
    if (carry_.size() > maxRowBytes_ + 2) return fail(ReaderError::RowTooLarge);
    if (!e) return true;
    const char* cb = carry_.data();
    parseRow(cb, cb + carry_.size(), false);
    unquotedEnds_.reset();
    if (!emit(sink, cb)) return false;
    carry_.clear();
    finderState_ = State::FieldStart;
  }
  while (p < end) {
    if (pendingCR_) {
      pendingCR_ = false;
      if (*p == '\n') {
        ++p;
        continue;
      }
    }
    if (!d_.escape) {
      if (fastOff_) {
        --fastOff_;
      } else {
        const char* q = fastRows(p, end, sink);
        if (error_ != ReaderError::None) return false;
        if (q != p) {
          fastMisses_ = 0;
          p = q;
          if (p == end) break;
        } else if (end - p > 64 && ++fastMisses_ >= 8) {
          fastMisses_ = 0;
          fastOff_ = 256;  // rows this fast path cannot take come one after another
        }
      }
    }
    const char* next = parseRow(p, end, false);
    if (!next) {
      if (static_cast<size_t>(end - p) > maxRowBytes_ + 2) return fail(ReaderError::RowTooLarge);
      carry_.assign(p, end);
      finderState_ = State::FieldStart;
      findRowEnd(carry_.data(), carry_.data() + carry_.size());
      return true;
    }
    if (!emit(sink, p)) return false;
    p = next;
  }
  return true;
}

bool Reader::feed(const char* data, size_t n, RowSink& sink) {
  if (error_ != ReaderError::None) return false;
  const char* p = data;
  const char* end = data + n;
  static constexpr char kBom[3] = {'\xEF', '\xBB', '\xBF'};
  while (!bomDone_ && p < end) {
    if (*p == kBom[bomPrefix_.size()]) {
      bomPrefix_.push_back(*p++);
      if (bomPrefix_.size() == 3) {
        bomDone_ = true;
        bomPrefix_.clear();
      }
    } else {
      bomDone_ = true;
      std::string pre;
      pre.swap(bomPrefix_);
      if (!pre.empty() && !feedBody(pre.data(), pre.data() + pre.size(), sink)) return false;
    }
  }
  return feedBody(p, end, sink);
}

bool Reader::finish(RowSink& sink) {
  if (error_ != ReaderError::None) return false;
  if (!bomDone_) {
    bomDone_ = true;
    std::string pre;
    pre.swap(bomPrefix_);
    if (!pre.empty() && !feedBody(pre.data(), pre.data() + pre.size(), sink)) return false;
  }
  if (!carry_.empty()) {
    const char* cb = carry_.data();
    unquotedEnds_.reset();
    parseRow(cb, cb + carry_.size(), true);
    unquotedEnds_.reset();
    if (!emit(sink, cb)) return false;
    carry_.clear();
    finderState_ = State::FieldStart;
  }
  pendingCR_ = false;
  return true;
}

}  // namespace roost::csv
