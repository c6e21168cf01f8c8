#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds everything, runs CTest (MPI suites at 1, 2, 4, 8
# ranks). Then, unless arguments were given, every file parser fuzzed for 30 s each plus the committed
# regression inputs (scripts/fuzz.sh: libFuzzer, ASan, UBSan), the CPU-dependent tests again built one
# instruction-set level below this CPU's (scripts/test_lower.sh) and the aarch64 cross-build of every
# public header and the operator tests, run under qemu (scripts/cross_aarch64.sh). Arguments go to the first ctest only (e.g.
# -L parity, -R layout) and skip the other two stages.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh"
source "$here/env.sh"
tessera_configure
cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS"
(cd "$TESSERA_BUILD" && ctest --output-on-failure -j "$TESSERA_JOBS" "$@")
if (($# == 0)); then
  "$here/fuzz.sh" --seconds 30
  "$here/test_lower.sh"
  if [ -x "$here/cross_aarch64.sh" ]; then "$here/cross_aarch64.sh"; fi
fi
