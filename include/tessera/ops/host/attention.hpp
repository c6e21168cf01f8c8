// tessera/ops/host/attention.hpp — causal grouped-query self-attention, flash style, on the host.
//
// Layout: token row n = b·T + t; query head h of row n at q[n·ld_q + h·D …], key/value head g at
// k[n·ld_k + g·D …] (so q, k and v can be column blocks of one fused QKV projection output); query head
// h attends with kv head h / (Hq/Hkv). D, the head size, is a compile-time constant from the model type.
//
// FlashAttention-2 in tiles of 64 queries × 64 keys: no T×T score matrix exists, per head or otherwise.
// The forward takes, for each (batch, head, query tile), the key tiles up to the diagonal: S = Q·Kᵀ
// (OpenBLAS, single-threaded inside the OpenMP task), an online softmax per row (math::rescale; exp on
// simd::vfloat lanes, math::fexp), O += P·V (OpenBLAS); it saves the row log-sum-exp
// lse[(b·Hq + h)·T + t]. The backward, for each (batch, kv head), recomputes P = exp(S − lse) tile by tile (S from the same scaled Q) and
// accumulates dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − D_i) (math::attention_dscore), dQ += scale·dS·K,
// dK += dSᵀ·(scale·Q) — five GEMMs per tile. Tiles are widened to the accumulation type (fp32 for fp32/bf16,
// double for the double reference), so bf16 storage is rounded once, on the way out.
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

/// p[c] = exp(s[c]·mul − shift) for c < valid, 0 for valid ≤ c < n (the causal mask); returns Σ p.
template <class A>
inline A masked_exp_row(const A* s, A* p, int valid, int n, A mul, A shift) {
  A sum = 0;
  int c = 0;
#if TESSERA_HOST_VECTORS
  if constexpr (std::is_same_v<A, float>) {
    simd::vfloat acc = 0.0f;
    for (; c + simd::lanes <= n; c += simd::lanes) {
      const simd::vfloat v = simd::keep_below(math::fexp(simd::load(s + c) * mul - shift), c, valid);
      simd::store(p + c, v);
      acc += v;
    }
    sum += simd::sum(acc);
  }
#endif
  for (; c < n; ++c) {
    p[c] = c < valid ? math::fexp(s[c] * mul - shift) : A(0);
    sum += p[c];
  }
  return sum;
}

/// rows × D tile of a strided head (row r at src + r·ld) widened to A, times mul.
template <int D, class T, class A>
inline void load_tile(const T* src, i64 ld, int rows, A* dst, A mul = A(1)) {
  for (int r = 0; r < rows; ++r) {
    const T* s = src + r * ld;
    A* d = dst + r * D;
#pragma omp simd
    for (int c = 0; c < D; ++c) d[c] = load(s[c]) * mul;
  }
}
}  // namespace host_detail

/// Queries × keys per tile (both).
inline constexpr int attention_tile = 64;

