// tessera/ops/host/blas.hpp — the host GEMM: OpenBLAS cblas_{s,d,sb}gemm, row-major, C = αA·B + βC.
//
// fp32 → cblas_sgemm, fp64 (gradient-check reference) → cblas_dgemm, bf16 inputs (fp32 accumulation and
// result) → cblas_sbgemm where OpenBLAS has it, else oneDNN's AVX512-BF16 matmul (onednn.hpp, loaded at
// run time), else the inputs widened to fp32 for cblas_sgemm. Nothing here is a hand-written GEMM.
#pragma once
#include <cblas.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tessera/core/bf16.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/profile.hpp"
#include "tessera/ops/host/onednn.hpp"

#pragma weak cblas_sbgemm

namespace tessera::ops::host {

enum class trans : bool { no = false, yes = true };

namespace detail {
/// "gemm NN 256x2304x768": the profile's name of a GEMM (transposes, m×n×k).
inline std::string gemm_name(const char* kind, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k) {
  std::string s = kind;
  s += ' ';
  s += ta ? 'T' : 'N';
  s += tb ? 'T' : 'N';
  s += ' ' + std::to_string(m) + 'x' + std::to_string(n) + 'x' + std::to_string(k);
  return s;
}
inline CBLAS_TRANSPOSE cblas_t(trans t) { return t == trans::yes ? CblasTrans : CblasNoTrans; }
inline blasint blas_int(std::int64_t v, const char* what) {
  if (v < 0 || v > std::numeric_limits<blasint>::max()) {
    std::string m = "gemm: ";
    m += what;
    m += " = ";
    m += std::to_string(v);
    m += " does not fit OpenBLAS's integer";
    throw usage_error(m);
  }
  return static_cast<blasint>(v);
}
}  // namespace detail

/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major, without a profile scope of its own: for
/// the tile GEMMs inside an operator (attention) whose scope already counts them. fp32 and fp64.
inline void gemm_unprofiled(trans ta, trans tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                            const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                            std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, detail::cblas_t(ta), detail::cblas_t(tb), detail::blas_int(m, "m"),
              detail::blas_int(n, "n"), detail::blas_int(k, "k"), alpha, a, detail::blas_int(lda, "lda"), b,
              detail::blas_int(ldb, "ldb"), beta, c, detail::blas_int(ldc, "ldc"));
}
inline void gemm_unprofiled(trans ta, trans tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                            const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
                            double* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, detail::cblas_t(ta), detail::cblas_t(tb), detail::blas_int(m, "m"),
              detail::blas_int(n, "n"), detail::blas_int(k, "k"), alpha, a, detail::blas_int(lda, "lda"), b,
              detail::blas_int(ldb, "ldb"), beta, c, detail::blas_int(ldc, "ldc"));
}

/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major with leading dimensions lda, ldb, ldc
/// (fp32 GEMMs are profiled as "sgemm NT m×n×k").
inline void gemm(trans ta, trans tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  const prof::scope p(prof::enabled() ? detail::gemm_name("sgemm", ta == trans::yes, tb == trans::yes, m, n, k)
                                      : std::string(),
                      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
  gemm_unprofiled(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(trans ta, trans tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                 const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
                 std::int64_t ldc) {
  gemm_unprofiled(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
template <class T>
inline T* scratch(std::int64_t n, int slot = 0);

/// Whether this process's OpenBLAS exports cblas_sbgemm (builds with BUILD_BFLOAT16; Debian 12's
/// 0.3.21 does not). The symbol is referenced weakly, so a program links either way.
inline bool have_sbgemm() { return &cblas_sbgemm != nullptr; }

/// Which engine runs bf16 GEMMs in this process: "openblas sbgemm", "onednn <kernel>" (e.g. "onednn
/// brg:avx512_core_bf16", "onednn brg:avx512_core_amx") or "widened sgemm (no bf16 hardware in use: <why>)".
inline std::string bf16_gemm_engine() {
  if (have_sbgemm()) return "openblas sbgemm";
  if (onednn::probe().ok) return "onednn " + onednn::probe().kernel;
  return "widened sgemm (no bf16 hardware in use: " + onednn::probe().why + ")";
}
/// Whether bf16 GEMMs run on bf16 hardware (AVX512-BF16 or AMX through oneDNN, or OpenBLAS's sbgemm).
inline bool bf16_gemm_on_hardware() { return have_sbgemm() || onednn::probe().ok; }

/// bf16 inputs widened to fp32 (exactly) for cblas_sgemm: the same products, summed in fp32.
inline void gemm_widened(trans ta, trans tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                         const bf16* a, std::int64_t lda, const bf16* b, std::int64_t ldb, float beta, float* c,
                         std::int64_t ldc) {
  const std::int64_t a_rows = ta == trans::yes ? k : m, b_rows = tb == trans::yes ? n : k;
  float* wa = scratch<float>(a_rows * lda, 4);
  float* wb = scratch<float>(b_rows * ldb, 5);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < a_rows * lda; ++i) wa[i] = static_cast<float>(a[i]);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < b_rows * ldb; ++i) wb[i] = static_cast<float>(b[i]);
  gemm(ta, tb, m, n, k, alpha, static_cast<const float*>(wa), lda, static_cast<const float*>(wb), ldb, beta, c, ldc);
}

/// bf16 inputs, fp32 accumulation and result: cblas_sbgemm where OpenBLAS has it, else oneDNN's AVX512-BF16
/// matmul where the library and the CPU feature are there, else gemm_widened.
inline void gemm(trans ta, trans tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const bf16* a, std::int64_t lda, const bf16* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  static_assert(sizeof(bfloat16) == sizeof(bf16));
  if (!have_sbgemm()) {
    if (k > 0 && onednn::probe().ok) {
      const prof::scope p(prof::enabled() ? detail::gemm_name("bf16gemm", ta == trans::yes, tb == trans::yes, m, n, k)
                                          : std::string(),
                          2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
      onednn::gemm(ta == trans::yes, tb == trans::yes, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
    gemm_widened(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  cblas_sbgemm(CblasRowMajor, detail::cblas_t(ta), detail::cblas_t(tb), detail::blas_int(m, "m"),
               detail::blas_int(n, "n"), detail::blas_int(k, "k"), alpha,
               reinterpret_cast<const bfloat16*>(a), detail::blas_int(lda, "lda"),
               reinterpret_cast<const bfloat16*>(b), detail::blas_int(ldb, "ldb"), beta, c,
               detail::blas_int(ldc, "ldc"));
}

/// Per-thread scratch that grows to the largest request and is then reused: no allocation in a
/// training step after the first one.
template <class T>
inline T* scratch(std::int64_t n, int slot) {
  thread_local std::vector<T> bufs[8];
  auto& b = bufs[slot];
  if (static_cast<std::int64_t>(b.size()) < n) b.resize(static_cast<std::size_t>(n));
  return b.data();
}

}  // namespace tessera::ops::host
