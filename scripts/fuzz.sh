#!/usr/bin/env bash
# Fuzzes every parser of outside data: the safetensors reader, the checkpoint manifest + slice loader, the
# token-file reader and the HF name mapping (tests/fuzz/), built with clang's libFuzzer, AddressSanitizer
# and UBSan in build-fuzz/.
#
#   scripts/fuzz.sh                  every committed regression input once, then each harness 60 s
#                                    (scripts/test.sh, i.e. CI, runs --seconds 30)
#   scripts/fuzz.sh --seconds S      each harness S seconds
#   scripts/fuzz.sh --minutes N      each harness N minutes (a long run)
#   scripts/fuzz.sh --only NAME      one harness (safetensors, manifest, tokens, hf)
#
# Seeds are real files the library writes: the seed program (tests/fuzz/fuzz_seeds.cpp, built in the main
# build) trains the harnesses' tiny models, saves a checkpoint (tp = 2: two shards) and exports HF weights;
# tokens are seeded from the corpus and an llm.c shard. The regression corpus (tests/fuzz/regressions/) holds
# the inputs that once crashed. Harnesses run two at a time. A crash leaves its input in
# build-fuzz/artifacts/NAME/ and fails the script; the summary gives each harness's executions.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds=60
only=""
while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --minutes) seconds=$(($2 * 60)); shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "fuzz.sh: unknown argument $1 (--seconds S, --minutes N, --only NAME)" >&2; exit 2 ;;
  esac
done
"$here/deps.sh" clang libclang-rt-14-dev libomp-14-dev
source "$here/env.sh"
fuzz_build="${TESSERA_FUZZ_BUILD:-$TESSERA_ROOT/build-fuzz}"
harnesses=(safetensors manifest tokens hf)
[ -n "$only" ] && harnesses=("$only")

# 1. seeds, from the seed program of the main build
tessera_configure
cmake --build "$TESSERA_BUILD" --target fuzz_seeds -j "$TESSERA_JOBS" >/dev/null
seeds="$fuzz_build/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"/{safetensors,manifest,tokens,hf}
seed_exe="$TESSERA_BUILD/tests/fuzz/fuzz_seeds"
corpus="$TESSERA_ROOT/data/corpus.txt"
common=(--data "$corpus" --batch 2 --steps 2 --threads 1 --quiet)
seed_log="$fuzz_build/seeds.log"
mkdir -p "$fuzz_build" && : >"$seed_log"
{
  mpiexec -np 2 --oversubscribe "$seed_exe" gpt_tp2 "${common[@]}" --save "$seeds/ck" --save-every 2
  "$seed_exe" gpt "${common[@]}" --export "$seeds/hf/gpt.safetensors"
  "$seed_exe" llama "${common[@]}" --export "$seeds/hf/llama.safetensors" --export-dtype bf16
} >>"$seed_log" 2>&1 || { echo "fuzz.sh: the seed program failed:"; tail -20 "$seed_log"; exit 1; }
checkpoint="$seeds/ck/step_00000002"
cp "$checkpoint/manifest.json" "$seeds/manifest/"
cp "$checkpoint"/shard_*.safetensors "$seeds/hf"/*.safetensors "$seeds/safetensors/"
head -c 4096 "$corpus" > "$seeds/tokens/corpus_head.txt"
python3 - "$seeds/tokens/shard.bin" <<'PY'
import struct, sys
tokens = [(i * 7919) % 300 for i in range(64)]
head = struct.pack("<3i", 20240520, 1, len(tokens)) + bytes(1024 - 12)
open(sys.argv[1], "wb").write(head + struct.pack(f"<{len(tokens)}H", *tokens))
PY

# 2. the harnesses
cmake -S "$TESSERA_ROOT" -B "$fuzz_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DTESSERA_FUZZ=ON -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_EXAMPLES=OFF -DTESSERA_BUILD_BENCH=OFF \
  -DTESSERA_ENABLE_CUDA=OFF >/dev/null
cmake --build "$fuzz_build" -j "$TESSERA_JOBS" --target "${harnesses[@]/#/fuzz_}"

# 3. regressions once, then fuzz; two harnesses at a time
export TESSERA_FUZZ_CHECKPOINT="$checkpoint"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run_one() {
  local h=$1 exe="$fuzz_build/tests/fuzz/fuzz_$1" regress="$TESSERA_ROOT/tests/fuzz/regressions/$1"
  local work="$fuzz_build/corpus/$h" art="$fuzz_build/artifacts/$h/" log="$fuzz_build/$h.log"
  rm -rf "$work" "$art" && mkdir -p "$work" "$art"
  cp "$seeds/$h"/* "$work/"
  if [ -d "$regress" ] && ls "$regress"/* >/dev/null 2>&1; then
    if ! "$exe" -runs=1 "$regress"/* >"$fuzz_build/$h.regress.log" 2>&1; then
      echo "fuzz $h: a regression input fails (see $fuzz_build/$h.regress.log)"; return 1
    fi
    cp "$regress"/* "$work/"
  fi
  if ! "$exe" "$work" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=65536 \
       -artifact_prefix="$art" -print_final_stats=1 >"$log" 2>&1; then
    echo "fuzz $h: FAILED after $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?') executions; input in $art; log $log"
    grep -E "ERROR|SUMMARY|runtime error|deadly signal|uncaught" "$log" | head -5
    return 1
  fi
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  echo "fuzz $h: ${seconds} s, ${execs} executions, coverage ${cov} edges, $(ls "$regress" 2>/dev/null | wc -l) regression inputs, nothing found"
}
status=0
pids=()
names=()
for h in "${harnesses[@]}"; do
  run_one "$h" > "$fuzz_build/$h.summary" 2>&1 &
  pids+=($!); names+=("$h")
  if ((${#pids[@]} == 2)); then
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || status=1; cat "$fuzz_build/${names[$i]}.summary"; done
    pids=(); names=()
  fi
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || status=1; cat "$fuzz_build/${names[$i]}.summary"; done
((status == 0)) && echo "fuzz: PASS" || echo "fuzz: FAIL"
exit $status
