// tessera/core/cuda_system.hpp — the CUDA backend as a type (device memory, Thrust loops).
// CUDA only: include from .cu translation units (or with nvcc -x cu).
//
// Same interface as host_system: buffer<T> (thrust::device_vector), data(buf), for_each_index(n, f)
// with f a TS_HD functor. Work is issued on the system's current stream (default: the legacy stream).
#pragma once
#if !defined(__CUDACC__)
#error "tessera/core/cuda_system.hpp needs a CUDA compiler (nvcc); the host backend is tessera/core/host_system.hpp"
#endif
#include <cuda_runtime.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "tessera/core/config.hpp"
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

struct cuda_system {
  static constexpr const char* name = "cuda";
  template <class T>
  using buffer = thrust::device_vector<T>;

  template <class T>
  static T* data(thrust::device_vector<T>& v) { return thrust::raw_pointer_cast(v.data()); }
  template <class T>
  static const T* data(const thrust::device_vector<T>& v) { return thrust::raw_pointer_cast(v.data()); }

  static cudaStream_t& stream() {
    static thread_local cudaStream_t s = nullptr;
    return s;
  }

  template <class F>
  static void for_each_index(std::int64_t n, const F& f) {
    thrust::for_each(thrust::cuda::par.on(stream()), thrust::counting_iterator<std::int64_t>(0),
                     thrust::counting_iterator<std::int64_t>(n), f);
  }
  static void synchronize() { cuda_check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize"); }
};

}  // namespace tessera
