// tessera/ops/host/onednn.hpp — bf16 GEMMs on the CPU's AVX512-BF16 units through oneDNN, loaded at run time.
//
// Debian 12's OpenBLAS (0.3.21) is built without BUILD_BFLOAT16, so it has no cblas_sbgemm. oneDNN (Debian's
// libdnnl2, the library PyTorch's CPU backend uses) has bf16 matmul kernels for AVX512-BF16 (`brg:
// avx512_core_bf16`): bf16 inputs, fp32 accumulation, fp32 output, about twice the fp32 GEMM rate of the same
// cores. It is opened with dlopen, so a program built with the README's compile line (-lopenblas only) still
// links; where the library, its header or the CPU feature is missing, `available()` is false and says why,
// and the caller falls back to widening the inputs to fp32 (exact) for OpenBLAS's sgemm.
//
// The C API of oneDNN 2.x is used (memory descriptors by strides, matmul op descriptor, output scale = α,
// sum post-op = β); primitives are cached per shape, so a training step creates none after its first.
#pragma once
#if defined(__has_include)
#if __has_include(<oneapi/dnnl/dnnl.h>) && __has_include(<dlfcn.h>)
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#if DNNL_VERSION_MAJOR == 2
#define TESSERA_HAVE_ONEDNN_HEADER 1
#endif
#endif
#endif

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>

#include "tessera/core/bf16.hpp"

