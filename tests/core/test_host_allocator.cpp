// tests/core: the host system's memory — host_allocator (large blocks 2 MiB-aligned, rounded to whole huge
// pages and advised MADV_HUGEPAGE; small ones plain), and host_system::fill, whose zero fill of a large
// block takes streaming stores in one piece per thread: exactly [p, p + n) changes, at any alignment,
// length and thread count.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "tessera/core/host_system.hpp"

namespace ts = tessera;

namespace {
/// The VmFlags line of the mapping of /proc/self/smaps that holds address p ("" if none).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') inside = addr >= lo && addr < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}
bool transparent_huge_pages_enabled() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(f, s);
  return s.find("[always]") != std::string::npos || s.find("[madvise]") != std::string::npos;
}
/// Whether MADV_HUGEPAGE shows in this process's smaps at all (it does not under qemu's user-mode
/// emulation, which accepts the advice without passing it on): a probe on a mapping of our own.
bool advice_visible() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const std::size_t n = 2 * ts::huge_page_bytes;
  void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  const bool seen = ::madvise(p, n, MADV_HUGEPAGE) == 0 && vm_flags_of(p).find(" hg") != std::string::npos;
  ::munmap(p, n);
  return seen;
#else
  return false;
#endif
}
void set_threads(int t) {
#if defined(_OPENMP)
  omp_set_num_threads(t);
#else
  (void)t;
#endif
}
}  // namespace

TEST_CASE("host_block_bytes: small requests as asked, large ones whole huge pages") {
  for (std::size_t b : {std::size_t(0), std::size_t(1), std::size_t(4096), ts::huge_threshold - 1}) CHECK(ts::host_block_bytes(b) == b);
  for (std::size_t b = ts::huge_threshold; b < 3 * ts::huge_threshold; b += 4093) {
    const std::size_t got = ts::host_block_bytes(b);
    CHECK(got >= b);
    CHECK(got % ts::huge_page_bytes == 0);
    CHECK(got - b < ts::huge_page_bytes);
  }
}

TEST_CASE("host_allocator: large blocks are huge-page aligned and advised; contents as std::vector's") {
  ts::host_system::buffer<float> big(ts::huge_threshold / sizeof(float) + 7);  // value-initialised
  CHECK(reinterpret_cast<std::uintptr_t>(big.data()) % ts::huge_page_bytes == 0);
  bool zeros = true;
  for (float x : big) zeros = zeros && x == 0.0f;
  CHECK(zeros);
  if (transparent_huge_pages_enabled() && advice_visible()) {
    const std::string flags = vm_flags_of(big.data());
    INFO("VmFlags: " << flags << "; TESSERA_HUGE_PAGES=0 given: " << !ts::huge_pages_advised());
    REQUIRE(!flags.empty());
    // MADV_HUGEPAGE on the block's mapping, unless the environment turned the advice off
    CHECK((flags.find(" hg") != std::string::npos) == ts::huge_pages_advised());
  } else {
    MESSAGE("transparent huge pages are off here, or madvise is not visible in smaps (qemu user mode): the advice is not checked");
  }
  // growing across the threshold keeps the elements (vector's reallocation through the allocator)
  ts::host_system::buffer<std::int32_t> grow;
  const std::int32_t n = static_cast<std::int32_t>(3 * ts::huge_threshold / sizeof(std::int32_t));
  for (std::int32_t i = 0; i < n; ++i) grow.push_back(i * 7);
  bool kept = true;
  for (std::int32_t i = 0; i < n; ++i) kept = kept && grow[static_cast<std::size_t>(i)] == i * 7;
  CHECK(kept);
  ts::host_system::buffer<double> small(10, 2.5);
  CHECK(small[9] == 2.5);
}

TEST_CASE("host_system::fill: a large zero fill changes exactly its range, at any alignment and thread count") {
  const std::int64_t n = static_cast<std::int64_t>(ts::huge_threshold / sizeof(float)) + 1000;
  std::vector<float> buf(static_cast<std::size_t>(n) + 64);
  for (int threads : {1, 2, 3}) {
    set_threads(threads);
    for (std::int64_t offset : {0, 1, 3, 16}) {
      for (std::int64_t len : {n, n - 1, n - 13}) {
        std::fill(buf.begin(), buf.end(), 1.5f);
        ts::host_system::fill(buf.data() + offset, len, 0.0f);
        std::int64_t wrong = 0;
        for (std::int64_t i = 0; i < static_cast<std::int64_t>(buf.size()); ++i) {
          const bool inside = i >= offset && i < offset + len;
          wrong += buf[static_cast<std::size_t>(i)] != (inside ? 0.0f : 1.5f);
        }
        INFO("threads " << threads << ", offset " << offset << ", length " << len);
        CHECK(wrong == 0);
      }
    }
  }
  set_threads(2);
  // values that are not all-zero bits take the ordinary fill, bits kept (−0.0 stays −0.0)
  std::fill(buf.begin(), buf.end(), 1.5f);
  ts::host_system::fill(buf.data(), n, -0.0f);
  CHECK(std::signbit(buf[0]));
  CHECK(std::signbit(buf[static_cast<std::size_t>(n - 1)]));
  CHECK(buf[static_cast<std::size_t>(n)] == 1.5f);
  // a small zero fill (under the threshold) is exact too
  ts::host_system::fill(buf.data() + 5, 9, 0.0f);
  CHECK(buf[4] == -0.0f);
  CHECK(buf[5] == 0.0f);
  CHECK(!std::signbit(buf[13]));
  CHECK(std::signbit(buf[14]));
}
