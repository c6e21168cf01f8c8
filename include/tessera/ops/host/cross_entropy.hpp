// tessera/ops/host/cross_entropy.hpp — softmax cross-entropy over the vocabulary, plain and
// vocab-parallel (Megatron), on the host.
//
// logits [N × V_local] (rows ld apart) hold global vocabulary columns [v0, v0 + V_local); columns at or
// beyond `vocab` (padding added to make the vocabulary divisible by tp) are ignored. With a tp
// communicator the row max and the row sum of exp are all-reduced (max, then sum) and the target logit
// is summed from the one rank that owns it, so every rank ends with the full-vocabulary lse and loss.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tessera/core/profile.hpp"
#include "tessera/comm/communicator.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/ops/host/elementwise.hpp"
#include "tessera/ops/math.hpp"
#include "tessera/ops/vocab_slice.hpp"

namespace tessera::ops {

namespace host_detail {
using vocab_detail::normalise;
inline void check_targets(const std::int32_t* targets, i64 N, i64 vocab) {
  for (i64 n = 0; n < N; ++n)
    if (targets[n] < 0 || targets[n] >= vocab)
      throw usage_error(cat("cross_entropy: target ", targets[n], " at row ", n, " outside the vocabulary [0, ",
                            vocab, ")"));
}
/// max over the row's `valid` columns (−∞ for none).
template <class T, class A = acc_t<T>> A row_max(const T* r, i64 valid) {
  A mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (i64 c = 0; c < valid; ++c) mx = std::max(mx, load(r[c]));
  return mx;
}
/// Σ exp(r[c] − mx) over the row's `valid` columns (vectors with math::fexp where the type allows).
template <class T, class A = acc_t<T>> A sum_exp_row(const T* r, i64 valid, A mx) {
  A s = 0;
#if TESSERA_HOST_VECTORS
  if constexpr (vector_storage_v<T> && std::is_same_v<A, float>) {  // vectors, math::fexp
    simd::vfloat acc = 0.0f;
    i64 c = 0;
    for (; c + simd::lanes <= valid; c += simd::lanes) acc += math::fexp(simd::load(r + c) - mx);
    s += simd::sum(acc);
    for (; c < valid; ++c) s += std::exp(load(r[c]) - mx);
    return s;
  }
#endif
  if (valid > 0) {
#pragma omp simd reduction(+ : s)
    for (i64 c = 0; c < valid; ++c) s += std::exp(load(r[c]) - mx);
  }
  return s;
}
/// One row of dlogits = (softmax − onehot(target))·scale from the row's logits r and its lse l; padding
/// columns get 0. d may alias r: the target logit is read before the row is overwritten.
template <class T, class A = acc_t<T>>
void dlogit_row(const T* r, std::int32_t target, A l, const vocab_slice& vs, i64 valid, A scale, T* d) {
  const i64 t = static_cast<i64>(target) - vs.v0;
  const bool owns_target = t >= 0 && t < valid;
  const A target_logit = owns_target ? load(r[t]) : A(0);
  i64 c0 = 0;
#if TESSERA_HOST_VECTORS
  if constexpr (vector_storage_v<T> && std::is_same_v<A, float>)  // vectors, math::fexp
    for (; c0 + simd::lanes <= valid; c0 += simd::lanes) simd::store(d + c0, math::fexp(simd::load(r + c0) - l) * scale);
#endif
#pragma omp simd
  for (i64 c = c0; c < valid; ++c) d[c] = store<T>(math::cross_entropy_dlogit(load(r[c]), l, false, scale));
  for (i64 c = valid; c < vs.V_local; ++c) d[c] = store<T>(A(0));
  if (owns_target) d[t] = store<T>(math::cross_entropy_dlogit(target_logit, l, true, scale));
}
}  // namespace host_detail

/// Per-row lse[N] and loss[N] = lse − logit[target]. `comm` is no_comm{} or the tp group's communicator.
template <class T, class Comm = no_comm>
void cross_entropy_forward(host_system, const T* logits, const std::int32_t* targets, i64 N, vocab_slice vs,
                           acc_t<T>* lse, acc_t<T>* loss, Comm&& comm = Comm{}) {
  const prof::scope prof_("cross-entropy fwd");
  using A = acc_t<T>;
  constexpr bool parallel = !std::is_same_v<std::remove_cvref_t<Comm>, no_comm>;
  vs = host_detail::normalise(vs);
  host_detail::check_targets(targets, N, vs.vocab);
  const i64 valid = std::clamp<i64>(vs.vocab - vs.v0, 0, vs.V_local);
  // maxes in lse[], sums in loss[] (reused as scratch), target logits in tgt[]
  A* tgt = host::scratch<A>(2 * N, 3);
#pragma omp parallel for schedule(static)
  for (i64 n = 0; n < N; ++n) {
    const T* r = logits + n * vs.ld;
    const A mx = host_detail::row_max(r, valid);
    const A s = host_detail::sum_exp_row(r, valid, mx);
    lse[n] = mx;
    loss[n] = s;
    const i64 t = static_cast<i64>(targets[n]) - vs.v0;
    tgt[n] = (t >= 0 && t < valid) ? load(r[t]) : A(0);
  }
  if constexpr (parallel) {
    static_assert(std::is_same_v<A, float>, "vocab-parallel cross-entropy reduces in fp32");
    A* gmax = tgt + N;
    all_reduce(comm, lse, gmax, static_cast<std::size_t>(N), reduce_op::max);
    for (i64 n = 0; n < N; ++n) {
      loss[n] = lse[n] == -INFINITY ? A(0) : loss[n] * std::exp(lse[n] - gmax[n]);
      lse[n] = gmax[n];
    }
    all_reduce(comm, loss, loss, static_cast<std::size_t>(N), reduce_op::sum);
    all_reduce(comm, tgt, tgt, static_cast<std::size_t>(N), reduce_op::sum);
  }
  for (i64 n = 0; n < N; ++n) {
    lse[n] = lse[n] + std::log(loss[n]);
    loss[n] = lse[n] - tgt[n];
  }
}

/// cross_entropy_forward (tp = 1) that also leaves in `logits`, in place, their gradient for a scale of 1:
/// softmax − onehot(target) (padding columns 0) — cross_entropy_backward's values with scale 1, computed
/// while each row is still in cache from the forward's passes (the backward's exps then cost no second trip
/// through memory). The backward is then cross_entropy_backward_from_grad (logits · scale): for fp32 and
/// fp64 storage bit for bit what cross_entropy_backward gives (e·1 and (e − 1)·1 are exact, so the one
/// rounding left is the scale's).
template <class T>
void cross_entropy_forward_with_grad(host_system, T* logits, const std::int32_t* targets, i64 N, vocab_slice vs,
                                     acc_t<T>* lse, acc_t<T>* loss) {
  static_assert(std::is_same_v<T, acc_t<T>>, "cross_entropy_forward_with_grad: fp32 or fp64 storage (bf16 would round twice)");
  const prof::scope prof_("cross-entropy fwd");
  using A = acc_t<T>;
  vs = host_detail::normalise(vs);
  host_detail::check_targets(targets, N, vs.vocab);
  const i64 valid = std::clamp<i64>(vs.vocab - vs.v0, 0, vs.V_local);
#pragma omp parallel for schedule(static)
  for (i64 n = 0; n < N; ++n) {
    const T* r = logits + n * vs.ld;
    const A mx = host_detail::row_max(r, valid);
    const A s = host_detail::sum_exp_row(r, valid, mx);
    const i64 t = static_cast<i64>(targets[n]) - vs.v0;
    const A tgt = (t >= 0 && t < valid) ? load(r[t]) : A(0);
    lse[n] = mx + std::log(s);
    loss[n] = lse[n] - tgt;
    host_detail::dlogit_row(r, targets[n], lse[n], vs, valid, A(1), logits + n * vs.ld);
  }
}

/// The backward after cross_entropy_forward_with_grad: dlogits (in place of the logits' gradient for a
/// scale of 1) = that gradient · scale, over the V_local columns of the N rows.
template <class T>
void cross_entropy_backward_from_grad(host_system, T* logits, i64 N, vocab_slice vs, acc_t<T> scale) {
  const prof::scope prof_("cross-entropy bwd");
  vs = host_detail::normalise(vs);
#pragma omp parallel for schedule(static)
  for (i64 n = 0; n < N; ++n) {
    T* d = logits + n * vs.ld;
#pragma omp simd
    for (i64 c = 0; c < vs.V_local; ++c) d[c] = store<T>(load(d[c]) * scale);
  }
}

/// dlogits = (softmax − onehot(target))·scale (e.g. scale = 1/N for a mean loss); padding columns get 0.
/// dlogits may alias logits (the gradient then overwrites the logits in place).
template <class T>
void cross_entropy_backward(host_system, const T* logits, const std::int32_t* targets, const acc_t<T>* lse, i64 N,
                            vocab_slice vs, acc_t<T> scale, T* dlogits) {
  const prof::scope prof_("cross-entropy bwd");
  vs = host_detail::normalise(vs);
  const i64 valid = std::clamp<i64>(vs.vocab - vs.v0, 0, vs.V_local);
#pragma omp parallel for schedule(static)
  for (i64 n = 0; n < N; ++n)
    host_detail::dlogit_row(logits + n * vs.ld, targets[n], lse[n], vs, valid, scale, dlogits + n * vs.ld);
}

}  // namespace tessera::ops
