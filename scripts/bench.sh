#!/usr/bin/env bash
# Benchmarks, one command:
#   scripts/bench.sh [allreduce] [RANKS]            tessera all-reduce vs MPI_Allreduce (mpirun, RANKS ranks)
#   scripts/bench.sh ops [--quick] [--batch B]      host operators vs PyTorch CPU, GPT-2 small shapes
#   scripts/bench.sh step [--arch LEVEL] [--rounds R] [--steps N] [--layouts dp2,pp2,tp2] [--fp32-only]
#                                                   a GPT-2 124M training step vs PyTorch (alternating; fp32,
#                                                   and bf16 unless --fp32-only), 2-rank layouts vs 1 rank,
#                                                   the step's per-operator profile; updates docs/performance.md.
#                                                   --arch x86-64-v3 (or v2): tessera built for that level and,
#                                                   where the CPU has more, both sides held to it (OpenBLAS,
#                                                   oneDNN and PyTorch's kernels) — an AVX2 machine on this one
#   scripts/bench.sh zero [--steps N]               peak resident memory per rank, ZeRO 0..3 on dp8, vs the formula
#   scripts/bench.sh gpu-step [--rounds R] [--models gpt2:8,gpt1.3b:4]
#                                                   one GPU, bf16: a GPT-2 124M and a 1.3B GPT step, tessera vs
#                                                   PyTorch (torch.compile, SDPA) alternating; ratio and MFU
#                                                   (skipped without a GPU; scripts/gpu_check.sh runs it there)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh"
source "$here/env.sh"
what=${1:-allreduce}
case "$what" in
  allreduce)
    tessera_configure
    ranks=${2:-8}
    cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS" --target bench_allreduce
    mpirun -np "$ranks" --oversubscribe "$TESSERA_BUILD/bench/bench_allreduce" "${@:3}" ;;
  ops)
    # Host only, own build dir; both sides get the same threads (TESSERA_BENCH_THREADS, default 2).
    shift
    args=()
    while (($#)); do
      case "$1" in
        --quick) args+=(--quick) ;;
        --batch) args+=(--batch "$2"); shift ;;
        *) echo "scripts/bench.sh ops: unknown option '$1' (known: --quick, --batch B)" >&2; exit 2 ;;
      esac
      shift
    done
    TESSERA_BUILD="${TESSERA_BENCH_BUILD:-$TESSERA_ROOT/build-bench}"
    tessera_configure -DTESSERA_ENABLE_CUDA=OFF -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_EXAMPLES=OFF
    cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS" --target bench_ops
    threads=${TESSERA_BENCH_THREADS:-2}
    export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
    # both sides on the OpenBLAS kernels of this CPU's level, where OpenBLAS does not know the CPU itself
    # (bench_ops restarts itself with them and prints which; PyTorch gets the same OPENBLAS_CORETYPE)
    if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
      core=$("$TESSERA_BUILD/bench/bench_ops" --part adamw --budget-ms 1 --min-reps 1 --max-reps 1 --no-bf16 2>/dev/null | sed -n 's/.*OpenBLAS threads (\(.*\) kernels).*/\1/p')
      [ -n "$core" ] && export OPENBLAS_CORETYPE=$core
    fi
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$TESSERA_BUILD/bench/bench_ops" "${args[@]}" --json "$tmp/tessera.json" >&2
    /usr/bin/python3 "$TESSERA_ROOT/bench/ops_torch.py" "${args[@]}" --threads "$threads" --json "$tmp/torch.json" >&2
    echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews these)" >&2
    /usr/bin/python3 "$TESSERA_ROOT/bench/ops_torch.py" --compare "$tmp/tessera.json" "$tmp/torch.json" \
      | tee "$TESSERA_BUILD/bench_ops.txt"
    /usr/bin/python3 "$TESSERA_ROOT/bench/ops_torch.py" --compare "$tmp/tessera.json" "$tmp/torch.json" --markdown \
      > "$TESSERA_BUILD/bench_ops.md"
    cp "$tmp/tessera.json" "$tmp/torch.json" "$TESSERA_BUILD/" ;;
  step)
    shift
    arch=native
    if [ "${1:-}" = --arch ]; then arch=$2; shift 2; fi
    TESSERA_BUILD="${TESSERA_BENCH_BUILD:-$TESSERA_ROOT/build-bench}"
    emulated=""
    if [ "$arch" != native ]; then
      TESSERA_BUILD="$TESSERA_BUILD-$arch"
      # hold both sides to the level: OpenBLAS's and oneDNN's kernels (tessera and PyTorch), PyTorch's own
      case "$arch" in
        x86-64-v3) export OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 ;;
        x86-64-v2) export OPENBLAS_CORETYPE=Nehalem ONEDNN_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default ;;
        *) echo "scripts/bench.sh step: --arch $arch: known levels are native, x86-64-v3, x86-64-v2" >&2; exit 2 ;;
      esac
      emulated="$arch kernels (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY)"
    fi
    tessera_configure -DTESSERA_ENABLE_CUDA=OFF -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_EXAMPLES=OFF \
      -DTESSERA_ARCH="$arch"
    cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS" --target bench_gpt2_step
    threads=${TESSERA_BENCH_THREADS:-2}
    svg="$TESSERA_ROOT/docs/performance_step.svg"
    [ "$arch" = native ] || svg="$TESSERA_ROOT/docs/performance_step_$arch.svg"
    /usr/bin/python3 "$TESSERA_ROOT/bench/step_compare.py" --exe "$TESSERA_BUILD/bench/bench_gpt2_step" \
      --data "$TESSERA_ROOT/data/corpus.txt" --threads "$threads" --markdown "$TESSERA_BUILD/bench_step.md" \
      --level "$arch" --emulated "$emulated" --docs "$TESSERA_ROOT/docs/performance.md" --svg "$svg" "$@" ;;
  zero)
    shift
    TESSERA_BUILD="${TESSERA_BENCH_BUILD:-$TESSERA_ROOT/build-bench}"
    tessera_configure -DTESSERA_ENABLE_CUDA=OFF -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_EXAMPLES=OFF
    cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS" --target bench_zero_memory
    /usr/bin/python3 "$TESSERA_ROOT/bench/zero_memory.py" --exe "$TESSERA_BUILD/bench/bench_zero_memory" \
      --data "$TESSERA_ROOT/data/corpus.txt" --markdown "$TESSERA_BUILD/bench_zero.md" "$@" ;;
  gpu-step)
    shift
    tessera_configure
    cmake --build "$TESSERA_BUILD" -j "$TESSERA_JOBS" --target bench_gpu_step
    /usr/bin/python3 "$TESSERA_ROOT/bench/gpu_step_compare.py" --exe "$TESSERA_BUILD/bench/bench_gpu_step" "$@" ;;
  *) echo "scripts/bench.sh: unknown benchmark '$what' (known: allreduce, ops, step, zero, gpu-step)" >&2; exit 2 ;;
esac
