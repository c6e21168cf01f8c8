// tessera/ops/host/norm.hpp — LayerNorm and RMSNorm over rows of C, forward and backward, on the host.
//
// The forward saves per-row statistics (mean and rstd for LayerNorm, rstd for RMSNorm, accumulation type)
// for the backward. Parameter gradients accumulate (+=) in per-thread partial sums reduced in a fixed
// order, so results do not depend on scheduling.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "tessera/core/profile.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/ops/host/elementwise.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops {

namespace host_detail {
/// Runs body(thread_partial[2·C]) over rows in parallel, then adds the partials into d0 (and d1) in
/// thread order.
template <class G, class Body>
void rows_with_param_grads(i64 N, i64 C, G* d0, G* d1, const Body& body) {
  const int nt = omp_get_max_threads();
  G* part = host::scratch<G>(static_cast<i64>(nt) * 2 * C, 1);
  std::fill(part, part + static_cast<i64>(nt) * 2 * C, G(0));
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
    G* mine = part + static_cast<i64>(t) * 2 * C;
#pragma omp for schedule(static)
    for (i64 n = 0; n < N; ++n) body(n, mine, mine + C);
  }
#pragma omp parallel for schedule(static)
  for (i64 c = 0; c < C; ++c) {
    G s0 = 0, s1 = 0;
    for (int t = 0; t < nt; ++t) {
      s0 += part[static_cast<i64>(t) * 2 * C + c];
      s1 += part[static_cast<i64>(t) * 2 * C + C + c];
    }
    if (d0) d0[c] += s0;
    if (d1) d1[c] += s1;
  }
}
}  // namespace host_detail

/// y = (x − mean)·rstd·gamma + beta over rows of C; beta may be null. Saves mean[N], rstd[N].
template <class T>
void layernorm_forward(host_system, const T* x, const T* gamma, const T* beta, i64 N, i64 C, float eps, T* y,
                       acc_t<T>* mean, acc_t<T>* rstd) {
  const prof::scope prof_("layernorm fwd");
  using A = acc_t<T>;
#pragma omp parallel for schedule(static)
  for (i64 n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (i64 c = 0; c < C; ++c) s += load(xr[c]);
    const A mu = s / static_cast<A>(C);
    A v = 0;
#pragma omp simd reduction(+ : v)
    for (i64 c = 0; c < C; ++c) {
      const A d = load(xr[c]) - mu;
      v += d * d;
    }
    const A rs = math::rstd_of(v / static_cast<A>(C), static_cast<A>(eps));
    T* yr = y + n * C;
    if (beta) {
#pragma omp simd
      for (i64 c = 0; c < C; ++c) yr[c] = store<T>((load(xr[c]) - mu) * rs * load(gamma[c]) + load(beta[c]));
    } else {
#pragma omp simd
      for (i64 c = 0; c < C; ++c) yr[c] = store<T>((load(xr[c]) - mu) * rs * load(gamma[c]));
    }
    mean[n] = mu;
    rstd[n] = rs;
  }
}

/// dx (= or, with accumulate_dx, +=), dgamma += Σ dy·xhat, dbeta += Σ dy (dbeta may be null).
template <class T>
void layernorm_backward(host_system, const T* dy, const T* x, const T* gamma, const acc_t<T>* mean,
                        const acc_t<T>* rstd, i64 N, i64 C, T* dx, grad_t<T>* dgamma, grad_t<T>* dbeta,
                        bool accumulate_dx = false) {
  const prof::scope prof_("layernorm bwd");
  using A = acc_t<T>;
  host_detail::rows_with_param_grads<A>(N, C, dgamma, dbeta, [&](i64 n, A* pg, A* pb) {
    const T* dyr = dy + n * C;
    const T* xr = x + n * C;
    const A mu = mean[n], rs = rstd[n];
    A s_gdy = 0, s_gdy_xhat = 0;
#pragma omp simd reduction(+ : s_gdy, s_gdy_xhat)
    for (i64 c = 0; c < C; ++c) {
      const A d = load(dyr[c]);
      const A xhat = (load(xr[c]) - mu) * rs;
      const A gdy = load(gamma[c]) * d;
      s_gdy += gdy;
      s_gdy_xhat += gdy * xhat;
      pg[c] += d * xhat;
      pb[c] += d;
    }
    const A m1 = s_gdy / static_cast<A>(C), m2 = s_gdy_xhat / static_cast<A>(C);
    T* dxr = dx + n * C;
#pragma omp simd
    for (i64 c = 0; c < C; ++c) {
      const A xhat = (load(xr[c]) - mu) * rs;
      const A g = math::layernorm_dx(load(gamma[c]) * load(dyr[c]), xhat, rs, m1, m2);
      dxr[c] = store<T>(accumulate_dx ? load(dxr[c]) + g : g);
    }
  });
}

/// y = x·rstd·gamma with rstd = 1/sqrt(mean(x²) + eps). Saves rstd[N].
template <class T>
void rmsnorm_forward(host_system, const T* x, const T* gamma, i64 N, i64 C, float eps, T* y, acc_t<T>* rstd) {
  const prof::scope prof_("rmsnorm fwd");
  using A = acc_t<T>;
#pragma omp parallel for schedule(static)
  for (i64 n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (i64 c = 0; c < C; ++c) s += load(xr[c]) * load(xr[c]);
    const A rs = math::rstd_of(s / static_cast<A>(C), static_cast<A>(eps));
    T* yr = y + n * C;
#pragma omp simd
    for (i64 c = 0; c < C; ++c) yr[c] = store<T>(load(xr[c]) * rs * load(gamma[c]));
    rstd[n] = rs;
  }
}

template <class T>
void rmsnorm_backward(host_system, const T* dy, const T* x, const T* gamma, const acc_t<T>* rstd, i64 N, i64 C,
                      T* dx, grad_t<T>* dgamma, bool accumulate_dx = false) {
  const prof::scope prof_("rmsnorm bwd");
  using A = acc_t<T>;
  host_detail::rows_with_param_grads<A>(N, C, dgamma, nullptr, [&](i64 n, A* pg, A*) {
    const T* dyr = dy + n * C;
    const T* xr = x + n * C;
    const A rs = rstd[n];
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (i64 c = 0; c < C; ++c) {
      const A d = load(dyr[c]);
      const A xhat = load(xr[c]) * rs;
      s += load(gamma[c]) * d * xhat;
      pg[c] += d * xhat;
    }
    const A m2 = s / static_cast<A>(C);
    T* dxr = dx + n * C;
#pragma omp simd
    for (i64 c = 0; c < C; ++c) {
      const A g = math::rmsnorm_dx(load(gamma[c]) * load(dyr[c]), load(xr[c]) * rs, rs, m2);
      dxr[c] = store<T>(accumulate_dx ? load(dxr[c]) + g : g);
    }
  });
}

}  // namespace tessera::ops
