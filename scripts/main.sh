#!/usr/bin/env bash
# The main job: builds examples/train_gpt and trains a small GPT on data/corpus.txt across 8 MPI ranks
# (dp2 × pp2 × tp2, 1F1B, sequence parallel, ZeRO-1), printing progress, saving a checkpoint every 100
# steps under runs/train_gpt/ and printing a sample of generated text at the end. Extra flags go to the
# program (contract §2) and override these, e.g. scripts/main.sh --steps 50 --log-json run.json, or
# scripts/main.sh --resume runs/train_gpt --steps 600 to continue a finished run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh"
source "$here/env.sh"
tessera_configure
cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS" --target train_gpt
mpirun -np 8 --oversubscribe "$TESSERA_BUILD/examples/train_gpt" --data "$TESSERA_ROOT/data/corpus.txt" \
  --steps 300 --batch 16 --lr 2e-3 --min-lr 2e-4 --warmup 20 --weight-decay 0.1 --log-every 10 \
  --save "$TESSERA_ROOT/runs/train_gpt" --save-every 100 --sample 400 --prompt "   1. Definitions." "$@"
