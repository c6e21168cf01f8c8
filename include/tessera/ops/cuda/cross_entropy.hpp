// tessera/ops/cuda/cross_entropy.hpp — softmax cross-entropy over the vocabulary on CUDA, plain and
// vocab-parallel (Megatron), with the host's arguments (vocab_slice, no_comm from ops/vocab_slice.hpp).
//
// Forward: one 256-thread block per row; each thread folds its columns into an online-softmax state
// (math::online_softmax: running max and sum of exp), the block merges the states (warp shuffles, then
// shared memory) and thread 0 picks up the target logit. With a tp communicator — any communicator whose
// all_reduce takes device pointers, e.g. nccl_comm — the row max is all-reduced (max), the local sums are
// rescaled onto it, and the sums and target logits are all-reduced (sum), as on the host. The operator's
// stream is synchronised before each collective (the communicator works on its own stream and returns
// when its result is complete).
//
// Difference from the host: targets live in device memory and are not checked on the host (that would
// synchronise the stream); a target outside [0, vocab) gives that row a NaN loss instead of a usage_error.
//
// Backward: dlogits = (softmax − onehot(target))·scale, padding columns 0; one block per row, each element
// read before it is written, so dlogits may alias logits.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/cross_entropy.hpp needs a CUDA compiler (nvcc); the host operator is tessera/ops/host/cross_entropy.hpp"
#endif
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/cuda_system.hpp"
#include "tessera/core/error.hpp"
#include "tessera/ops/cuda/common.hpp"
#include "tessera/ops/elementwise.hpp"
#include "tessera/ops/math.hpp"
#include "tessera/ops/vocab_slice.hpp"

