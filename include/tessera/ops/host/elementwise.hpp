// tessera/ops/host/elementwise.hpp — host entry points of the element-wise operators, embeddings,
// RoPE and the fused AdamW step. The per-element bodies are the shared functors of ops/elementwise.hpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tessera/core/profile.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/ops/elementwise.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops {

using i64 = std::int64_t;
/// Gradients of parameters are kept in the accumulation type (fp32 for fp32 and bf16 models).
template <class T> using grad_t = acc_t<T>;

// ---- vector loops: the math of ops/math.hpp on simd::vfloat, for fp32 and bf16 storage -------------------
namespace host_detail {
#if TESSERA_HOST_VECTORS
using simd::lanes;
inline constexpr bool vectorised = true;
#else
inline constexpr int lanes = 1;
inline constexpr bool vectorised = false;
#endif
template <class T> inline constexpr bool vector_storage_v = std::is_same_v<T, float> || std::is_same_v<T, bf16>;

/// For every block of `lanes` elements starting at i = b·lanes in [0, n): vec(i) on simd::vfloat; the tail
/// element by element with scalar(i). Parallel over blocks above host_system::parallel_threshold elements.
template <class V, class S> void vector_blocks(i64 n, const V& vec, const S& scalar) {
  const i64 nb = n / lanes;
#pragma omp parallel for schedule(static) if (n >= host_system::parallel_threshold)
  for (i64 b = 0; b < nb; ++b) vec(b * lanes);
  for (i64 i = nb * lanes; i < n; ++i) scalar(i);
}
}  // namespace host_detail

// ---- GELU ----------------------------------------------------------------------------------------------
template <class T> void gelu_forward(host_system, const T* x, i64 n, T* y) {
  const prof::scope prof_("gelu fwd");
#if TESSERA_HOST_VECTORS
  if constexpr (host_detail::vector_storage_v<T>) {
    using namespace host_detail;
    vector_blocks(n, [=](i64 i) { simd::store(y + i, math::gelu(simd::load(x + i))); }, kernels::gelu_forward<T>{x, y});
    return;
  }
#endif
  host_system::for_each_index(n, kernels::gelu_forward<T>{x, y});
}
template <class T> void gelu_backward(host_system, const T* dy, const T* x, i64 n, T* dx) {
  const prof::scope prof_("gelu bwd");
#if TESSERA_HOST_VECTORS
  if constexpr (host_detail::vector_storage_v<T>) {
    using namespace host_detail;
    vector_blocks(n, [=](i64 i) { simd::store(dx + i, simd::load(dy + i) * math::gelu_grad(simd::load(x + i))); },
             kernels::gelu_backward<T>{dy, x, dx});
    return;
  }
#endif
  host_system::for_each_index(n, kernels::gelu_backward<T>{dy, x, dx});
}

// ---- SwiGLU: out[N×F] = silu(gate) ∘ up; gate and up rows are ld_in apart (e.g. one fused [N×2F]) ----------
template <class T>
void swiglu_forward(host_system, const T* gate, const T* up, i64 N, i64 F, i64 ld_in, T* out) {
  const prof::scope prof_("swiglu fwd");
#if TESSERA_HOST_VECTORS
  if constexpr (host_detail::vector_storage_v<T>) {
    using namespace host_detail;
    const i64 fb = F / lanes * lanes;
#pragma omp parallel for schedule(static) if (N * F >= host_system::parallel_threshold)
    for (i64 r = 0; r < N; ++r) {
      const T* g = gate + r * ld_in;
      const T* u = up + r * ld_in;
      T* o = out + r * F;
      for (i64 c = 0; c < fb; c += lanes) simd::store(o + c, math::silu(simd::load(g + c)) * simd::load(u + c));
      for (i64 c = fb; c < F; ++c) kernels::swiglu_forward<T>{gate, up, out, F, ld_in}(r * F + c);
    }
    return;
  }
#endif
  host_system::for_each_index(N * F, kernels::swiglu_forward<T>{gate, up, out, F, ld_in});
}
template <class T>
void swiglu_backward(host_system, const T* dout, const T* gate, const T* up, i64 N, i64 F, i64 ld_in, T* dgate,
                     T* dup) {
  const prof::scope prof_("swiglu bwd");
#if TESSERA_HOST_VECTORS
  if constexpr (host_detail::vector_storage_v<T>) {
    using namespace host_detail;
    const i64 fb = F / lanes * lanes;
    const kernels::swiglu_backward<T> tail{dout, gate, up, dgate, dup, F, ld_in};
#pragma omp parallel for schedule(static) if (N * F >= host_system::parallel_threshold)
    for (i64 r = 0; r < N; ++r) {
      for (i64 c = 0; c < fb; c += lanes) {
        const i64 j = r * ld_in + c;
        const auto g = math::swiglu_backward(simd::load(gate + j), simd::load(up + j), simd::load(dout + r * F + c));
        simd::store(dgate + j, g.dgate);
        simd::store(dup + j, g.dup);
      }
      for (i64 c = fb; c < F; ++c) tail(r * F + c);
    }
    return;
  }
#endif
  host_system::for_each_index(N * F, kernels::swiglu_backward<T>{dout, gate, up, dgate, dup, F, ld_in});
}

