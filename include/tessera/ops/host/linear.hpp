// tessera/ops/host/linear.hpp — y = x·Wᵀ + b on the host, through OpenBLAS (no hand-written GEMM).
//
// Shapes follow PyTorch's nn.Linear: x [N × in], W [out × in], b [out], y [N × out]. bf16 storage uses
// cblas_sbgemm (bf16 inputs, fp32 accumulation) into an fp32 scratch that is rounded once; weight and
// bias gradients are accumulated (+=) in fp32 (double for the double reference).
#pragma once
#include <cstdint>
#include <type_traits>

#include "tessera/core/profile.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/ops/host/elementwise.hpp"

namespace tessera::ops {

/// y[N×out] = x[N×in] · W[out×in]ᵀ (+ b). With accumulate, y += instead of =.
template <class T>
void linear_forward(host_system, const T* x, const T* W, const T* b, i64 N, i64 in, i64 out, T* y,
                    bool accumulate = false) {
  const prof::scope prof_("linear fwd (bias, conversions)");
  using A = acc_t<T>;
  if constexpr (std::is_same_v<T, bf16>) {
    float* acc = host::scratch<float>(N * out);
    host::gemm(host::trans::no, host::trans::yes, N, out, in, 1.0f, x, in, W, in, 0.0f, acc, out);
#pragma omp parallel for schedule(static)
    for (i64 n = 0; n < N; ++n) {
      T* yr = y + n * out;
      const float* ar = acc + n * out;
#pragma omp simd
      for (i64 o = 0; o < out; ++o)
        yr[o] = store<T>(ar[o] + (b ? load(b[o]) : 0.0f) + (accumulate ? load(yr[o]) : 0.0f));
    }
  } else {
    if (b && !accumulate) {
#pragma omp parallel for schedule(static)
      for (i64 n = 0; n < N; ++n)
        for (i64 o = 0; o < out; ++o) y[n * out + o] = b[o];
    }
    host::gemm(host::trans::no, host::trans::yes, N, out, in, A(1), x, in, W, in,
               (b || accumulate) ? A(1) : A(0), y, out);
    if (b && accumulate) {
#pragma omp parallel for schedule(static)
      for (i64 n = 0; n < N; ++n)
        for (i64 o = 0; o < out; ++o) y[n * out + o] += b[o];
    }
  }
}

/// dx = dy·W (written, or added with accumulate_dx; dx may be null), dW += dyᵀ·x, db += Σ_n dy (each
/// may be null).
template <class T>
void linear_backward(host_system, const T* dy, const T* x, const T* W, i64 N, i64 in, i64 out, T* dx,
                     grad_t<T>* dW, grad_t<T>* db, bool accumulate_dx = false) {
  const prof::scope prof_("linear bwd (bias, conversions)");
  using A = acc_t<T>;
  if (dx) {
    if constexpr (std::is_same_v<T, bf16>) {
      float* acc = host::scratch<float>(N * in);
      host::gemm(host::trans::no, host::trans::no, N, in, out, 1.0f, dy, out, W, in, 0.0f, acc, in);
#pragma omp parallel for schedule(static)
      for (i64 i = 0; i < N * in; ++i) dx[i] = store<T>(acc[i] + (accumulate_dx ? load(dx[i]) : 0.0f));
    } else {
      host::gemm(host::trans::no, host::trans::no, N, in, out, A(1), dy, out, W, in,
                 accumulate_dx ? A(1) : A(0), dx, in);
    }
  }
  if (dW) host::gemm(host::trans::yes, host::trans::no, out, in, N, A(1), dy, out, x, in, A(1), dW, in);
  if (db) {
    const i64 chunk = 64;
    const i64 nchunks = (out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (i64 ch = 0; ch < nchunks; ++ch) {
      const i64 o0 = ch * chunk, o1 = std::min(out, o0 + chunk);
      for (i64 n = 0; n < N; ++n) {
        const T* r = dy + n * out;
#pragma omp simd
        for (i64 o = o0; o < o1; ++o) db[o] += load(r[o]);
      }
    }
  }
}

/// act = gelu(up), up = x·Wᵀ + b (both [N×out], written): a linear layer feeding a GELU. The host composes
/// it (CUDA fuses the GELU into cuBLASLt's epilogue).
template <class T>
void linear_gelu_forward(host_system sys, const T* x, const T* W, const T* b, i64 N, i64 in, i64 out, T* up, T* act) {
  linear_forward(sys, x, W, b, N, in, out, up);
  gelu_forward(sys, up, N * out, act);
}

/// d_up = (dy·W) ⊙ gelu′(up): the input gradient of a linear layer [N×in] → [N×out] whose input was a GELU
/// of `up` [N×in]. dy [N×out], W [out×in]. Composed on the host (CUDA: cuBLASLt's DGELU epilogue).
template <class T>
void linear_dgelu_backward(host_system sys, const T* dy, const T* W, const T* up, i64 N, i64 in, i64 out, T* d_up) {
  linear_backward(sys, dy, static_cast<const T*>(nullptr), W, N, in, out, d_up, static_cast<grad_t<T>*>(nullptr),
                  static_cast<grad_t<T>*>(nullptr));
  gelu_backward(sys, d_up, up, N * in, d_up);
}

}  // namespace tessera::ops
