#!/usr/bin/env bash
# contract_lines.sh host|cuda OUTDIR [ARCH] — compiles the main job's program (examples/train_gpt.cpp: a
# model and a dp2 x pp2 x tp2 plan, ts::train) with exactly the command line of ../shared/contract.md §1
# (from the repository root), prints how long that took, then trains it for 2 steps on 8 ranks.
# TESSERA_CONTRACT_MARCH=LEVEL (e.g. x86-64-v3) compiles the host line with -march=LEVEL instead of
# -march=native: the same line for a CPU one level below the build machine's, with -DTESSERA_HEADER_ONLY so
# that the engine is compiled at that level too (the pre-compiled one, if the build made it, is native).
set -euo pipefail
kind=$1; out=$2; arch=${3:-90}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
cp examples/train_gpt.cpp "$out/prog.cpp"
start=$(date +%s%N)
prog="$out/prog.cpp"
if [ "$kind" = host ]; then
  set -x
  if [ -n "${TESSERA_CONTRACT_MARCH:-}" ]; then
    mpicxx -std=c++20 -O2 -march=$TESSERA_CONTRACT_MARCH -DTESSERA_HEADER_ONLY -fopenmp -I include "$prog" -lopenblas -o "$out/prog"
  else
    mpicxx -std=c++20 -O2 -march=native -fopenmp -I include "$prog" -lopenblas -o "$out/prog"
  fi
else
  set -x
  nvcc -std=c++20 -O2 -arch=sm_$arch --expt-relaxed-constexpr -x cu -Xcompiler -fopenmp -I include \
    $(mpicxx --showme:compile) "$prog" $(mpicxx --showme:link) -lnccl -lcublasLt -lcublas -lopenblas -o "$out/prog"
fi
set +x
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "compile time ($kind${3:+ sm_$arch}): $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
mpirun -np 8 --oversubscribe "$out/prog" --data data/corpus.txt --steps 2 --batch 16 --threads 1 2>&1 |
  tee "$out/run.log" | grep "step     2/2 | loss"
echo "contract program trained on 8 ranks"
# --backend cuda where there is no GPU (or no CUDA in the program): exit 2 and "no CUDA device"
if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L > /dev/null 2>&1; then
  set +e
  mpirun -np 8 --oversubscribe "$out/prog" --data data/corpus.txt --steps 2 --backend cuda > "$out/cuda.log" 2>&1
  rc=$?
  set -e
  if [ $rc -ne 2 ] || ! grep -q "no CUDA device" "$out/cuda.log"; then
    echo "FAIL: --backend cuda without a GPU: exit $rc, expected 2 and 'no CUDA device':"; cat "$out/cuda.log"; exit 1
  fi
  grep -m1 "no CUDA device" "$out/cuda.log"
fi
