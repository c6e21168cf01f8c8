// tessera/ops/cuda/blas.hpp — the device GEMM: cuBLASLt, row-major like host::gemm, C = αA·B + βC.
//
// fp32 inputs → fp32 output; bf16 inputs → fp32 or bf16 output. Always CUBLAS_COMPUTE_32F (fp32
// accumulation, no TF32), fp32 α and β. A row-major C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ,
// so the column-major call swaps the operands and keeps the transposition flags. Each host thread keeps a
// cuBLASLt handle and a cache of the heuristic's choice per problem (types, sizes, strides, pointer
// alignments, epilogue), so a training step after the first asks the heuristic nothing; the 32 MiB
// workspace is the stream's operator scratch (common.hpp), so matmuls on two streams never share one.
// Nothing here is a hand-written GEMM.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/blas.hpp needs a CUDA compiler (nvcc); the host GEMM is tessera/ops/host/blas.hpp"
#endif
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <type_traits>

#include "tessera/core/bf16.hpp"
#include "tessera/core/cuda_system.hpp"
#include "tessera/core/error.hpp"
#include "tessera/ops/cuda/common.hpp"
#include "tessera/ops/host/blas.hpp"

namespace tessera::ops {

namespace cuda_detail {

/// Throws std::runtime_error naming the call and cuBLAS's status (name and description).
inline void lt_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(cat("tessera: cuBLASLt ", what, " failed: ", cublasLtGetStatusName(s), " (",
                                 cublasLtGetStatusString(s), ")"));
}

template <class T> constexpr cudaDataType_t cuda_type() {
  if constexpr (std::is_same_v<T, float>) return CUDA_R_32F;
  else if constexpr (std::is_same_v<T, bf16>) return CUDA_R_16BF;
  else static_assert(sizeof(T) == 0, "cuBLASLt GEMM: fp32 or bf16 only");
}

/// Largest power of two (≤ 256) dividing the address: what the heuristic is told about a buffer.
inline std::uint32_t alignment_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t al = 256;
  while (al > 1 && (a % al) != 0) al /= 2;
  return al;
}

/// Problem key of the algorithm cache.
using lt_key = std::array<std::int64_t, 16>;

struct lt_context {
  static constexpr std::size_t workspace_bytes = std::size_t(32) << 20;
  cublasLtHandle_t handle = nullptr;
  int device = -1;
  std::map<lt_key, cublasLtMatmulHeuristicResult_t> algos;

  lt_context() = default;
  lt_context(const lt_context&) = delete;
  lt_context& operator=(const lt_context&) = delete;
  ~lt_context() { release(); }
  void release() {
    // errors at process exit (runtime unloading) are ignored
    if (handle) (void)cublasLtDestroy(handle);
    handle = nullptr;
    algos.clear();
  }
  /// This thread's context for the current device (recreated if the thread moved to another device).
  static lt_context& get() {
    thread_local lt_context c;
    int dev = 0;
    cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
    if (c.handle && c.device != dev) {
      cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (cuBLASLt context switch)");
      c.release();
    }
    if (!c.handle) {
      lt_check(cublasLtCreate(&c.handle), "cublasLtCreate");
      c.device = dev;
    }
    return c;
  }
};

/// RAII holders for the cuBLASLt descriptors of one call.
struct lt_descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  lt_descs() = default;
  lt_descs(const lt_descs&) = delete;
  lt_descs& operator=(const lt_descs&) = delete;
  ~lt_descs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

template <class V>
void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t what, const V& v, const char* name) {
  lt_check(cublasLtMatmulDescSetAttribute(d, what, &v, sizeof(v)), name);
}
template <class V>
void set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t what, const V& v, const char* name) {
  lt_check(cublasLtMatmulPreferenceSetAttribute(p, what, &v, sizeof(v)), name);
}

