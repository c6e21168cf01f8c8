// tessera/ops/cuda/cudnn_attention.hpp — bf16 attention on cuDNN's fused flash attention where it can run,
// for ops/cuda/attention.hpp, which runs tessera's own kernel where it cannot.
//
// cuDNN runs a problem when libtessera_cudnn_sdpa.so loads (ops/cuda/cudnn_sdpa.hpp) and cuDNN has an
// engine for both directions of its shape (the library refuses a problem whose forward or backward it
// cannot build, so the forward's lse always suits the backward that follows). fp32 storage always takes
// tessera's kernel: cuDNN's fused attention is for 16-bit inputs. Every choice is recorded for the log
// (core/engine_choice.hpp) with its reason; a failure after cuDNN accepted the problem is an error.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda/cudnn_attention.hpp needs a CUDA compiler (nvcc)"
#endif
#include <string>
#include <type_traits>

#include "tessera/core/bf16.hpp"
#include "tessera/core/cuda_system.hpp"
#include "tessera/core/engine_choice.hpp"
#include "tessera/core/error.hpp"
#include "tessera/ops/attention_shape.hpp"
#include "tessera/ops/cuda/cudnn_sdpa.hpp"

namespace tessera::ops::cuda_detail {

inline constexpr const char* own_attention_kernel = "tessera CUDA flash-attention kernel (fp32 arithmetic)";

/// Records that `direction` runs tessera's kernel, and why.
inline void record_own_kernel(const char* direction, const std::string& why) {
  engine_choice::process().record(cat("attention ", direction), cat(own_attention_kernel, ": ", why));
}

/// Interprets a library call's result: true when cuDNN ran, false (recorded) when it refused the problem.
inline bool cudnn_attention_result(int r, const char* direction, const char* why) {
  if (r == 0) {
    engine_choice::process().record(cat("attention ", direction),
                                    cat("cuDNN fused flash attention (", cudnn_sdpa::process().version, ")"));
    return true;
  }
  if (r == TESSERA_SDPA_UNSUPPORTED) {
    record_own_kernel(direction, cat("cuDNN has no engine for ", why));
    return false;
  }
  throw std::runtime_error(cat("attention ", direction, " (cuDNN): ", why));
}

/// The library when it loaded; otherwise null, with tessera's kernel recorded for `direction` and why.
inline const cudnn_sdpa::library* loaded_library(const char* direction) {
  const cudnn_sdpa::library& lib = cudnn_sdpa::process();
  if (lib.ok) return &lib;
  record_own_kernel(direction, cat("cuDNN attention unavailable (", lib.why, ")"));
  return nullptr;
}

/// The forward on cuDNN (o, lse written): true, or false when the caller runs its own kernel.
/// @pre sh packed (no zero strides) and checked.
template <class T>
bool cudnn_attention_forward(const cuda_system& sys, const attention_shape& sh, int D, const T* q, const T* k,
                             const T* v, T* o, float* lse, float scale) {
  if constexpr (!std::is_same_v<T, bf16>) {
    record_own_kernel("forward", "fp32 storage (cuDNN's fused attention takes bf16)");
    return false;
  } else {
    const cudnn_sdpa::library* lib = loaded_library("forward");
    if (!lib) return false;
    const tessera_sdpa_problem p = cudnn_sdpa::problem(sh, D, scale);
    char why[1024] = {};
    const int r = lib->forward(&p, q, k, v, o, lse, sys.stream(), why, sizeof why);
    return cudnn_attention_result(r, "forward", why);
  }
}

/// The backward on cuDNN (dq, dk, dv written): true, or false when the caller runs its own kernel.
template <class T>
bool cudnn_attention_backward(const cuda_system& sys, const attention_shape& sh, int D, const T* dout, const T* q,
                              const T* k, const T* v, const T* o, const float* lse, float scale, T* dq, T* dk, T* dv) {
  if constexpr (!std::is_same_v<T, bf16>) {
    record_own_kernel("backward", "fp32 storage (cuDNN's fused attention takes bf16)");
    return false;
  } else {
    const cudnn_sdpa::library* lib = loaded_library("backward");
    if (!lib) return false;
    const tessera_sdpa_problem p = cudnn_sdpa::problem(sh, D, scale);
    char why[1024] = {};
    const int r = lib->backward(&p, dout, q, k, v, o, lse, dq, dk, dv, sys.stream(), why, sizeof why);
    return cudnn_attention_result(r, "backward", why);
  }
}

}  // namespace tessera::ops::cuda_detail
