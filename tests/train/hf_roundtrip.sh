#!/usr/bin/env bash
# hf_roundtrip.sh MPIEXEC EXE WORK DATA PLAN:NP...: weights exported by the one-rank run (after 3 steps) are
# imported by each PLAN and exported again without a step: the files must be byte-identical (bf16 masters
# and ZeRO-sharded state included).
set -euo pipefail
mpiexec=$1 exe=$2 work=$3 data=$4
shift 4
mkdir -p "$work"
flags=(--data "$data" --batch 8 --threads 1 --quiet)
"$mpiexec" -np 1 "$exe" ref "${flags[@]}" --steps 3 --export "$work/ref.safetensors"
for spec in "$@"; do
  plan=${spec%%:*} np=${spec##*:}
  "$mpiexec" -np "$np" --oversubscribe "$exe" "$plan" "${flags[@]}" --steps 0 --init-from "$work/ref.safetensors" \
    --export "$work/$plan.safetensors"
  if cmp -s "$work/ref.safetensors" "$work/$plan.safetensors"; then
    echo "$plan on $np ranks: import then export byte-identical"
  else
    echo "FAIL: $plan: export differs from the imported file"; exit 1
  fi
done
echo PASS
