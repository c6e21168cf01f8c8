// tessera/ops/cuda/norm.hpp — LayerNorm and RMSNorm over rows of C on CUDA, forward and backward.
//
// One warp per row (4 rows a 128-thread block), warp-shuffle reductions, the per-row math of ops/math.hpp
// (rstd_of, layernorm_dx, rmsnorm_dx), fp32 statistics; the forward's two passes (mean, then Σ(x − mean)²)
// are the host's. Parameter gradients go through the deterministic column reduction of
// ops/cuda/common.hpp: per-block partial sums over fixed row chunks, then one ordered sum per column,
// added (+=) into dgamma / dbeta. They are computed before dx is written, so dx may alias dy.
// T is float or tessera::bf16 (rounded exactly as the host rounds it).
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/norm.hpp needs a CUDA compiler (nvcc); the host operators are tessera/ops/host/norm.hpp"
#endif
#include <cstdint>

#include "tessera/core/cuda_system.hpp"
#include "tessera/ops/cuda/common.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops {

namespace cuda_detail {

inline constexpr int norm_warps = 4;  ///< rows (warps) per block

inline unsigned norm_grid(i64 N) {
  const i64 blocks = ceil_div(N, norm_warps);
  if (blocks > 0x7fffffff) throw usage_error(cat("norm: N = ", N, " rows is too many for one launch"));
  return static_cast<unsigned>(blocks);
}

template <class T>
__global__ void __launch_bounds__(32 * norm_warps)
    layernorm_fwd_kernel(const T* __restrict__ x, const T* __restrict__ gamma, const T* __restrict__ beta, i64 N,
                         i64 C, float eps, T* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd) {
  const i64 n = static_cast<i64>(blockIdx.x) * norm_warps + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (n >= N) return;  // whole warps leave together
  const T* xr = x + n * C;
  float s = 0.0f;
  for (i64 c = lane; c < C; c += 32) s += load(xr[c]);
  const float mu = warp_sum(s) / static_cast<float>(C);
  float v = 0.0f;
  for (i64 c = lane; c < C; c += 32) {
    const float d = load(xr[c]) - mu;
    v += d * d;
  }
  const float rs = math::rstd_of(warp_sum(v) / static_cast<float>(C), eps);
  T* yr = y + n * C;
  for (i64 c = lane; c < C; c += 32) {
    const float t = (load(xr[c]) - mu) * rs * load(gamma[c]);
    yr[c] = store<T>(beta ? t + load(beta[c]) : t);
  }
  if (lane == 0) {
    mean[n] = mu;
    rstd[n] = rs;
  }
}

template <class T>
__global__ void __launch_bounds__(32 * norm_warps)
    layernorm_dx_kernel(const T* dy, const T* __restrict__ x, const T* __restrict__ gamma,
                        const float* __restrict__ mean, const float* __restrict__ rstd, i64 N, i64 C, T* dx,
                        bool accumulate) {
  const i64 n = static_cast<i64>(blockIdx.x) * norm_warps + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (n >= N) return;
  const T* dyr = dy + n * C;
  const T* xr = x + n * C;
  const float mu = mean[n], rs = rstd[n];
  float s_gdy = 0.0f, s_gdy_xhat = 0.0f;
  for (i64 c = lane; c < C; c += 32) {
    const float gdy = load(gamma[c]) * load(dyr[c]);
    s_gdy += gdy;
    s_gdy_xhat += gdy * ((load(xr[c]) - mu) * rs);
  }
  const float m1 = warp_sum(s_gdy) / static_cast<float>(C), m2 = warp_sum(s_gdy_xhat) / static_cast<float>(C);
  T* dxr = dx + n * C;  // may alias dy: each lane reads element c before it writes it
  for (i64 c = lane; c < C; c += 32) {
    const float xhat = (load(xr[c]) - mu) * rs;
    const float g = math::layernorm_dx(load(gamma[c]) * load(dyr[c]), xhat, rs, m1, m2);
    dxr[c] = store<T>(accumulate ? load(dxr[c]) + g : g);
  }
}

template <class T>
__global__ void __launch_bounds__(32 * norm_warps)
    rmsnorm_fwd_kernel(const T* __restrict__ x, const T* __restrict__ gamma, i64 N, i64 C, float eps,
                       T* __restrict__ y, float* __restrict__ rstd) {
  const i64 n = static_cast<i64>(blockIdx.x) * norm_warps + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (n >= N) return;
  const T* xr = x + n * C;
  float s = 0.0f;
  for (i64 c = lane; c < C; c += 32) s += load(xr[c]) * load(xr[c]);
  const float rs = math::rstd_of(warp_sum(s) / static_cast<float>(C), eps);
  T* yr = y + n * C;
  for (i64 c = lane; c < C; c += 32) yr[c] = store<T>(load(xr[c]) * rs * load(gamma[c]));
  if (lane == 0) rstd[n] = rs;
}

template <class T>
__global__ void __launch_bounds__(32 * norm_warps)
    rmsnorm_dx_kernel(const T* dy, const T* __restrict__ x, const T* __restrict__ gamma,
                      const float* __restrict__ rstd, i64 N, i64 C, T* dx, bool accumulate) {
  const i64 n = static_cast<i64>(blockIdx.x) * norm_warps + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (n >= N) return;
  const T* dyr = dy + n * C;
  const T* xr = x + n * C;
  const float rs = rstd[n];
  float s = 0.0f;
  for (i64 c = lane; c < C; c += 32) s += load(gamma[c]) * load(dyr[c]) * (load(xr[c]) * rs);
  const float m2 = warp_sum(s) / static_cast<float>(C);
  T* dxr = dx + n * C;
  for (i64 c = lane; c < C; c += 32) {
    const float g = math::rmsnorm_dx(load(gamma[c]) * load(dyr[c]), load(xr[c]) * rs, rs, m2);
    dxr[c] = store<T>(accumulate ? load(dxr[c]) + g : g);
  }
}

/// Column terms of the LayerNorm parameter gradients: dgamma += dy·xhat, dbeta += dy.
template <class T> struct layernorm_param_terms {
  static constexpr int outputs = 2;
  const T* dy; const T* x; const float* mean; const float* rstd; i64 C;
  __device__ void operator()(i64 n, i64 c, float* acc) const {
    const float d = load(dy[n * C + c]);
    acc[0] += d * ((load(x[n * C + c]) - mean[n]) * rstd[n]);
    acc[1] += d;
  }
};
/// Column term of the RMSNorm parameter gradient: dgamma += dy·xhat.
template <class T> struct rmsnorm_param_terms {
  static constexpr int outputs = 1;
  const T* dy; const T* x; const float* rstd; i64 C;
  __device__ void operator()(i64 n, i64 c, float* acc) const {
    acc[0] += load(dy[n * C + c]) * (load(x[n * C + c]) * rstd[n]);
  }
};

}  // namespace cuda_detail

