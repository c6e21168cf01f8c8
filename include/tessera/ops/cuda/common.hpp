// tessera/ops/cuda/common.hpp — what the CUDA operators share: launch checks, warp reductions, per-thread
// device scratch and a deterministic column reduction (parameter gradients: dgamma, dbeta, db).
//
// Every kernel runs on the stream of the cuda_system value the operator was given (its first argument,
// `sys`; there is no implicit stream). Kernel templates take only types and integers (nvcc 13
// mishandles class-type non-type template arguments in .cu files); functor *types* are fine.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/common.hpp needs a CUDA compiler (nvcc); the host operators are tessera/ops/host.hpp"
#endif
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/core/bf16.hpp"
#include "tessera/core/config.hpp"
#include "tessera/core/cuda_system.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/trace.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops {

using i64 = std::int64_t;

namespace cuda_detail {

/// Storage types of the CUDA operators (fp32 and bf16; the fp64 reference is host-only).
template <class T>
inline constexpr bool is_device_storage_v = std::is_same_v<T, float> || std::is_same_v<T, bf16>;

constexpr i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

/// Throws with the kernel's name if its launch failed (bad configuration, no device, ...).
inline void check_launch(const char* kernel) { cuda_check(cudaGetLastError(), kernel); }

/// kernel<<<grid, block, 0, sys.stream()>>>(args...), then check_launch(name): the one place
/// where the operators launch a kernel.
template <class... P, class... A>
void launch(const cuda_system& sys, const char* name, void (*kernel)(P...), dim3 grid, dim3 block, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: argument count differs from the kernel's");
  kernel<<<grid, block, 0, sys.stream()>>>(static_cast<P>(std::forward<A>(args))...);
  check_launch(name);
}

/// A 1-D grid of `block`-thread blocks covering n items with grid-stride loops (capped, never zero).
inline unsigned grid_for(i64 n, int block, i64 cap = i64(1) << 20) {
  return static_cast<unsigned>(std::clamp<i64>(ceil_div(n, block), 1, cap));
}

/// Sum over aligned groups of G consecutive lanes (G a power of two ≤ 32); every lane of the warp must
/// call it, and every lane of a group ends with the group's sum.
template <int G>
__device__ __forceinline__ float group_sum(float v) {
  static_assert(G >= 1 && G <= 32 && (G & (G - 1)) == 0, "group_sum: G must be a power of two <= 32");
#pragma unroll
  for (int off = G / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_sum(float v) { return group_sum<32>(v); }

/// Merge of online-softmax states over the whole warp (every lane ends with the same state: the merge is
/// commutative bit for bit).
__device__ __forceinline__ math::online_softmax<float> warp_merge(math::online_softmax<float> s) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    const float om = __shfl_xor_sync(0xffffffffu, s.max, off);
    const float os = __shfl_xor_sync(0xffffffffu, s.sum, off);
    s.merge(om, os);
  }
  return s;
}

// ---- per-stream device scratch ----------------------------------------------------------------------
/// Device buffers that grow to the largest request and are then reused (no allocation in a training step
/// after the first). Each (host thread, stream) pair has its own slots; an operator's work is ordered on
/// its stream, so one operator's temporaries are free again when the next operator on that stream is
/// issued, and operators on different streams never share scratch.
struct scratch_slot {
  void* ptr = nullptr;
  std::size_t bytes = 0;
  scratch_slot() = default;
  scratch_slot(const scratch_slot&) = delete;
  scratch_slot& operator=(const scratch_slot&) = delete;
  ~scratch_slot() {
    if (ptr) (void)cudaFree(ptr);  // errors at process exit (runtime unloading) are ignored
  }
};
inline constexpr int scratch_slots = 5;
inline constexpr int lt_workspace_slot = 4;  ///< cuBLASLt's workspace (only live during one matmul)
struct stream_scratch {
  cudaStream_t stream;
  scratch_slot slots[scratch_slots];
};
/// Slot `slot` of sys's stream, grown to n elements of T. @pre 0 <= slot < scratch_slots.
template <class T>
T* device_scratch(const cuda_system& sys, i64 n, int slot) {
  thread_local std::vector<std::unique_ptr<stream_scratch>> per_stream;  // a few streams per thread at most
  stream_scratch* mine = nullptr;
  for (auto& p : per_stream)
    if (p->stream == sys.stream()) mine = p.get();
  if (!mine) {
    per_stream.push_back(std::make_unique<stream_scratch>());
    mine = per_stream.back().get();
    mine->stream = sys.stream();
  }
  scratch_slot& s = mine->slots[slot];
  const std::size_t need = static_cast<std::size_t>(std::max<i64>(n, 1)) * sizeof(T);
  if (s.bytes < need) {
    if (s.ptr) {
      sys.synchronize();  // the old block's last users are done
      cuda_check(cudaFree(s.ptr), "cudaFree (scratch)");
      s.ptr = nullptr;
      s.bytes = 0;
    }
    cuda_check(cudaMalloc(&s.ptr, need), "cudaMalloc (operator scratch)");
    s.bytes = need;
  }
  return static_cast<T*>(s.ptr);
}

// ---- deterministic column reduction --------------------------------------------------------------------
// out_k[c] += Σ_n f(n, c)_k over rows n < N, for NO outputs k: blocks of 32 columns × 8 row lanes sum
// fixed chunks of rows into partials (in a fixed order), then one thread per column adds the partials of
// all chunks in chunk order. The result does not depend on scheduling: no atomics.
//
// F: `static constexpr int outputs;` and `__device__ void operator()(i64 n, i64 c, float* acc) const`
// (adds its terms into acc[0 .. outputs)).
inline constexpr int colred_cols = 32, colred_lanes = 8;

struct column_chunks {
  i64 rows_per_chunk;
  int chunks;
};
/// Chunking that depends only on N (so results are reproducible across devices): ≥ 64 rows a chunk,
/// at most 256 chunks.
inline column_chunks column_chunking(i64 N) {
  const i64 rpc = std::max<i64>(64, ceil_div(N, 256));
  return {rpc, static_cast<int>(std::max<i64>(1, ceil_div(N, rpc)))};
}

template <class F>
__global__ void __launch_bounds__(colred_cols * colred_lanes)
    column_partials_kernel(F f, i64 N, i64 C, i64 rows_per_chunk, float* __restrict__ part) {
  constexpr int NO = F::outputs;
  __shared__ float sh[NO][colred_lanes][colred_cols + 1];
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  const i64 c = static_cast<i64>(blockIdx.x) * colred_cols + tx;
  const i64 chunk = blockIdx.y;
  const i64 r0 = chunk * rows_per_chunk, r1 = std::min<i64>(N, r0 + rows_per_chunk);
  float acc[NO];
#pragma unroll
  for (int k = 0; k < NO; ++k) acc[k] = 0.0f;
  if (c < C)
    for (i64 n = r0 + ty; n < r1; n += colred_lanes) f(n, c, acc);
#pragma unroll
  for (int k = 0; k < NO; ++k) sh[k][ty][tx] = acc[k];
  __syncthreads();
  if (ty == 0 && c < C) {
#pragma unroll
    for (int k = 0; k < NO; ++k) {
      float s = 0.0f;
#pragma unroll
      for (int l = 0; l < colred_lanes; ++l) s += sh[k][l][tx];
      part[(chunk * NO + k) * C + c] = s;
    }
  }
}

template <int NO>
__global__ void column_finish_kernel(const float* __restrict__ part, int chunks, i64 C, float* d0, float* d1) {
  for (i64 c = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; c < C;
       c += static_cast<i64>(gridDim.x) * blockDim.x) {
    float s[NO];
#pragma unroll
    for (int k = 0; k < NO; ++k) s[k] = 0.0f;
    for (int ch = 0; ch < chunks; ++ch)
#pragma unroll
      for (int k = 0; k < NO; ++k) s[k] += part[(static_cast<i64>(ch) * NO + k) * C + c];
    if (d0) d0[c] += s[0];
    if constexpr (NO > 1)
      if (d1) d1[c] += s[1];
  }
}

/// d0[c] += Σ_n f(n, c)[0] (and d1[c] += Σ_n f(n, c)[1]); null outputs are skipped. Uses scratch slot 0.
template <class F>
void column_reduce(const cuda_system& sys, const F& f, i64 N, i64 C, float* d0, float* d1 = nullptr) {
  constexpr int NO = F::outputs;
  static_assert(NO == 1 || NO == 2, "column_reduce: one or two outputs");
  if (N <= 0 || C <= 0 || (!d0 && !d1)) return;
  const column_chunks ch = column_chunking(N);
  float* part = device_scratch<float>(sys, static_cast<i64>(ch.chunks) * NO * C, 0);
  const i64 col_blocks = ceil_div(C, colred_cols);
  if (col_blocks > std::numeric_limits<int>::max()) throw usage_error(cat("column reduction: C = ", C, " too large"));
  const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(ch.chunks));
  launch(sys, "column_partials_kernel", column_partials_kernel<F>, grid, dim3(colred_cols, colred_lanes), f, N, C,
         ch.rows_per_chunk, part);
  launch(sys, "column_finish_kernel", column_finish_kernel<NO>, grid_for(C, 256), 256, part, ch.chunks, C, d0, d1);
}

}  // namespace cuda_detail
}  // namespace tessera::ops
