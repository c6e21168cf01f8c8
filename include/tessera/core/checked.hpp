// tessera/core/checked.hpp — sizes computed from outside data, with overflow checks.
//
// A shape read from a file is a list of integers chosen by whoever wrote the file; their product (an
// element count) and that times the element size (a byte count) must not wrap around to a plausible
// value. These return std::nullopt instead of a wrapped result; callers turn that into an error that
// names the file and the shape.
#pragma once
#include <cstdint>
#include <optional>
#include <span>

namespace tessera {

/// a · b, or nullopt when it does not fit in int64 or either is negative.
constexpr std::optional<std::int64_t> checked_mul(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

/// a + b, or nullopt when it does not fit in int64 or either is negative.
constexpr std::optional<std::int64_t> checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

/// The product of the extents (1 for none), or nullopt when an extent is negative or the product
/// overflows int64. @post a result n satisfies n ≥ 0 and n / e == the product of the other extents.
constexpr std::optional<std::int64_t> checked_numel(std::span<const std::int64_t> extents) {
  std::int64_t n = 1;
  for (const std::int64_t e : extents) {
    const auto next = checked_mul(n, e);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

}  // namespace tessera
