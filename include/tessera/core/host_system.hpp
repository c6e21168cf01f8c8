// tessera/core/host_system.hpp — the host backend as a type (CPU memory, OpenMP loops).
//
// A *system* (as in Thrust) names where data lives and how a loop over it runs. A system is a type and
// its values say where work is issued (cuda_system: a stream; host_system: nothing), so code holds a
// value `sys` and calls through it (streams are explicit, as Kokkos' execution space instances are):
//   typename S::template buffer<T>        owning storage
//   S::data(buf)                          raw pointer into it
//   typename S::context                   owns what a value refers to (CUDA: a compute stream);
//                                         ctx.system() is that value. S{} is the default value (CUDA:
//                                         the legacy default stream)
//   sys.for_each_index(n, f)              f(i) for i in [0, n), possibly in parallel; f is TS_HD
//   sys.fill(p, n, value)                 p[0, n) = value, by all threads in contiguous pieces
//   sys.copy(dst, src, n)                 n elements within the system's memory
//   sys.to_host(h, p, n), sys.from_host(p, h, n)   between the system's memory and the host's
//   S::host_accessible                    whether host code may touch the system's memory directly
//                                         (when false it goes through a host_mirror, core/host_mirror.hpp)
//   S::event, sys.record(e), sys.wait(e)  ordering of work between streams (no-ops on the host, which
//                                         runs everything in program order)
//   sys.synchronize()                     all work issued on sys so far is complete
//   sys.timeline()                        the device timeline of --trace's device tracks (null on the host)
// Every operator (ops/) takes the system value as its first argument and issues its work there.
// A buffer<T> owns its elements and offers construction with n elements, data(), size(), capacity(),
// empty(), assign(n, value), resize(n), swap and copies — never element access, which only the host could do
// — and may offer resize_for_overwrite(n) (n elements left unfilled: see the free function below).
// Kernels written as TS_HD functors run unchanged on host_system and cuda_system.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tessera/core/config.hpp"
#include "tessera/core/host_allocator.hpp"
#include "tessera/core/trace.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__SSE2__) && !TS_DEVICE_COMPILE
#include <emmintrin.h>
#endif

namespace tessera {

namespace host_memory_detail {
/// Whether value is all zero bytes (0.0f, bf16 zero; not −0.0f).
template <class T>
bool all_zero_bits(const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  return std::all_of(bytes, bytes + sizeof(T), [](unsigned char b) { return b == 0; });
}
/// bytes [b, e) = 0: non-temporal stores where the target has them (x86-64: SSE2's, every level).
inline void zero_range(unsigned char* b, unsigned char* e) {
#if defined(__SSE2__) && !TS_DEVICE_COMPILE
  auto* a = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(b) + 15) & ~std::uintptr_t(15));
  if (a >= e) return (void)std::memset(b, 0, static_cast<std::size_t>(e - b));
  std::memset(b, 0, static_cast<std::size_t>(a - b));
  const __m128i z = _mm_setzero_si128();
  for (; a + 16 <= e; a += 16) _mm_stream_si128(reinterpret_cast<__m128i*>(a), z);
  _mm_sfence();  // the streaming stores are ordered before anything after the fill
  std::memset(a, 0, static_cast<std::size_t>(e - a));
#else
  std::memset(b, 0, static_cast<std::size_t>(e - b));
#endif
}
/// bytes [p, p + size) = 0, one contiguous piece per thread, with non-temporal stores where the target
/// has them (x86-64: SSE2's, every level), memset elsewhere.
inline void stream_zero(void* p, std::size_t size) {
  auto* base = static_cast<unsigned char*>(p);
#if defined(_OPENMP)
  _Pragma("omp parallel")
#endif
  {
    int threads = 1, t = 0;
#if defined(_OPENMP)
    threads = omp_get_num_threads(), t = omp_get_thread_num();
#endif
    const std::size_t each = (size / threads + 63) / 64 * 64;  // whole cache lines per thread
    const std::size_t b = std::min(size, each * t), e = std::min(size, b + each);
    zero_range(base + b, base + e);
  }
}
}  // namespace host_memory_detail

struct host_system {
  static constexpr const char* name = "host";
  static constexpr bool host_accessible = true;
  /// std::vector on host_allocator: arenas of 2 MiB and more go on transparent huge pages.
  template <class T>
  using buffer = std::vector<T, host_allocator<T>>;
  /// Nothing to own: every host_system value is the same.
  struct context {
    host_system system() const { return {}; }
  };
  friend bool operator==(host_system, host_system) { return true; }

  template <class T, class A>
  static T* data(std::vector<T, A>& v) { return v.data(); }
  template <class T, class A>
  static const T* data(const std::vector<T, A>& v) { return v.data(); }

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
  /// cleared at the bandwidth of all the rank's cores rather than one's. Zeroing a large block (the
  /// gradient arena before each step) uses streaming stores: nothing reads it soon, and they skip
  /// reading every line in before writing it (half the memory traffic of a cached fill).
  template <class T>
  static void fill(T* p, std::int64_t n, T value) {
    if (static_cast<std::size_t>(n) * sizeof(T) >= huge_threshold && host_memory_detail::all_zero_bits(value))
      return host_memory_detail::stream_zero(p, static_cast<std::size_t>(n) * sizeof(T));
    constexpr std::int64_t piece = std::int64_t(1) << 16;
    const std::int64_t pieces = (n + piece - 1) / piece;
#if defined(_OPENMP)
    _Pragma("omp parallel for schedule(static) if(n >= parallel_threshold)")
#endif
    for (std::int64_t b = 0; b < pieces; ++b) std::fill(p + b * piece, p + std::min(n, (b + 1) * piece), value);
  }
  template <class T>
  static void copy(T* dst, const T* src, std::int64_t n) {
    if (n > 0) std::copy_n(src, n, dst);
  }
  template <class T>
  static void to_host(T* host, const T* p, std::int64_t n) { copy(host, p, n); }
  template <class T>
  static void from_host(T* p, const T* host, std::int64_t n) { copy(p, host, n); }

  struct event {};
  static void record(event&) {}
  static void wait(const event&) {}
  static void synchronize() {}
  /// No device tracks in --trace: the host's spans are the work itself (core/trace.hpp).
  static trace::device_timeline* timeline() { return nullptr; }
};

/// The owning storage of system S for elements of type T.
template <class S, class T>
using buffer_of = typename S::template buffer<T>;

/// n elements, all T{}, unless the buffer already holds n (then it is left as it is).
template <class B>
void resize(B& b, std::int64_t n) {
  if (static_cast<std::int64_t>(b.size()) != n) b.assign(static_cast<std::size_t>(n), typename B::value_type{});
}

/// n elements for a buffer that is written whole before it is read: unless the buffer already holds n (then
/// it is left as it is), the elements' values are unspecified — a buffer type that can skip filling them
/// does (device_buffer: no fill kernel); std::vector cannot and is value-initialised, as by resize().
template <class B>
void resize_for_overwrite(B& b, std::int64_t n) {
  if (static_cast<std::int64_t>(b.size()) == n) return;
  if constexpr (requires { b.resize_for_overwrite(std::size_t{}); })
    b.resize_for_overwrite(static_cast<std::size_t>(n));
  else
    b.assign(static_cast<std::size_t>(n), typename B::value_type{});
}

}  // namespace tessera
