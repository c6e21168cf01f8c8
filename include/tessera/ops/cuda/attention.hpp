// tessera/ops/cuda/attention.hpp — fused causal grouped-query flash attention on CUDA, forward and
// backward. bf16 runs on cuDNN's fused flash attention (tensor cores) where cuDNN has an engine for the
// shape (ops/cuda/cudnn_attention.hpp); fp32, and shapes cuDNN refuses, run the kernels below
// (FlashAttention-2 style, fp32 arithmetic on CUDA cores). Which ran is recorded for the log.
//
// Layout and semantics are the host's (ops/host/attention.hpp, shape in ops/attention_shape.hpp): token row
// n = b·T + t, query head h at q[n·ld_q + h·D …], kv head g = h / (Hq/Hkv) at k[n·ld_k + g·D …], lse saved
// as lse[(b·Hq + h)·T + t]. No T×T matrix exists anywhere: scores live in registers, one tile at a time.
//
// Thread layout. A group of G = attention_group(D) consecutive lanes owns one row (query or key); lane gl
// of the group holds the float4 chunks gl, gl + G, gl + 2G, … of the head (D/G values), so a group reads a
// shared-memory row as G consecutive float4s — conflict-free, and broadcast to every group of the warp. A
// dot product is D/G FMAs per lane and a log2(G)-step shuffle reduction inside the group.
//
//   forward   block = Br query rows of one (b, h), two rows per group; K and V stream through shared
//             memory in tiles of Bc keys (converted to fp32 once); an online softmax (math::rescale) is
//             applied every 16 keys; o = acc / l and lse = m + log l at the end.
//   backward  D_i = rowsum(dO ∘ O) first (one warp per row and head), then two kernels, each recomputing
//             P = exp(S·scale − lse) from the saved lse (FlashAttention-2):
//             dK/dV: block = Bc keys of one (b, g), one key per group; loops over the query heads of the
//                    group and over query tiles (Q, dO, lse, D staged in shared memory), accumulating
//                    dV += P·dO and dK += dS·Q in registers — the GQA sum over heads needs no atomics;
//             dQ:    block = Br query rows, like the forward, streaming K and V: dQ += dS·K.
//             Neither kernel uses atomics, so the backward is deterministic.
//
// Kernel templates take only types and integers: <T, D, Br, Bc>. The host entry points take the same
// arguments as the host versions; Br and Bc default to attention_tiles<D>.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/attention.hpp needs a CUDA compiler (nvcc); the host operator is tessera/ops/host/attention.hpp"
#endif
#include <cmath>
#include <cstdint>
#include <limits>

#include "tessera/core/cuda_system.hpp"
#include "tessera/core/error.hpp"
#include "tessera/ops/attention_shape.hpp"
#include "tessera/ops/cuda/common.hpp"
#include "tessera/ops/cuda/cudnn_attention.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops {

