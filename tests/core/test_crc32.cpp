// tests/core: tessera::crc32 against zlib's crc32 (the oracle), for every length 0..300 and every split
// point of a running checksum, and the published check value of "123456789".
#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/core/crc32.hpp"

TEST_CASE("crc32: check value of \"123456789\" is 0xCBF43926") {
  const std::string s = "123456789";
  CHECK(tessera::crc32(s.data(), s.size()) == 0xCBF43926u);
}

TEST_CASE("crc32: equals zlib for every length and every split of a running value") {
  std::vector<unsigned char> buf(300);
  std::uint32_t x = 12345;
  for (auto& b : buf) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<unsigned char>(x >> 24);
  }
  for (std::size_t n = 0; n <= buf.size(); ++n) {
    const auto want = static_cast<std::uint32_t>(::crc32(0L, buf.data(), static_cast<uInt>(n)));
    REQUIRE(tessera::crc32(buf.data(), n) == want);
    for (std::size_t k = 0; k <= n; k += 7)
      REQUIRE(tessera::crc32(buf.data() + k, n - k, tessera::crc32(buf.data(), k)) == want);
  }
}
