// tessera/ops/math.hpp — the per-element and per-row math of every operator, shared by the host and
// CUDA backends (everything here is TS_HD and free of loops over memory).
//
// A backend decides how to walk memory (OpenMP rows on the host, warps and tiles on CUDA); the numbers it
// computes for one element or one row come from these functions, so the host tests exercise the device
// arithmetic too. `acc_t<T>` is the accumulation type: float for fp32 and bf16 storage, double for the
// float64 reference used by the gradient checks.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tessera/core/bf16.hpp"
#include "tessera/core/config.hpp"
#include "tessera/core/simd.hpp"

namespace tessera::ops {

template <class T> struct acc_type { using type = float; };
template <> struct acc_type<double> { using type = double; };
/// Accumulation type of storage type T (float for float/bf16, double for double).
template <class T> using acc_t = typename acc_type<T>::type;

/// Storage types the operators take.
template <class T>
inline constexpr bool is_storage_v =
    std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, double>;

/// Load a stored value as its accumulation type; store an accumulated value (rounding to bf16 if needed).
template <class T> TS_HD inline acc_t<T> load(T x) { return static_cast<acc_t<T>>(x); }
template <class T, class A> TS_HD inline T store(A x) {
  if constexpr (std::is_same_v<T, bf16>) return bf16(static_cast<float>(x));
  else return static_cast<T>(x);
}

namespace math {

using std::exp;
using std::log;
using std::sqrt;
using std::tanh;

// ---- host SIMD vectors ----------------------------------------------------------------------------------
// The element-wise math below is written once, for a scalar A (float, double; host and device) and, on
// the host, for `simd::vfloat` (tessera/core/simd.hpp: std::experimental::simd at the target's width), so
// the host's vector loops run the very functions the device and the scalar tails run. `splat<A>(c)` is
// the constant c as an A.
#if TESSERA_HOST_VECTORS
using simd::vfloat;
#endif
template <class A> TS_HD inline A splat(double c) {
  if constexpr (std::is_arithmetic_v<A>) return static_cast<A>(c);
  else return A{} + static_cast<float>(c);
}

// ---- exp ---------------------------------------------------------------------------------------------------
/// e^x: std::exp / expf for scalars (float64 reference, device, host tails). For vfloat: Cody–Waite
/// reduction x = k·ln2 + r, |r| ≤ ln2/2, and Cephes' degree-6 polynomial for e^r — within 2 ulp of expf on
/// [-87, 88], clamped outside (where e^x under/overflows anyway; NaN stays NaN); branch-free, every lane.
TS_HD inline float fexp(float x) { return exp(x); }
TS_HD inline double fexp(double x) { return exp(x); }
#if TESSERA_HOST_VECTORS
TESSERA_SIMD_DIAGNOSTICS_PUSH
TESSERA_VEC_INLINE vfloat fexp(vfloat x) {
  using simd::vint;
  simd::stdx::where(x < -87.0f, x) = -87.0f;
  simd::stdx::where(x > 88.0f, x) = 88.0f;
  // round to nearest: x·log2(e) + 128.5 > 0 here, so truncation is floor
  const vint ki = simd::stdx::static_simd_cast<vint>(vfloat(x * 1.44269504088896341f + 128.5f)) - 128;
  const vfloat k = simd::stdx::static_simd_cast<vfloat>(ki);
  vfloat r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  vfloat p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<vfloat>(vint((ki + 127) << 23));
}
TESSERA_SIMD_DIAGNOSTICS_POP
#endif

// ---- GELU, tanh approximation (GPT-2, PyTorch approximate="tanh") --------------------------------
// With u = √(2/π)(x + 0.044715x³) and s = σ(2u): 0.5(1 + tanh u) = s and 1 − tanh²u = 4s(1 − s), so
//   gelu(x) = x·s,   gelu'(x) = s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715x²)
// — no cancellation for large |x|, and one exp per element.
template <class A> TS_HD inline A gelu_sigma(A x) {
  const A k0 = splat<A>(0.7978845608028654);  // sqrt(2/pi)
  const A k1 = splat<A>(0.044715);
  return splat<A>(1) / (splat<A>(1) + fexp(splat<A>(-2) * k0 * (x + k1 * x * x * x)));
}
template <class A> TS_HD inline A gelu(A x) { return x * gelu_sigma(x); }
template <class A> TS_HD inline A gelu_grad(A x) {  // d gelu / dx
  const A k0 = splat<A>(0.7978845608028654);
  const A k1 = splat<A>(0.044715);
  const A s = gelu_sigma(x);
  return s + splat<A>(2) * x * s * (splat<A>(1) - s) * k0 * (splat<A>(1) + splat<A>(3) * k1 * x * x);
}

// ---- SwiGLU: silu(gate) * up ------------------------------------------------------------------------
template <class A> TS_HD inline A sigmoid(A x) { return splat<A>(1) / (splat<A>(1) + fexp(-x)); }
template <class A> TS_HD inline A silu(A x) { return x * sigmoid(x); }
template <class A> TS_HD inline A silu_grad(A x) {
  const A s = sigmoid(x);
  return s * (splat<A>(1) + x * (splat<A>(1) - s));
}
template <class A> struct swiglu_grads { A dgate, dup; };
template <class A> TS_HD inline swiglu_grads<A> swiglu_backward(A gate, A up, A dout) {
  return {dout * up * silu_grad(gate), dout * silu(gate)};
}

// ---- normalisation: statistics to scale, and the row-closed-form backward ---------------------------
/// rstd = 1/sqrt(var + eps).
template <class A> TS_HD inline A rstd_of(A var, A eps) { return A(1) / sqrt(var + eps); }
/// LayerNorm input gradient for one element, given the row means of g·dy and g·dy·xhat.
///   dx = rstd · (g·dy − mean(g·dy) − xhat · mean(g·dy·xhat))
template <class A> TS_HD inline A layernorm_dx(A gdy, A xhat, A rstd, A mean_gdy, A mean_gdy_xhat) {
  return rstd * (gdy - mean_gdy - xhat * mean_gdy_xhat);
}
/// RMSNorm input gradient for one element, given the row mean of g·dy·xhat.
///   dx = rstd · (g·dy − xhat · mean(g·dy·xhat))
template <class A> TS_HD inline A rmsnorm_dx(A gdy, A xhat, A rstd, A mean_gdy_xhat) {
  return rstd * (gdy - xhat * mean_gdy_xhat);
}

// ---- online softmax (flash attention, cross-entropy over vocabulary tiles) ----------------------------
/// Running (max, sum of exp(x − max)) of a row seen in pieces.
template <class A> struct online_softmax {
  A max;
  A sum;
  TS_HD static online_softmax empty() { return {-INFINITY, A(0)}; }
  /// Fold another partial state in (associative, commutative).
  TS_HD void merge(A other_max, A other_sum) {
    if (other_max == A(-INFINITY)) return;
    if (max == A(-INFINITY)) { max = other_max; sum = other_sum; return; }
    if (other_max > max) {
      sum = sum * exp(max - other_max) + other_sum;
      max = other_max;
    } else {
      sum += other_sum * exp(other_max - max);
    }
  }
  /// log-sum-exp of everything folded in.
  TS_HD A lse() const { return max + log(sum); }
};
/// Factor that rescales an accumulator built relative to old_max onto new_max.
template <class A> TS_HD inline A rescale(A old_max, A new_max) {
  return old_max == A(-INFINITY) ? A(0) : exp(old_max - new_max);
}

// ---- flash attention backward, one score -------------------------------------------------------------
/// dS = P · (dP − D) with P = exp(S − lse), D = rowsum(dO ∘ O).
template <class A> TS_HD inline A attention_dscore(A p, A dp, A d_row) { return p * (dp - d_row); }

// ---- RoPE, Hugging Face "rotate_half": pairs (i, i + D/2) --------------------------------------------
template <class A> struct pair { A a, b; };
/// y1 = x1·cos − x2·sin ; y2 = x2·cos + x1·sin
template <class A> TS_HD inline pair<A> rope_rotate(A x1, A x2, A c, A s) {
  return {x1 * c - x2 * s, x2 * c + x1 * s};
}
/// The transpose (inverse) rotation, used by the backward.
template <class A> TS_HD inline pair<A> rope_rotate_back(A y1, A y2, A c, A s) {
  return {y1 * c + y2 * s, y2 * c - y1 * s};
}
/// Inverse frequency of pair i of a head of size d, as Hugging Face computes it (float32):
/// 1 / theta^(2i/d).
TS_HD inline float rope_inv_freq(int i, int d, float theta) {
  return 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(d));
}

// ---- cross-entropy ------------------------------------------------------------------------------------
/// d loss / d logit for one column: (softmax − onehot) · scale.
template <class A> TS_HD inline A cross_entropy_dlogit(A logit, A lse, bool is_target, A scale) {
  return (fexp(logit - lse) - (is_target ? A(1) : A(0))) * scale;
}

// ---- AdamW (decoupled weight decay, PyTorch's update order) -------------------------------------------
struct adamw_params {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  std::int64_t step = 1;  ///< 1-based step number, for the bias corrections
  float grad_scale = 1.0f;  ///< gradients are multiplied by this first (global-norm clipping, fused)
};
/// Precomputed per-step scalars so the per-element update is a few FMAs.
template <class A> struct adamw_scalars {
  A lr, beta1, beta2, eps, decay_factor, step_size, inv_sqrt_bc2, grad_scale;
};
template <class A> inline adamw_scalars<A> adamw_prepare(const adamw_params& p, bool decay) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(p.beta1), static_cast<double>(p.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(p.beta2), static_cast<double>(p.step));
  return {A(p.lr), A(p.beta1), A(p.beta2), A(p.eps),
          A(decay ? 1.0 - static_cast<double>(p.lr) * p.weight_decay : 1.0),
          A(static_cast<double>(p.lr) / bc1), A(1.0 / std::sqrt(bc2)), A(p.grad_scale)};
}
/// One element: w ← w·(1 − lr·wd); m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
/// w ← w − (lr/bc1) · m / (sqrt(v)/sqrt(bc2) + eps). Returns the new weight.
template <class A> TS_HD inline A adamw_update(A w, A g, A& m, A& v, const adamw_scalars<A>& s) {
  g = g * s.grad_scale;  // exact when 1
  m = s.beta1 * m + (A(1) - s.beta1) * g;
  v = s.beta2 * v + (A(1) - s.beta2) * g * g;
  const A denom = sqrt(v) * s.inv_sqrt_bc2 + s.eps;
  return w * s.decay_factor - s.step_size * m / denom;
}
#if TESSERA_HOST_VECTORS
/// adamw_update on every lane: the same operations in the same order as the scalar version (the square
/// root is the lane-wise IEEE one, vsqrtps/fsqrt, with no errno to keep).
TESSERA_SIMD_DIAGNOSTICS_PUSH  // tessera/core/simd.hpp: GCC 12's AVX-512 intrinsics and -Wuninitialized
TESSERA_VEC_INLINE vfloat adamw_update(vfloat w, vfloat g, vfloat& m, vfloat& v, const adamw_scalars<float>& s) {
  g = g * s.grad_scale;
  m = s.beta1 * m + (1.0f - s.beta1) * g;
  v = s.beta2 * v + (1.0f - s.beta2) * g * g;
  const vfloat denom = simd::stdx::sqrt(v) * s.inv_sqrt_bc2 + s.eps;
  return w * s.decay_factor - s.step_size * m / denom;
}
TESSERA_SIMD_DIAGNOSTICS_POP
#endif

}  // namespace math
}  // namespace tessera::ops