namespace cuda_detail {

/// Lanes per row: the largest power of two G ≤ 8 with D % (4G) == 0 and D/G ≥ 16 (1 if none).
constexpr int attention_group(int D) {
  int g = 8;
  while (g > 1 && !(D % (4 * g) == 0 && D / g >= 16)) g /= 2;
  return g;
}
/// Query rows a thread group owns in the forward and dQ kernels.
inline constexpr int attention_rows_per_group = 2;
/// Keys per online-softmax step of the forward.
inline constexpr int attention_key_step = 16;
/// Query rows staged in shared memory per step of the dK/dV kernel (≤ 32 KiB of fp32 Q and dO).
constexpr int attention_query_tile(int D, int Br) { return Br < 4096 / D ? Br : 4096 / D; }

template <int D, int Br> constexpr int attention_fwd_threads() {
  return Br * attention_group(D) / attention_rows_per_group;
}
template <int D, int Bc> constexpr int attention_dkdv_threads() { return Bc * attention_group(D); }

template <int D, int Br, int Bc> constexpr void attention_static_checks() {
  constexpr int G = attention_group(D);
  static_assert(D >= 4 && D % 4 == 0, "attention (CUDA): head size must be a multiple of 4");
  static_assert(D % (4 * G) == 0, "attention (CUDA): head size not divisible into float4 chunks");
  static_assert(Br % attention_rows_per_group == 0 && Bc % attention_key_step == 0,
                "attention (CUDA): Br must be even and Bc a multiple of 16");
  static_assert(attention_fwd_threads<D, Br>() % 32 == 0 && attention_fwd_threads<D, Br>() <= 1024,
                "attention (CUDA): Br·G/2 must be a multiple of 32 threads, at most 1024");
  static_assert(attention_dkdv_threads<D, Bc>() % 32 == 0 && attention_dkdv_threads<D, Bc>() <= 1024,
                "attention (CUDA): Bc·G must be a multiple of 32 threads, at most 1024");
  static_assert(2 * Bc * D * sizeof(float) <= 48 * 1024, "attention (CUDA): K/V tile over 48 KiB of shared memory");
}

/// Loads D/G values of a row (this lane's chunks) as fp32, times `mul`; zeros when !ok.
template <int D, int G, class T>
__device__ __forceinline__ void load_row_chunks(float* dst, const T* row, int gl, bool ok, float mul) {
  constexpr int NC = D / (4 * G);
#pragma unroll
  for (int c = 0; c < NC; ++c)
#pragma unroll
    for (int e = 0; e < 4; ++e) dst[4 * c + e] = ok ? load(row[4 * (gl + G * c) + e]) * mul : 0.0f;
}
template <int D, int G, class T>
__device__ __forceinline__ void store_row_chunks(T* row, const float* src, int gl, float mul) {
  constexpr int NC = D / (4 * G);
#pragma unroll
  for (int c = 0; c < NC; ++c)
#pragma unroll
    for (int e = 0; e < 4; ++e) row[4 * (gl + G * c) + e] = store<T>(src[4 * c + e] * mul);
}
__device__ __forceinline__ float dot4(const float* a, float4 b, float acc) {
  acc = fmaf(a[0], b.x, acc);
  acc = fmaf(a[1], b.y, acc);
  acc = fmaf(a[2], b.z, acc);
  return fmaf(a[3], b.w, acc);
}
__device__ __forceinline__ void axpy4(float* y, float a, float4 x) {
  y[0] = fmaf(a, x.x, y[0]);
  y[1] = fmaf(a, x.y, y[1]);
  y[2] = fmaf(a, x.z, y[2]);
  y[3] = fmaf(a, x.w, y[3]);
}

/// Stages rows [r0, r0 + ROWS) of a head (rows ld apart) into shared memory as fp32; rows ≥ rend are 0.
template <int D, int ROWS, int NT, class T>
__device__ __forceinline__ void stage_rows(float* dst, const T* base, i64 ld, i64 r0, i64 rend, int tid) {
  for (int idx = tid; idx < ROWS * D; idx += NT) {
    const int rr = idx / D, d = idx - rr * D;
    const i64 r = r0 + rr;
    dst[idx] = r < rend ? load(base[r * ld + d]) : 0.0f;
  }
}

// ---- forward ------------------------------------------------------------------------------------------
template <class T, int D, int Br, int Bc>
__global__ void __launch_bounds__(attention_fwd_threads<D, Br>())
    attention_fwd_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                         T* __restrict__ o, float* __restrict__ lse, i64 Tn, int Hq, int rep, i64 ld_q, i64 ld_k,
                         i64 ld_v, i64 ld_o, float scale) {
  constexpr int G = attention_group(D), NC = D / (4 * G), DPT = 4 * NC;
  constexpr int R = attention_rows_per_group, NT = attention_fwd_threads<D, Br>(), RS = Br / R;
  constexpr int KS = attention_key_step;
  __shared__ __align__(16) float ks[Bc * D];
  __shared__ __align__(16) float vs[Bc * D];

  const int tid = static_cast<int>(threadIdx.x), grp = tid / G, gl = tid % G;
  const i64 i0 = static_cast<i64>(gridDim.x - 1 - blockIdx.x) * Br;  // the longest (last) query tiles first
  const int bh = static_cast<int>(blockIdx.y), b = bh / Hq, h = bh % Hq, g = h / rep;
  const T* qb = q + b * Tn * ld_q + static_cast<i64>(h) * D;
  const T* kb = k + b * Tn * ld_k + static_cast<i64>(g) * D;
  const T* vb = v + b * Tn * ld_v + static_cast<i64>(g) * D;

  float qr[R][DPT], acc[R][DPT], m[R], l[R];
  i64 row[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    row[r] = i0 + grp + r * RS;
    const bool ok = row[r] < Tn;
    load_row_chunks<D, G>(qr[r], qb + (ok ? row[r] : 0) * ld_q, gl, ok, scale);
#pragma unroll
    for (int x = 0; x < DPT; ++x) acc[r][x] = 0.0f;
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }

  const i64 kend = std::min<i64>(Tn, i0 + Br);  // causal: no row of this tile sees a later key
  for (i64 j0 = 0; j0 < kend; j0 += Bc) {
    __syncthreads();  // the previous tile is consumed
    stage_rows<D, Bc, NT>(ks, kb, ld_k, j0, kend, tid);
    stage_rows<D, Bc, NT>(vs, vb, ld_v, j0, kend, tid);
    __syncthreads();
    const int nk = static_cast<int>(std::min<i64>(Bc, kend - j0));
    for (int kc = 0; kc < nk; kc += KS) {
      float s[R][KS];
#pragma unroll
      for (int jj = 0; jj < KS; ++jj) {
        const float4* kr = reinterpret_cast<const float4*>(ks + (kc + jj) * D);
        float dot[R];
#pragma unroll
        for (int r = 0; r < R; ++r) dot[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < NC; ++c) {
          const float4 kv = kr[gl + G * c];
#pragma unroll
          for (int r = 0; r < R; ++r) dot[r] = dot4(qr[r] + 4 * c, kv, dot[r]);
        }
        const i64 j = j0 + kc + jj;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const float sd = group_sum<G>(dot[r]);
          s[r][jj] = j > row[r] ? -INFINITY : sd;  // also masks the zero rows past kend
        }
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float bm = s[r][0];
#pragma unroll
        for (int jj = 1; jj < KS; ++jj) bm = fmaxf(bm, s[r][jj]);
        const float nm = fmaxf(m[r], bm);
        const float corr = math::rescale(m[r], nm);
        const float base = nm == -INFINITY ? 0.0f : nm;
        l[r] *= corr;
#pragma unroll
        for (int x = 0; x < DPT; ++x) acc[r][x] *= corr;
#pragma unroll
        for (int jj = 0; jj < KS; ++jj) {
          s[r][jj] = expf(s[r][jj] - base);  // p; exp(−inf) = 0 for masked keys
          l[r] += s[r][jj];
        }
        m[r] = nm;
      }
#pragma unroll
      for (int jj = 0; jj < KS; ++jj) {
        const float4* vr = reinterpret_cast<const float4*>(vs + (kc + jj) * D);
#pragma unroll
        for (int c = 0; c < NC; ++c) {
          const float4 vv = vr[gl + G * c];
#pragma unroll
          for (int r = 0; r < R; ++r) axpy4(acc[r] + 4 * c, s[r][jj], vv);
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (row[r] >= Tn) continue;
    store_row_chunks<D, G>(o + (b * Tn + row[r]) * ld_o + static_cast<i64>(h) * D, acc[r], gl, 1.0f / l[r]);
    if (gl == 0) lse[(static_cast<i64>(b) * Hq + h) * Tn + row[r]] = m[r] + logf(l[r]);
  }
}

// ---- backward: D_i = rowsum(dO ∘ O) ------------------------------------------------------------------
template <class T, int D>
__global__ void __launch_bounds__(256)
    attention_row_dot_kernel(const T* __restrict__ dout, const T* __restrict__ o, i64 rows, i64 Tn, int Hq,
                             i64 ld_o, float* __restrict__ Dv) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const i64 total = rows * Hq;
  for (i64 w = (blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x) / 32; w < total;
       w += static_cast<i64>(gridDim.x) * blockDim.x / 32) {
    const i64 n = w / Hq;
    const int h = static_cast<int>(w - n * Hq);
    const T* dr = dout + n * ld_o + static_cast<i64>(h) * D;
    const T* orow = o + n * ld_o + static_cast<i64>(h) * D;
    float s = 0.0f;
    for (int d = lane; d < D; d += 32) s += load(dr[d]) * load(orow[d]);
    s = warp_sum(s);
    const i64 b = n / Tn, t = n - b * Tn;
    if (lane == 0) Dv[(b * Hq + h) * Tn + t] = s;
  }
}

// ---- backward: dK, dV (key-stationary) ---------------------------------------------------------------
template <class T, int D, int Br, int Bc>
__global__ void __launch_bounds__(attention_dkdv_threads<D, Bc>())
    attention_bwd_dkdv_kernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                              const T* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ Dv,
                              i64 Tn, int Hq, int Hkv, int rep, i64 ld_q, i64 ld_k, i64 ld_v, i64 ld_o, float scale,
                              T* __restrict__ dk, T* __restrict__ dv) {
  constexpr int G = attention_group(D), NC = D / (4 * G), DPT = 4 * NC;
  constexpr int NT = attention_dkdv_threads<D, Bc>(), QT = attention_query_tile(D, Br);
  __shared__ __align__(16) float qs[QT * D];
  __shared__ __align__(16) float dos[QT * D];
  __shared__ float ls[QT], ds_row[QT];

  const int tid = static_cast<int>(threadIdx.x), grp = tid / G, gl = tid % G;
  const i64 j0 = static_cast<i64>(blockIdx.x) * Bc;  // the earliest keys (most queries) first
  const int bg = static_cast<int>(blockIdx.y), b = bg / Hkv, g = bg % Hkv;
  const i64 j = j0 + grp;
  const bool ok = j < Tn;
  float kr[DPT], vr[DPT], dka[DPT], dva[DPT];
  load_row_chunks<D, G>(kr, k + (b * Tn + (ok ? j : 0)) * ld_k + static_cast<i64>(g) * D, gl, ok, 1.0f);
  load_row_chunks<D, G>(vr, v + (b * Tn + (ok ? j : 0)) * ld_v + static_cast<i64>(g) * D, gl, ok, 1.0f);
#pragma unroll
  for (int x = 0; x < DPT; ++x) dka[x] = dva[x] = 0.0f;

  for (int hh = 0; hh < rep; ++hh) {
    const int h = g * rep + hh;
    const T* qb = q + b * Tn * ld_q + static_cast<i64>(h) * D;
    const T* db = dout + b * Tn * ld_o + static_cast<i64>(h) * D;
    const float* lb = lse + (static_cast<i64>(b) * Hq + h) * Tn;
    const float* Db = Dv + (static_cast<i64>(b) * Hq + h) * Tn;
    for (i64 q0 = (j0 / QT) * QT; q0 < Tn; q0 += QT) {  // causal: queries i ≥ j0 only
      __syncthreads();
      stage_rows<D, QT, NT>(qs, qb, ld_q, q0, Tn, tid);
      stage_rows<D, QT, NT>(dos, db, ld_o, q0, Tn, tid);
      for (int idx = tid; idx < QT; idx += NT) {
        const i64 i = q0 + idx;
        ls[idx] = i < Tn ? lb[i] : 0.0f;
        ds_row[idx] = i < Tn ? Db[i] : 0.0f;
      }
      __syncthreads();
      const int nq = static_cast<int>(std::min<i64>(QT, Tn - q0));
      for (int ii = 0; ii < nq; ++ii) {
        const float4* qrow = reinterpret_cast<const float4*>(qs + ii * D);
        const float4* drow = reinterpret_cast<const float4*>(dos + ii * D);
        float4 qv[NC], dov[NC];
        float s = 0.0f, dp = 0.0f;
#pragma unroll
        for (int c = 0; c < NC; ++c) {
          qv[c] = qrow[gl + G * c];
          dov[c] = drow[gl + G * c];
          s = dot4(kr + 4 * c, qv[c], s);
          dp = dot4(vr + 4 * c, dov[c], dp);
        }
        s = group_sum<G>(s);
        dp = group_sum<G>(dp);
        const float p = q0 + ii >= j ? expf(s * scale - ls[ii]) : 0.0f;
        const float dsc = math::attention_dscore(p, dp, ds_row[ii]) * scale;
#pragma unroll
        for (int c = 0; c < NC; ++c) {
          axpy4(dva + 4 * c, p, dov[c]);
          axpy4(dka + 4 * c, dsc, qv[c]);
        }
      }
    }
  }
  if (ok) {
    store_row_chunks<D, G>(dk + (b * Tn + j) * ld_k + static_cast<i64>(g) * D, dka, gl, 1.0f);
    store_row_chunks<D, G>(dv + (b * Tn + j) * ld_v + static_cast<i64>(g) * D, dva, gl, 1.0f);
  }
}

