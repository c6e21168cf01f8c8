// tessera/core/bf16.hpp — bfloat16 storage type shared by host and device code.
//
// Layout-compatible with __nv_bfloat16 and with NCCL's ncclBfloat16 (16 raw bits: sign, 8 exponent,
// 7 mantissa). Conversion from float rounds to nearest even; NaN stays NaN (quiet).
#pragma once
#include <bit>
#include <cstdint>

#include "tessera/core/config.hpp"

namespace tessera {

struct bf16 {
  std::uint16_t bits = 0;

  constexpr bf16() = default;
  TS_HD constexpr explicit bf16(float f) : bits(from_float(f)) {}
  TS_HD constexpr operator float() const { return to_float(bits); }

  TS_HD static constexpr bf16 from_bits(std::uint16_t b) {
    bf16 r;
    r.bits = b;
    return r;
  }
  TS_HD static constexpr std::uint16_t from_float(float f) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0u)  // NaN: keep it quiet
      return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
    const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return static_cast<std::uint16_t>((u + rounding) >> 16);
  }
  TS_HD static constexpr float to_float(std::uint16_t b) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
  }
  TS_HD friend constexpr bool operator==(bf16 a, bf16 b) { return a.bits == b.bits; }
};

static_assert(sizeof(bf16) == 2 && alignof(bf16) == 2, "bf16 must be 16 raw bits");

/// Element types the collectives and kernels move: fp32 and bf16 (plus integer and fp64 helpers).
enum class dtype : std::uint8_t { f32, bf16, f64, i32, i64, u8 };

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_of<bf16> { static constexpr dtype value = dtype::bf16; };
template <> struct dtype_of<double> { static constexpr dtype value = dtype::f64; };
template <> struct dtype_of<std::int32_t> { static constexpr dtype value = dtype::i32; };
template <> struct dtype_of<std::int64_t> { static constexpr dtype value = dtype::i64; };
template <> struct dtype_of<std::uint8_t> { static constexpr dtype value = dtype::u8; };
template <class T> inline constexpr dtype dtype_v = dtype_of<T>::value;

constexpr const char* dtype_name(dtype d) {
  switch (d) {
    case dtype::f32: return "f32";
    case dtype::bf16: return "bf16";
    case dtype::f64: return "f64";
    case dtype::i32: return "i32";
    case dtype::i64: return "i64";
    case dtype::u8: return "u8";
  }
  return "?";
}
constexpr int dtype_size(dtype d) {
  switch (d) {
    case dtype::f32: case dtype::i32: return 4;
    case dtype::bf16: return 2;
    case dtype::f64: case dtype::i64: return 8;
    case dtype::u8: return 1;
  }
  return 0;
}

}  // namespace tessera
