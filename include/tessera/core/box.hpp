// tessera/core/box.hpp — copying rectangular boxes between row-major 4-d arrays, host and device.
//
// The per-element math is one TS_HD functor, run by host_system (OpenMP loop) and cuda_system
// (thrust::for_each), so the host tests exercise exactly what the device runs.
#pragma once
#include <cstdint>

#include "tessera/core/config.hpp"

namespace tessera {

/// A 4-d index or shape (unused trailing dimensions are 1 / 0).
struct idx4 {
  std::int64_t v[4] = {0, 0, 0, 0};
  TS_HD constexpr std::int64_t numel() const { return v[0] * v[1] * v[2] * v[3]; }
  TS_HD constexpr std::int64_t operator[](int d) const { return v[d]; }
};

/// dst[dst_start + j] = scale · src[src_start + j] for every j in the box `ext`.
template <class T>
struct box_copy_fn {
  const T* src;
  T* dst;
  idx4 src_shape, src_start, dst_shape, dst_start, ext;
  float scale = 1.0f;

  TS_HD void operator()(std::int64_t i) const {
    std::int64_t j[4];
    for (int d = 3; d >= 0; --d) {
      j[d] = i % ext.v[d];
      i /= ext.v[d];
    }
    std::int64_t s = 0, t = 0;
    for (int d = 0; d < 4; ++d) {
      s = s * src_shape.v[d] + src_start.v[d] + j[d];
      t = t * dst_shape.v[d] + dst_start.v[d] + j[d];
    }
    dst[t] = scale == 1.0f ? src[s] : T(static_cast<float>(src[s]) * scale);
  }
};

/// Copies the box `ext` from src (shape src_shape, at src_start) to dst (shape dst_shape, at dst_start),
/// issued on `sys`.
template <class System, class T>
void copy_box(const System& sys, const T* src, idx4 src_shape, idx4 src_start, T* dst, idx4 dst_shape,
              idx4 dst_start, idx4 ext, float scale = 1.0f) {
  const std::int64_t n = ext.numel();
  if (n <= 0) return;
  sys.for_each_index(n, box_copy_fn<T>{src, dst, src_shape, src_start, dst_shape, dst_start, ext, scale});
}

}  // namespace tessera
