// tessera/ops/host/gemm_bench.hpp — GEMM rates measured on this machine: the peak the MFU is reported
// against, and a profiled GEMM shape run alone (the profile compares each GEMM of a step with it).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/bf16.hpp"
#include "tessera/ops/host/blas.hpp"

namespace tessera::ops::host {

/// Peak FLOP/s of one rank, measured with an OpenBLAS GEMM (rank 0's value is used everywhere).
/// The GEMM rate the MFU is measured against: an n = 768 square GEMM in the step's precision (bf16 inputs run
/// on the engine bf16 GEMMs get here: AVX512-BF16 through oneDNN where available).
template <class T = float>
inline double measure_peak_flops() {
  const int n = 768;
  std::vector<T> a(static_cast<std::size_t>(n) * n, T(0.5f)), b(a);
  std::vector<float> c(a.size());
  double best = 1e30;
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    ops::host::gemm(ops::host::trans::no, ops::host::trans::no, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * n * n / best;
}
/// Whether a profile row is a GEMM: "sgemm …" (fp32, OpenBLAS) or "bf16gemm …" (bf16 inputs).
inline bool is_gemm_row(const std::string& name) {
  return name.rfind("sgemm ", 0) == 0 || name.rfind("bf16gemm ", 0) == 0;
}
/// A GEMM shape of the profile ("sgemm NT 256x768x2304", "bf16gemm NN …") run alone on fresh buffers:
/// best GFLOP/s of 6 after a warm-up (the best, because other work on a shared machine only slows a run);
/// with sustain_s > 0 instead the mean GFLOP/s of back-to-back calls for that long (what the cores keep up
/// under a continuous load, as in a training step, rather than in a short burst).
inline double isolated_gemm_gflops(const std::string& name, double sustain_s = 0) {
  char kind[16] = {}, ta = 'N', tb = 'N';
  long long m = 0, n = 0, k = 0;
  if (std::sscanf(name.c_str(), "%15s %c%c %lldx%lldx%lld", kind, &ta, &tb, &m, &n, &k) != 6 || m <= 0 || n <= 0 ||
      k <= 0 || !is_gemm_row(name))
    return 0;
  using ops::host::trans;
  const trans a_t = ta == 'T' ? trans::yes : trans::no, b_t = tb == 'T' ? trans::yes : trans::no;
  const long long lda = a_t == trans::yes ? m : k, ldb = b_t == trans::yes ? k : n;
  std::vector<float> C(static_cast<std::size_t>(m * n), 0.0f);
  auto run = [&](auto zero) {
    using E = decltype(zero);
    std::vector<E> A(static_cast<std::size_t>(m * k), E(0.01f)), B(static_cast<std::size_t>(k * n), E(0.02f));
    double best = 1e30;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      ops::host::gemm(a_t, b_t, m, n, k, 1.0f, A.data(), lda, B.data(), ldb, 1.0f, C.data(), n);
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rep > 0) best = std::min(best, dt);
    }
    if (sustain_s > 0) {
      const auto t0 = std::chrono::steady_clock::now();
      int calls = 0;
      double dt = 0;
      do {
        ops::host::gemm(a_t, b_t, m, n, k, 1.0f, A.data(), lda, B.data(), ldb, 1.0f, C.data(), n);
        ++calls;
        dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } while (dt < sustain_s);
      return dt / calls;
    }
    return best;
  };
  const double best = std::string_view(kind) == "bf16gemm" ? run(bf16(0.0f)) : run(0.0f);
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / best / 1e9;
}
}  // namespace tessera::ops::host
