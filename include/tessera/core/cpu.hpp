// tessera/core/cpu.hpp — which instruction sets a program was built for, which the CPU running it has,
// and a start-up check that turns "built for more than this CPU has" into a clear message (exit 2)
// instead of SIGILL.
//
// The build side comes from the compiler's predefined macros (`-march=…` of the translation unit), the
// run side from `__builtin_cpu_supports` (x86-64) or the auxiliary vector (aarch64). x86-64 levels are
// the psABI's: x86-64 (SSE2), x86-64-v2 (SSE4.2, POPCNT), x86-64-v3 (AVX2, FMA, BMI2), x86-64-v4
// (AVX-512 F/BW/CD/DQ/VL).
#pragma once
#include <string>
#include <string_view>

#include "tessera/core/config.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !TS_DEVICE_COMPILE
#include <unistd.h>

#include "tessera/core/cpuid.hpp"
#define TESSERA_CPU_X86 1
// GCC's builtin knows every name used here; clang 14's lacks the psABI levels and several features.
#if defined(__clang__)
#define TESSERA_CPU_SUPPORTS(name) ::tessera::cpu::cpuid_supports(name)
#else
#define TESSERA_CPU_SUPPORTS(name) __builtin_cpu_supports(name)
#endif
#else
#define TESSERA_CPU_X86 0
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif
#include <thread>

namespace tessera::cpu {

// The x86-64 level (or "aarch64", "generic") the including translation unit is compiled for, as a string
// literal (the start-up check below may call nothing that was compiled for the higher level).
#if defined(__x86_64__)
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512CD__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__)
#define TESSERA_BUILT_LEVEL "x86-64-v4"
#elif defined(__AVX2__) && defined(__FMA__) && defined(__BMI2__)
#define TESSERA_BUILT_LEVEL "x86-64-v3"
#elif defined(__SSE4_2__) && defined(__POPCNT__)
#define TESSERA_BUILT_LEVEL "x86-64-v2"
#else
#define TESSERA_BUILT_LEVEL "x86-64"
#endif
#elif defined(__aarch64__) && defined(__ARM_FEATURE_SVE)
#define TESSERA_BUILT_LEVEL "aarch64+sve"
#elif defined(__aarch64__)
#define TESSERA_BUILT_LEVEL "aarch64"
#else
#define TESSERA_BUILT_LEVEL "generic"
#endif

/// The x86-64 level (or "aarch64", "generic") the including translation unit is compiled for.
constexpr std::string_view built_level() { return TESSERA_BUILT_LEVEL; }

/// The highest x86-64 level (or "aarch64[+sve]") of the CPU this process runs on.
inline std::string cpu_level() {
#if TESSERA_CPU_X86
  __builtin_cpu_init();
  if (TESSERA_CPU_SUPPORTS("x86-64-v4")) return "x86-64-v4";
  if (TESSERA_CPU_SUPPORTS("x86-64-v3")) return "x86-64-v3";
  if (TESSERA_CPU_SUPPORTS("x86-64-v2")) return "x86-64-v2";
  return "x86-64";
#elif defined(__aarch64__) && defined(__linux__)
  return (getauxval(AT_HWCAP) & (1UL << 22)) ? "aarch64+sve" : "aarch64";  // HWCAP_SVE
#else
  return "generic";
#endif
}

/// Whether the CPU has the bf16 dot-product instructions bf16 GEMMs use (AVX512-BF16 or AMX-BF16 on x86).
inline bool cpu_has_bf16_hardware() {
#if TESSERA_CPU_X86
  __builtin_cpu_init();
  return TESSERA_CPU_SUPPORTS("avx512bf16") || TESSERA_CPU_SUPPORTS("amx-bf16");
#else
  return false;
#endif
}

/// The CPU's features that matter to the host backend's speed, space-separated (e.g. "avx2 fma avx512f
/// avx512bf16 amx-bf16"); what the start line and the progress header print beside the levels.
inline std::string cpu_features() {
  std::string s;
#if TESSERA_CPU_X86
  __builtin_cpu_init();
  auto add = [&](bool has, const char* name) {
    if (has) (s += s.empty() ? "" : " ") += name;
  };
  add(TESSERA_CPU_SUPPORTS("avx2"), "avx2");
  add(TESSERA_CPU_SUPPORTS("fma"), "fma");
  add(TESSERA_CPU_SUPPORTS("avx512f"), "avx512f");
  add(TESSERA_CPU_SUPPORTS("avx512bf16"), "avx512bf16");
  add(TESSERA_CPU_SUPPORTS("avx512fp16"), "avx512fp16");
  add(TESSERA_CPU_SUPPORTS("amx-bf16"), "amx-bf16");
#elif defined(__aarch64__) && defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  s = "asimd";
  if (hw & (1UL << 22)) s += " sve";
  if (hw2 & (1UL << 14)) s += " bf16";  // HWCAP2_BF16
#endif
  return s;
}

/// CPUs this process may run on: its affinity mask (what `mpirun`'s binding, taskset or a batch system's
/// cgroup left it), or every CPU where the mask cannot be read.
inline int allowed_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
#endif
  return static_cast<int>(std::thread::hardware_concurrency() > 0 ? std::thread::hardware_concurrency() : 1);
}