/// What cuBLASLt does to the product before it is stored (its epilogue), with its operands (C's element type).
///   none   C = αAB + βC
///   bias   C = αAB + βC + bias[n] broadcast over rows
///   gelu   C = gelu(AB + bias) (tanh form; bias may be null), aux[m×n] = AB + bias   (GELU_AUX[_BIAS])
///   dgelu  C = AB ⊙ gelu′(aux)                                                       (DGELU)
/// aux is row-major with leading dimension aux_ld (a multiple of 8).
struct lt_epilogue {
  enum kind_t { none, bias, gelu, dgelu } kind = none;
  const void* bias_ptr = nullptr;
  void* aux = nullptr;
  i64 aux_ld = 0;
  cublasLtEpilogue_t code() const {
    switch (kind) {
      case bias: return CUBLASLT_EPILOGUE_BIAS;
      case gelu: return bias_ptr ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
      case dgelu: return CUBLASLT_EPILOGUE_DGELU;
      default: return CUBLASLT_EPILOGUE_DEFAULT;
    }
  }
};

/// Sets the epilogue and its operands on a matmul descriptor.
inline void set_epilogue(cublasLtMatmulDesc_t op, const lt_epilogue& e) {
  if (e.kind == lt_epilogue::none) return;
  const cublasLtEpilogue_t code = e.code();
  set_attr(op, CUBLASLT_MATMUL_DESC_EPILOGUE, code, "set EPILOGUE");
  if (e.bias_ptr) set_attr(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, e.bias_ptr, "set BIAS_POINTER");
  if (e.aux) {
    set_attr(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, e.aux, "set EPILOGUE_AUX_POINTER");
    const std::int64_t ld = e.aux_ld;
    set_attr(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, ld, "set EPILOGUE_AUX_LD");
  }
}

