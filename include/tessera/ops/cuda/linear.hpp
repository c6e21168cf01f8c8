// tessera/ops/cuda/linear.hpp — y = x·Wᵀ + b on CUDA, through cuBLASLt (no hand-written GEMM).
//
// Shapes follow PyTorch's nn.Linear: x [N × in], W [out × in], b [out], y [N × out] (device pointers).
// The bias rides cuBLASLt's BIAS epilogue (one pass over y); if cuBLASLt offers no algorithm with that
// epilogue (e.g. a misaligned bias), y is pre-filled with the bias (or has it added) by a small kernel and
// the GEMM accumulates onto it, exactly as the host does. bf16 storage multiplies bf16 inputs with fp32
// accumulation and rounds once into y. dW and db accumulate (+=) in fp32; db through the deterministic
// column reduction of ops/cuda/common.hpp.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/linear.hpp needs a CUDA compiler (nvcc); the host operator is tessera/ops/host/linear.hpp"
#endif
#include <cstdint>

#include "tessera/core/cuda_system.hpp"
#include "tessera/ops/cuda/blas.hpp"
#include "tessera/ops/cuda/common.hpp"
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
      cuda_detail::lt_gemm<T, T>(host::trans::no, host::trans::yes, N, out, in, 1.0f, x, in, W, in, beta, y, out, b))
    return;
  if (b) {
    cuda_detail::launch("bias_rows_kernel", cuda_detail::bias_rows_kernel<T>, cuda_detail::grid_for(N * out, 256), 256,
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
  if (db) cuda_detail::column_reduce(cuda_detail::bias_grad_terms<T>{dy, out}, N, out, db);
}

}  // namespace tessera::ops
