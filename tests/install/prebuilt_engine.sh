#!/usr/bin/env bash
# prebuilt_engine.sh OUTDIR REFERENCE_PROGRAM — the pre-compiled engine (tessera/train/engine.hpp):
#  1. examples/train_gpt.cpp compiled with the README's g++ line uses it: the program holds no trainer
#     (no training_run symbol) and compiles in less time than the engine takes (printed);
#  2. it trains to the same losses and gradient norms, bit for bit, as REFERENCE_PROGRAM, the same source
#     built by CMake with the engine compiled in (TESSERA_HEADER_ONLY), on 8 ranks; with nvcc, the README's
#     nvcc line and the CUDA engine do the same on the host backend (within 1e-6: nvcc's host code is not
#     built with -march=native);
#  3. an engine that cannot be loaded, or one built from other headers, stops the program with exit 2 and
#     a message naming the library and the fix.
set -euo pipefail
out=$1; reference=$2
cd "$(dirname "$0")/../.."
generated=include/tessera/generated/prebuilt_engine.hpp
[ -f "$generated" ] || { echo "FAIL: $generated missing: the build (TESSERA_PREBUILT_ENGINE=ON) writes it"; exit 1; }
mkdir -p "$out"
start=$(date +%s%N)
mpicxx -std=c++20 -O2 -march=native -fopenmp -I include examples/train_gpt.cpp -lopenblas -o "$out/prog"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "compile time with the pre-compiled engine: $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
if nm -C "$out/prog" | grep -q "training_run<"; then
  echo "FAIL: the program compiled the engine in although $generated exists"; exit 1
fi
run() { mpirun -np 8 --oversubscribe "$1" --data data/corpus.txt --steps 3 --batch 16 --threads 1 --quiet --log-json "$2"; }
run "$out/prog" "$out/prebuilt.json"
run "$reference" "$out/reference.json"
compare() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
steps = lambda f: [(j["loss"], j["grad_norm"]) for j in map(json.loads, open(f)) if "loss" in j and "event" not in j]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
tol = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
print(f"{sys.argv[3]}:", a, "\nengine compiled in:", b)
worst = max((abs(x - y) / abs(y) for p, q in zip(a, b) for x, y in zip(p, q)), default=0.0)
if not a or len(a) != len(b) or worst > tol:
    sys.exit(f"FAIL: the {sys.argv[3]}'s losses differ from those of the program's own engine "
             f"(largest relative difference {worst:.2e}, tolerance {tol:.0e})")
print("same losses and gradient norms, bit for bit" if worst == 0 else
      f"same losses and gradient norms within {worst:.2e} (tolerance {tol:.0e})")
PY
}
compare "$out/prebuilt.json" "$out/reference.json" "pre-compiled engine"
# the same with the README's nvcc line and the CUDA engine (libtessera_engine_cuda.so), on the host backend
if [ -f include/tessera/generated/prebuilt_cuda_engine.hpp ] && command -v nvcc > /dev/null; then
  start=$(date +%s%N)
  nvcc -std=c++20 -O2 -arch=sm_90 --expt-relaxed-constexpr -x cu -Xcompiler -fopenmp -I include \
    $(mpicxx --showme:compile) examples/train_gpt.cpp $(mpicxx --showme:link) -lnccl -lcublasLt -lcublas -lopenblas \
    -o "$out/prog_cuda"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "nvcc compile time with the pre-compiled CUDA engine: $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
  if nm -C "$out/prog_cuda" | grep -q "training_run<"; then
    echo "FAIL: the nvcc program compiled the engine in although prebuilt_cuda_engine.hpp exists"; exit 1
  fi
  run "$out/prog_cuda" "$out/prebuilt_cuda.json"
  # nvcc compiles the engine's host code without -march=native: other vector widths, other summation orders
  compare "$out/prebuilt_cuda.json" "$out/reference.json" "CUDA engine (host backend)" 1e-6
fi
# 3: the same program pointed at a library that is missing, then at one from "other headers"
rm -rf "$out/include" && mkdir -p "$out/include" && cp -r include/tessera "$out/include/"
printf '#pragma once\n#define TESSERA_PREBUILT_ENGINE_PATH "%s"\n' "$out/libother_engine.so" > "$out/$generated"
mpicxx -std=c++20 -O2 -march=native -fopenmp -I "$out/include" examples/train_gpt.cpp -lopenblas -o "$out/prog_other"
rm -f "$out/libother_engine.so"
expect_refusal() {
  set +e
  mpirun -np 1 "$out/prog_other" --data data/corpus.txt --steps 1 > "$out/refusal.log" 2>&1
  local rc=$?
  set -e
  if [ $rc -ne 2 ] || ! grep -q "$1" "$out/refusal.log"; then
    echo "FAIL: expected exit 2 and '$1', got exit $rc:"; cat "$out/refusal.log"; exit 1
  fi
  grep -m1 "$1" "$out/refusal.log"
}
expect_refusal "cannot load the pre-compiled engine $out/libother_engine.so"
printf '#include <stdint.h>\nuint64_t tessera_engine_abi(void) { return 42; }\nint tessera_engine_train(const void* r) { (void)r; return 0; }\n' \
  > "$out/other_engine.c"
cc -shared -fPIC "$out/other_engine.c" -o "$out/libother_engine.so"
expect_refusal "was built from other tessera headers (engine ABI 2a"
echo PASS
