#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds everything, runs CTest (MPI suites at 1, 2, 4, 8 ranks).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh"
source "$here/env.sh"
tessera_configure
cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS"
cd "$TESSERA_BUILD"
ctest --output-on-failure -j "$TESSERA_JOBS" "$@"
