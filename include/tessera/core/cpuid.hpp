// tessera/core/cpuid.hpp — the CPU's x86 features read from CPUID (and XGETBV for the OS's register
// state), by the names `__builtin_cpu_supports` uses, for compilers whose builtin lacks some of them
// (clang 14 knows neither the psABI levels "x86-64-v2/v3/v4" nor "f16c", "movbe", "lzcnt", "avx512fp16",
// "amx-bf16"). cpu.hpp calls it under clang; the test suite checks it against GCC's builtin name by name.
#pragma once
#include "tessera/core/config.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !TS_DEVICE_COMPILE
#include <cpuid.h>

namespace tessera::cpu {
namespace cpuid_detail {
enum reg : unsigned char { eax, ebx, ecx, edx };
/// Where a feature's bit is: CPUID leaf and subleaf, register, bit; and which register state the OS must
/// save for it (0: none, 1: AVX's ymm, 2: AVX-512's zmm and mask registers, 3: AMX tiles).
struct bit {
  const char* name;
  unsigned leaf, sub;
  reg r;
  unsigned char pos, state;
};
inline constexpr bit bits[] = {
    {"sse3", 1, 0, ecx, 0, 0},          {"ssse3", 1, 0, ecx, 9, 0},         {"fma", 1, 0, ecx, 12, 1},
    {"cx16", 1, 0, ecx, 13, 0},         {"sse4.1", 1, 0, ecx, 19, 0},       {"sse4.2", 1, 0, ecx, 20, 0},
    {"movbe", 1, 0, ecx, 22, 0},        {"popcnt", 1, 0, ecx, 23, 0},       {"avx", 1, 0, ecx, 28, 1},
    {"f16c", 1, 0, ecx, 29, 1},         {"bmi", 7, 0, ebx, 3, 0},           {"avx2", 7, 0, ebx, 5, 1},
    {"bmi2", 7, 0, ebx, 8, 0},          {"avx512f", 7, 0, ebx, 16, 2},      {"avx512dq", 7, 0, ebx, 17, 2},
    {"avx512ifma", 7, 0, ebx, 21, 2},   {"avx512cd", 7, 0, ebx, 28, 2},     {"sha", 7, 0, ebx, 29, 0},
    {"avx512bw", 7, 0, ebx, 30, 2},     {"avx512vl", 7, 0, ebx, 31, 2},     {"avx512vbmi", 7, 0, ecx, 1, 2},
    {"avx512vbmi2", 7, 0, ecx, 6, 2},   {"gfni", 7, 0, ecx, 8, 0},          {"vaes", 7, 0, ecx, 9, 1},
    {"vpclmulqdq", 7, 0, ecx, 10, 1},   {"avx512vnni", 7, 0, ecx, 11, 2},   {"avx512bitalg", 7, 0, ecx, 12, 2},
    {"avx512vpopcntdq", 7, 0, ecx, 14, 2}, {"amx-bf16", 7, 0, edx, 22, 3}, {"avx512fp16", 7, 0, edx, 23, 2},
    {"amx-tile", 7, 0, edx, 24, 3},     {"avx512bf16", 7, 1, eax, 5, 2},    {"lahf_lm", 0x80000001u, 0, ecx, 0, 0},
    {"lzcnt", 0x80000001u, 0, ecx, 5, 0},
};
inline constexpr const char* level_v2[] = {"cx16", "lahf_lm", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3"};
inline constexpr const char* level_v3[] = {"avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe"};
inline constexpr const char* level_v4[] = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"};

[[gnu::target("arch=x86-64")]] inline bool same(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}
/// The register state the OS saves (XCR0), 0 when XGETBV is not enabled (no OSXSAVE).
[[gnu::target("arch=x86-64")]] inline unsigned long long xcr0() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
[[gnu::target("arch=x86-64")]] inline bool state_saved(unsigned char state) {
  constexpr unsigned long long need[] = {0, 0x6, 0xe6, 0x60006};  // sse|ymm; +opmask|zmm; tilecfg|tiledata
  return state == 0 || (xcr0() & need[state]) == need[state];
}
[[gnu::target("arch=x86-64")]] inline bool has_bit(const bit& f) {
  unsigned r[4] = {0, 0, 0, 0};
  if (!__get_cpuid_count(f.leaf, f.sub, &r[0], &r[1], &r[2], &r[3])) return false;
  return ((r[f.r] >> f.pos) & 1u) && state_saved(f.state);
}
[[gnu::target("arch=x86-64")]] inline bool has_named(const char* name) {
  for (const bit& f : bits)
    if (same(f.name, name)) return has_bit(f);
  return false;
}
template <unsigned N>
[[gnu::target("arch=x86-64")]] inline bool all(const char* const (&names)[N]) {
  for (unsigned i = 0; i < N; ++i)
    if (!has_named(names[i])) return false;
  return true;
}
}  // namespace cpuid_detail

/// Whether the CPU (and the OS's saved register state) supports feature `name`, or every feature of the
/// psABI level `name` ("x86-64-v2", "x86-64-v3", "x86-64-v4"; each includes the levels below it).
/// Unknown names: false. Compiled for the baseline x86-64: safe to call on any CPU.
[[gnu::target("arch=x86-64")]] inline bool cpuid_supports(const char* name) {
  using namespace cpuid_detail;
  if (same(name, "x86-64-v2")) return all(level_v2);
  if (same(name, "x86-64-v3")) return all(level_v2) && all(level_v3);
  if (same(name, "x86-64-v4")) return all(level_v2) && all(level_v3) && all(level_v4);
  return has_named(name);
}
}  // namespace tessera::cpu
#endif
