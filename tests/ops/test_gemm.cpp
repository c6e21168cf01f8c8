// The host GEMMs against a double-precision reference: fp32 (OpenBLAS sgemm) and bf16 inputs through every
// engine this process has — oneDNN's AVX512-BF16 matmul (when probe() says so; otherwise the test says why
// it is skipped) and the widened-fp32 fallback — over all four transpose pairs, odd sizes, leading
// dimensions larger than the rows, α ∉ {0, 1} and β ∈ {0, 1, -0.5}. Inputs are bf16-representable, so every
// engine multiplies the same numbers; only the order of the fp32 sums differs (tolerance 1e-5 · √k relative
// to Σ|a·b|). A wrong transpose, stride, α or β moves an entry by O(1) of that scale.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "tessera/ops/host/blas.hpp"

namespace {
using tessera::bf16;
using i64 = std::int64_t;
namespace h = tessera::ops::host;

struct gemm_case {
  bool ta, tb;
  i64 m, n, k, pad;
  float alpha, beta;
};

/// Runs `engine` on one case and returns the worst |C − C_ref| / (Σ|α·a·b| + |β·c| + 1e-30) over C.
template <class Engine>
double worst_error(const gemm_case& g, std::uint64_t seed, Engine engine) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const i64 ar = g.ta ? g.k : g.m, ac = g.ta ? g.m : g.k, br = g.tb ? g.n : g.k, bc = g.tb ? g.k : g.n;
  const i64 lda = ac + g.pad, ldb = bc + g.pad, ldc = g.n + g.pad;
  std::vector<bf16> a(static_cast<std::size_t>(ar * lda)), b(static_cast<std::size_t>(br * ldb));
  for (bf16& x : a) x = bf16(u(gen));
  for (bf16& x : b) x = bf16(u(gen));
  std::vector<float> c(static_cast<std::size_t>(g.m * ldc));
  for (float& x : c) x = u(gen);
  const std::vector<float> c0 = c;
  engine(g, a.data(), lda, b.data(), ldb, c.data(), ldc);
  auto A = [&](i64 i, i64 p) { return static_cast<double>(static_cast<float>(g.ta ? a[p * lda + i] : a[i * lda + p])); };
  auto B = [&](i64 p, i64 j) { return static_cast<double>(static_cast<float>(g.tb ? b[j * ldb + p] : b[p * ldb + j])); };
  double worst = 0;
  for (i64 i = 0; i < g.m; ++i)
    for (i64 j = 0; j < ldc; ++j) {
      const double old = c0[i * ldc + j];
      if (j >= g.n) {  // padding columns of C are never written
        if (c[i * ldc + j] != c0[i * ldc + j]) return 1e30;
        continue;
      }
      double s = 0, mag = 0;
      for (i64 p = 0; p < g.k; ++p) {
        s += A(i, p) * B(p, j);
        mag += std::fabs(A(i, p) * B(p, j));
      }
      const double ref = g.alpha * s + (g.beta == 0.0f ? 0.0 : g.beta * old);
      const double scale = std::fabs(g.alpha) * mag + std::fabs(g.beta * old) + 1e-30;
      worst = std::max(worst, std::fabs(c[i * ldc + j] - ref) / scale);
    }
  return worst;
}

std::vector<gemm_case> cases() {
  std::vector<gemm_case> v;
  const i64 shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 96, 128}, {130, 31, 257}};
  const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.75f, -0.5f}};
  for (int t = 0; t < 4; ++t)
    for (auto& s : shapes)
      for (auto& x : ab)
        for (i64 pad : {0, 3}) v.push_back({(t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], pad, x[0], x[1]});
  return v;
}

template <class Engine>
void check_all(const char* name, Engine engine) {
  std::uint64_t seed = 1;
  double worst = 0;
  for (const gemm_case& g : cases()) {
    const double e = worst_error(g, seed++, engine);
    const double tol = 1e-5 * std::sqrt(static_cast<double>(g.k)) + 1e-6;
    INFO(name << ' ' << (g.ta ? 'T' : 'N') << (g.tb ? 'T' : 'N') << ' ' << g.m << 'x' << g.n << 'x' << g.k
              << " pad " << g.pad << " alpha " << g.alpha << " beta " << g.beta << ": error " << e);
    CHECK(e <= tol);
    worst = std::max(worst, e);
  }
  std::printf("  %-40s %zu cases, worst relative error %.2e\n", name, cases().size(), worst);
}

}  // namespace

TEST_CASE("fp32 sgemm (OpenBLAS) vs double") {
  check_all("sgemm", [](const gemm_case& g, const bf16* a, i64 lda, const bf16* b, i64 ldb, float* c, i64 ldc) {
    const i64 ar = g.ta ? g.k : g.m, br = g.tb ? g.n : g.k;
    std::vector<float> fa(a, a + ar * lda), fb(b, b + br * ldb);
    h::gemm(g.ta ? h::trans::yes : h::trans::no, g.tb ? h::trans::yes : h::trans::no, g.m, g.n, g.k, g.alpha,
            fa.data(), lda, fb.data(), ldb, g.beta, c, ldc);
  });
}

TEST_CASE("bf16 GEMM, widened to fp32 sgemm, vs double") {
  check_all("bf16 widened", [](const gemm_case& g, const bf16* a, i64 lda, const bf16* b, i64 ldb, float* c, i64 ldc) {
    h::gemm_widened(g.ta ? h::trans::yes : h::trans::no, g.tb ? h::trans::yes : h::trans::no, g.m, g.n, g.k, g.alpha,
                    a, lda, b, ldb, g.beta, c, ldc);
  });
}

TEST_CASE("bf16 GEMM on AVX512-BF16 (oneDNN) vs double") {
  const auto& st = h::onednn::probe();
  if (!st.ok) {
    std::printf("  bf16 oneDNN: skipped (%s)\n", st.why.c_str());
    return;
  }
  std::printf("  bf16 oneDNN kernel: %s\n", st.kernel.c_str());
  check_all("bf16 onednn", [](const gemm_case& g, const bf16* a, i64 lda, const bf16* b, i64 ldb, float* c, i64 ldc) {
    h::onednn::gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc);
  });
  // The dispatcher takes it when OpenBLAS has no sbgemm.
  CHECK(h::bf16_gemm_engine() == (h::have_sbgemm() ? std::string("openblas sbgemm") : "onednn " + st.kernel));
}