// ---- residual add -------------------------------------------------------------------------------------
template <class T> void add(host_system, const T* a, const T* b, i64 n, T* out) {
  const prof::scope prof_("residual add");
  host_system::for_each_index(n, kernels::add<T>{a, b, out});
}

// ---- RoPE (Hugging Face rotate_half) -------------------------------------------------------------------
/// cos/sin tables [max_positions × head_dim/2], computed as Hugging Face does (fp32 inverse frequencies,
/// fp32 angles) for fp32/bf16 models and in double for the double reference.
template <class A> struct rope_table {
  i64 max_positions = 0, half = 0;
  std::vector<A> cos, sin;
  rope_table() = default;
  rope_table(i64 max_pos, i64 head_dim, float theta) : max_positions(max_pos), half(head_dim / 2) {
    cos.resize(static_cast<std::size_t>(max_pos * half));
    sin.resize(cos.size());
    for (i64 t = 0; t < max_pos; ++t)
      for (i64 i = 0; i < half; ++i) {
        if constexpr (std::is_same_v<A, double>) {
          const double f = static_cast<double>(t) / std::pow(static_cast<double>(theta),
                                                             2.0 * static_cast<double>(i) / (2.0 * half));
          cos[t * half + i] = std::cos(f);
          sin[t * half + i] = std::sin(f);
        } else {
          const float f = static_cast<float>(t) * math::rope_inv_freq(static_cast<int>(i),
                                                                       static_cast<int>(2 * half), theta);
          cos[t * half + i] = std::cos(f);
          sin[t * half + i] = std::sin(f);
        }
      }
  }
};
/// Rotates, in place, H heads of size D in each of the B·T_len rows of x (rows ld apart, head h at
/// column h·D); row b·T_len + t has position t + pos0. Backward = the inverse rotation, in place on dx.
/// `cos` and `sin` are [positions × D/2] tables (rope_table on the host, a device copy on CUDA).
template <class T>
void rope_forward(host_system, T* x, i64 rows, i64 T_len, i64 H, i64 D, i64 ld, i64 pos0, const acc_t<T>* cos,
                  const acc_t<T>* sin) {
  const prof::scope prof_("rope fwd");
  host_system::for_each_index(rows * H * (D / 2), kernels::rope<T, false>{x, cos, sin, T_len, H, D / 2, ld, pos0});
}
template <class T>
void rope_backward(host_system, T* dx, i64 rows, i64 T_len, i64 H, i64 D, i64 ld, i64 pos0, const acc_t<T>* cos,
                   const acc_t<T>* sin) {
  const prof::scope prof_("rope bwd");
  host_system::for_each_index(rows * H * (D / 2), kernels::rope<T, true>{dx, cos, sin, T_len, H, D / 2, ld, pos0});
}