/// o = softmax(q·kᵀ·scale + causal mask)·v per head; lse saved for the backward.
template <int D, class T>
void attention_forward(host_system, const T* q, const T* k, const T* v, T* o, acc_t<T>* lse, attention_shape sh,
                       acc_t<T> scale) {
  const prof::scope prof_("attention fwd", 2.0 * sh.B * sh.Hq * sh.T * sh.T * D);
  using A = acc_t<T>;
  using host::trans;
  sh = host_detail::packed(sh, D);
  host_detail::check_attention(sh, D);
  constexpr int Bt = attention_tile;
  const i64 Tn = sh.T, Hq = sh.Hq, rep = sh.Hq / sh.Hkv, tiles = (Tn + Bt - 1) / Bt;
#pragma omp parallel for schedule(dynamic, 1)
  for (i64 task = 0; task < sh.B * Hq * tiles; ++task) {
    // the biggest query tiles (most key tiles) first
    const i64 it = tiles - 1 - task % tiles, bh = task / tiles, b = bh / Hq, h = bh % Hq, g = h / rep;
    const i64 i0 = it * Bt;
    const int ni = static_cast<int>(std::min<i64>(Bt, Tn - i0));
    A* Qf = host::scratch<A>(4 * Bt * D + 2 * Bt * Bt + 2 * Bt, 6);
    A *Of = Qf + Bt * D, *Kf = Of + Bt * D, *Vf = Kf + Bt * D, *S = Vf + Bt * D, *P = S + Bt * Bt;
    A *m = P + Bt * Bt, *l = m + Bt;
    host_detail::load_tile<D>(q + (b * Tn + i0) * sh.ld_q + h * D, sh.ld_q, ni, Qf, scale);
    std::fill(Of, Of + ni * D, A(0));
    std::fill(m, m + ni, A(-INFINITY));
    std::fill(l, l + ni, A(0));
    for (i64 j0 = 0; j0 <= i0; j0 += Bt) {
      const int jn = static_cast<int>(std::min<i64>(Bt, i0 + ni - j0));
      host_detail::load_tile<D>(k + (b * Tn + j0) * sh.ld_k + g * D, sh.ld_k, jn, Kf);
      host_detail::load_tile<D>(v + (b * Tn + j0) * sh.ld_v + g * D, sh.ld_v, jn, Vf);
      host::gemm_unprofiled(trans::no, trans::yes, ni, jn, D, A(1), Qf, D, Kf, D, A(0), S, Bt);
      for (int r = 0; r < ni; ++r) {
        const int valid = static_cast<int>(std::min<i64>(jn, i0 + r - j0 + 1));  // ≥ 1: j0 ≤ i0 ≤ i0 + r
        const A* sr = S + r * Bt;
        A bm = -INFINITY;
        for (int c = 0; c < valid; ++c) bm = std::max(bm, sr[c]);
        const A nm = std::max(m[r], bm);
        const A corr = math::rescale(m[r], nm);
        A* orow = Of + r * D;
#pragma omp simd
        for (int d = 0; d < D; ++d) orow[d] *= corr;
        l[r] = l[r] * corr + host_detail::masked_exp_row(sr, P + r * Bt, valid, jn, A(1), nm);
        m[r] = nm;
      }
      host::gemm_unprofiled(trans::no, trans::no, ni, D, jn, A(1), P, Bt, Vf, D, A(1), Of, D);
    }
    for (int r = 0; r < ni; ++r) {
      T* orow = o + (b * Tn + i0 + r) * sh.ld_o + h * D;
      const A inv = A(1) / l[r];
#pragma omp simd
      for (int d = 0; d < D; ++d) orow[d] = store<T>(Of[r * D + d] * inv);
      lse[(b * Hq + h) * Tn + i0 + r] = m[r] + std::log(l[r]);
    }
  }
}

