/* tessera/ops/cuda/cudnn_sdpa_abi.h — the C interface of libtessera_cudnn_sdpa.so (src/cudnn/sdpa.cpp).
 *
 * cuDNN's fused flash attention (SDPA) is reached through the cuDNN frontend's graph API, whose headers cost
 * about 40 s of compile time per translation unit. So it lives in one separately compiled library with this
 * small C interface, which tessera/ops/cuda/cudnn_attention.hpp opens with dlopen: programs built with the
 * README's nvcc line neither include the frontend nor link cuDNN.
 *
 * Layout (tessera's, ops/attention_shape.hpp): token row n = b·T + t; query head h of row n at
 * q[n·ld_q + h·D …], kv head g at k[n·ld_k + g·D …] and v[n·ld_v + g·D …], o and dO at o[n·ld_o + h·D …];
 * lse (fp32, natural log of the scaled scores' softmax denominator plus their max) at lse[(b·Hq + h)·T + t].
 * Gradients dq, dk, dv have the strides of q, k, v and are written, not accumulated. bf16 storage, fp32
 * arithmetic; causal (top-left aligned); Hq a multiple of Hkv (grouped-query).
 *
 * Every function returns 0 on success. Otherwise it writes a one-line reason into why[0 … why_len) and
 * returns TESSERA_SDPA_UNSUPPORTED when cuDNN offers no engine for the problem (the caller runs another
 * kernel) or TESSERA_SDPA_ERROR when something failed (the caller reports it). */
#ifndef TESSERA_OPS_CUDA_CUDNN_SDPA_ABI_H
#define TESSERA_OPS_CUDA_CUDNN_SDPA_ABI_H
#include <stddef.h>
#include <stdint.h>

#define TESSERA_SDPA_ABI_VERSION 1
#define TESSERA_SDPA_UNSUPPORTED 1
#define TESSERA_SDPA_ERROR 2

#ifdef __cplusplus
extern "C" {
#endif

struct tessera_sdpa_problem {
  int64_t B, Hq, Hkv, T, D;        /* batch, query heads, kv heads, sequence length, head size */
  int64_t ld_q, ld_k, ld_v, ld_o;  /* row strides in elements */
  float scale;                     /* applied to q·kᵀ before the softmax */
  int deterministic;               /* backward: only engines whose result does not vary run to run */
};

/* TESSERA_SDPA_ABI_VERSION of the library (the loader refuses another). */
int tessera_cudnn_sdpa_abi(void);
/* "cuDNN 9.19.0, frontend 1.32.0": the backend library loaded and the frontend compiled in. */
const char* tessera_cudnn_sdpa_version(void);
/* Builds the graph of one direction (backward != 0: the backward) for a GPU of compute capability
 * sm_version (90: sm_90) and checks it with the frontend's validate() only: no device, no cuDNN handle. */
int tessera_cudnn_sdpa_validate(const struct tessera_sdpa_problem* p, int backward, int sm_version, char* why,
                                size_t why_len);
/* o, lse from q, k, v on `stream` (a cudaStream_t), on the current device. */
int tessera_cudnn_sdpa_forward(const struct tessera_sdpa_problem* p, const void* q, const void* k, const void* v,
                               void* o, float* lse, void* stream, char* why, size_t why_len);
/* dq, dk, dv from dO (stride ld_o), q, k, v, o and the forward's lse, on `stream`. */
int tessera_cudnn_sdpa_backward(const struct tessera_sdpa_problem* p, const void* dout, const void* q,
                                const void* k, const void* v, const void* o, const float* lse, void* dq, void* dk,
                                void* dv, void* stream, char* why, size_t why_len);

#ifdef __cplusplus
}
#endif
#endif
