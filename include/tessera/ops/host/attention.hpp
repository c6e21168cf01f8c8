// tessera/ops/host/attention.hpp — causal grouped-query self-attention, flash style, on the host.
//
// Layout: token row n = b·T + t; query head h of row n at q[n·ld_q + h·D …], key/value head g at
// k[n·ld_k + g·D …] (so q, k and v can be column blocks of one fused QKV projection output); query head
// h attends with kv head h / (Hq/Hkv). The forward walks the keys of each query row in tiles of
// `key_tile` with an online softmax — no T×T score matrix exists, per head or otherwise — and saves
// the row log-sum-exp lse[(b·Hq + h)·T + t]. The backward recomputes the probabilities from lse
// (FlashAttention-2): P = exp(S − lse), dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(dO∘O)),
// dQ = dS·K·scale, dK += dSᵀ·Q·scale. D, the head size, is a compile-time constant from the model type.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tessera/core/profile.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/ops/attention_shape.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/ops/host/elementwise.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops {

namespace host_detail {
using attention_detail::check_attention;
using attention_detail::packed;
}  // namespace host_detail

inline constexpr int attention_key_tile = 64;

/// o = softmax(q·kᵀ·scale + causal mask)·v per head; lse saved for the backward.
template <int D, class T>
void attention_forward(host_system, const T* q, const T* k, const T* v, T* o, acc_t<T>* lse, attention_shape sh,
                       acc_t<T> scale) {
  const prof::scope prof_("attention fwd", 2.0 * sh.B * sh.Hq * sh.T * sh.T * D);
  using A = acc_t<T>;
  sh = host_detail::packed(sh, D);
  host_detail::check_attention(sh, D);
  const i64 Tn = sh.T, Hq = sh.Hq, rep = sh.Hq / sh.Hkv;
  constexpr int Bc = attention_key_tile;
#pragma omp parallel for collapse(2) schedule(dynamic, 16)
  for (i64 bh = 0; bh < sh.B * Hq; ++bh) {
    for (i64 i = 0; i < Tn; ++i) {
      const i64 b = bh / Hq, h = bh % Hq, g = h / rep;
      A qv[D], acc[D], s[Bc];
      const T* qr = q + (b * Tn + i) * sh.ld_q + h * D;
#pragma omp simd
      for (int d = 0; d < D; ++d) {
        qv[d] = load(qr[d]) * scale;
        acc[d] = 0;
      }
      A m = -INFINITY, l = 0;
      for (i64 j0 = 0; j0 <= i; j0 += Bc) {
        const int jn = static_cast<int>(std::min<i64>(Bc, i + 1 - j0));
        A bm = -INFINITY;
        for (int j = 0; j < jn; ++j) {
          const T* kr = k + (b * Tn + j0 + j) * sh.ld_k + g * D;
          A dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int d = 0; d < D; ++d) dot += qv[d] * load(kr[d]);
          s[j] = dot;
          bm = std::max(bm, dot);
        }
        const A nm = std::max(m, bm);
        const A corr = math::rescale(m, nm);
        l *= corr;
#pragma omp simd
        for (int d = 0; d < D; ++d) acc[d] *= corr;
        for (int j = 0; j < jn; ++j) {
          const A p = std::exp(s[j] - nm);
          l += p;
          const T* vr = v + (b * Tn + j0 + j) * sh.ld_v + g * D;
#pragma omp simd
          for (int d = 0; d < D; ++d) acc[d] += p * load(vr[d]);
        }
        m = nm;
      }
      T* orow = o + (b * Tn + i) * sh.ld_o + h * D;
      const A inv = A(1) / l;
#pragma omp simd
      for (int d = 0; d < D; ++d) orow[d] = store<T>(acc[d] * inv);
      lse[(b * Hq + h) * Tn + i] = m + std::log(l);
    }
  }
}

/// dq, dk, dv (written; strides as q, k, v) from dO (stride ld_o), recomputing scores from lse.
template <int D, class T>
void attention_backward(host_system, const T* dout, const T* q, const T* k, const T* v, const T* o,
                        const acc_t<T>* lse, attention_shape sh, acc_t<T> scale, T* dq, T* dk, T* dv) {
  const prof::scope prof_("attention bwd", 4.0 * sh.B * sh.Hq * sh.T * sh.T * D);
  using A = acc_t<T>;
  sh = host_detail::packed(sh, D);
  host_detail::check_attention(sh, D);
  const i64 Tn = sh.T, Hq = sh.Hq, Hkv = sh.Hkv, rep = sh.Hq / sh.Hkv;
#pragma omp parallel for schedule(dynamic, 1)
  for (i64 bg = 0; bg < sh.B * Hkv; ++bg) {
    const i64 b = bg / Hkv, g = bg % Hkv;
    A* dka = host::scratch<A>(2 * Tn * D, 2);
    A* dva = dka + Tn * D;
    std::fill(dka, dka + 2 * Tn * D, A(0));
    for (i64 h = g * rep; h < (g + 1) * rep; ++h) {
      for (i64 i = 0; i < Tn; ++i) {
        const T* qr = q + (b * Tn + i) * sh.ld_q + h * D;
        const T* dor = dout + (b * Tn + i) * sh.ld_o + h * D;
        const T* orow = o + (b * Tn + i) * sh.ld_o + h * D;
        A qv[D], dov[D], dqa[D];
        A Di = 0;
#pragma omp simd reduction(+ : Di)
        for (int d = 0; d < D; ++d) {
          qv[d] = load(qr[d]);
          dov[d] = load(dor[d]);
          dqa[d] = 0;
          Di += dov[d] * load(orow[d]);
        }
        const A li = lse[(b * Hq + h) * Tn + i];
        for (i64 j = 0; j <= i; ++j) {
          const T* kr = k + (b * Tn + j) * sh.ld_k + g * D;
          const T* vr = v + (b * Tn + j) * sh.ld_v + g * D;
          A s = 0, dp = 0;
#pragma omp simd reduction(+ : s, dp)
          for (int d = 0; d < D; ++d) {
            s += qv[d] * load(kr[d]);
            dp += dov[d] * load(vr[d]);
          }
          const A p = std::exp(s * scale - li);
          const A ds = math::attention_dscore(p, dp, Di) * scale;
          A* dkr = dka + j * D;
          A* dvr = dva + j * D;
#pragma omp simd
          for (int d = 0; d < D; ++d) {
            dvr[d] += p * dov[d];
            dkr[d] += ds * qv[d];
            dqa[d] += ds * load(kr[d]);
          }
        }
        T* dqr = dq + (b * Tn + i) * sh.ld_q + h * D;
#pragma omp simd
        for (int d = 0; d < D; ++d) dqr[d] = store<T>(dqa[d]);
      }
    }
    for (i64 j = 0; j < Tn; ++j) {
      T* dkr = dk + (b * Tn + j) * sh.ld_k + g * D;
      T* dvr = dv + (b * Tn + j) * sh.ld_v + g * D;
#pragma omp simd
      for (int d = 0; d < D; ++d) {
        dkr[d] = store<T>(dka[j * D + d]);
        dvr[d] = store<T>(dva[j * D + d]);
      }
    }
  }
}

}  // namespace tessera::ops