namespace detail {
#if TESSERA_CPU_X86
// Appends `name` to buf (NUL-terminated, capacity cap) when the CPU lacks it. Compiled for the baseline
// x86-64 so that it runs on any CPU, whatever -march the rest of the translation unit has.
[[gnu::target("arch=x86-64"), gnu::always_inline]] inline void note_missing(bool has, const char* name, char* buf,
                                                                           unsigned cap) {
  if (has) return;
  unsigned n = 0;
  while (buf[n]) ++n;
  if (n + 1 < cap && n > 0) buf[n++] = ' ';
  for (const char* p = name; *p && n + 1 < cap; ++p) buf[n++] = *p;
  buf[n] = '\0';
}
#define TESSERA_CPU_NEED(name) note_missing(TESSERA_CPU_SUPPORTS(name), name, missing, sizeof missing)

/// Runs before the program's own static initialisers (priority 101) and before main, in code built for
/// the baseline: when the translation unit was compiled for instructions this CPU lacks, it names them
/// and ends the process with exit code 2 — never SIGILL later. Internal linkage: one per translation
/// unit, each checking the flags it was itself compiled with.
[[gnu::constructor(101), gnu::target("arch=x86-64"), gnu::used]] static void refuse_unsupported_isa() {
  __builtin_cpu_init();
  char missing[512] = {0};
#if defined(__SSE3__)
  TESSERA_CPU_NEED("sse3");
#endif
#if defined(__SSSE3__)
  TESSERA_CPU_NEED("ssse3");
#endif
#if defined(__SSE4_1__)
  TESSERA_CPU_NEED("sse4.1");
#endif
#if defined(__SSE4_2__)
  TESSERA_CPU_NEED("sse4.2");
#endif
#if defined(__POPCNT__)
  TESSERA_CPU_NEED("popcnt");
#endif
#if defined(__AVX__)
  TESSERA_CPU_NEED("avx");
#endif
#if defined(__AVX2__)
  TESSERA_CPU_NEED("avx2");
#endif
#if defined(__FMA__)
  TESSERA_CPU_NEED("fma");
#endif
#if defined(__F16C__)
  TESSERA_CPU_NEED("f16c");
#endif
#if defined(__BMI__)
  TESSERA_CPU_NEED("bmi");
#endif
#if defined(__BMI2__)
  TESSERA_CPU_NEED("bmi2");
#endif
#if defined(__MOVBE__)
  TESSERA_CPU_NEED("movbe");
#endif
#if defined(__AVX512F__)
  TESSERA_CPU_NEED("avx512f");
#endif
#if defined(__AVX512BW__)
  TESSERA_CPU_NEED("avx512bw");
#endif
#if defined(__AVX512CD__)
  TESSERA_CPU_NEED("avx512cd");
#endif
#if defined(__AVX512DQ__)
  TESSERA_CPU_NEED("avx512dq");
#endif
#if defined(__AVX512VL__)
  TESSERA_CPU_NEED("avx512vl");
#endif
#if defined(__AVX512VNNI__)
  TESSERA_CPU_NEED("avx512vnni");
#endif
#if defined(__AVX512BF16__)
  TESSERA_CPU_NEED("avx512bf16");
#endif
#if defined(__AVX512FP16__)
  TESSERA_CPU_NEED("avx512fp16");
#endif
#if defined(__AVX512VBMI__)
  TESSERA_CPU_NEED("avx512vbmi");
#endif
#if defined(__AVX512VBMI2__)
  TESSERA_CPU_NEED("avx512vbmi2");
#endif
#if defined(__AVX512IFMA__)
  TESSERA_CPU_NEED("avx512ifma");
#endif
#if defined(__AVX512BITALG__)
  TESSERA_CPU_NEED("avx512bitalg");
#endif
#if defined(__AVX512VPOPCNTDQ__)
  TESSERA_CPU_NEED("avx512vpopcntdq");
#endif
#if defined(__AMX_TILE__)
  TESSERA_CPU_NEED("amx-tile");
#endif
#if defined(__AMX_BF16__)
  TESSERA_CPU_NEED("amx-bf16");
#endif
#if defined(__GFNI__)
  TESSERA_CPU_NEED("gfni");
#endif
#if defined(__VPCLMULQDQ__)
  TESSERA_CPU_NEED("vpclmulqdq");
#endif
  if (!missing[0]) return;
  // only libc calls from here: nothing that was compiled for the translation unit's own level
  const char* cpu = TESSERA_CPU_SUPPORTS("x86-64-v4")   ? "x86-64-v4"
                    : TESSERA_CPU_SUPPORTS("x86-64-v3") ? "x86-64-v3"
                    : TESSERA_CPU_SUPPORTS("x86-64-v2") ? "x86-64-v2"
                                                          : "x86-64";
  unsigned long n = 0, c = 0;
  while (missing[n]) ++n;
  while (cpu[c]) ++c;
  static constexpr char head[] = "tessera: this program was built for " TESSERA_BUILT_LEVEL " (-march) but this CPU (";
  static constexpr char lacks[] = ") lacks: ";
  static constexpr char fix[] = "\ntessera: rebuild it for this CPU: -march=native, or -march=";
  static constexpr char cmake[] = " (CMake: -DTESSERA_ARCH=";
  static constexpr char end[] = ")\n";
  if (write(2, head, sizeof head - 1) < 0 || write(2, cpu, c) < 0 || write(2, lacks, sizeof lacks - 1) < 0 ||
      write(2, missing, n) < 0 || write(2, fix, sizeof fix - 1) < 0 || write(2, cpu, c) < 0 ||
      write(2, cmake, sizeof cmake - 1) < 0 || write(2, cpu, c) < 0 || write(2, end, sizeof end - 1) < 0)
    _exit(2);
  _exit(2);
}
#undef TESSERA_CPU_NEED
#endif
}  // namespace detail

}  // namespace tessera::cpu
