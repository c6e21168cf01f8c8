// tessera/core/host_allocator.hpp — the host system's allocator: large blocks on transparent huge pages.
//
// The host's training state is a few arenas of hundreds of MiB (values, gradients, AdamW's moments,
// activations, logits) that every step streams through whole. On 4 KiB pages such a pass misses the TLB
// once per page; on 2 MiB pages it does not, which makes the bandwidth-bound passes (the gradient norm,
// zeroing the gradients, AdamW) and the GEMMs' reads of large weights measurably faster (docs/design.md,
// "Host memory"). host_allocator<T> asks for that: a block of at least `huge_threshold` bytes is aligned to
// 2 MiB and advised MADV_HUGEPAGE before anything touches it, so its first-touch faults map huge pages
// where the kernel allows them (transparent_hugepage `always` or `madvise`; with `never` the advice is
// ignored and the block is an ordinary one). Smaller blocks come from operator new as usual.
// TESSERA_HUGE_PAGES=0 in the environment turns the advice off (see docs/design.md for when that helps).
//
// Elements are constructed as std::allocator would (value-initialised by std::vector): the advice changes
// where memory is mapped, never what it holds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string_view>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tessera {

/// Blocks of at least this many bytes go on huge pages (when the kernel allows them).
inline constexpr std::size_t huge_threshold = std::size_t(2) << 20;
/// The huge page size blocks are aligned to and rounded up to (x86-64's and aarch64's 2 MiB).
inline constexpr std::size_t huge_page_bytes = std::size_t(2) << 20;

/// The bytes a block of `bytes` occupies: rounded up to whole huge pages from huge_threshold up.
/// @post result >= bytes; result % huge_page_bytes == 0 when bytes >= huge_threshold
constexpr std::size_t host_block_bytes(std::size_t bytes) {
  return bytes < huge_threshold ? bytes : (bytes + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes;
}

/// Whether large blocks are advised for huge pages: yes unless the environment says TESSERA_HUGE_PAGES=0
/// (read once; the alignment and rounding stay either way, so a block is freed the same way it was made).
inline bool huge_pages_advised() {
  static const bool on = [] {
    const char* v = std::getenv("TESSERA_HUGE_PAGES");
    return !(v && std::string_view(v) == "0");
  }();
  return on;
}

/// A block of `bytes`, huge-page-aligned and advised for huge pages from huge_threshold up.
inline void* host_allocate(std::size_t bytes) {
  if (bytes < huge_threshold) return ::operator new(bytes);
  void* p = ::operator new(host_block_bytes(bytes), std::align_val_t{huge_page_bytes});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge_pages_advised())
    (void)::madvise(p, host_block_bytes(bytes), MADV_HUGEPAGE);  // advice only: failure leaves small pages
#endif
  return p;
}
/// Frees what host_allocate(bytes) returned (same `bytes`).
inline void host_deallocate(void* p, std::size_t bytes) noexcept {
  // unsized deletes: clang before 17 has no sized deallocation unless -fsized-deallocation is given
  if (bytes < huge_threshold) ::operator delete(p);
  else ::operator delete(p, std::align_val_t{huge_page_bytes});
}

/// std::allocator's interface over host_allocate: the element storage of host_system's buffers.
template <class T>
struct host_allocator {
  using value_type = T;
  host_allocator() = default;
  template <class U>
  constexpr host_allocator(const host_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(host_allocate(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { host_deallocate(p, n * sizeof(T)); }
  template <class U>
  friend constexpr bool operator==(host_allocator, host_allocator<U>) noexcept {
    return true;
  }
};

}  // namespace tessera