namespace tessera::ops {

namespace cuda_detail {

inline constexpr int ce_threads = 256;

/// Per row n: (max, Σ exp(x − max)) over the valid columns, and the target logit (0 when another rank owns
/// it, NaN when the target is outside [0, vocab)). Local: writes lse = max + log(sum), loss = lse − target.
/// Parallel: writes lse = max, loss = sum, tgt = target logit (for the all-reduces).
template <class T, bool Parallel>
__global__ void __launch_bounds__(ce_threads)
    cross_entropy_fwd_kernel(const T* __restrict__ logits, const std::int32_t* __restrict__ targets, i64 ld, i64 v0,
                             i64 valid, i64 vocab, float* __restrict__ lse, float* __restrict__ loss,
                             float* __restrict__ tgt) {
  constexpr int warps = ce_threads / 32;
  __shared__ float sm[warps], ss[warps];
  const i64 n = blockIdx.x;
  const T* r = logits + n * ld;
  math::online_softmax<float> st = math::online_softmax<float>::empty();
  for (i64 c = threadIdx.x; c < valid; c += ce_threads) {
    const float x = load(r[c]);
    if (x > st.max) {
      st.sum = st.max == -INFINITY ? 1.0f : st.sum * expf(st.max - x) + 1.0f;
      st.max = x;
    } else if (st.max != -INFINITY) {  // x = −inf before any finite logit adds nothing
      st.sum += expf(x - st.max);
    }
  }
  st = warp_merge(st);
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  if (lane == 0) {
    sm[warp] = st.max;
    ss[warp] = st.sum;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    math::online_softmax<float> all = math::online_softmax<float>::empty();
    for (int w = 0; w < warps; ++w) all.merge(sm[w], ss[w]);
    const i64 target = targets[n];
    const i64 t = target - v0;
    float tl = (t >= 0 && t < valid) ? load(r[t]) : 0.0f;
    if (target < 0 || target >= vocab) tl = NAN;
    if constexpr (Parallel) {
      lse[n] = all.max;
      loss[n] = all.sum;
      tgt[n] = tl;
    } else {
      const float l = all.max + logf(all.sum);
      lse[n] = l;
      loss[n] = l - tl;
    }
  }
}

/// Parallel step 2: loss[n] (local sum) rescaled from the local max lse[n] onto the global max gmax[n];
/// lse[n] = gmax[n].
template <class A>
__global__ void cross_entropy_rescale_kernel(A* __restrict__ lse, A* __restrict__ loss, const A* __restrict__ gmax,
                                             i64 N) {
  for (i64 n = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; n < N;
       n += static_cast<i64>(gridDim.x) * blockDim.x) {
    loss[n] = lse[n] == -INFINITY ? A(0) : loss[n] * expf(lse[n] - gmax[n]);
    lse[n] = gmax[n];
  }
}
/// Parallel step 3: lse = max + log(sum), loss = lse − target logit.
template <class A>
__global__ void cross_entropy_finish_kernel(A* __restrict__ lse, A* __restrict__ loss, const A* __restrict__ tgt,
                                            i64 N) {
  for (i64 n = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; n < N;
       n += static_cast<i64>(gridDim.x) * blockDim.x) {
    lse[n] = lse[n] + logf(loss[n]);
    loss[n] = lse[n] - tgt[n];
  }
}

template <class T>
__global__ void __launch_bounds__(ce_threads)
    cross_entropy_bwd_kernel(const T* logits, const std::int32_t* __restrict__ targets, const float* __restrict__ lse,
                             i64 ld, i64 v0, i64 V_local, i64 valid, float scale, T* dlogits) {
  const i64 n = blockIdx.x;
  const T* r = logits + n * ld;
  T* d = dlogits + n * ld;  // may alias r: each element is read, then written, by one thread
  const float l = lse[n];
  const i64 t = static_cast<i64>(targets[n]) - v0;
  for (i64 c = threadIdx.x; c < V_local; c += ce_threads)
    d[c] = c < valid ? store<T>(math::cross_entropy_dlogit(load(r[c]), l, c == t, scale)) : store<T>(0.0f);
}

inline unsigned ce_grid(i64 N) {
  if (N > 0x7fffffff) throw usage_error(cat("cross_entropy (CUDA): N = ", N, " rows is too many for one launch"));
  return static_cast<unsigned>(N);
}

}  // namespace cuda_detail

/// Per-row lse[N] and loss[N] = lse − logit[target] (device, fp32). `comm` is no_comm{} or the tp group's
/// device communicator (all_reduce over device pointers). Uses scratch slot 2 (2·N floats) when parallel.
template <class T, class Comm = no_comm>
void cross_entropy_forward(cuda_system sys, const T* logits, const std::int32_t* targets, i64 N, vocab_slice vs,
                           acc_t<T>* lse, acc_t<T>* loss, Comm&& comm = Comm{}) {
  const trace::device_span traced_("cross-entropy fwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "cross_entropy (CUDA): fp32 or bf16");
  constexpr bool parallel = !std::is_same_v<std::remove_cvref_t<Comm>, no_comm>;
  vs = vocab_detail::normalise(vs);
  if (N <= 0) return;
  const i64 valid = vocab_detail::valid_columns(vs);
  if constexpr (!parallel) {
    cuda_detail::launch(sys, "cross_entropy_fwd_kernel", cuda_detail::cross_entropy_fwd_kernel<T, false>,
                        cuda_detail::ce_grid(N), cuda_detail::ce_threads, logits, targets, vs.ld, vs.v0, valid,
                        vs.vocab, lse, loss, nullptr);
  } else {
    static_assert(requires(std::remove_cvref_t<Comm>& c, const float* s, float* r) {
      c.all_reduce(s, r, std::size_t{1}, reduce_op::max);
    }, "cross_entropy (CUDA): the communicator needs all_reduce(const float*, float*, size_t, reduce_op) on device memory");
    float* tgt = cuda_detail::device_scratch<float>(sys, 2 * N, 2);
    float* gmax = tgt + N;
    const std::size_t n = static_cast<std::size_t>(N);
    cuda_detail::launch(sys, "cross_entropy_fwd_kernel", cuda_detail::cross_entropy_fwd_kernel<T, true>,
                        cuda_detail::ce_grid(N), cuda_detail::ce_threads, logits, targets, vs.ld, vs.v0, valid,
                        vs.vocab, lse, loss, tgt);
    sys.synchronize();
    comm.all_reduce(static_cast<const float*>(lse), gmax, n, reduce_op::max);
    cuda_detail::launch(sys, "cross_entropy_rescale_kernel", cuda_detail::cross_entropy_rescale_kernel<float>,
                        cuda_detail::grid_for(N, 256), 256, lse, loss, gmax, N);
    sys.synchronize();
    comm.all_reduce(static_cast<const float*>(loss), loss, n, reduce_op::sum);
    comm.all_reduce(static_cast<const float*>(tgt), tgt, n, reduce_op::sum);
    cuda_detail::launch(sys, "cross_entropy_finish_kernel", cuda_detail::cross_entropy_finish_kernel<float>,
                        cuda_detail::grid_for(N, 256), 256, lse, loss, tgt, N);
  }
}

/// dlogits = (softmax − onehot(target))·scale (e.g. scale = 1/N for a mean loss); padding columns get 0.
/// dlogits may alias logits.
template <class T>
void cross_entropy_backward(cuda_system sys, const T* logits, const std::int32_t* targets, const acc_t<T>* lse, i64 N,
                            vocab_slice vs, acc_t<T> scale, T* dlogits) {
  const trace::device_span traced_("cross-entropy bwd");
  static_assert(cuda_detail::is_device_storage_v<T>, "cross_entropy (CUDA): fp32 or bf16");
  vs = vocab_detail::normalise(vs);
  if (N <= 0 || vs.V_local <= 0) return;
  cuda_detail::launch(sys, "cross_entropy_bwd_kernel", cuda_detail::cross_entropy_bwd_kernel<T>, cuda_detail::ce_grid(N),
                      cuda_detail::ce_threads, logits, targets, lse, vs.ld, vs.v0, vs.V_local,
                      vocab_detail::valid_columns(vs), scale, dlogits);
}

/// cross_entropy_forward (tp = 1), then cross_entropy_backward with scale 1 in place: the logits become
/// their gradient for a scale of 1 (softmax − onehot), as on the host (one more pass here; the host does it
/// while each row is in cache). The backward is then cross_entropy_backward_from_grad.
template <class T>
void cross_entropy_forward_with_grad(cuda_system sys, T* logits, const std::int32_t* targets, i64 N, vocab_slice vs,
                                     acc_t<T>* lse, acc_t<T>* loss) {
  static_assert(std::is_same_v<T, acc_t<T>>, "cross_entropy_forward_with_grad: fp32 storage (bf16 would round twice)");
  cross_entropy_forward(sys, static_cast<const T*>(logits), targets, N, vs, lse, loss);
  cross_entropy_backward(sys, static_cast<const T*>(logits), targets, lse, N, vs, acc_t<T>(1), logits);
}

/// dlogits = the logits' gradient for a scale of 1 (left by cross_entropy_forward_with_grad) · scale.
template <class T>
void cross_entropy_backward_from_grad(cuda_system sys, T* logits, i64 N, vocab_slice vs, acc_t<T> scale) {
  const trace::device_span traced_("cross-entropy bwd");
  vs = vocab_detail::normalise(vs);
  if (N <= 0 || vs.V_local <= 0) return;
  sys.for_each_index(N * vs.V_local, kernels::scale_columns<T>{logits, scale, vs.V_local, vs.ld});
}

}  // namespace tessera::ops
