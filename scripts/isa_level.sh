#!/usr/bin/env bash
# isa_level.sh [--below] — the instruction-set level of this machine's CPU as a -march value (x86-64-v4,
# x86-64-v3, x86-64-v2, x86-64; armv8-a on aarch64), or with --below the level one step lower: what
# scripts/test.sh builds the second time, standing in for a machine without this CPU's widest vectors.
set -euo pipefail
case "$(uname -m)" in
  x86_64)
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
    if has avx512f avx512bw avx512cd avx512dq avx512vl avx2 fma bmi2; then level=4
    elif has avx2 fma bmi1 bmi2 movbe; then level=3
    elif has sse4_2 popcnt ssse3; then level=2
    else level=1; fi
    [ "${1:-}" = --below ] && level=$((level > 1 ? level - 1 : 1))
    if [ "$level" = 1 ]; then echo x86-64; else echo "x86-64-v$level"; fi ;;
  aarch64) echo armv8-a ;;
  *) echo "isa_level.sh: unknown machine $(uname -m)" >&2; exit 2 ;;
esac
