#!/usr/bin/env bash
# isa_guard.sh ARCH CPU_REPORT [TEST ...] — the start-up check of tessera/core/cpu.hpp, on an emulated CPU.
#   1. CPU_REPORT (built for this build's level) is run under qemu-x86_64 emulating a CPU one level lower:
#      it must stop with exit code 2 and name the level and the missing instructions — not SIGILL.
#   2. When the build is for a psABI level (ARCH, the build's -march, is x86-64[-v2|-v3]: no AVX-512, which
#      qemu's TCG does not emulate), each TEST (a doctest program) must pass on an emulated CPU of exactly
#      that level — e.g. AVX2 without AVX-512. (-march=native may add instructions — SHA, VAES, … on a Zen 3
#      — that the emulated model of the level lacks; then only step 1 runs.)
set -euo pipefail
arch=$1; report=$2; shift 2
qemu=$(command -v qemu-x86_64-static || command -v qemu-x86_64 || true)
[ "$(uname -m)" = x86_64 ] || { echo "SKIP: not an x86-64 machine"; exit 0; }
[ -n "$qemu" ] || { echo "FAIL: qemu-x86_64-static not found (Debian: qemu-user-static; scripts/deps.sh installs it)"; exit 1; }
built=$("$report" | sed -n 's/^built=//p')
# qemu CPU models: the one that lacks the build's level, and the one that has exactly it
case "$built" in
  x86-64-v4) lower=Haswell; exact="" ;;
  x86-64-v3) lower=Nehalem; exact=Haswell ;;
  x86-64-v2) lower=qemu64;  exact=Nehalem ;;
  *) echo "PASS: built for $built, nothing lower to refuse"; exit 0 ;;
esac
err=$(mktemp); trap 'rm -f "$err"' EXIT
rc=0
"$qemu" -cpu "$lower" "$report" >/dev/null 2>"$err" || rc=$?
out=$(grep -v '^qemu-x86_64' "$err" || true)
echo "built for $built, run on an emulated $lower: exit $rc"
echo "$out"
[ "$rc" = 2 ] || { echo "FAIL: expected exit code 2 (got $rc)"; exit 1; }
grep -q "tessera: this program was built for $built (-march) but this CPU (x86-64[-v0-9]*) lacks: [a-z0-9]" <<<"$out" ||
  { echo "FAIL: the message does not name the level and the missing instructions"; exit 1; }
case "$arch" in x86-64|x86-64-v2|x86-64-v3) ;; *) exact="" ;; esac
for t in "$@"; do
  if [ -z "$exact" ]; then echo "($(basename "$t") not run on an emulated CPU: built with -march=${arch:-default}, qemu's TCG models only x86-64 to v3 exactly)"; continue; fi
  echo "== $(basename "$t") on an emulated $exact"
  "$qemu" -cpu "$exact" "$t" 2> >(grep -v '^qemu-x86_64' >&2) | tail -3
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "FAIL: $(basename "$t") on an emulated $exact"; exit 1; }
done
echo PASS
