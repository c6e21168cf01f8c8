// tessera/ops/cuda/elementwise.hpp — CUDA entry points of the element-wise operators, embeddings, RoPE
// and the fused AdamW step: the host entry points of ops/host/elementwise.hpp with cuda_system first and
// device pointers, issued on sys.stream().
//
// The per-element bodies are the shared functors of ops/elementwise.hpp, run by
// sys.for_each_index (thrust::for_each on its stream), so the GPU does exactly the host's arithmetic. Two
// operators have their own kernels because their memory walk differs from the host's:
//   embedding_backward           positions sorted by token (CUB, stable), each token's rows added in position
//                                order: no atomics, deterministic, the host's bits.
//   position_embedding_backward  one thread per (position, column) summing over the batch in order:
//                                deterministic.
// Gradients (grad_t<T>) are acc_t<T>: fp32 for fp32 and bf16 models.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/elementwise.hpp needs a CUDA compiler (nvcc); the host operators are tessera/ops/host/elementwise.hpp"
#endif
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_reduce.cuh>
#include <thrust/functional.h>
#include <thrust/sequence.h>
#include <thrust/iterator/transform_iterator.h>

#include <cstdint>
#include <limits>

#include "tessera/core/cuda_system.hpp"
#include "tessera/ops/cuda/common.hpp"
#include "tessera/ops/elementwise.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops {

// ---- GELU ----------------------------------------------------------------------------------------------
template <class T> void gelu_forward(cuda_system sys, const T* x, i64 n, T* y) {
  const trace::device_span traced_("gelu fwd");
  sys.for_each_index(n, kernels::gelu_forward<T>{x, y});
}
template <class T> void gelu_backward(cuda_system sys, const T* dy, const T* x, i64 n, T* dx) {
  const trace::device_span traced_("gelu bwd");
  sys.for_each_index(n, kernels::gelu_backward<T>{dy, x, dx});
}

// ---- SwiGLU --------------------------------------------------------------------------------------------
template <class T>
void swiglu_forward(cuda_system sys, const T* gate, const T* up, i64 N, i64 F, i64 ld_in, T* out) {
  const trace::device_span traced_("swiglu fwd");
  sys.for_each_index(N * F, kernels::swiglu_forward<T>{gate, up, out, F, ld_in});
}
template <class T>
void swiglu_backward(cuda_system sys, const T* dout, const T* gate, const T* up, i64 N, i64 F, i64 ld_in, T* dgate,
                     T* dup) {
  const trace::device_span traced_("swiglu bwd");
  sys.for_each_index(N * F, kernels::swiglu_backward<T>{dout, gate, up, dgate, dup, F, ld_in});
}

// ---- residual add -------------------------------------------------------------------------------------
template <class T> void add(cuda_system sys, const T* a, const T* b, i64 n, T* out) {
  const trace::device_span traced_("residual add");
  sys.for_each_index(n, kernels::add<T>{a, b, out});
}

// ---- RoPE (Hugging Face rotate_half) -------------------------------------------------------------------
/// In place on x (device); `cos` and `sin` are device copies of a rope_table's [positions × D/2] tables.
template <class T>
void rope_forward(cuda_system sys, T* x, i64 rows, i64 T_len, i64 H, i64 D, i64 ld, i64 pos0, const acc_t<T>* cos,
                  const acc_t<T>* sin) {
  const trace::device_span traced_("rope fwd");
  sys.for_each_index(rows * H * (D / 2), kernels::rope<T, false>{x, cos, sin, T_len, H, D / 2, ld, pos0});
}
template <class T>
void rope_backward(cuda_system sys, T* dx, i64 rows, i64 T_len, i64 H, i64 D, i64 ld, i64 pos0, const acc_t<T>* cos,
                   const acc_t<T>* sin) {
  const trace::device_span traced_("rope bwd");
  sys.for_each_index(rows * H * (D / 2), kernels::rope<T, true>{dx, cos, sin, T_len, H, D / 2, ld, pos0});
}

