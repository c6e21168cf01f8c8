// tessera/core/crc32.hpp — CRC-32 (IEEE 802.3, the polynomial of zlib, gzip and PNG), for checkpoint
// checksums. Slicing-by-8 over a constexpr table; crc32(data, n, crc) continues a running value, so a
// file can be checksummed in pieces: crc32(b, nb, crc32(a, na)) == crc32(a‖b).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace tessera {

namespace crc_detail {
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t s = 1; s < 8; ++s)
    for (std::size_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xffu];
  return t;
}
inline constexpr auto tables = make_tables();
}  // namespace crc_detail

/// CRC-32 of n bytes, continuing from `crc` (0 to start).
inline std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0) {
  const auto& t = crc_detail::tables;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  while (n >= 8) {
    const std::uint32_t lo = c ^ (static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                                  static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24);
    c = t[7][lo & 0xffu] ^ t[6][(lo >> 8) & 0xffu] ^ t[5][(lo >> 16) & 0xffu] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
        t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = t[0][(c ^ *p++) & 0xffu] ^ (c >> 8);
  return ~c;
}

}  // namespace tessera
