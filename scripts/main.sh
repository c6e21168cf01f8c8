#!/usr/bin/env bash
# The main job: builds and runs the demo across 8 MPI ranks (dp2 × pp2 × tp2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh"
source "$here/env.sh"
tessera_configure
cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS" --target mesh_demo
mpirun -np 8 --oversubscribe "$TESSERA_BUILD/examples/mesh_demo" "$@"
