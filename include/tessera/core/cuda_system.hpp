// tessera/core/cuda_system.hpp — the CUDA backend as a type (device memory, Thrust loops).
// CUDA only: include from .cu translation units (or with nvcc -x cu).
//
// Same interface as host_system (see there): buffer<T> (device_buffer: blocks of the caching arena, no element access),
// data(buf), for_each_index(n, f) with f a TS_HD functor, fill, copy, to_host/from_host, events, and
// host_accessible = false, so the host reaches device memory only through host mirrors
// (core/host_mirror.hpp). Work is issued on the system's current stream (default: the legacy stream).
#pragma once
#if !defined(__CUDACC__)
#error "tessera/core/cuda_system.hpp needs a CUDA compiler (nvcc); the host backend is tessera/core/host_system.hpp"
#endif
#include <cuda_runtime.h>
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "tessera/core/caching_arena.hpp"
#include "tessera/core/config.hpp"
#include "tessera/core/cuda_stream.hpp"
#include "tessera/core/cuda_timeline.hpp"
#include "tessera/core/error.hpp"

namespace tessera {

/// cudaMalloc / cudaFree for the caching arena.
struct cuda_raw_allocator {
  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    cuda_check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  static void deallocate(void* p) { (void)cudaFree(p); }
};

/// The process's device memory cache (core/caching_arena.hpp): device buffers take their blocks from it and
/// give them back, so a step that needs the buffers of the step before calls neither cudaMalloc nor
/// cudaFree. Never destroyed (blocks live until the process ends; the driver frees them).
inline caching_arena<cuda_raw_allocator>& cuda_arena() {
  static auto* a = new caching_arena<cuda_raw_allocator>();
  return *a;
}

/// Owning device memory for n elements of T (from cuda_arena()), on the current device. Copies are
/// device-to-device; there is no element access from the host.
template <class T>
class device_buffer {
 public:
  using value_type = T;
  device_buffer() = default;
  /// n elements, all T{}.
  explicit device_buffer(std::size_t n) { assign(n, T{}); }
  device_buffer(const device_buffer& o) { copy_from(o); }
  device_buffer(device_buffer&& o) noexcept { swap(o); }
  device_buffer& operator=(const device_buffer& o) {
    if (this != &o) copy_from(o);
    return *this;
  }
  device_buffer& operator=(device_buffer&& o) noexcept {
    swap(o);
    return *this;
  }
  ~device_buffer() { cuda_arena().deallocate(p_, cap_ * sizeof(T)); }
  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }
  std::size_t capacity() const { return cap_; }
  bool empty() const { return n_ == 0; }
  /// n elements, all x (memory is reused when it is large enough).
  void assign(std::size_t n, const T& x) {
    reserve(n);
    n_ = n;
    if (n > 0) thrust::fill_n(thrust::cuda::par.on(stream_of()), p_, n, x);
  }
  /// n elements: the first min(n, size()) kept, the rest T{}.
  void resize(std::size_t n) {
    if (n > cap_) {
      device_buffer bigger;
      bigger.reserve(n);
      if (n_ > 0)
        cuda_check(cudaMemcpyAsync(bigger.p_, p_, n_ * sizeof(T), cudaMemcpyDeviceToDevice, stream_of()),
                   "cudaMemcpyAsync");
      bigger.n_ = n_;
      swap(bigger);
    }
    if (n > n_) thrust::fill_n(thrust::cuda::par.on(stream_of()), p_ + n_, n - n_, T{});
    n_ = n;
  }
  void swap(device_buffer& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(cap_, o.cap_);
  }

 private:
  static cudaStream_t stream_of();
  void reserve(std::size_t n) {
    if (n <= cap_) return;
    cuda_arena().deallocate(p_, cap_ * sizeof(T));
    p_ = nullptr;
    cap_ = 0;
    p_ = static_cast<T*>(cuda_arena().allocate(n * sizeof(T)));
    cap_ = n;
  }
  void copy_from(const device_buffer& o) {
    reserve(o.n_);
    n_ = o.n_;
    if (n_ > 0)
      cuda_check(cudaMemcpyAsync(p_, o.p_, n_ * sizeof(T), cudaMemcpyDeviceToDevice, stream_of()), "cudaMemcpyAsync");
  }
  T* p_ = nullptr;
  std::size_t n_ = 0, cap_ = 0;
};

struct cuda_system {
  static constexpr const char* name = "cuda";
  static constexpr bool host_accessible = false;
  template <class T>
  using buffer = device_buffer<T>;

  template <class T>
  static T* data(device_buffer<T>& v) { return v.data(); }
  template <class T>
  static const T* data(const device_buffer<T>& v) { return v.data(); }

  static cudaStream_t& stream() { return cuda_current_stream(); }
  /// --trace's device tracks: CUDA events on the streams (core/cuda_timeline.hpp).
  static trace::device_timeline* timeline() { return &cuda_timeline::process(); }

  template <class F>
  static void for_each_index(std::int64_t n, const F& f) {
    thrust::for_each(thrust::cuda::par.on(stream()), thrust::counting_iterator<std::int64_t>(0),
                     thrust::counting_iterator<std::int64_t>(n), f);
  }
  template <class T>
  static void fill(T* p, std::int64_t n, T value) {
    if (n > 0) thrust::fill_n(thrust::cuda::par.on(stream()), p, n, value);
  }
  template <class T>
  static void copy(T* dst, const T* src, std::int64_t n) {
    if (n > 0)
      cuda_check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice, stream()),
                 "cudaMemcpyAsync (device to device)");
  }
  /// Device → host; returns when the elements are on the host. `p` may also be host memory (the copy's
  /// direction comes from the pointers, under unified addressing): the staged communicator relies on it.
  template <class T>
  static void to_host(T* host, const T* p, std::int64_t n) {
    if (n <= 0) return;
    cuda_check(cudaMemcpyAsync(host, p, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDefault, stream()),
               "cudaMemcpyAsync (device to host)");
    synchronize();
  }
  /// Host → device; returns when the host elements may be reused (`p` may also be host memory, as above).
  template <class T>
  static void from_host(T* p, const T* host, std::int64_t n) {
    if (n <= 0) return;
    cuda_check(cudaMemcpyAsync(p, host, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDefault, stream()),
               "cudaMemcpyAsync (host to device)");
    synchronize();
  }

  /// A point in a stream's work that another stream can wait for (created on first record).
  struct event {
    cudaEvent_t e = nullptr;
    event() = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;
    ~event() {
      if (e) (void)cudaEventDestroy(e);
    }
  };
  static void record(event& ev) {
    if (!ev.e) cuda_check(cudaEventCreateWithFlags(&ev.e, cudaEventDisableTiming), "cudaEventCreate");
    cuda_check(cudaEventRecord(ev.e, stream()), "cudaEventRecord");
  }
  static void wait(const event& ev) {
    if (ev.e) cuda_check(cudaStreamWaitEvent(stream(), ev.e, 0), "cudaStreamWaitEvent");
  }
  static void synchronize() { cuda_check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize"); }
};

template <class T>
cudaStream_t device_buffer<T>::stream_of() {
  return cuda_system::stream();
}

}  // namespace tessera
