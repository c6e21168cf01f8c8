#!/usr/bin/env bash
# Golden logs: proves that a change leaves training results bitwise identical. Builds the parity programs
# (tests/train/parity_{gpt,llama}.cpp) from two revisions of this repository on this machine, trains the
# same fixed set of plans with each — 1 rank, dp, tp + sequence parallel, every pipeline schedule, ZeRO 1/2/3,
# bf16, recompute, GPT and LLaMA, and a save + resume — and compares every step's loss and grad_norm, as the
# JSON log prints them (full precision), byte for byte.
#
#   scripts/golden.sh BASE [HEAD]     revisions (anything git rev-parse takes); HEAD omitted: the working
#                                     tree as it is now, uncommitted changes included
#   options: --steps N (10), --work DIR (build-golden/), --plans "gpt:ref:1 llama:dp2:2 ..." (the default set)
#
# The last bits of a step depend on the CPU and on OpenBLAS's kernels for it, so the two revisions must be
# compared on one machine, in one run of this script: that is what it does (CI keeps the parity tolerance).
# Exit 0 when every log is identical; 1 with the first differing step of each plan otherwise.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
steps=10
work=""
plans="gpt:ref:1 gpt:accum4:1 gpt:dp2:2 gpt:tp2_sp:2 gpt:pp2_gpipe:2 gpt:pp2_1f1b:2 gpt:pp2_interleaved:2
       gpt:pp2_chimera:2 gpt:pp2_zb_h1:2 gpt:pp2_zbv:2 gpt:pp2_dualpipe_v:2 gpt:dp4_zero1:4 gpt:dp4_zero2:4
       gpt:dp4_zero3:4 gpt:bf16:1 gpt:recompute_full:1 gpt:3d_sp_recompute_selective:8 gpt:3d_sp_bf16_zero1:8
       llama:ref:1 llama:tp2_sp:2 llama:pp4_1f1b:4 llama:dp2_pp2_chimera_zero1:4 llama:3d_zero3:8 llama:bf16:1"
args=()
while (($#)); do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --plans) plans=$2; shift 2 ;;
    -*) echo "golden.sh: unknown option $1" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
((${#args[@]} >= 1 && ${#args[@]} <= 2)) || { echo "usage: scripts/golden.sh BASE [HEAD] [--steps N] [--plans ...]" >&2; exit 2; }
"$here/deps.sh"
source "$here/env.sh"
work="${work:-$TESSERA_ROOT/build-golden}"
mkdir -p "$work"
corpus="$TESSERA_ROOT/data/corpus.txt"

# source tree of a revision ("" = the working tree)
tree_of() {
  local rev=$1 dir=$2
  rm -rf "$dir" && mkdir -p "$dir"
  if [ -z "$rev" ]; then
    (cd "$TESSERA_ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$dir"
  else
    git -C "$TESSERA_ROOT" rev-parse --verify -q "$rev^{commit}" >/dev/null || { echo "golden.sh: no revision $rev" >&2; exit 2; }
    git -C "$TESSERA_ROOT" archive "$rev" | tar -xf - -C "$dir"
  fi
}
build_and_run() {
  local name=$1 rev=$2
  local src="$work/$name/src" bld="$work/$name/build" logs="$work/$name/logs"
  echo "golden: $name = ${rev:-working tree}: building the parity programs"
  tree_of "$rev" "$src"
  cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release -DTESSERA_BUILD_EXAMPLES=OFF -DTESSERA_BUILD_BENCH=OFF \
        -DTESSERA_ENABLE_CUDA=OFF >/dev/null
  cmake --build "$bld" -j "$TESSERA_JOBS" --target parity_gpt parity_llama >/dev/null
  rm -rf "$logs" && mkdir -p "$logs"
  local common=(--data "$corpus" --steps "$steps" --batch 8 --lr 3e-4 --warmup 2 --weight-decay 0.1 --threads 1
                --bucket-mb 0.05 --quiet)
  for spec in $plans; do
    IFS=: read -r model plan np <<<"$spec"
    mpiexec -np "$np" --oversubscribe "$bld/tests/train/parity_$model" "$plan" "${common[@]}" \
      --log-json "$logs/$model.$plan.json" >"$logs/$model.$plan.out" 2>&1 ||
      { echo "golden: $name: $model $plan failed (see $logs/$model.$plan.out)"; return 1; }
  done
  # a save at the middle step and a resume from it, on the 3d plan with ZeRO-1
  local ck="$logs/ck" half=$((steps / 2))
  mpiexec -np 8 --oversubscribe "$bld/tests/train/parity_gpt" 3d_zero1 "${common[@]}" --save "$ck" \
    --stop-after "$half" --log-json "$logs/gpt.resume.json" >"$logs/gpt.resume.out" 2>&1
  mpiexec -np 8 --oversubscribe "$bld/tests/train/parity_gpt" 3d_zero1 "${common[@]}" --resume "$ck" \
    --log-json "$logs/gpt.resume.json" >>"$logs/gpt.resume.out" 2>&1 ||
    { echo "golden: $name: the resume failed (see $logs/gpt.resume.out)"; return 1; }
}

base=${args[0]}
head=${args[1]:-}
build_and_run base "$base"
build_and_run head "$head"
python3 - "$work/base/logs" "$work/head/logs" <<'PY'
import json, os, re, sys
base, head = sys.argv[1:]
def steps(path):
    # the numbers exactly as the log prints them (nlohmann: shortest round-trip form)
    out = []
    for line in open(path):
        j = json.loads(line)
        if "step" in j and "event" not in j:
            fields = {k: re.search(rf'"{k}":([^,}}]*)', line).group(1) for k in ("loss", "grad_norm")}
            out.append((j["step"], fields))
    return out
bad = 0
names = sorted(f for f in os.listdir(base) if f.endswith(".json"))
for f in names:
    a, b = steps(os.path.join(base, f)), steps(os.path.join(head, f))
    if not a:
        print(f"golden: {f}: no steps logged"); bad += 1; continue
    diff = next(((x, y) for x, y in zip(a, b) if x != y), None)
    if diff or len(a) != len(b):
        bad += 1
        print(f"golden: {f}: DIFFERS" + (f" at step {diff[0][0]}: {diff[0][1]} vs {diff[1][1]}" if diff else f": {len(a)} vs {len(b)} steps"))
    else:
        print(f"golden: {f}: {len(a)} steps identical (final loss {a[-1][1]['loss']})")
print(f"golden: {len(names) - bad} of {len(names)} logs identical" + ("" if bad == 0 else " -- FAIL"))
sys.exit(1 if bad else 0)
PY
