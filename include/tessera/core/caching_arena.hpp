// tessera/core/caching_arena.hpp — memory blocks kept for reuse, so that a training step that asks for the
// same buffers as the step before gets them without calling the raw allocator (cudaMalloc / cudaFree
// synchronise the device and cost tens of microseconds each).
//
// A request is rounded up to its size class — a multiple of 512 B up to 1 MiB, of 2 MiB beyond (the
// classes PyTorch's caching allocator uses) — and served from that class's free blocks, else from the raw
// allocator. A freed block goes back to its class's free list, never to the raw allocator, until trim().
// Blocks are handed out again in the order of the one stream that uses them: a block freed by the host
// while a kernel queued before still reads it is safe to reuse for a kernel queued after (stream order);
// several streams would need an event per block (not done: cuda_system has one stream).
//
// Raw: a type with static void* allocate(std::size_t bytes) (never nullptr: throws) and
// static void deallocate(void* p). Host tests use a counting malloc (tests/core/test_caching_arena.cpp).
//
// Contract (tested): allocate(n) returns a block of at least size_class(n) bytes; after deallocate, an
// allocate of any size of the same class returns a cached block without a raw allocation; in_use_bytes()
// and cached_bytes() add up the classes of the blocks handed out and kept; trim() returns every kept block.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

namespace tessera {

template <class Raw>
class caching_arena {
 public:
  static constexpr std::size_t small_granule = 512;
  static constexpr std::size_t small_limit = std::size_t(1) << 20;  // 1 MiB
  static constexpr std::size_t large_granule = std::size_t(2) << 20;  // 2 MiB

  /// The bytes a request of `bytes` occupies (0 for 0).
  static constexpr std::size_t size_class(std::size_t bytes) {
    const std::size_t g = bytes <= small_limit ? small_granule : large_granule;
    return (bytes + g - 1) / g * g;
  }

  caching_arena() = default;
  caching_arena(const caching_arena&) = delete;
  caching_arena& operator=(const caching_arena&) = delete;
  ~caching_arena() { trim(); }

  /// A block of at least `bytes` bytes; nullptr for 0.
  void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    const std::size_t c = size_class(bytes);
    const std::lock_guard<std::mutex> lock(mu_);
    in_use_ += c;
    auto it = free_.find(c);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= c;
      ++hits_;
      return p;
    }
    ++raw_allocations_;
    try {
      return Raw::allocate(c);
    } catch (...) {
      in_use_ -= c;
      throw;
    }
  }

  /// Gives back a block from allocate(bytes) (the same `bytes`, or any size of the same class).
  void deallocate(void* p, std::size_t bytes) {
    if (!p) return;
    const std::size_t c = size_class(bytes);
    const std::lock_guard<std::mutex> lock(mu_);
    in_use_ -= c;
    cached_ += c;
    free_[c].push_back(p);
  }

  /// Returns every kept block to the raw allocator.
  void trim() {
    const std::lock_guard<std::mutex> lock(mu_);
    for (auto& [c, blocks] : free_)
      for (void* p : blocks) Raw::deallocate(p);
    free_.clear();
    cached_ = 0;
  }

  std::size_t in_use_bytes() const { return locked(in_use_); }
  std::size_t cached_bytes() const { return locked(cached_); }
  std::size_t raw_allocations() const { return locked(raw_allocations_); }
  std::size_t hits() const { return locked(hits_); }

 private:
  std::size_t locked(const std::size_t& v) const {
    const std::lock_guard<std::mutex> lock(mu_);
    return v;
  }
  mutable std::mutex mu_;
  std::map<std::size_t, std::vector<void*>> free_;
  std::size_t in_use_ = 0, cached_ = 0, raw_allocations_ = 0, hits_ = 0;
};

}  // namespace tessera
