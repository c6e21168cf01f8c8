// tessera/ops/attention_shape.hpp — the shape of one causal grouped-query attention call, shared by the
// host (ops/host/attention.hpp) and CUDA (ops/cuda/attention.hpp) backends.
//
// Token row n = b·T + t; query head h of row n at q[n·ld_q + h·D …], key/value head g at k[n·ld_k + g·D …];
// query head h attends with kv head h / (Hq/Hkv). A zero stride means "packed heads" (Hq·D or Hkv·D).
#pragma once
#include <cstdint>

#include "tessera/core/error.hpp"

namespace tessera::ops {

using i64 = std::int64_t;

struct attention_shape {
  i64 B = 1, T = 1, Hq = 1, Hkv = 1;
  i64 ld_q = 0, ld_k = 0, ld_v = 0, ld_o = 0;  ///< row strides in elements (0 = packed heads)
};

namespace attention_detail {
/// Throws usage_error unless the heads group evenly and every stride holds its heads.
inline void check_attention(const attention_shape& s, int D) {
  if (s.Hkv <= 0 || s.Hq % s.Hkv != 0)
    throw usage_error(cat("attention: query heads (", s.Hq, ") not divisible by kv heads (", s.Hkv, ")"));
  if (s.ld_q < s.Hq * D || s.ld_o < s.Hq * D || s.ld_k < s.Hkv * D || s.ld_v < s.Hkv * D)
    throw usage_error(cat("attention: a row stride is smaller than its heads × head size (", D, ")"));
}
/// The shape with every zero stride replaced by its packed value.
inline attention_shape packed(attention_shape s, int D) {
  if (s.ld_q == 0) s.ld_q = s.Hq * D;
  if (s.ld_o == 0) s.ld_o = s.Hq * D;
  if (s.ld_k == 0) s.ld_k = s.Hkv * D;
  if (s.ld_v == 0) s.ld_v = s.Hkv * D;
  return s;
}
}  // namespace attention_detail

}  // namespace tessera::ops
