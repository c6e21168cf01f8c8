// tests/core: the CPUID reader cpu.hpp uses under clang (core/cpuid.hpp) agrees with GCC's
// __builtin_cpu_supports, name by name and level by level, on the CPU the suite runs on (and under
// core.isa_guard's emulated CPUs, through cpu_report).
#include <doctest/doctest.h>

#include "tessera/core/cpuid.hpp"

#if defined(__x86_64__) && !defined(__clang__)
#define SAME(name) CHECK_MESSAGE(tessera::cpu::cpuid_supports(name) == (__builtin_cpu_supports(name) != 0), name)

TEST_CASE("cpuid_supports equals __builtin_cpu_supports for every name tessera asks about") {
  __builtin_cpu_init();
  SAME("x86-64-v2");
  SAME("x86-64-v3");
  SAME("x86-64-v4");
  SAME("sse3");
  SAME("ssse3");
  SAME("sse4.1");
  SAME("sse4.2");
  SAME("popcnt");
  SAME("avx");
  SAME("avx2");
  SAME("fma");
  SAME("f16c");
  SAME("bmi");
  SAME("bmi2");
  SAME("movbe");
  SAME("avx512f");
  SAME("avx512bw");
  SAME("avx512cd");
  SAME("avx512dq");
  SAME("avx512vl");
  SAME("avx512vnni");
  SAME("avx512bf16");
  SAME("avx512fp16");
  SAME("avx512vbmi");
  SAME("avx512vbmi2");
  SAME("avx512ifma");
  SAME("avx512bitalg");
  SAME("avx512vpopcntdq");
  SAME("amx-tile");
  SAME("amx-bf16");
  SAME("gfni");
  SAME("vpclmulqdq");
  SAME("vaes");
  SAME("sha");
  CHECK_FALSE(tessera::cpu::cpuid_supports("no-such-feature"));
}
#endif