/// dq, dk, dv (written; strides as q, k, v) from dO (stride ld_o), recomputing scores from lse.
template <int D, class T>
void attention_backward(host_system, const T* dout, const T* q, const T* k, const T* v, const T* o,
                        const acc_t<T>* lse, attention_shape sh, acc_t<T> scale, T* dq, T* dk, T* dv) {
  const prof::scope prof_("attention bwd", 4.0 * sh.B * sh.Hq * sh.T * sh.T * D);
  using A = acc_t<T>;
  using host::trans;
  sh = host_detail::packed(sh, D);
  host_detail::check_attention(sh, D);
  constexpr int Bt = attention_tile;
  const i64 Tn = sh.T, Hq = sh.Hq, Hkv = sh.Hkv, rep = sh.Hq / sh.Hkv;
#pragma omp parallel for schedule(dynamic, 1)
  for (i64 bg = 0; bg < sh.B * Hkv; ++bg) {
    const i64 b = bg / Hkv, g = bg % Hkv;
    A* dKa = host::scratch<A>(3 * Tn * D + Tn + 4 * Bt * D + 3 * Bt * Bt, 2);
    A *dVa = dKa + Tn * D, *dQa = dVa + Tn * D, *Di = dQa + Tn * D;
    A *Kf = Di + Tn, *Vf = Kf + Bt * D, *Qf = Vf + Bt * D, *dOf = Qf + Bt * D;
    A *S = dOf + Bt * D, *P = S + Bt * Bt, *dP = P + Bt * Bt;
    std::fill(dKa, dKa + 2 * Tn * D, A(0));
    for (i64 h = g * rep; h < (g + 1) * rep; ++h) {
      const A* lh = lse + (b * Hq + h) * Tn;
      for (i64 i = 0; i < Tn; ++i) {  // D_i = rowsum(dO ∘ O)
        const T* dor = dout + (b * Tn + i) * sh.ld_o + h * D;
        const T* orow = o + (b * Tn + i) * sh.ld_o + h * D;
        A di = 0;
#pragma omp simd reduction(+ : di)
        for (int d = 0; d < D; ++d) di += load(dor[d]) * load(orow[d]);
        Di[i] = di;
      }
      std::fill(dQa, dQa + Tn * D, A(0));
      for (i64 j0 = 0; j0 < Tn; j0 += Bt) {
        const int jn = static_cast<int>(std::min<i64>(Bt, Tn - j0));
        host_detail::load_tile<D>(k + (b * Tn + j0) * sh.ld_k + g * D, sh.ld_k, jn, Kf);
        host_detail::load_tile<D>(v + (b * Tn + j0) * sh.ld_v + g * D, sh.ld_v, jn, Vf);
        for (i64 i0 = j0; i0 < Tn; i0 += Bt) {  // query tiles at or below the diagonal
          const int ni = static_cast<int>(std::min<i64>(Bt, Tn - i0));
          // Q scaled as in the forward, so the first tile's scores are the forward's, bit for bit
          host_detail::load_tile<D>(q + (b * Tn + i0) * sh.ld_q + h * D, sh.ld_q, ni, Qf, scale);
          host_detail::load_tile<D>(dout + (b * Tn + i0) * sh.ld_o + h * D, sh.ld_o, ni, dOf);
          host::gemm_unprofiled(trans::no, trans::yes, ni, jn, D, A(1), Qf, D, Kf, D, A(0), S, Bt);
          host::gemm_unprofiled(trans::no, trans::yes, ni, jn, D, A(1), dOf, D, Vf, D, A(0), dP, Bt);
          for (int r = 0; r < ni; ++r) {
            const int valid = static_cast<int>(std::min<i64>(jn, i0 + r - j0 + 1));
            A* pr = P + r * Bt;
            A* dpr = dP + r * Bt;
            host_detail::masked_exp_row(S + r * Bt, pr, valid, jn, A(1), lh[i0 + r]);
            // The first query tile's rows have all their keys in this one tile: there D_i = Σ_j P_ij·dP_ij
            // exactly as PyTorch's softmax backward forms it (a row with one key then gets dS = 0, not
            // rounding noise); further rows take FA2's D_i = dO_i·O_i (equal in exact arithmetic).
            A di = Di[i0 + r];
            if (i0 == 0) {
              di = 0;
              for (int c = 0; c < valid; ++c) di += pr[c] * dpr[c];
            }
#pragma omp simd
            for (int c = 0; c < jn; ++c) dpr[c] = math::attention_dscore(pr[c], dpr[c], di);  // dS / scale
          }
          host::gemm_unprofiled(trans::yes, trans::no, jn, D, ni, A(1), P, Bt, dOf, D, A(1), dVa + j0 * D, D);
          host::gemm_unprofiled(trans::no, trans::no, ni, D, jn, scale, dP, Bt, Kf, D, A(1), dQa + i0 * D, D);
          host::gemm_unprofiled(trans::yes, trans::no, jn, D, ni, A(1), dP, Bt, Qf, D, A(1), dKa + j0 * D, D);
        }
      }
      for (i64 i = 0; i < Tn; ++i) {
        T* dqr = dq + (b * Tn + i) * sh.ld_q + h * D;
#pragma omp simd
        for (int d = 0; d < D; ++d) dqr[d] = store<T>(dQa[i * D + d]);
      }
    }
    for (i64 j = 0; j < Tn; ++j) {
      T* dkr = dk + (b * Tn + j) * sh.ld_k + g * D;
      T* dvr = dv + (b * Tn + j) * sh.ld_v + g * D;
#pragma omp simd
      for (int d = 0; d < D; ++d) {
        dkr[d] = store<T>(dKa[j * D + d]);
        dvr[d] = store<T>(dVa[j * D + d]);
      }
    }
  }
}

}  // namespace tessera::ops