/// y = (x − mean)·rstd·gamma + beta over rows of C; beta may be null. Saves mean[N], rstd[N] (device).
template <class T>
void layernorm_forward(cuda_system sys, const T* x, const T* gamma, const T* beta, i64 N, i64 C, float eps, T* y,
                       acc_t<T>* mean, acc_t<T>* rstd) {
  const trace::device_span traced_("layernorm fwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "layernorm (CUDA): fp32 or bf16");
  if (N <= 0) return;
  cuda_detail::launch(sys, "layernorm_fwd_kernel", cuda_detail::layernorm_fwd_kernel<T>, cuda_detail::norm_grid(N), 32 * cuda_detail::norm_warps,
                      x, gamma, beta, N, C, eps, y, mean, rstd);
}

/// dx (= or, with accumulate_dx, +=), dgamma += Σ dy·xhat, dbeta += Σ dy (dgamma, dbeta may be null;
/// grad_t<T> = acc_t<T>). dx may alias dy.
template <class T>
void layernorm_backward(cuda_system sys, const T* dy, const T* x, const T* gamma, const acc_t<T>* mean,
                        const acc_t<T>* rstd, i64 N, i64 C, T* dx, acc_t<T>* dgamma, acc_t<T>* dbeta,
                        bool accumulate_dx = false) {
  const trace::device_span traced_("layernorm bwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "layernorm (CUDA): fp32 or bf16");
  if (N <= 0) return;
  cuda_detail::column_reduce(sys, cuda_detail::layernorm_param_terms<T>{dy, x, mean, rstd, C}, N, C, dgamma, dbeta);
  cuda_detail::launch(sys, "layernorm_dx_kernel", cuda_detail::layernorm_dx_kernel<T>, cuda_detail::norm_grid(N), 32 * cuda_detail::norm_warps,
                      dy, x, gamma, mean, rstd, N, C, dx, accumulate_dx);
}

/// y = x·rstd·gamma with rstd = 1/sqrt(mean(x²) + eps). Saves rstd[N] (device).
template <class T>
void rmsnorm_forward(cuda_system sys, const T* x, const T* gamma, i64 N, i64 C, float eps, T* y, acc_t<T>* rstd) {
  const trace::device_span traced_("rmsnorm fwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "rmsnorm (CUDA): fp32 or bf16");
  if (N <= 0) return;
  cuda_detail::launch(sys, "rmsnorm_fwd_kernel", cuda_detail::rmsnorm_fwd_kernel<T>, cuda_detail::norm_grid(N), 32 * cuda_detail::norm_warps,
                      x, gamma, N, C, eps, y, rstd);
}

/// dx (= or +=) and dgamma += Σ dy·xhat (dgamma may be null). dx may alias dy.
template <class T>
void rmsnorm_backward(cuda_system sys, const T* dy, const T* x, const T* gamma, const acc_t<T>* rstd, i64 N, i64 C,
                      T* dx, acc_t<T>* dgamma, bool accumulate_dx = false) {
  const trace::device_span traced_("rmsnorm bwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "rmsnorm (CUDA): fp32 or bf16");
  if (N <= 0) return;
  cuda_detail::column_reduce(sys, cuda_detail::rmsnorm_param_terms<T>{dy, x, rstd, C}, N, C, dgamma);
  cuda_detail::launch(sys, "rmsnorm_dx_kernel", cuda_detail::rmsnorm_dx_kernel<T>, cuda_detail::norm_grid(N), 32 * cuda_detail::norm_warps,
                      dy, x, gamma, rstd, N, C, dx, accumulate_dx);
}

}  // namespace tessera::ops
