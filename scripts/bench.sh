#!/usr/bin/env bash
# Benchmarks, one command: scripts/bench.sh [allreduce] [RANKS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh"
source "$here/env.sh"
tessera_configure
what=${1:-allreduce}
case "$what" in
  allreduce)
    ranks=${2:-8}
    cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS" --target bench_allreduce
    mpirun -np "$ranks" --oversubscribe "$TESSERA_BUILD/bench/bench_allreduce" "${@:3}" ;;
  *) echo "scripts/bench.sh: unknown benchmark '$what' (known: allreduce)" >&2; exit 2 ;;
esac
