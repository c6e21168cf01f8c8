#!/usr/bin/env bash
# ptxas_report.sh NVCC SOURCE OUTDIR ARCHS [NVCC FLAGS...] — compiles SOURCE (kernels_report.cu) once per
# architecture in ARCHS (comma-separated, e.g. 80,90) with -Xptxas -v, prints registers / shared memory /
# stack / spills of the main operator kernels, and fails if an attention forward kernel spills (nonzero
# "bytes spill stores" or "bytes spill loads") or if none was found.
set -uo pipefail
nvcc=$1; src=$2; out=$3; archs=$4; shift 4
mkdir -p "$out"
demangle=$(command -v cu++filt || command -v c++filt || echo cat)
status=0
for arch in ${archs//,/ }; do
  log="$out/ptxas_sm_$arch.log"
  if ! "$nvcc" -std=c++20 --expt-relaxed-constexpr -O3 -arch="sm_$arch" -Xptxas -v "$@" -c "$src" \
       -o "$out/kernels_report_sm_$arch.o" >"$log" 2>&1; then
    cat "$log"
    echo "ptxas_report: compilation for sm_$arch failed"
    exit 1
  fi
  # one line per kernel: mangled-name regs smem stack spill_stores spill_loads
  table="$out/kernels_sm_$arch.tsv"
  awk '
    /Compiling entry function/ { split($0, q, "'"'"'"); name = q[2]; stack = ss = sl = 0; next }
    /bytes spill stores/ && name != "" { stack = $1; ss = $5; sl = $9; next }
    /ptxas info *: Used [0-9]+ registers/ && name != "" {
      regs = 0; smem = 0
      for (i = 1; i <= NF; ++i) {
        if ($i ~ /^registers/) regs = $(i - 1)
        if ($i == "smem," || $i == "smem") smem = $(i - 2)
      }
      printf "%s\t%s\t%s\t%s\t%s\t%s\n", name, regs, smem, stack, ss, sl
      name = ""
    }' "$log" >"$table"
  echo "== ptxas -v, sm_$arch: registers, shared memory, stack, spill stores/loads (bytes) =="
  while IFS=$'\t' read -r mangled regs smem stack ss sl; do
    pretty=$(echo "$mangled" | "$demangle" | sed -e 's/^void //' -e 's/(.*//' -e 's/tessera::ops::cuda_detail:://')
    case "$pretty" in
      *attention*|*layernorm*|*rmsnorm*|*cross_entropy*|*column_partials*)
        printf 'sm_%s  %-60s regs %3s  smem %6s  stack %4s  spill stores %4s  spill loads %4s\n' \
          "$arch" "$pretty" "$regs" "$smem" "$stack" "$ss" "$sl";;
    esac
    case "$pretty" in
      attention_fwd_kernel*)
        if [ "$ss" != 0 ] || [ "$sl" != 0 ]; then
          echo "ptxas_report: FAIL: $pretty spills on sm_$arch ($ss bytes stores, $sl bytes loads)"
          status=1
        fi;;
    esac
  done <"$table"
  nfwd=$(grep -c "attention_fwd_kernel" "$table" || true)
  if [ "$nfwd" -eq 0 ]; then
    echo "ptxas_report: FAIL: no attention forward kernel in the ptxas report for sm_$arch"
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "ptxas_report: ok (no attention forward kernel spills)"
exit "$status"