// ---- embeddings ----------------------------------------------------------------------------------------
namespace cuda_detail {
/// One thread per (position p of the tokens sorted stably, column c); the thread at the start of each
/// token's run adds the run's rows into dwte in the order of the original positions — the host's order.
template <class T>
__global__ void embedding_backward_kernel(const std::int32_t* __restrict__ sorted_tokens,
                                          const std::int32_t* __restrict__ positions, i64 N, const T* __restrict__ dout,
                                          i64 V_local, i64 v0, i64 C, float* __restrict__ dwte) {
  const i64 total = N * C;
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 p = i / C, c = i - p * C;
    const std::int32_t token = sorted_tokens[p];
    if (p > 0 && sorted_tokens[p - 1] == token) continue;  // not the first of its run
    const i64 r = static_cast<i64>(token) - v0;
    if (r < 0 || r >= V_local) continue;
    float acc = dwte[r * C + c];
    for (i64 q = p; q < N && sorted_tokens[q] == token; ++q) acc += load(dout[static_cast<i64>(positions[q]) * C + c]);
    dwte[r * C + c] = acc;
  }
}
template <class T>
__global__ void position_embedding_backward_kernel(const T* __restrict__ dx, i64 B, i64 T_len, i64 C, i64 pos0,
                                                   float* __restrict__ dwpe) {
  const i64 total = T_len * C;
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 t = i / C, c = i - t * C;
    float s = 0.0f;
    for (i64 b = 0; b < B; ++b) s += load(dx[(b * T_len + t) * C + c]);
    dwpe[(t + pos0) * C + c] += s;
  }
}
}  // namespace cuda_detail

