// tests/core: overflow-checked sizes (core/checked.hpp) against 128-bit arithmetic, on the edges.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "tessera/core/checked.hpp"

namespace {
constexpr std::int64_t big = std::numeric_limits<std::int64_t>::max();
}

TEST_CASE("checked_mul: exact when the 128-bit product fits in int64, nullopt otherwise") {
  const std::int64_t vals[] = {0, 1, 2, 3, 255, 256, 65535, 1LL << 31, (1LL << 31) + 1, 3037000499LL, 3037000500LL,
                               (1LL << 62) + 8, big / 2, big - 1, big};
  for (const std::int64_t a : vals)
    for (const std::int64_t b : vals) {
      const __int128 p = static_cast<__int128>(a) * b;
      const auto got = tessera::checked_mul(a, b);
      if (p <= big) {
        REQUIRE(got.has_value());
        CHECK(*got == static_cast<std::int64_t>(p));
      } else {
        CHECK_FALSE(got.has_value());
      }
    }
  CHECK_FALSE(tessera::checked_mul(-1, 4).has_value());
}

TEST_CASE("checked_numel: the wrapped products of damaged shapes are refused") {
  // [2^62 + 8, 256] wraps to 2048 elements in 64 bits; [2^62, 4] to 0
  CHECK_FALSE(tessera::checked_numel(std::vector<std::int64_t>{(1LL << 62) + 8, 256}).has_value());
  CHECK_FALSE(tessera::checked_numel(std::vector<std::int64_t>{1LL << 62, 4}).has_value());
  CHECK_FALSE(tessera::checked_numel(std::vector<std::int64_t>{4, -1}).has_value());
  CHECK(tessera::checked_numel(std::vector<std::int64_t>{}).value() == 1);
  CHECK(tessera::checked_numel(std::vector<std::int64_t>{0, big}).value() == 0);
  CHECK(tessera::checked_numel(std::vector<std::int64_t>{768, 2304}).value() == 768 * 2304);
  CHECK(tessera::checked_add(big, 1) == std::nullopt);
  CHECK(tessera::checked_add(big - 1, 1).value() == big);
}
