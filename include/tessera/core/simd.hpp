// tessera/core/simd.hpp — the host's vectors: std::experimental::simd at the native width of the target
// a translation unit is compiled for (float lanes: 4 for SSE2/SSE4.2 and NEON, 8 for AVX2, 16 for AVX-512).
//
// The host's vector loops run the very TS_HD math templates of ops/math.hpp that the scalar tails and the
// CUDA kernels run, instantiated for `simd::vfloat` (its operators are the scalar ones, lane-wise). The lane
// count is the target's, never fixed: a loop steps by `simd::lanes`.
//
// ABI. A `vfloat` is one register of the target (native_simd), so passing one never needs an instruction
// set the translation unit was not compiled for (no -Wpsabi case can arise), and its width is part of its
// type (simd<float, _VecBuiltin<32>> and simd<float, _VecBltnBtmsk<64>> are different types), so
// functions taking vectors and built for different levels never share a symbol. The helpers here are
// always inlined. tessera/core/cpu.hpp refuses to start a program built for more than its CPU has.
//
// Not for device code: under nvcc TESSERA_HOST_VECTORS is 0 and only the scalar paths exist.
#pragma once
#include <cstdint>

#include "tessera/core/bf16.hpp"
#include "tessera/core/config.hpp"
#include "tessera/core/cpu.hpp"

#if !TS_DEVICE_COMPILE && defined(__GNUC__) && defined(__has_include)
#if __has_include(<experimental/simd>)
#define TESSERA_HOST_VECTORS 1
#endif
#endif
#ifndef TESSERA_HOST_VECTORS
#define TESSERA_HOST_VECTORS 0
#endif

#if TESSERA_HOST_VECTORS
#include <bit>
#include <experimental/simd>

#define TESSERA_VEC_INLINE [[gnu::always_inline]] inline

// GCC 12's AVX-512 intrinsics start several operations (masked sqrt, widening loads, narrowing stores)
// from _mm512_undefined_*(), which its -Wuninitialized / -Wmaybe-uninitialized report wherever they are
// inlined (GCC bug 105593, fixed in 12.3/13). The helpers below and the vector math of ops/math.hpp are
// wrapped in TESSERA_SIMD_DIAGNOSTICS_{PUSH,POP} so the false positives stay out of -Werror builds.
#if defined(__clang__)  // no such false positives, and no -Wmaybe-uninitialized
#define TESSERA_SIMD_DIAGNOSTICS_PUSH _Pragma("GCC diagnostic push")
#else
#define TESSERA_SIMD_DIAGNOSTICS_PUSH                                 \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#endif
#define TESSERA_SIMD_DIAGNOSTICS_POP _Pragma("GCC diagnostic pop")

TESSERA_SIMD_DIAGNOSTICS_PUSH
namespace tessera::simd {
namespace stdx = std::experimental;

/// A register of floats at the target's width, and integers of the same lane count.
using vfloat = stdx::native_simd<float>;
using vint = stdx::rebind_simd_t<std::int32_t, vfloat>;
using vuint = stdx::rebind_simd_t<std::uint32_t, vfloat>;
/// Lanes of a vfloat: 4 (SSE, NEON), 8 (AVX2), 16 (AVX-512).
inline constexpr int lanes = static_cast<int>(vfloat::size());
/// Bits of a vfloat (512 for 16 lanes).
inline constexpr int bits = lanes * 32;

/// Loads `lanes` consecutive values (any alignment), widening bf16 to float exactly.
TESSERA_VEC_INLINE vfloat load(const float* p) { return vfloat(p, stdx::element_aligned); }
TESSERA_VEC_INLINE vfloat load(const bf16* p) {
  const vuint h(&p->bits, stdx::element_aligned);  // bf16 is its 16 raw bits: zero-extended, then shifted
  return std::bit_cast<vfloat>(vuint(h << 16));
}
/// Stores `lanes` values; to bf16 with round-to-nearest-even, NaNs kept NaN (quiet), as bf16::from_float.
TESSERA_VEC_INLINE void store(float* p, vfloat v) { v.copy_to(p, stdx::element_aligned); }
TESSERA_VEC_INLINE void store(bf16* p, vfloat v) {
  const vuint u = std::bit_cast<vuint>(v);
  vuint h = (u + (vuint(0x7fffu) + ((u >> 16) & 1u))) >> 16;
  const auto is_nan = ((u & 0x7f800000u) == 0x7f800000u) && ((u & 0x007fffffu) != 0u);
  stdx::where(is_nan, h) = (u >> 16) | 0x0040u;
  h.copy_to(&p->bits, stdx::element_aligned);  // narrowing store: each lane < 2^16
}
/// The sum of the lanes, in lane order (stdx::reduce's NEON path passes a std::array of half vectors,
/// which GCC notes under -Wpsabi; a row's sum is taken once per row, so order beats speed here).
TESSERA_VEC_INLINE float sum(vfloat v) {
  alignas(64) float lane[lanes];
  v.copy_to(lane, stdx::element_aligned);
  float s = 0.0f;
  for (int i = 0; i < lanes; ++i) s += lane[i];
  return s;
}
/// 0, 1, …, lanes − 1 as floats (exact), for masks such as "lane + c < valid".
TESSERA_VEC_INLINE vfloat lane_index() {
  return vfloat([](auto i) { return static_cast<float>(static_cast<int>(i)); });
}
/// v with lanes whose `lane_index() + first >= limit` set to 0.
TESSERA_VEC_INLINE vfloat keep_below(vfloat v, int first, int limit) {
  stdx::where(lane_index() >= static_cast<float>(limit - first), v) = 0.0f;
  return v;
}

}  // namespace tessera::simd
TESSERA_SIMD_DIAGNOSTICS_POP
#endif
