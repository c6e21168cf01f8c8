#!/usr/bin/env bash
# isa_levels.sh OUTDIR — the host vector code at every x86-64 level: the vector tests (core/simd.hpp,
# ops/math.hpp and the vectorised host operators) compiled with -march=x86-64, x86-64-v2, x86-64-v3 and
# x86-64-v4 under -Wall -Wextra -Werror (so -Wpsabi too), each run where this CPU has the level — the
# 4-lane SSE, 8-lane AVX2 and 16-lane AVX-512 paths checked against the same scalar math.
set -euo pipefail
out=$1
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$out"
[ "$(uname -m)" = x86_64 ] || { echo "PASS (not x86-64: nothing to do)"; exit 0; }
# this CPU's level (scripts/isa_level.sh), and a level's rank: x86-64 1, x86-64-v2 2, …
rank() { case "$1" in x86-64) echo 1 ;; x86-64-v*) echo "${1#x86-64-v}" ;; *) echo 0 ;; esac; }
cpu=$(rank "$("$root/scripts/isa_level.sh")")
runs() { [ "$(rank "$1")" -le "$cpu" ]; }
for level in x86-64 x86-64-v2 x86-64-v3 x86-64-v4; do
  for t in core/test_simd ops/test_vector_math; do
    exe="$out/$(basename "$t").$level"
    mpicxx -std=c++20 -O2 -march="$level" -fopenmp -Wall -Wextra -Werror -I "$root/include" \
      -DDOCTEST_CONFIG_IMPLEMENT_WITH_MAIN "$root/tests/$t.cpp" -lopenblas -o "$exe"
    if runs "$level"; then
      OMP_NUM_THREADS=1 "$exe" >"$exe.log" 2>&1 || { cat "$exe.log"; echo "FAIL: $(basename "$exe")"; exit 1; }
      echo "$level: $(basename "$t") compiled warning-free and passed ($(grep -m1 'test cases' "$exe.log" | tr -s ' '))"
    else
      echo "$level: $(basename "$t") compiled warning-free (this CPU lacks $level: not run)"
    fi
  done
done
echo PASS
