// tessera/core/host_system.hpp — the host backend as a type (CPU memory, OpenMP loops).
//
// A *system* (as in Thrust) names where data lives and how a loop over it runs:
//   typename S::template buffer<T>        owning storage
//   S::data(buf)                          raw pointer into it
//   S::for_each_index(n, f)               f(i) for i in [0, n), possibly in parallel; f is TS_HD
//   S::fill(p, n, value)                  p[0, n) = value, by all threads in contiguous pieces
// Kernels written as TS_HD functors run unchanged on host_system and cuda_system.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tessera/core/config.hpp"

namespace tessera {

struct host_system {
  static constexpr const char* name = "host";
  template <class T>
  using buffer = std::vector<T>;

  template <class T>
  static T* data(std::vector<T>& v) { return v.data(); }
  template <class T>
  static const T* data(const std::vector<T>& v) { return v.data(); }

  /// Loops with fewer iterations than this stay on one thread.
  static constexpr std::int64_t parallel_threshold = 1 << 15;

  template <class F>
  static void for_each_index(std::int64_t n, const F& f) {
#if defined(_OPENMP)
    _Pragma("omp parallel for schedule(static) if(n >= parallel_threshold)")
#endif
    for (std::int64_t i = 0; i < n; ++i) f(i);
  }
  /// p[0, n) = value: one contiguous piece per thread (each a memset-speed std::fill), so a large arena is
  /// cleared at the bandwidth of all the rank's cores rather than one's.
  template <class T>
  static void fill(T* p, std::int64_t n, T value) {
    constexpr std::int64_t piece = std::int64_t(1) << 16;
    const std::int64_t pieces = (n + piece - 1) / piece;
#if defined(_OPENMP)
    _Pragma("omp parallel for schedule(static) if(n >= parallel_threshold)")
#endif
    for (std::int64_t b = 0; b < pieces; ++b) std::fill(p + b * piece, p + std::min(n, (b + 1) * piece), value);
  }
  static void synchronize() {}
};

}  // namespace tessera
