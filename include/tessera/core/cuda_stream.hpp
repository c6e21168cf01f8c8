// tessera/core/cuda_stream.hpp — the CUDA runtime basics every CUDA header shares: errors as exceptions,
// and the device count. CUDA only (include from .cu units).
#pragma once
#if !defined(__CUDACC__)
#error "tessera/core/cuda_stream.hpp needs a CUDA compiler (nvcc)"
#endif
#include <cuda_runtime.h>

#include <stdexcept>

#include "tessera/core/error.hpp"

namespace tessera {

inline void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(cat("tessera: ", what, " failed: ", cudaGetErrorString(e)));
}

/// Number of CUDA devices, 0 when there is none or no driver (never throws).
inline int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace tessera