// ---- embeddings ----------------------------------------------------------------------------------------
/// out[n] = wte[tokens[n] − v0] when the token is one of this rank's V_local rows, else 0.
template <class T>
void embedding_forward(host_system, const std::int32_t* tokens, i64 N, const T* wte, i64 V_local, i64 v0, i64 C,
                       T* out) {
  const prof::scope prof_("embedding fwd");
  // host: one row copy per token (the device walks elements with kernels::embedding_forward)
#pragma omp parallel for schedule(static) if (N * C >= host_system::parallel_threshold)
  for (i64 n = 0; n < N; ++n) {
    const i64 r = static_cast<i64>(tokens[n]) - v0;
    T* dst = out + n * C;
    if (r >= 0 && r < V_local) std::copy_n(wte + r * C, C, dst);
    else std::fill_n(dst, C, store<T>(0.0f));
  }
}
/// dwte[tokens[n] − v0] += dout[n] for this rank's rows. Threads own column ranges: deterministic.
template <class T>
void embedding_backward(host_system, const std::int32_t* tokens, i64 N, const T* dout, i64 V_local, i64 v0, i64 C,
                        grad_t<T>* dwte) {
  const prof::scope prof_("embedding bwd");
  const i64 chunk = 64;
  const i64 nchunks = (C + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
  for (i64 ch = 0; ch < nchunks; ++ch) {
    const i64 c0 = ch * chunk, c1 = std::min(C, c0 + chunk);
    for (i64 n = 0; n < N; ++n) {
      const i64 r = static_cast<i64>(tokens[n]) - v0;
      if (r < 0 || r >= V_local) continue;
      grad_t<T>* dst = dwte + r * C;
      const T* src = dout + n * C;
#pragma omp simd
      for (i64 c = c0; c < c1; ++c) dst[c] += load(src[c]);
    }
  }
}
/// x[b, t] += wpe[t + pos0] over rows n = b·T_len + t.
template <class T>
void add_position_embedding(host_system, const T* wpe, i64 N, i64 T_len, i64 C, i64 pos0, T* x) {
  const prof::scope prof_("position embedding fwd");
  // host: row by row (the device walks elements with kernels::add_position_embedding)
#pragma omp parallel for schedule(static) if (N * C >= host_system::parallel_threshold)
  for (i64 n = 0; n < N; ++n) {
    T* row = x + n * C;
    const T* p = wpe + (n % T_len + pos0) * C;
#pragma omp simd
    for (i64 c = 0; c < C; ++c) row[c] = store<T>(load(row[c]) + load(p[c]));
  }
}
/// dwpe[t + pos0] += Σ_b dx[b, t].
template <class T>
void position_embedding_backward(host_system, const T* dx, i64 N, i64 T_len, i64 C, i64 pos0, grad_t<T>* dwpe) {
  const prof::scope prof_("position embedding bwd");
  const i64 B = N / T_len;
#pragma omp parallel for schedule(static)
  for (i64 t = 0; t < T_len; ++t) {
    grad_t<T>* dst = dwpe + (t + pos0) * C;
    for (i64 b = 0; b < B; ++b) {
      const T* src = dx + (b * T_len + t) * C;
#pragma omp simd
      for (i64 c = 0; c < C; ++c) dst[c] += load(src[c]);
    }
  }
}

/// x[r, c] += b[c] for `rows` rows of C elements (nothing when b is null).
template <class T> void add_bias_rows(host_system, T* x, const T* b, i64 rows, i64 C) {
  if (!b) return;
#pragma omp parallel for schedule(static)
  for (i64 r = 0; r < rows; ++r)
    for (i64 c = 0; c < C; ++c) x[r * C + c] = store<T>(load(x[r * C + c]) + load(b[c]));
}

/// Σ g² over n elements, accumulated in double (a gradient's share of the squared global norm).
/// In pieces of parallel_threshold elements (a contiguous run of pieces per thread), each summed in `ways`
/// independent partial sums so that the additions do not wait on one another (the pass runs at memory
/// bandwidth rather than at the add's latency). The order of additions depends on the thread count.
template <class G> double sum_of_squares(host_system, const G* g, i64 n) {
  constexpr int ways = 32;
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n >= host_system::parallel_threshold)
  for (i64 b = 0; b < n; b += host_system::parallel_threshold) {
    const i64 e = std::min(n, b + host_system::parallel_threshold);
    double part[ways] = {};
    i64 j = b;
    for (; j + ways <= e; j += ways)
#pragma omp simd
      for (int k = 0; k < ways; ++k) part[k] += static_cast<double>(g[j + k]) * g[j + k];
    for (; j < e; ++j) part[0] += static_cast<double>(g[j]) * g[j];
    for (int k = 0; k < ways; ++k) s += part[k];
  }
  return s;
}
/// *out = Σ g² (as above) in the system's memory: the pieces of the global norm stay there until the
/// step's end, when they come back together.
template <class G> void sum_of_squares(host_system, const G* g, i64 n, double* out) {
  *out = sum_of_squares(host_system{}, g, n);
}
/// *out = Σ x[i] in index order, accumulated in double (a microbatch's summed token loss), in the system's
/// memory.
template <class A> void sum_in_double(host_system, const A* x, i64 n, double* out) {
  double s = 0;
  for (i64 i = 0; i < n; ++i) s += static_cast<double>(x[i]);
  *out = s;
}

// ---- AdamW ---------------------------------------------------------------------------------------------
/// One fused AdamW step over n elements. `decay` selects decoupled weight decay (matrices, embeddings).
/// With `master` non-null the fp32 master weights are updated and `param` (bf16) receives their rounding.
template <class T>
void adamw_step(host_system, T* param, grad_t<T>* master, const grad_t<T>* grad, grad_t<T>* m, grad_t<T>* v, i64 n,
                const math::adamw_params& p, bool decay) {
  const prof::scope prof_("adamw");
  using G = grad_t<T>;
  const auto s = math::adamw_prepare<G>(p, decay);
#if TESSERA_HOST_VECTORS
  // a vector at a time (the square root and division of the scalar loop would make this compute-bound;
  // vectorised it is a stream over memory); the tail, and other types, run the shared scalar kernel
  if constexpr (host_detail::vector_storage_v<T> && std::is_same_v<G, float>) {
    using namespace host_detail;
    const kernels::adamw<T, G> tail{param, master, grad, m, v, s};
    vector_blocks(
        n,
        [=](i64 i) {
          simd::vfloat mi = simd::load(m + i), vi = simd::load(v + i);
          const simd::vfloat w = master ? simd::load(master + i) : simd::load(param + i);
          const simd::vfloat nw = math::adamw_update(w, simd::load(grad + i), mi, vi, s);
          simd::store(m + i, mi);
          simd::store(v + i, vi);
          if (master) simd::store(master + i, nw);
          simd::store(param + i, nw);
        },
        tail);
    return;
  }
#endif
  host_system::for_each_index(n, kernels::adamw<T, G>{param, master, grad, m, v, s});
}

}  // namespace tessera::ops
