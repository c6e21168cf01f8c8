#!/usr/bin/env bash
# contract_lines.sh host|cuda OUTDIR [ARCH] — compiles the main example with exactly the command line of
# ../shared/contract.md §1 (from the repository root), then runs it on 8 ranks.
set -euo pipefail
kind=$1; out=$2; arch=${3:-90}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
cp examples/mesh_demo.cpp "$out/prog.cpp"
prog="$out/prog.cpp"
if [ "$kind" = host ]; then
  set -x
  mpicxx -std=c++20 -O2 -march=native -fopenmp -I include "$prog" -lopenblas -o "$out/prog"
else
  set -x
  nvcc -std=c++20 -O2 -arch=sm_$arch --expt-relaxed-constexpr -x cu -Xcompiler -fopenmp -I include \
    $(mpicxx --showme:compile) "$prog" $(mpicxx --showme:link) -lnccl -lcublasLt -lcublas -lopenblas -o "$out/prog"
fi
set +x
mpirun -np 8 --oversubscribe "$out/prog" | tail -1 | grep "all 48 transitions reproduce the tensor"
