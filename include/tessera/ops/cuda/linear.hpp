// tessera/ops/cuda/linear.hpp — y = x·Wᵀ + b on CUDA, through cuBLASLt (no hand-written GEMM).
//
// Shapes follow PyTorch's nn.Linear: x [N × in], W [out × in], b [out], y [N × out] (device pointers).
// The bias rides cuBLASLt's BIAS epilogue (one pass over y); if cuBLASLt offers no algorithm with that
// epilogue (e.g. a misaligned bias), y is pre-filled with the bias (or has it added) by a small kernel and
// the GEMM accumulates onto it, exactly as the host does. bf16 storage multiplies bf16 inputs with fp32
// accumulation and rounds once into y. dW and db accumulate (+=) in fp32; db through the deterministic
// column reduction of ops/cuda/common.hpp. A linear layer feeding a GELU, and the input gradient through
// it, fuse the activation into cuBLASLt's epilogue (linear_gelu_forward, linear_dgelu_backward).
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/linear.hpp needs a CUDA compiler (nvcc); the host operator is tessera/ops/host/linear.hpp"
#endif
#include <cstdint>

#include "tessera/core/cuda_system.hpp"
#include "tessera/ops/cuda/blas.hpp"
#include "tessera/ops/cuda/common.hpp"
#include "tessera/ops/cuda/elementwise.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops {

namespace cuda_detail {
/// y[n, o] = b[o] (add = false) or y[n, o] += b[o] (add = true).
template <class T>
__global__ void bias_rows_kernel(T* __restrict__ y, const T* __restrict__ b, i64 N, i64 out, bool add) {
  const i64 total = N * out;
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 o = i % out;
    y[i] = add ? store<T>(load(y[i]) + load(b[o])) : b[o];
  }
}
/// Column term of the bias gradient: db += dy.
template <class T> struct bias_grad_terms {
  static constexpr int outputs = 1;
  const T* dy; i64 out;
  __device__ void operator()(i64 n, i64 c, float* acc) const { acc[0] += load(dy[n * out + c]); }
};
}  // namespace cuda_detail

/// y[N×out] = x[N×in] · W[out×in]ᵀ (+ b). With accumulate, y += instead of =.
template <class T>
void linear_forward(cuda_system sys, const T* x, const T* W, const T* b, i64 N, i64 in, i64 out, T* y,
                    bool accumulate = false) {
  const trace::device_span traced_("linear fwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "linear (CUDA): fp32 or bf16");
  if (N == 0 || out == 0) return;
  const float beta = accumulate ? 1.0f : 0.0f;
  if (b && in > 0 &&
      cuda_detail::lt_gemm<T, T>(sys, host::trans::no, host::trans::yes, N, out, in, 1.0f, x, in, W, in, beta, y, out,
                                 {.kind = cuda_detail::lt_epilogue::bias, .bias_ptr = b}))
    return;
  if (b) {
    cuda_detail::launch(sys, "bias_rows_kernel", cuda_detail::bias_rows_kernel<T>, cuda_detail::grid_for(N * out, 256), 256,
                        y, b, N, out, accumulate);
  }
  gemm(sys, host::trans::no, host::trans::yes, N, out, in, 1.0f, x, in, W, in, (b || accumulate) ? 1.0f : 0.0f, y,
       out);
}

/// dx = dy·W (written, or added with accumulate_dx; dx may be null), dW += dyᵀ·x, db += Σ_n dy (each
/// may be null; grad_t<T> = acc_t<T>).
template <class T>
void linear_backward(cuda_system sys, const T* dy, const T* x, const T* W, i64 N, i64 in, i64 out, T* dx,
                     acc_t<T>* dW, acc_t<T>* db, bool accumulate_dx = false) {
  const trace::device_span traced_("linear bwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "linear (CUDA): fp32 or bf16");
  if (dx)
    gemm(sys, host::trans::no, host::trans::no, N, in, out, 1.0f, dy, out, W, in, accumulate_dx ? 1.0f : 0.0f, dx,
         in);
  if (dW) gemm(sys, host::trans::yes, host::trans::no, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
  if (db) cuda_detail::column_reduce(sys, cuda_detail::bias_grad_terms<T>{dy, out}, N, out, db);
}

/// act = gelu(up) with up = x·Wᵀ + b (both [N×out], written; b may be null): one cuBLASLt GEMM whose
/// GELU_AUX_BIAS epilogue stores the activation and the pre-activation the backward needs. Composed from
/// linear_forward and gelu_forward when cuBLASLt has no algorithm for it (out not a multiple of 8, …).
/// The epilogue applies GELU to the fp32 sum before rounding, so bf16 activations may differ from the
/// composed form by one rounding.
template <class T>
void linear_gelu_forward(cuda_system sys, const T* x, const T* W, const T* b, i64 N, i64 in, i64 out, T* up, T* act) {
  const trace::device_span traced_("linear+gelu fwd (cuBLASLt epilogue)");
  static_assert(cuda_detail::is_device_storage_v<T>, "linear (CUDA): fp32 or bf16");
  if (N == 0 || out == 0) return;
  if (in > 0 && out % 8 == 0 &&
      cuda_detail::lt_gemm<T, T>(sys, host::trans::no, host::trans::yes, N, out, in, 1.0f, x, in, W, in, 0.0f, act, out,
                                 {.kind = cuda_detail::lt_epilogue::gelu, .bias_ptr = b, .aux = up, .aux_ld = out}))
    return;
  linear_forward(sys, x, W, b, N, in, out, up);
  gelu_forward(sys, up, N * out, act);
}

/// d_up = (dy·W) ⊙ gelu′(up): the input gradient of a linear layer [N×in] → [N×out] fed by a GELU whose
/// pre-activation was `up` [N×in] — one cuBLASLt GEMM with the DGELU epilogue (composed from linear_backward
/// and gelu_backward, in place, when cuBLASLt has no algorithm for it). dy [N×out], W [out×in].
template <class T>
void linear_dgelu_backward(cuda_system sys, const T* dy, const T* W, const T* up, i64 N, i64 in, i64 out, T* d_up) {
  const trace::device_span traced_("linear+dgelu bwd (cuBLASLt epilogue)");
  static_assert(cuda_detail::is_device_storage_v<T>, "linear (CUDA): fp32 or bf16");
  if (N == 0 || in == 0) return;
  if (out > 0 && in % 8 == 0 &&
      cuda_detail::lt_gemm<T, T>(sys, host::trans::no, host::trans::no, N, in, out, 1.0f, dy, out, W, in, 0.0f, d_up, in,
                                 {.kind = cuda_detail::lt_epilogue::dgelu, .aux = const_cast<T*>(up), .aux_ld = in}))
    return;
  linear_backward(sys, dy, static_cast<const T*>(nullptr), W, N, in, out, d_up, static_cast<acc_t<T>*>(nullptr),
                  static_cast<acc_t<T>*>(nullptr));
  gelu_backward(sys, d_up, up, N * in, d_up);
}

}  // namespace tessera::ops
