// tests/core: the host vector vocabulary (tessera/core/simd.hpp) and the instruction-set report
// (tessera/core/cpu.hpp). Loads and stores are checked against the scalar bf16 conversions for every
// bf16 bit pattern and for float patterns around every rounding case; the lane count against the target.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tessera/core/cpu.hpp"
#include "tessera/core/simd.hpp"

namespace ts = tessera;

TEST_CASE("cpu: the build level is one the running CPU has, and both are named") {
  const std::string built(ts::cpu::built_level()), cpu = ts::cpu::cpu_level();
  MESSAGE("built for " << built << ", CPU " << cpu << " (" << ts::cpu::cpu_features() << ")");
#if defined(__x86_64__)
  const auto rank = [](const std::string& l) {
    return l == "x86-64-v4" ? 4 : l == "x86-64-v3" ? 3 : l == "x86-64-v2" ? 2 : l == "x86-64" ? 1 : 0;
  };
  REQUIRE(rank(built) > 0);
  REQUIRE(rank(cpu) > 0);
  CHECK(rank(cpu) >= rank(built));  // the start-up check would have refused to run otherwise
#elif defined(__aarch64__)
  CHECK(built.rfind("aarch64", 0) == 0);
  CHECK(cpu.rfind("aarch64", 0) == 0);
#endif
}

#if TESSERA_HOST_VECTORS
using ts::simd::vfloat;
using ts::simd::lanes;

TEST_CASE("simd: the lane count follows the target") {
#if defined(__AVX512F__)
  CHECK(lanes == 16);
#elif defined(__AVX__)
  CHECK(lanes == 8);
#elif defined(__SSE2__) || defined(__ARM_NEON)
  CHECK(lanes == 4);
#endif
  CHECK(ts::simd::bits == 32 * lanes);
}

TEST_CASE("simd: float loads and stores are exact at any alignment") {
  std::vector<float> src(3 * lanes + 1), dst(src.size(), -1.0f);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = 0.25f * static_cast<float>(i) - 3.0f;
  ts::simd::store(dst.data() + 1, ts::simd::load(src.data() + 1));  // misaligned by one float
  CHECK(dst[0] == -1.0f);
  for (int l = 0; l < lanes; ++l) CHECK(dst[1 + l] == src[1 + l]);
  CHECK(dst[1 + lanes] == -1.0f);  // nothing past the vector is written
}

TEST_CASE("simd: bf16 load widens every bit pattern exactly as bf16::to_float") {
  std::vector<ts::bf16> h(65536);
  for (std::uint32_t b = 0; b < 65536; ++b) h[b] = ts::bf16::from_bits(static_cast<std::uint16_t>(b));
  for (std::uint32_t b = 0; b < 65536; b += lanes) {
    float out[64];
    ts::simd::store(out, ts::simd::load(h.data() + b));
    for (int l = 0; l < lanes; ++l) {
      const float want = ts::bf16::to_float(h[b + l].bits);
      REQUIRE(std::memcmp(&out[l], &want, 4) == 0);
    }
  }
}

TEST_CASE("simd: bf16 store rounds to nearest even, keeps NaN quiet, exactly as bf16::from_float") {
  // every exponent, with the low 16 bits at and around the rounding boundary (ties to even both ways),
  // plus NaN payloads, infinities, subnormals and zeros of both signs
  std::vector<std::uint32_t> bits;
  const std::uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff, 0x4000, 0xc000};
  for (std::uint32_t hi = 0; hi < 65536; ++hi)
    for (std::uint32_t lo : lows) bits.push_back(hi << 16 | lo);
  while (bits.size() % lanes) bits.push_back(0x7fc00001u);
  std::vector<float> f(bits.size());
  std::memcpy(f.data(), bits.data(), 4 * bits.size());
  std::vector<ts::bf16> out(f.size());
  for (std::size_t i = 0; i < f.size(); i += lanes) ts::simd::store(out.data() + i, ts::simd::load(f.data() + i));
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < f.size(); ++i) wrong += out[i].bits != ts::bf16::from_float(f[i]);
  CHECK(wrong == 0);
}

TEST_CASE("simd: lane_index, keep_below and sum") {
  float idx[64];
  ts::simd::store(idx, ts::simd::lane_index());
  for (int l = 0; l < lanes; ++l) CHECK(idx[l] == static_cast<float>(l));
  for (int first = 0; first < 2 * lanes; first += 3)
    for (int limit = first - 1; limit <= first + lanes + 1; ++limit) {
      float v[64];
      ts::simd::store(v, ts::simd::keep_below(vfloat(2.0f), first, limit));
      for (int l = 0; l < lanes; ++l) REQUIRE(v[l] == (first + l < limit ? 2.0f : 0.0f));
    }
  CHECK(ts::simd::sum(ts::simd::lane_index()) == static_cast<float>(lanes * (lanes - 1) / 2));
}
#else
TEST_CASE("simd: no host vectors in this build") { MESSAGE("TESSERA_HOST_VECTORS is 0: scalar loops only"); }
#endif
