#pragma once
#include <cstdint>
#include <string_view>

namespace roost {

/// Version of the native core; the TypeScript side checks it at load time so a
/// stale build is reported instead of misbehaving.
constexpr std::string_view kCoreVersion = "0.1.0";

/// FNV-1a 64-bit hash. Used to check that the addon really runs native code.
constexpr uint64_t fnv1a64(std::string_view s) noexcept {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace roost
