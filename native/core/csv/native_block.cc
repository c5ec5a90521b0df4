#include "csv/native_block.h"

#include <memory>

namespace roost::csv {
namespace {

const Type& stripLC(const Type& t) { return t.kind == Kind::LowCardinality ? stripLC(*t.inner) : t; }

size_t fixedSize(const Type& t) {
  switch (t.kind) {
    case Kind::Int8: case Kind::UInt8: case Kind::Bool: case Kind::Enum8: return 1;
    case Kind::Int16: case Kind::UInt16: case Kind::Date: case Kind::Enum16: return 2;
    case Kind::Int32: case Kind::UInt32: case Kind::Float32: case Kind::Date32: case Kind::DateTime: case Kind::IPv4: return 4;
    case Kind::Int64: case Kind::UInt64: case Kind::Float64: case Kind::DateTime64: return 8;
    case Kind::UUID: case Kind::IPv6: return 16;
    case Kind::Decimal: return t.precision <= 9 ? 4 : t.precision <= 18 ? 8 : 16;
    case Kind::FixedString: return static_cast<size_t>(t.precision);
    default: return 0;  // String, Array, Nullable: variable
  }
}

inline uint64_t readVarUInt(const char*& p) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b = static_cast<uint8_t>(*p++);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

}  // namespace

NativeColumn::NativeColumn(const Type& t) : type(&stripLC(t)) {
    if (type->kind == Kind::Array || type->kind == Kind::Nullable) nested = std::make_unique<NativeColumn>(*type->inner);
    fixed = fixedSize(*type);
  }

void NativeColumn::reset() {
    data.truncate(0);
    nulls.truncate(0);
    // Buffers given up with the last block: room for about as much again, so
    // the next block is not built by doubling (and copying) from nothing.
    if (dataHint) data.reserve(dataHint + dataHint / 8 + 64);
    if (nullsHint) nulls.reserve(nullsHint + nullsHint / 8 + 64);
    dataHint = nullsHint = 0;
    offset = 0;
    if (nested) nested->reset();
  }

void NativeColumn::writeDefault() {
    if (type->kind == Kind::String) {
      data.putByte(0);
    } else {
      std::memset(data.grow(fixed), 0, fixed);
    }
  }

void NativeColumn::read(const char*& p) {
    switch (type->kind) {
      case Kind::Nullable: {
        uint8_t isNull = static_cast<uint8_t>(*p++);
        nulls.putByte(isNull);
        if (isNull) nested->writeDefault();
        else nested->read(p);
        return;
      }
      case Kind::Array: {
        uint64_t n = readVarUInt(p);
        for (uint64_t i = 0; i < n; ++i) nested->read(p);
        offset += n;
        data.putLE(offset);
        return;
      }
      case Kind::String: {
        const char* start = p;
        uint64_t len = readVarUInt(p);
        p += len;
        size_t n = static_cast<size_t>(p - start);
        char* dst = data.grow(n);
        if (n <= 16) {
          for (size_t i = 0; i < n; ++i) dst[i] = start[i];  // short strings: no call
        } else {
          std::memcpy(dst, start, n);
        }
        return;
      }
      default:
        // Constant-size copies inline to a move or two; only FixedString and
        // Decimal128 take the generic path.
        switch (fixed) {
          case 1: data.putByte(static_cast<uint8_t>(*p)); break;
          case 2: std::memcpy(data.grow(2), p, 2); break;
          case 4: std::memcpy(data.grow(4), p, 4); break;
          case 8: std::memcpy(data.grow(8), p, 8); break;
          case 16: std::memcpy(data.grow(16), p, 16); break;
          default: data.put(p, fixed);
        }
        p += fixed;
    }
  }

namespace {

OwnedBytes take(ByteBuf& b) {
  OwnedBytes o;
  o.data = b.release(o.size, o.cap);
  return o;
}

}  // namespace

void NativeColumn::serialize(ByteBuf& small, std::vector<OwnedBytes>* parts, size_t minPart) {
  auto emit = [&](ByteBuf& b, size_t& hint) {
    if (!parts || b.size() < minPart || b.size() == 0) {
      small.put(b.data(), b.size());
      return;
    }
    if (small.size()) parts->push_back(take(small));
    hint = b.size();
    parts->push_back(take(b));
  };
  if (type->kind == Kind::Nullable) {
    emit(nulls, nullsHint);
    nested->serialize(small, parts, minPart);
  } else if (type->kind == Kind::Array) {
    emit(data, dataHint);
    nested->serialize(small, parts, minPart);
  } else {
    emit(data, dataHint);
  }
}

size_t NativeColumn::byteSize() const {
  return data.size() + nulls.size() + (nested ? nested->byteSize() : 0);
}

namespace {

void putString(ByteBuf& out, std::string_view s) {
  out.putVarUInt(s.size());
  out.put(s.data(), s.size());
}

}  // namespace

std::string nativeTypeName(const Type& t) {
  switch (t.kind) {
    case Kind::LowCardinality: return nativeTypeName(*t.inner);
    case Kind::Nullable: return "Nullable(" + nativeTypeName(*t.inner) + ")";
    case Kind::Array: return "Array(" + nativeTypeName(*t.inner) + ")";
    default: return typeToString(t);
  }
}

NativeEncoder::NativeEncoder(const std::vector<Column>& cols) : cols_(cols) {
  for (const Column& c : cols) {
    columns_.push_back(std::make_unique<NativeColumn>(c.type));
    addBuffers(columns_.back().get(), true);
  }
  varMarks_.resize(varBufs_.size());
  offsetMarks_.resize(offsets_.size());
}

void NativeEncoder::addBuffers(NativeColumn* n, bool perRow) {
  switch (n->type->kind) {
    case Kind::Nullable:  // a null flag and a value (the default under NULL) per row
      if (perRow) fixedBufs_.emplace_back(&n->nulls, 1);
      else varBufs_.push_back(&n->nulls);
      addBuffers(n->nested.get(), perRow);
      return;
    case Kind::Array:  // an offset per row, any number of elements
      if (perRow) fixedBufs_.emplace_back(&n->data, sizeof(uint64_t));
      else varBufs_.push_back(&n->data);
      offsets_.push_back(&n->offset);
      addBuffers(n->nested.get(), false);
      return;
    default:
      if (perRow && n->fixed) fixedBufs_.emplace_back(&n->data, n->fixed);
      else varBufs_.push_back(&n->data);
  }
}

NativeEncoder::~NativeEncoder() = default;

void NativeEncoder::encode(std::string_view rowBinary, uint64_t rows, ByteBuf& out) {
  for (auto& c : columns_) c->reset();
  const char* p = rowBinary.data();
  for (uint64_t r = 0; r < rows; ++r)
    for (auto& c : columns_) c->read(p);
  finishBlock(rows, out);
}

void NativeEncoder::writeBlock(uint64_t rows, ByteBuf& head, std::vector<OwnedBytes>* parts, size_t minPart) {
  if (rows > 0) {
    head.putVarUInt(columns_.size());
    head.putVarUInt(rows);
    for (size_t i = 0; i < columns_.size(); ++i) {
      putString(head, cols_[i].name);
      putString(head, nativeTypeName(cols_[i].type));
      columns_[i]->serialize(head, parts, minPart);
    }
  }
  for (auto& c : columns_) c->reset();
}

void NativeEncoder::finishBlock(uint64_t rows, ByteBuf& out) {
  if (rows > 0) {
    size_t total = 64;
    for (auto& c : columns_) total += c->byteSize() + 64;
    out.reserve(out.size() + total);
  }
  writeBlock(rows, out, nullptr, 0);
}

void NativeEncoder::finishBlockParts(uint64_t rows, std::vector<OwnedBytes>& parts, size_t minPart) {
  ByteBuf small;
  if (rows > 0) small.reserve(minPart);
  writeBlock(rows, small, &parts, minPart);
  if (small.size()) parts.push_back(take(small));
}

void rowBinaryToNative(std::string_view rowBinary, uint64_t rows, const std::vector<Column>& cols, ByteBuf& out) {
  NativeEncoder(cols).encode(rowBinary, rows, out);
}

}  // namespace roost::csv
