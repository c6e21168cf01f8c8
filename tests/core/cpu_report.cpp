// tests/core: prints what tessera/core/cpu.hpp and core/simd.hpp report for this build on this CPU, one
// key=value per line (isa_guard.sh reads `built`).
#include <cstdio>
#include <string>

#include "tessera/core/cpu.hpp"
#include "tessera/core/simd.hpp"

int main() {
  const std::string built(tessera::cpu::built_level());
#if TESSERA_HOST_VECTORS
  const int lanes = tessera::simd::lanes;
#else
  const int lanes = 1;
#endif
  std::printf("built=%s\nlanes=%d\ncpu=%s\nfeatures=%s\nallowed_cpus=%d\n", built.c_str(), lanes,
              tessera::cpu::cpu_level().c_str(), tessera::cpu::cpu_features().c_str(), tessera::cpu::allowed_cpus());
  return 0;
}