namespace tessera::ops::host::onednn {

/// Whether bf16 GEMMs can run through oneDNN in this process, and if not, why.
struct status {
  bool ok = false;
  std::string why;     ///< empty when ok
  std::string kernel;  ///< oneDNN's name of the kernel a probe GEMM got, e.g. "brg:avx512_core_bf16"
};

#ifdef TESSERA_HAVE_ONEDNN_HEADER
namespace detail {
/// One cached matmul: the primitive and its three memory objects (data handles set per call).
struct entry {
  dnnl_primitive_t prim = nullptr;
  dnnl_memory_t a = nullptr, b = nullptr, c = nullptr;
};
using key = std::tuple<bool, bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, std::uint32_t, std::uint32_t>;

struct api {
  decltype(&::dnnl_engine_create) engine_create = nullptr;
  decltype(&::dnnl_stream_create) stream_create = nullptr;
  decltype(&::dnnl_stream_wait) stream_wait = nullptr;
  decltype(&::dnnl_memory_desc_init_by_strides) md_init = nullptr;
  decltype(&::dnnl_matmul_desc_init) matmul_init = nullptr;
  decltype(&::dnnl_primitive_attr_create) attr_create = nullptr;
  decltype(&::dnnl_primitive_attr_destroy) attr_destroy = nullptr;
  decltype(&::dnnl_primitive_attr_set_output_scales) attr_scales = nullptr;
  decltype(&::dnnl_primitive_attr_set_post_ops) attr_post_ops = nullptr;
  decltype(&::dnnl_post_ops_create) post_ops_create = nullptr;
  decltype(&::dnnl_post_ops_destroy) post_ops_destroy = nullptr;
  decltype(&::dnnl_post_ops_append_sum) append_sum = nullptr;
  decltype(&::dnnl_primitive_desc_create) pd_create = nullptr;
  decltype(&::dnnl_primitive_desc_destroy) pd_destroy = nullptr;
  decltype(&::dnnl_primitive_desc_query) pd_query = nullptr;
  decltype(&::dnnl_primitive_create) prim_create = nullptr;
  decltype(&::dnnl_primitive_execute) execute = nullptr;
  decltype(&::dnnl_memory_create) mem_create = nullptr;
  decltype(&::dnnl_memory_set_data_handle) mem_set = nullptr;
  dnnl_engine_t engine = nullptr;
  dnnl_stream_t stream = nullptr;
  status st;
  std::mutex mu;                  ///< guards the cache
  std::map<key, entry> cache;     ///< one matmul per shape, kept for the process's life (the probe's included)
};

inline std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

/// Builds the matmul C[m×n] = α·op(A)·op(B) + β·C (row-major, bf16 A/B, fp32 C) or says why not.
inline bool make(api& f, const key& k, entry& e, std::string* kernel, std::string& why) {
  const auto [ta, tb, m, n, kk, lda, ldb, ldc, ab, bb] = k;
  float alpha, beta;
  std::memcpy(&alpha, &ab, 4);
  std::memcpy(&beta, &bb, 4);
  dnnl_memory_desc_t amd, bmd, cmd;
  const dnnl_dims_t ad{m, kk}, bd{kk, n}, cd{m, n};
  const dnnl_dims_t as{ta ? 1 : lda, ta ? lda : 1}, bs{tb ? 1 : ldb, tb ? ldb : 1}, cs{ldc, 1};
  if (f.md_init(&amd, 2, ad, dnnl_bf16, as) != dnnl_success || f.md_init(&bmd, 2, bd, dnnl_bf16, bs) != dnnl_success ||
      f.md_init(&cmd, 2, cd, dnnl_f32, cs) != dnnl_success) {
    why = "dnnl_memory_desc_init_by_strides failed";
    return false;
  }
  dnnl_matmul_desc_t md;
  if (f.matmul_init(&md, &amd, &bmd, nullptr, &cmd) != dnnl_success) {
    why = "dnnl_matmul_desc_init failed";
    return false;
  }
  dnnl_primitive_attr_t attr = nullptr;
  dnnl_post_ops_t po = nullptr;
  f.attr_create(&attr);
  bool ok = true;
  if (alpha != 1.0f) ok = ok && f.attr_scales(attr, 1, 0, &alpha) == dnnl_success;
  if (beta != 0.0f) {
    ok = ok && f.post_ops_create(&po) == dnnl_success && f.append_sum(po, beta) == dnnl_success &&
         f.attr_post_ops(attr, po) == dnnl_success;
  }
  dnnl_primitive_desc_t pd = nullptr;
  ok = ok && f.pd_create(&pd, &md, attr, f.engine, nullptr) == dnnl_success;
  if (po) f.post_ops_destroy(po);
  f.attr_destroy(attr);
  if (!ok) {
    why = "oneDNN has no bf16 matmul for this shape and attributes";
    return false;
  }
  if (kernel) {
    const char* s = nullptr;
    if (f.pd_query(pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s) *kernel = s;
  }
  ok = f.prim_create(&e.prim, pd) == dnnl_success && f.mem_create(&e.a, &amd, f.engine, DNNL_MEMORY_NONE) == dnnl_success &&
       f.mem_create(&e.b, &bmd, f.engine, DNNL_MEMORY_NONE) == dnnl_success &&
       f.mem_create(&e.c, &cmd, f.engine, DNNL_MEMORY_NONE) == dnnl_success;
  f.pd_destroy(pd);
  if (!ok) why = "dnnl_primitive_create failed";
  return ok;
}

/// Whether a oneDNN implementation name is a kernel on bf16 hardware: "brg:avx512_core_bf16",
/// "brg:avx512_core_amx" (AMX tiles), … — not "ref:any", "gemm:jit" (emulated) or an AVX2 kernel.
inline bool is_bf16_hardware_kernel(const std::string& kernel) {
  return kernel.find("avx512_core_bf16") != std::string::npos || kernel.find("avx512_core_amx") != std::string::npos;
}

/// Opens libdnnl, resolves the C API, creates the engine and stream, probes the bf16 kernel: fills a.st.
inline void open_library(api& a) {
  void* h = nullptr;
  for (const char* name : {"libdnnl.so.2", "libdnnl.so"})
    if ((h = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  if (!h) {
    a.st.why = "libdnnl.so.2 (oneDNN 2.x) not found: install Debian's libdnnl-dev (scripts/deps.sh does)";
    return;
  }
  bool all = true;
  auto sym = [&](auto& fp, const char* name) {
    fp = reinterpret_cast<std::remove_reference_t<decltype(fp)>>(dlsym(h, name));
    if (!fp) {
      all = false;
      a.st.why = std::string("libdnnl.so lacks ") + name;
    }
  };
  sym(a.engine_create, "dnnl_engine_create");
  sym(a.stream_create, "dnnl_stream_create");
  sym(a.stream_wait, "dnnl_stream_wait");
  sym(a.md_init, "dnnl_memory_desc_init_by_strides");
  sym(a.matmul_init, "dnnl_matmul_desc_init");
  sym(a.attr_create, "dnnl_primitive_attr_create");
  sym(a.attr_destroy, "dnnl_primitive_attr_destroy");
  sym(a.attr_scales, "dnnl_primitive_attr_set_output_scales");
  sym(a.attr_post_ops, "dnnl_primitive_attr_set_post_ops");
  sym(a.post_ops_create, "dnnl_post_ops_create");
  sym(a.post_ops_destroy, "dnnl_post_ops_destroy");
  sym(a.append_sum, "dnnl_post_ops_append_sum");
  sym(a.pd_create, "dnnl_primitive_desc_create");
  sym(a.pd_destroy, "dnnl_primitive_desc_destroy");
  sym(a.pd_query, "dnnl_primitive_desc_query");
  sym(a.prim_create, "dnnl_primitive_create");
  sym(a.execute, "dnnl_primitive_execute");
  sym(a.mem_create, "dnnl_memory_create");
  sym(a.mem_set, "dnnl_memory_set_data_handle");
  if (!all) return;
  if (a.engine_create(&a.engine, dnnl_cpu, 0) != dnnl_success ||
      a.stream_create(&a.stream, a.engine, dnnl_stream_default_flags) != dnnl_success) {
    a.st.why = "oneDNN could not create a CPU engine and stream";
    return;
  }
  // Probe: oneDNN also has reference bf16 kernels (emulated, slow) for CPUs without AVX512-BF16; only the
  // ones on bf16 hardware — AVX512-BF16 (avx512_core_bf16) or AMX (avx512_core_amx) — are worth taking over
  // widened fp32 sgemm.
  entry e;
  std::string kernel, why;
  const key k{false, true, 32, 32, 32, 32, 32, 32, bits(1.0f), bits(0.0f)};
  if (!make(a, k, e, &kernel, why)) {
    a.st.why = why;
    return;
  }
  a.cache.emplace(k, e);
  a.st.kernel = kernel;
  if (!is_bf16_hardware_kernel(kernel)) {
    a.st.why = "oneDNN's bf16 matmul on this CPU is '" + kernel + "', not an AVX512-BF16 or AMX kernel";
    return;
  }
  a.st.ok = true;
}

inline api& lib() {
  static api f;
  static const bool opened = (open_library(f), true);  // once, thread-safe (static initialisation)
  (void)opened;
  return f;
}
}  // namespace detail

/// Whether bf16 GEMMs run on AVX512-BF16 through oneDNN here (probed once per process).
inline const status& probe() { return detail::lib().st; }

/// C[m×n] = α·op(A)·op(B) + β·C, row-major, bf16 A and B, fp32 accumulation and C. Requires probe().ok.
inline void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const bf16* a,
                 std::int64_t lda, const bf16* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  detail::api& f = detail::lib();
  const std::lock_guard<std::mutex> lock(f.mu);
  const detail::key key{ta, tb, m, n, k, lda, ldb, ldc, detail::bits(alpha), detail::bits(beta)};
  auto it = f.cache.find(key);
  if (it == f.cache.end()) {
    detail::entry e;
    std::string why;
    if (!detail::make(f, key, e, nullptr, why)) throw std::runtime_error("oneDNN bf16 GEMM: " + why);
    it = f.cache.emplace(key, e).first;
  }
  const detail::entry& e = it->second;
  f.mem_set(e.a, const_cast<bf16*>(a));
  f.mem_set(e.b, const_cast<bf16*>(b));
  f.mem_set(e.c, c);
  const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e.a}, {DNNL_ARG_WEIGHTS, e.b}, {DNNL_ARG_DST, e.c}};
  if (f.execute(e.prim, f.stream, 3, args) != dnnl_success || f.stream_wait(f.stream) != dnnl_success)
    throw std::runtime_error("oneDNN bf16 GEMM: dnnl_primitive_execute failed");
}
#else
inline const status& probe() {
  static const status s{false, "built without oneDNN 2.x's header (oneapi/dnnl/dnnl.h; Debian: libdnnl-dev)", {}};
  return s;
}
inline void gemm(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const bf16*, std::int64_t, const bf16*,
                 std::int64_t, float, float*, std::int64_t) {
  throw std::logic_error("oneDNN bf16 GEMM called without oneDNN (check probe().ok first)");
}
#endif

}  // namespace tessera::ops::host::onednn
