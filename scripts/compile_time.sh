#!/usr/bin/env bash
# Compile time of a user program with a full 3D plan (bench/compile_time/llama7b_3d.cpp: LLaMA-7B on
# dp4 × pp4 × tp8, interleaved, ZeRO-1, bf16, selective recompute, sequence parallel), with the README's
# two compile lines (g++ through mpicxx; nvcc when the CUDA toolkit is there). Goals: < 20 s and < 60 s.
# The g++ line twice: with the pre-compiled engine (when the build made include/tessera/generated/
# prebuilt_engine.hpp: cmake --build build --target tessera_engine) and with the engine compiled into the
# program (-DTESSERA_HEADER_ONLY). docs/training.md §12.
#
#   scripts/compile_time.sh [--report] [--only gxx|nvcc] [FILE.cpp]
#     --report  also -ftime-report (g++): where the time went, in build-compile-time/*.report
#   scripts/compile_time.sh --planner
#     what ts::auto_plan's search costs: bench/compile_time/auto_plan_175b.cpp (GPT-3 175B on 1,024 A100s)
#     compiled with the search and with the same plan by hand, 3 times each, g++ -O2 -c; goal: < 5 s more
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
report=0
planner=0
only=""
src="$TESSERA_ROOT/bench/compile_time/llama7b_3d.cpp"
while (($#)); do
  case "$1" in
    --report) report=1; shift ;;
    --only) only=$2; shift 2 ;;
    --planner) planner=1; shift ;;
    -*) echo "compile_time.sh: unknown option $1" >&2; exit 2 ;;
    *) src=$1; shift ;;
  esac
done
out="$TESSERA_ROOT/build-compile-time"
mkdir -p "$out"
name=$(basename "$src" .cpp)
cd "$TESSERA_ROOT"
seconds() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
if ((planner)); then
  f="$TESSERA_ROOT/bench/compile_time/auto_plan_175b.cpp"
  for round in 1 2 3; do
    hand=$(seconds g++ -std=c++20 -O2 -I "$TESSERA_ROOT/include" -DTESSERA_HAND_PLAN -c "$f" -o "$out/hand.o")
    auto=$(seconds g++ -std=c++20 -O2 -I "$TESSERA_ROOT/include" -c "$f" -o "$out/auto.o")
    printf 'round %d: by hand %5.1f s, ts::auto_plan %5.1f s: the search adds %4.1f s (goal < 5 s)\n' \
      "$round" "$hand" "$auto" "$(echo "$auto - $hand" | bc)"
  done
  exit 0
fi
if [ -z "$only" ] || [ "$only" = gxx ]; then
  extra=()
  ((report)) && extra=(-ftime-report)
  if [ -f include/tessera/generated/prebuilt_engine.hpp ]; then
    t=$(seconds mpicxx -std=c++20 -O2 -march=native -fopenmp -I include "$src" -lopenblas -o "$out/$name.host")
    printf 'compile time: g++ (mpicxx, contract line), pre-compiled engine   %6.1f s   goal < 20 s\n' "$t"
  else
    echo "compile time: no pre-compiled engine (cmake --build build --target tessera_engine makes one)"
  fi
  t=$(seconds mpicxx -std=c++20 -O2 -march=native -fopenmp -DTESSERA_HEADER_ONLY -I include "${extra[@]}" "$src" \
        -lopenblas -o "$out/$name.host" 2>"$out/$name.report")
  printf 'compile time: g++ (mpicxx, contract line), engine compiled in    %6.1f s\n' "$t"
  ((report)) && echo "  -ftime-report: $out/$name.report"
fi
if { [ -z "$only" ] || [ "$only" = nvcc ]; } && command -v nvcc >/dev/null; then
  nvcc_line() {
    nvcc -std=c++20 -O2 -arch=sm_90 --expt-relaxed-constexpr -x cu -Xcompiler -fopenmp -I include "$@" \
      $(mpicxx --showme:compile) "$src" $(mpicxx --showme:link) -lnccl -lcublasLt -lcublas -lopenblas -o "$out/$name.cuda"
  }
  if [ -f include/tessera/generated/prebuilt_cuda_engine.hpp ]; then
    t=$(seconds nvcc_line)
    printf 'compile time: nvcc (contract line, sm_90), pre-compiled engine  %6.1f s   goal < 60 s\n' "$t"
  else
    echo "compile time: no pre-compiled CUDA engine (cmake --build build --target tessera_engine_cuda makes one)"
  fi
  t=$(seconds nvcc_line -DTESSERA_HEADER_ONLY)
  printf 'compile time: nvcc (contract line, sm_90), engine compiled in   %6.1f s\n' "$t"
fi
