// tessera/core/cuda_system.hpp — the CUDA backend as a type (device memory, Thrust loops).
// CUDA only: include from .cu translation units (or with nvcc -x cu).
//
// Same interface as host_system (see there): buffer<T> (device_buffer: blocks of the caching arena, no element access),
// data(buf), for_each_index(n, f) with f a TS_HD functor, fill, copy, to_host/from_host, events, and
// host_accessible = false, so the host reaches device memory only through host mirrors
// (core/host_mirror.hpp).
//
// Streams are explicit: a cuda_system is a value naming the stream its work is issued on, and every
// operator takes it as its first argument. cuda_system::context owns a stream (created blocking) and
// hands out the value for it; the trainer owns one and passes its value to every operator, copy and
// communicator of its step. A default-constructed cuda_system names the legacy default stream
// (cudaStreamLegacy), which orders itself after and before the work of every blocking stream: what work
// outside a step uses (host mirrors for checkpoints, HF I/O and logging; a device buffer's own set-up).
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
/// device-to-device; there is no element access from the host. A buffer's own work (filling on assign
/// or resize, copying on copy and growth) is issued on the legacy default stream, so it is ordered with
/// the work of every blocking stream (every cuda_system::context's) that was issued before or after it.
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
  /// n elements whose values are unspecified (nothing is filled or copied: for buffers written whole
  /// before they are read — core/host_system.hpp's resize_for_overwrite).
  void resize_for_overwrite(std::size_t n) {
    reserve(n);
    n_ = n;
  }
  void swap(device_buffer& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(cap_, o.cap_);
  }

 private:
  static cudaStream_t stream_of() { return cudaStreamLegacy; }
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

class cuda_system {
 public:
  static constexpr const char* name = "cuda";
  static constexpr bool host_accessible = false;
  template <class T>
  using buffer = device_buffer<T>;
  class context;

  /// Work on the legacy default stream (outside a step: see the top of this file).
  cuda_system() = default;
  /// Work on `s` (not owned: it must outlive the value's use).
  explicit cuda_system(cudaStream_t s) : stream_(s) {}
  cudaStream_t stream() const { return stream_; }
  friend bool operator==(const cuda_system&, const cuda_system&) = default;

  template <class T>
  static T* data(device_buffer<T>& v) { return v.data(); }
  template <class T>
  static const T* data(const device_buffer<T>& v) { return v.data(); }

  /// --trace's device tracks: CUDA events on the streams (core/cuda_timeline.hpp); compute marks on this
  /// value's stream.
  trace::device_timeline* timeline() const {
    cuda_timeline& t = cuda_timeline::process();
    t.set_compute_stream(stream_);
    return &t;
  }

  template <class F>
  void for_each_index(std::int64_t n, const F& f) const {
    thrust::for_each(thrust::cuda::par.on(stream_), thrust::counting_iterator<std::int64_t>(0),
                     thrust::counting_iterator<std::int64_t>(n), f);
  }
  template <class T>
  void fill(T* p, std::int64_t n, T value) const {
    if (n > 0) thrust::fill_n(thrust::cuda::par.on(stream_), p, n, value);
  }
  template <class T>
  void copy(T* dst, const T* src, std::int64_t n) const {
    if (n > 0)
      cuda_check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice, stream_),
                 "cudaMemcpyAsync (device to device)");
  }
  /// Device → host; returns when the elements are on the host. `p` may also be host memory (the copy's
  /// direction comes from the pointers, under unified addressing): the staged communicator relies on it.
  template <class T>
  void to_host(T* host, const T* p, std::int64_t n) const {
    if (n <= 0) return;
    cuda_check(cudaMemcpyAsync(host, p, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDefault, stream_),
               "cudaMemcpyAsync (device to host)");
    synchronize();
  }
  /// Host → device; returns when the host elements may be reused (`p` may also be host memory, as above).
  template <class T>
  void from_host(T* p, const T* host, std::int64_t n) const {
    if (n <= 0) return;
    cuda_check(cudaMemcpyAsync(p, host, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDefault, stream_),
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
  void record(event& ev) const {
    if (!ev.e) cuda_check(cudaEventCreateWithFlags(&ev.e, cudaEventDisableTiming), "cudaEventCreate");
    cuda_check(cudaEventRecord(ev.e, stream_), "cudaEventRecord");
  }
  void wait(const event& ev) const {
    if (ev.e) cuda_check(cudaStreamWaitEvent(stream_, ev.e, 0), "cudaStreamWaitEvent");
  }
  /// All work issued on this value's stream so far is complete.
  void synchronize() const { cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

 private:
  cudaStream_t stream_ = cudaStreamLegacy;
};

/// Owns a compute stream on the current device (blocking, so it is ordered with the legacy stream's
/// work: device buffers' set-up and default-constructed values) and gives the cuda_system value for it.
class cuda_system::context {
 public:
  context() { cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate (compute stream)"); }
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  ~context() {
    (void)cudaStreamSynchronize(stream_);  // buffers freed after this may be reused by any stream
    (void)cudaStreamDestroy(stream_);
  }
  cuda_system system() const { return cuda_system(stream_); }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace tessera