// ---- backward: dQ (query-stationary) ------------------------------------------------------------------
template <class T, int D, int Br, int Bc>
__global__ void __launch_bounds__(attention_fwd_threads<D, Br>())
    attention_bwd_dq_kernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                            const T* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ Dv,
                            i64 Tn, int Hq, int rep, i64 ld_q, i64 ld_k, i64 ld_v, i64 ld_o, float scale,
                            T* __restrict__ dq) {
  constexpr int G = attention_group(D), NC = D / (4 * G), DPT = 4 * NC;
  constexpr int R = attention_rows_per_group, NT = attention_fwd_threads<D, Br>(), RS = Br / R;
  __shared__ __align__(16) float ks[Bc * D];
  __shared__ __align__(16) float vs[Bc * D];

  const int tid = static_cast<int>(threadIdx.x), grp = tid / G, gl = tid % G;
  const i64 i0 = static_cast<i64>(gridDim.x - 1 - blockIdx.x) * Br;
  const int bh = static_cast<int>(blockIdx.y), b = bh / Hq, h = bh % Hq, g = h / rep;
  const T* kb = k + b * Tn * ld_k + static_cast<i64>(g) * D;
  const T* vb = v + b * Tn * ld_v + static_cast<i64>(g) * D;
  const float* lb = lse + (static_cast<i64>(b) * Hq + h) * Tn;
  const float* Db = Dv + (static_cast<i64>(b) * Hq + h) * Tn;

  float qr[R][DPT], dor[R][DPT], dqa[R][DPT], li[R], di[R];
  i64 row[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    row[r] = i0 + grp + r * RS;
    const bool ok = row[r] < Tn;
    const i64 n = b * Tn + (ok ? row[r] : 0);
    load_row_chunks<D, G>(qr[r], q + n * ld_q + static_cast<i64>(h) * D, gl, ok, 1.0f);
    load_row_chunks<D, G>(dor[r], dout + n * ld_o + static_cast<i64>(h) * D, gl, ok, 1.0f);
#pragma unroll
    for (int x = 0; x < DPT; ++x) dqa[r][x] = 0.0f;
    li[r] = ok ? lb[row[r]] : 0.0f;
    di[r] = ok ? Db[row[r]] : 0.0f;
  }

  const i64 kend = std::min<i64>(Tn, i0 + Br);
  for (i64 j0 = 0; j0 < kend; j0 += Bc) {
    __syncthreads();
    stage_rows<D, Bc, NT>(ks, kb, ld_k, j0, kend, tid);
    stage_rows<D, Bc, NT>(vs, vb, ld_v, j0, kend, tid);
    __syncthreads();
    const int nk = static_cast<int>(std::min<i64>(Bc, kend - j0));
    for (int jj = 0; jj < nk; ++jj) {
      const float4* krow = reinterpret_cast<const float4*>(ks + jj * D);
      const float4* vrow = reinterpret_cast<const float4*>(vs + jj * D);
      float4 kv[NC];
      float s[R], dp[R];
#pragma unroll
      for (int r = 0; r < R; ++r) s[r] = dp[r] = 0.0f;
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        kv[c] = krow[gl + G * c];
        const float4 vv = vrow[gl + G * c];
#pragma unroll
        for (int r = 0; r < R; ++r) {
          s[r] = dot4(qr[r] + 4 * c, kv[c], s[r]);
          dp[r] = dot4(dor[r] + 4 * c, vv, dp[r]);
        }
      }
      const i64 j = j0 + jj;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float sr = group_sum<G>(s[r]), dpr = group_sum<G>(dp[r]);
        const float p = j <= row[r] ? expf(sr * scale - li[r]) : 0.0f;
        const float dsc = math::attention_dscore(p, dpr, di[r]) * scale;
#pragma unroll
        for (int c = 0; c < NC; ++c) axpy4(dqa[r] + 4 * c, dsc, kv[c]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (row[r] < Tn)
      store_row_chunks<D, G>(dq + (b * Tn + row[r]) * ld_q + static_cast<i64>(h) * D, dqa[r], gl, 1.0f);
}

inline void check_attention_launch(const attention_shape& sh, i64 tiles) {
  if (sh.B * sh.Hq > 65535 || tiles > std::numeric_limits<int>::max() || sh.Hq > std::numeric_limits<int>::max())
    throw usage_error(cat("attention (CUDA): B·Hq = ", sh.B * sh.Hq, " (at most 65535) or T = ", sh.T,
                          " too large for one launch"));
}

}  // namespace cuda_detail

/// Default tile sizes of the CUDA attention kernels for head size D (query rows Br, key rows Bc).
/// (D ≤ 64: 128-thread forward blocks over 64 queries; D = 128: 128-thread blocks over 32 queries, which
/// keeps ~170 registers a thread at three blocks an SM.)
template <int D> struct attention_tiles {
  static constexpr int Br = D <= 64 ? 64 : 32;
  static constexpr int Bc = D <= 64 ? 64 : 32;
};

/// Which implementation attention runs: cuDNN's where it can (bf16, a shape cuDNN has an engine for, the
/// library loaded) and tessera's kernel elsewhere, or tessera's kernel always (tests, benchmarks).
enum class attention_engine { automatic, own_kernel };

/// o = softmax(q·kᵀ·scale + causal mask)·v per head; lse (device, fp32) saved for the backward.
template <int D, class T, int Br = attention_tiles<D>::Br, int Bc = attention_tiles<D>::Bc>
void attention_forward(cuda_system sys, const T* q, const T* k, const T* v, T* o, acc_t<T>* lse, attention_shape sh,
                       acc_t<T> scale, attention_engine engine = attention_engine::automatic) {
  const trace::device_span traced_("attention fwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "attention (CUDA): fp32 or bf16");
  cuda_detail::attention_static_checks<D, Br, Bc>();
  sh = attention_detail::packed(sh, D);
  attention_detail::check_attention(sh, D);
  if (sh.B == 0 || sh.T == 0 || sh.Hq == 0) return;
  if (engine == attention_engine::automatic && cuda_detail::cudnn_attention_forward(sys, sh, D, q, k, v, o, lse, scale))
    return;
  const i64 tiles = cuda_detail::ceil_div(sh.T, Br);
  cuda_detail::check_attention_launch(sh, tiles);
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(sh.B * sh.Hq));
  cuda_detail::launch(sys, "attention_fwd_kernel", cuda_detail::attention_fwd_kernel<T, D, Br, Bc>, grid,
                      cuda_detail::attention_fwd_threads<D, Br>(), q, k, v, o, lse, sh.T, static_cast<int>(sh.Hq),
                      static_cast<int>(sh.Hq / sh.Hkv), sh.ld_q, sh.ld_k, sh.ld_v, sh.ld_o, scale);
}

/// dq, dk, dv (written; strides as q, k, v) from dO (stride ld_o), recomputing the scores from lse.
/// Uses scratch slot 1 for D = rowsum(dO ∘ O) (B·Hq·T floats).
template <int D, class T, int Br = attention_tiles<D>::Br, int Bc = attention_tiles<D>::Bc>
void attention_backward(cuda_system sys, const T* dout, const T* q, const T* k, const T* v, const T* o,
                        const acc_t<T>* lse, attention_shape sh, acc_t<T> scale, T* dq, T* dk, T* dv,
                        attention_engine engine = attention_engine::automatic) {
  const trace::device_span traced_("attention bwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "attention (CUDA): fp32 or bf16");
  cuda_detail::attention_static_checks<D, Br, Bc>();
  sh = attention_detail::packed(sh, D);
  attention_detail::check_attention(sh, D);
  if (sh.B == 0 || sh.T == 0 || sh.Hq == 0) return;
  if (engine == attention_engine::automatic &&
      cuda_detail::cudnn_attention_backward(sys, sh, D, dout, q, k, v, o, lse, scale, dq, dk, dv))
    return;
  const i64 q_tiles = cuda_detail::ceil_div(sh.T, Br), k_tiles = cuda_detail::ceil_div(sh.T, Bc);
  cuda_detail::check_attention_launch(sh, std::max(q_tiles, k_tiles));
  const int Hq = static_cast<int>(sh.Hq), Hkv = static_cast<int>(sh.Hkv), rep = Hq / Hkv;

  float* Dv = cuda_detail::device_scratch<float>(sys, sh.B * sh.Hq * sh.T, 1);
  const i64 rows = sh.B * sh.T;
  cuda_detail::launch(sys, "attention_row_dot_kernel", cuda_detail::attention_row_dot_kernel<T, D>,
                      cuda_detail::grid_for(rows * sh.Hq * 32, 256), 256, dout, o, rows, sh.T, Hq, sh.ld_o, Dv);

  cuda_detail::launch(sys, "attention_bwd_dkdv_kernel", cuda_detail::attention_bwd_dkdv_kernel<T, D, Br, Bc>,
                      dim3(static_cast<unsigned>(k_tiles), static_cast<unsigned>(sh.B * sh.Hkv)),
                      cuda_detail::attention_dkdv_threads<D, Bc>(), dout, q, k, v, lse, Dv, sh.T, Hq, Hkv, rep,
                      sh.ld_q, sh.ld_k, sh.ld_v, sh.ld_o, scale, dk, dv);

  cuda_detail::launch(sys, "attention_bwd_dq_kernel", cuda_detail::attention_bwd_dq_kernel<T, D, Br, Bc>,
                      dim3(static_cast<unsigned>(q_tiles), static_cast<unsigned>(sh.B * sh.Hq)),
                      cuda_detail::attention_fwd_threads<D, Br>(), dout, q, k, v, lse, Dv, sh.T, Hq, rep, sh.ld_q,
                      sh.ld_k, sh.ld_v, sh.ld_o, scale, dq);
}

}  // namespace tessera::ops
