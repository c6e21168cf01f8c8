// tests/core: the caching arena device buffers come from — size classes, reuse without raw allocations in
// a steady state, the byte counts, trim — over a counting host allocator (the CUDA one is cudaMalloc).
#include <doctest/doctest.h>

#include <cstdlib>
#include <new>
#include <set>
#include <vector>

#include "tessera/core/caching_arena.hpp"

namespace {
struct counting_malloc {
  static inline int live = 0, calls = 0;
  static inline std::set<void*> blocks;
  static void* allocate(std::size_t bytes) {
    void* p = std::malloc(bytes);
    if (!p) throw std::bad_alloc();
    ++live, ++calls;
    blocks.insert(p);
    return p;
  }
  static void deallocate(void* p) {
    REQUIRE(blocks.erase(p) == 1);  // only blocks it handed out, each once
    --live;
    std::free(p);
  }
};
using arena = tessera::caching_arena<counting_malloc>;
}  // namespace

TEST_CASE("caching_arena: size classes are 512 B multiples up to 1 MiB, 2 MiB multiples beyond") {
  CHECK(arena::size_class(0) == 0);
  CHECK(arena::size_class(1) == 512);
  CHECK(arena::size_class(512) == 512);
  CHECK(arena::size_class(513) == 1024);
  CHECK(arena::size_class(1 << 20) == (1 << 20));
  CHECK(arena::size_class((1 << 20) + 1) == (2 << 20));
  CHECK(arena::size_class((5 << 20) + 3) == (6 << 20));
  for (std::size_t n = 1; n < (8u << 20); n = n * 3 + 7) {  // a class holds the request and is its granule's multiple
    const std::size_t c = arena::size_class(n);
    CHECK(c >= n);
    CHECK(c % (n <= (1u << 20) ? 512 : (2u << 20)) == 0);
  }
}

TEST_CASE("caching_arena: a step that asks for the same buffers as the last one makes no raw allocation") {
  counting_malloc::live = counting_malloc::calls = 0;
  {
    arena a;
    const std::vector<std::size_t> step = {100, 4096, 4096, 70000, 3u << 20, 1, 513};
    for (int k = 0; k < 5; ++k) {
      std::vector<void*> got;
      for (std::size_t n : step) got.push_back(a.allocate(n));
      CHECK(std::set<void*>(got.begin(), got.end()).size() == got.size());  // distinct blocks at once
      std::size_t in_use = 0;
      for (std::size_t n : step) in_use += arena::size_class(n);
      CHECK(a.in_use_bytes() == in_use);
      for (std::size_t i = 0; i < got.size(); ++i) a.deallocate(got[i], step[i]);
      CHECK(a.in_use_bytes() == 0);
      CHECK(a.cached_bytes() == in_use);
    }
    CHECK(a.raw_allocations() == step.size());  // the first step only
    CHECK(counting_malloc::calls == static_cast<int>(step.size()));
    CHECK(a.hits() == 4 * step.size());
    // another size of a cached class is served from the cache
    void* p = a.allocate(4000);
    CHECK(a.raw_allocations() == step.size());
    a.deallocate(p, 4000);
    a.trim();
    CHECK(counting_malloc::live == 0);
    CHECK(a.cached_bytes() == 0);
    CHECK(a.allocate(0) == nullptr);
  }
  CHECK(counting_malloc::live == 0);
}

TEST_CASE("caching_arena: blocks in use are never handed out twice; the destructor returns the cache") {
  counting_malloc::live = 0;
  {
    arena a;
    void* x = a.allocate(1000);
    void* y = a.allocate(1000);
    CHECK(x != y);
    a.deallocate(x, 1000);
    void* z = a.allocate(1000);
    CHECK(z == x);  // the freed one, not y
    a.deallocate(y, 1000);
    a.deallocate(z, 1000);
    CHECK(counting_malloc::live == 2);
  }
  CHECK(counting_malloc::live == 0);
}
