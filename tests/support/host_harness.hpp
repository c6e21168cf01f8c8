// Test harness for the host backend: data stays in host vectors.
#pragma once
#include <mpi.h>

#include <vector>

#include "tessera/comm/mpi.hpp"

namespace tessera::testing {
struct host_harness {
  using comm = mpi_comm;
  static comm make_comm(MPI_Comm c) { return mpi_comm::split(c, 0, 0); }
  template <class T>
  static std::vector<T> to_device(std::vector<T> v) { return v; }
  template <class T>
  static std::vector<T> to_host(const std::vector<T>& v) { return v; }
  template <class T>
  static T* data(std::vector<T>& v) { return v.data(); }
};
}  // namespace tessera::testing