/// out[n] = wte[tokens[n] − v0] when the token is one of this rank's V_local rows, else 0.
template <class T>
void embedding_forward(cuda_system sys, const std::int32_t* tokens, i64 N, const T* wte, i64 V_local, i64 v0, i64 C,
                       T* out) {
  const trace::device_span traced_("embedding fwd");
  sys.for_each_index(N * C, kernels::embedding_forward<T>{tokens, wte, out, C, v0, V_local});
}
/// dwte[tokens[n] − v0] += dout[n] for this rank's rows, deterministically and in the host's order: the
/// positions are sorted by token (CUB's radix sort, which is stable, in the operator's scratch: no
/// allocation), then each token's rows are added in position order — no atomics, so the result is the
/// host operator's, bit for bit in fp32. dwte is grad_t<T> (fp32).
template <class T>
void embedding_backward(cuda_system sys, const std::int32_t* tokens, i64 N, const T* dout, i64 V_local, i64 v0, i64 C,
                        acc_t<T>* dwte) {
  const trace::device_span traced_("embedding bwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "embedding_backward (CUDA): fp32 or bf16");
  if (N * C <= 0) return;
  check(N <= std::numeric_limits<int>::max(), "embedding_backward (CUDA): ", N, " tokens exceed CUB's int count");
  const int n = static_cast<int>(N);
  auto* sorted = cuda_detail::device_scratch<std::int32_t>(sys, N, 0);
  auto* order = cuda_detail::device_scratch<std::int32_t>(sys, N, 1);
  auto* positions = cuda_detail::device_scratch<std::int32_t>(sys, N, 2);
  const cudaStream_t s = sys.stream();
  thrust::sequence(thrust::cuda::par.on(s), order, order + n);
  std::size_t temp_bytes = 0;
  cuda_check(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, tokens, sorted, order, positions, n, 0, 32, s),
             "cub::DeviceRadixSort::SortPairs (size)");
  void* temp = cuda_detail::device_scratch<unsigned char>(sys, static_cast<i64>(temp_bytes), 3);
  cuda_check(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, tokens, sorted, order, positions, n, 0, 32, s),
             "cub::DeviceRadixSort::SortPairs (embedding backward)");
  cuda_detail::launch(sys, "embedding_backward_kernel", cuda_detail::embedding_backward_kernel<T>,
                      cuda_detail::grid_for(N * C, 256), 256, sorted, positions, N, dout, V_local, v0, C, dwte);
}
/// x[b, t] += wpe[t + pos0] over rows n = b·T_len + t.
template <class T>
void add_position_embedding(cuda_system sys, const T* wpe, i64 N, i64 T_len, i64 C, i64 pos0, T* x) {
  const trace::device_span traced_("position embedding fwd");
  sys.for_each_index(N * C, kernels::add_position_embedding<T>{wpe, x, C, T_len, pos0});
}
/// dwpe[t + pos0] += Σ_b dx[b, t] (summed in batch order: deterministic).
template <class T>
void position_embedding_backward(cuda_system sys, const T* dx, i64 N, i64 T_len, i64 C, i64 pos0, acc_t<T>* dwpe) {
  const trace::device_span traced_("position embedding bwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "position_embedding_backward (CUDA): fp32 or bf16");
  if (T_len * C <= 0) return;
  cuda_detail::launch(sys, "position_embedding_backward_kernel", cuda_detail::position_embedding_backward_kernel<T>,
                      cuda_detail::grid_for(T_len * C, 256), 256, dx, N / T_len, T_len, C, pos0, dwpe);
}

/// x[r, c] += b[c] for `rows` rows of C device elements (nothing when b is null).
template <class T> void add_bias_rows(cuda_system sys, T* x, const T* b, i64 rows, i64 C) {
  const trace::device_span traced_("bias add");
  if (b) sys.for_each_index(rows * C, kernels::add_bias_rows<T>{x, b, C});
}
/// Σ g² over n device elements into *out (device memory), accumulated in double by CUB's reduction (the
/// order differs from the host's: equal to rounding, not bit for bit; the same on every run). Nothing
/// comes back to the host: the norm's pieces are read together at the step's end. Uses scratch slot 3.
namespace cuda_detail {
template <class G> struct square_in_double {
  TS_HD double operator()(G x) const { return static_cast<double>(x) * static_cast<double>(x); }
};
template <class A> struct to_double {
  TS_HD double operator()(A x) const { return static_cast<double>(x); }
};
/// *out = Σ in[i] (double) on sys's stream; zero when n is.
template <class It>
void reduce_to_device(const cuda_system& sys, It in, i64 n, double* out, const char* what) {
  if (n <= 0) {
    cuda_check(cudaMemsetAsync(out, 0, sizeof(double), sys.stream()), what);  // +0.0
    return;
  }
  std::size_t bytes = 0;
  cuda_check(cub::DeviceReduce::Reduce(nullptr, bytes, in, out, n, thrust::plus<double>(), 0.0, sys.stream()), what);
  void* temp = device_scratch<unsigned char>(sys, static_cast<i64>(bytes), 3);
  cuda_check(cub::DeviceReduce::Reduce(temp, bytes, in, out, n, thrust::plus<double>(), 0.0, sys.stream()), what);
}
}  // namespace cuda_detail
template <class G> void sum_of_squares(cuda_system sys, const G* g, i64 n, double* out) {
  const trace::device_span traced_("sum of squares");
  cuda_detail::reduce_to_device(sys, thrust::make_transform_iterator(g, cuda_detail::square_in_double<G>{}), n, out,
                                "cub::DeviceReduce::Reduce (sum of squares)");
}
/// *out = Σ x[i] over n device elements, in double (a microbatch's summed token loss), into device memory.
template <class A> void sum_in_double(cuda_system sys, const A* x, i64 n, double* out) {
  const trace::device_span traced_("loss sum");
  cuda_detail::reduce_to_device(sys, thrust::make_transform_iterator(x, cuda_detail::to_double<A>{}), n, out,
                                "cub::DeviceReduce::Reduce (loss sum)");
}

// ---- AdamW ---------------------------------------------------------------------------------------------
/// One fused AdamW step over n device elements (see the host version); grad_t<T> = acc_t<T>.
template <class T>
void adamw_step(cuda_system sys, T* param, acc_t<T>* master, const acc_t<T>* grad, acc_t<T>* m, acc_t<T>* v, i64 n,
                const math::adamw_params& p, bool decay) {
  const trace::device_span traced_("adamw");
  using G = acc_t<T>;
  sys.for_each_index(n, kernels::adamw<T, G>{param, master, grad, m, v, math::adamw_prepare<G>(p, decay)});
}

}  // namespace tessera::ops
