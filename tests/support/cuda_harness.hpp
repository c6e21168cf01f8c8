// Test harness for the CUDA backend: data moves to device vectors, collectives run on NCCL.
#pragma once
#include <mpi.h>
#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include <vector>

#include "tessera/comm/nccl.hpp"

namespace tessera::testing {
struct cuda_harness {
  using comm = nccl_comm;
  static comm make_comm(MPI_Comm c) { return nccl_comm::from_mpi(c); }
  template <class T>
  static thrust::device_vector<T> to_device(const std::vector<T>& v) { return thrust::device_vector<T>(v.begin(), v.end()); }
  template <class T>
  static std::vector<T> to_host(const thrust::device_vector<T>& v) {
    std::vector<T> h(v.size());
    thrust::copy(v.begin(), v.end(), h.begin());
    return h;
  }
  template <class T>
  static T* data(thrust::device_vector<T>& v) { return thrust::raw_pointer_cast(v.data()); }
};
}  // namespace tessera::testing
