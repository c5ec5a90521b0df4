#include "csv/native_block.h"

#include <memory>

namespace roost::csv {
namespace {

const Type& stripLC(const Type& t) { return t.kind == Kind::LowCardinality ? stripLC(*t.inner) : t; }

size_t fixedSize(const Type& t) {
  switch (t.kind) {
    case Kind::Int8: case Kind::UInt8: case Kind::Bool: case Kind::Enum8: return 1;
    case Kind::Int16: case Kind::UInt16: case Kind::Date: case Kind::Enum16: return 2;
    case Kind::Int32: case Kind::UInt32: case Kind::Float32: case Kind::Date32: case Kind::DateTime: return 4;
    case Kind::Int64: case Kind::UInt64: case Kind::Float64: case Kind::DateTime64: return 8;
    case Kind::UUID: return 16;
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

struct ColumnOut {
  const Type* type;  // LowCardinality stripped
  size_t fixed = 0;
  ByteBuf data;      // values, or UInt64 offsets for Array
  ByteBuf nulls;     // Nullable null map
  std::unique_ptr<ColumnOut> nested;  // Array elements, or Nullable's inner
  uint64_t offset = 0;

  explicit ColumnOut(const Type& t) : type(&stripLC(t)) {
    if (type->kind == Kind::Array || type->kind == Kind::Nullable) nested = std::make_unique<ColumnOut>(*type->inner);
    fixed = fixedSize(*type);
  }

  void writeDefault() {  // the placeholder under a NULL
    if (type->kind == Kind::String) {
      data.putByte(0);
    } else {
      std::memset(data.grow(fixed), 0, fixed);
    }
  }

  void read(const char*& p) {
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
        data.put(start, static_cast<size_t>(p - start));
        return;
      }
      default:
        data.put(p, fixed);
        p += fixed;
    }
  }

  void serialize(ByteBuf& out) const {
    if (type->kind == Kind::Nullable) {
      out.put(nulls.data(), nulls.size());
      nested->serialize(out);
    } else if (type->kind == Kind::Array) {
      out.put(data.data(), data.size());
      nested->serialize(out);
    } else {
      out.put(data.data(), data.size());
    }
  }
};

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

void rowBinaryToNative(std::string_view rowBinary, uint64_t rows, const std::vector<Column>& cols, ByteBuf& out) {
  if (rows == 0) return;
  std::vector<std::unique_ptr<ColumnOut>> columns;
  for (const Column& c : cols) {
    columns.push_back(std::make_unique<ColumnOut>(c.type));
    // Fixed-size columns: exact; others: a fair share of the input.
    size_t guess = columns.back()->fixed ? columns.back()->fixed * rows : rowBinary.size() / cols.size() + 64;
    columns.back()->data.reserve(guess);
  }
  const char* p = rowBinary.data();
  for (uint64_t r = 0; r < rows; ++r)
    for (auto& c : columns) c->read(p);
  out.reserve(out.size() + rowBinary.size() + rows * 8 + cols.size() * 64 + 64);
  out.putVarUInt(cols.size());
  out.putVarUInt(rows);
  for (size_t i = 0; i < cols.size(); ++i) {
    putString(out, cols[i].name);
    putString(out, nativeTypeName(cols[i].type));
    columns[i]->serialize(out);
  }
}

}  // namespace roost::csv
