// tessera/ops/host/openblas_core.hpp — which kernel set OpenBLAS chose for this CPU, and a restart with a
// better one when it fell back to generic kernels.
//
// An OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels once, when the library is loaded, from
// the CPU's vendor, family and model. A CPU newer than the library gets the generic ones: Debian 12's
// OpenBLAS 0.3.21 does not know Intel's family 6 model 207 (Emerald Rapids) and runs SSE3 "Prescott"
// kernels on it, about 4× slower fp32 GEMMs than its AVX-512 "SkylakeX" ones. The environment variable
// OPENBLAS_CORETYPE, read at load, overrides the choice; `restart_with_cpu_kernels` sets it to the kernel
// set of the CPU's instruction-set level and re-executes the program before MPI starts — never when the
// user has set OPENBLAS_CORETYPE (theirs wins), and at most once.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/cpu.hpp"

extern "C" char* openblas_get_corename(void);

namespace tessera::ops::host::openblas {

/// OpenBLAS's name of the kernel set it runs, e.g. "SkylakeX", "Haswell", "Prescott".
inline std::string core() {
  const char* n = openblas_get_corename();
  return n ? std::string(n) : std::string();
}

/// The x86-64 level a kernel set needs: 1 (SSE2/SSE3 generic), 2, 3 (AVX2 + FMA), 4 (AVX-512); 0 when the
/// name is not an x86 one this table knows (then nothing is changed).
inline int core_level(std::string_view name) {
  for (std::string_view n : {"Prescott", "Core2", "Penryn", "Dunnington", "Atom", "Katmai", "Coppermine",
                             "Northwood", "Banias", "Opteron", "Barcelona", "Bobcat"})
    if (name == n) return 1;
  for (std::string_view n : {"Nehalem", "Sandybridge", "Bulldozer", "Piledriver", "Steamroller"})
    if (name == n) return 2;
  for (std::string_view n : {"Haswell", "Zen", "Excavator"})
    if (name == n) return 3;
  for (std::string_view n : {"SkylakeX", "Cooperlake", "SapphireRapids"})
    if (name == n) return 4;
  return 0;
}

/// The kernel set for this CPU's level: Cooperlake (AVX-512 with BF16), SkylakeX (AVX-512), Haswell (AVX2),
/// Nehalem (SSE4.2); empty elsewhere.
inline std::string core_for_cpu() {
  const std::string level = cpu::cpu_level();
  if (level == "x86-64-v4") return cpu::cpu_has_bf16_hardware() ? "Cooperlake" : "SkylakeX";
  if (level == "x86-64-v3") return "Haswell";
  if (level == "x86-64-v2") return "Nehalem";
  return {};
}

/// Whether the kernel set OpenBLAS runs is a lower level's than core_for_cpu() (however it was chosen).
inline bool core_below_cpu() {
  const int have = core_level(core());
  const std::string want = core_for_cpu();
  return have > 0 && !want.empty() && core_level(want) > have;
}

/// The kernel set to restart with: core_for_cpu() when OpenBLAS chose a lower level's set by itself (not
/// through OPENBLAS_CORETYPE); empty when its choice is fine or the user made it.
inline std::string better_core() {
  if (std::getenv("OPENBLAS_CORETYPE") || !core_below_cpu()) return {};
  return core_for_cpu();
}

/// When OpenBLAS fell back to a lower level's kernels on its own, re-executes this program (/proc/self/exe
/// with the process's own command line, /proc/self/cmdline, whatever the caller did to argv) with
/// OPENBLAS_CORETYPE set to this CPU's kernel set, saying so on the first rank. Call it before MPI_Init.
/// Returns only when no restart is needed or it failed (then the program continues on the generic
/// kernels, and the start line's "openblas_core" and a warning say which).
inline void restart_with_cpu_kernels() {
  if (std::getenv("TESSERA_OPENBLAS_RESTARTED")) return;  // once
  const std::string want = better_core();
  if (want.empty()) return;
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  if (!rank) rank = std::getenv("PMI_RANK");
  if (!rank || std::string_view(rank) == "0")
    std::fprintf(stderr,
                 "tessera: OpenBLAS does not know this CPU and chose its generic %s kernels (an x86-64-v%d set on an "
                 "x86-64-v%d CPU); restarting with OPENBLAS_CORETYPE=%s (set OPENBLAS_CORETYPE yourself to choose)\n",
                 core().c_str(), core_level(core()), core_level(want), want.c_str());
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<char*> args;
  for (std::size_t i = 0; i < cmdline.size(); i += std::char_traits<char>::length(cmdline.data() + i) + 1)
    args.push_back(const_cast<char*>(cmdline.data() + i));
  args.push_back(nullptr);
  setenv("OPENBLAS_CORETYPE", want.c_str(), 1);
  setenv("TESSERA_OPENBLAS_RESTARTED", "1", 1);
  if (args.size() > 1) execv("/proc/self/exe", args.data());
  std::fprintf(stderr, "tessera: warning: restarting with OPENBLAS_CORETYPE=%s failed; continuing on %s\n",
               want.c_str(), core().c_str());
}

}  // namespace tessera::ops::host::openblas
