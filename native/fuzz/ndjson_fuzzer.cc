// libFuzzer target for the NDJSON fast path (core/ndjson/fast.h): any bytes, converted as a
// body's lines under a schema with every kind of column. No crash, no leak, no read outside
// the input; and what it says it converted holds together: one CSV row (ending with the only
// line end in it: JSON text cannot hold a raw one) per line span, spans in order and inside the
// input, and the offset it stopped at at a line's start.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "ndjson/fast.h"

using roost::ndjson::Column;
using roost::ndjson::FastConverter;

namespace {
Column col(std::vector<std::string> path, bool text, bool verbatim, bool time, bool intLike, std::vector<bool> elementText) {
  Column c;
  c.path = std::move(path);
  c.text = text;
  c.numbersVerbatim = verbatim;
  c.time = time;
  c.intLike = intLike;
  c.elementText = std::move(elementText);
  c.missing = "\"\"";
  c.nul = "\\N";
  return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FastConverter* conv = new FastConverter({
      col({"a"}, false, false, false, true, {}), col({"s"}, true, true, false, false, {}), col({"t"}, false, false, true, false, {}),
      col({"o", "p"}, true, true, false, false, {}), col({"arr"}, false, false, false, false, {false, true}),
      col({"as"}, false, true, false, false, {true}), col({"a"}, false, false, false, false, {}),
  });
  const char* p = reinterpret_cast<const char*>(data);
  const size_t consumed = conv->run(p, p + size);
  if (consumed > size) std::abort();
  if (consumed < size && consumed > 0 && p[consumed - 1] != '\n') std::abort();
  const std::vector<uint32_t>& spans = conv->spans();
  const std::string& out = conv->out();
  if (spans.size() % 2) std::abort();
  size_t rows = 0;
  for (char c : out) rows += c == '\n';
  if (rows != spans.size() / 2) std::abort();
  if (!out.empty() && out.back() != '\n') std::abort();
  uint32_t last = 0;
  for (size_t i = 0; i < spans.size(); i += 2) {
    if (spans[i] < last || spans[i + 1] < spans[i] || spans[i + 1] > consumed) std::abort();
    last = spans[i + 1];
  }
  conv->out().clear();
  conv->spans().clear();
  return 0;
}