/// C[m×n] (row-major, ldc; also the output) = alpha·op(A)·op(B) + beta·C, then the epilogue `e`. Returns
/// false — having done nothing — only when an epilogue is asked for and cuBLASLt has no algorithm for it;
/// the caller then does the epilogue's work itself. Without an epilogue, no algorithm is an error.
template <class TA, class TC>
bool lt_gemm(const cuda_system& sys, host::trans ta, host::trans tb, i64 m, i64 n, i64 k, float alpha, const TA* a,
             i64 lda, const TA* b, i64 ldb, float beta, TC* c, i64 ldc, const lt_epilogue& e = {}) {
  static_assert(is_device_storage_v<TA> && is_device_storage_v<TC>, "cuBLASLt GEMM: fp32 or bf16 only");
  static_assert(!(std::is_same_v<TA, float> && std::is_same_v<TC, bf16>),
                "cuBLASLt GEMM: fp32 inputs take an fp32 output");
  const bool tra = ta == host::trans::yes, trb = tb == host::trans::yes;
  // column-major view: Cᵀ[n×m] = op(B)ᵀ[n×k] · op(A)ᵀ[k×m]; stored B is (trb ? n×k : k×n) row-major,
  // i.e. (trb ? k×n : n×k) column-major.
  const i64 a_rows = trb ? k : n, a_cols = trb ? n : k;  // operand "A" of the column-major call: b
  const i64 b_rows = tra ? m : k, b_cols = tra ? k : m;  // operand "B" of the column-major call: a
  if (ldb < std::max<i64>(1, a_rows) || lda < std::max<i64>(1, b_rows) || ldc < std::max<i64>(1, n))
    throw usage_error(cat("gemm: a leading dimension is too small (m=", m, " n=", n, " k=", k, " lda=", lda,
                          " ldb=", ldb, " ldc=", ldc, ")"));
  lt_context& ctx = lt_context::get();
  const cudaDataType_t in_t = cuda_type<TA>(), out_t = cuda_type<TC>();

  lt_descs d;
  lt_check(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t op_a = trb ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = tra ? CUBLAS_OP_T : CUBLAS_OP_N;
  set_attr(d.op, CUBLASLT_MATMUL_DESC_TRANSA, op_a, "set TRANSA");
  set_attr(d.op, CUBLASLT_MATMUL_DESC_TRANSB, op_b, "set TRANSB");
  set_epilogue(d.op, e);
  lt_check(cublasLtMatrixLayoutCreate(&d.a, in_t, static_cast<std::uint64_t>(a_rows), static_cast<std::uint64_t>(a_cols), ldb),
           "cublasLtMatrixLayoutCreate (A)");
  lt_check(cublasLtMatrixLayoutCreate(&d.b, in_t, static_cast<std::uint64_t>(b_rows), static_cast<std::uint64_t>(b_cols), lda),
           "cublasLtMatrixLayoutCreate (B)");
  lt_check(cublasLtMatrixLayoutCreate(&d.c, out_t, static_cast<std::uint64_t>(n), static_cast<std::uint64_t>(m), ldc),
           "cublasLtMatrixLayoutCreate (C)");

  const std::uint32_t al_a = alignment_of(b), al_b = alignment_of(a), al_c = alignment_of(c);
  const std::uint32_t al_bias = e.bias_ptr ? alignment_of(e.bias_ptr) : 0, al_aux = e.aux ? alignment_of(e.aux) : 0;
  const lt_key key{static_cast<std::int64_t>(in_t), static_cast<std::int64_t>(out_t), tra, trb, m, n, k, lda, ldb,
                   ldc, al_a, al_b, al_c, al_bias * 512 + al_aux, static_cast<std::int64_t>(e.code()), e.aux_ld};
  auto it = ctx.algos.find(key);
  if (it == ctx.algos.end()) {
    lt_check(cublasLtMatmulPreferenceCreate(&d.pref), "cublasLtMatmulPreferenceCreate");
    const std::uint64_t ws = lt_context::workspace_bytes;
    set_pref(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ws, "set MAX_WORKSPACE_BYTES");
    set_pref(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_a, "set MIN_ALIGNMENT_A_BYTES");
    set_pref(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_b, "set MIN_ALIGNMENT_B_BYTES");
    set_pref(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_c, "set MIN_ALIGNMENT_C_BYTES");
    set_pref(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_c, "set MIN_ALIGNMENT_D_BYTES");
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(ctx.handle, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &res, &found);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
      if (e.kind != lt_epilogue::none && (st == CUBLAS_STATUS_NOT_SUPPORTED || found == 0)) return false;
      if (st != CUBLAS_STATUS_SUCCESS) lt_check(st, "cublasLtMatmulAlgoGetHeuristic");
      throw std::runtime_error(cat("tessera: cuBLASLt has no algorithm for gemm ", dtype_name(dtype_v<TA>), "→",
                                   dtype_name(dtype_v<TC>), " m=", m, " n=", n, " k=", k, " lda=", lda, " ldb=", ldb,
                                   " ldc=", ldc, " (CUBLAS_STATUS_NOT_SUPPORTED)"));
    }
    it = ctx.algos.emplace(key, res).first;
  }
  lt_check(cublasLtMatmul(ctx.handle, d.op, &alpha, b, d.a, a, d.b, &beta, c, d.c, c, d.c, &it->second.algo,
                          device_scratch<unsigned char>(sys, lt_context::workspace_bytes, lt_workspace_slot),
                          lt_context::workspace_bytes, sys.stream()),
           "cublasLtMatmul");
  return true;
}

/// C[i, j] = beta · C[i, j] over a row-major m×n block (the k = 0 GEMM; beta = 0 writes zeros).
template <class TC>
__global__ void scale_rows_kernel(TC* c, i64 m, i64 n, i64 ldc, float beta) {
  const i64 total = m * n;
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 r = i / n, col = i - r * n;
    TC& e = c[r * ldc + col];
    e = store<TC>(beta == 0.0f ? 0.0f : beta * load(e));
  }
}

}  // namespace cuda_detail

/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major with leading dimensions lda, ldb, ldc;
/// device pointers, issued on sys.stream(). TA ∈ {float, bf16}; TC = float, or bf16 for bf16
/// inputs. fp32 accumulation throughout.
template <class TA, class TC>
void gemm(cuda_system sys, host::trans ta, host::trans tb, i64 m, i64 n, i64 k, float alpha, const TA* a, i64 lda,
          const TA* b, i64 ldb, float beta, TC* c, i64 ldc) {
  const trace::device_span traced_("gemm (cuBLASLt)");
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 1.0f) return;
    cuda_detail::launch(sys, "scale_rows_kernel", cuda_detail::scale_rows_kernel<TC>, cuda_detail::grid_for(m * n, 256),
                        256, c, m, n, ldc, beta);
    return;
  }
  cuda_detail::lt_gemm<TA, TC>(sys, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace tessera::ops
