#!/usr/bin/env bash
# scripts/gpu_check.sh [OUT] — run ON THE GPU MACHINE (no network; CUDA toolkit, Python): builds the GPU
# tests and the GPT step bench for sm_90 with the bundle that scripts/gpu_bundle.sh made here, runs them on
# the GPU (the trainer test also on 2, 4 and 8 ranks sharing it through the staged communicator, and —
# with as many GPUs as ranks — through NCCL, with the NCCL collectives suite; the bench against PyTorch),
# runs compute-sanitizer on a short test, and writes one report, OUT/gpu_report.md and OUT/gpu_report.json
# (OUT: the argument, else $OUT, else gpu_report/). Without a GPU every step that needs none still runs
# (unpacking, finding CUDA/NCCL, building) and the rest is reported as skipped.
#
#   device tool:  run(command="scripts/gpu_check.sh", carry=["gpu_bundle"], timeout_s=540)
#   here:         scripts/gpu_bundle.sh && scripts/gpu_check.sh /tmp/gpu_report      (no GPU: builds, skips)
#
# Environment: TESSERA_GPU_ARCH (90), TESSERA_GPU_JOBS (parallel nvcc runs: cores, at most 8),
# TESSERA_GPU_BUNDLE (gpu_bundle), TESSERA_GPU_BUILD (build_gpu), TESSERA_GPU_SKIP_BUILD=1 (reuse the build),
# TESSERA_GPU_BUDGET (480: seconds after which the sanitizer and the bench are skipped, so the report is written
# inside a device call's limit). docs/gpu.md explains the report.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_report}}
arch=${TESSERA_GPU_ARCH:-90}
bundle=${TESSERA_GPU_BUNDLE:-gpu_bundle}
jobs=${TESSERA_GPU_JOBS:-$(nproc)}
[ "$jobs" -gt 8 ] && jobs=8
build=${TESSERA_GPU_BUILD:-build_gpu}
deps=/tmp/tessera_gpu_deps
mkdir -p "$out" "$build"
build=$(cd "$build" && pwd)  # absolute: the tests load $build/libtessera_cudnn_sdpa.so from anywhere
log="$out/gpu_check.log"
: > "$log"
started=$(date +%s)
declare -A status=() seconds=() summary=()

say() { echo "$*" | tee -a "$log"; }
die() { say "gpu_check: error: $*"; exit 2; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# ---- 1. the machine ------------------------------------------------------------------------------------
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$nvcc" ] || die "no nvcc (PATH or /usr/local/cuda/bin): the GPU machine's CUDA toolkit is needed"
cuda_home=$(cd "$(dirname "$nvcc")/.." && pwd)
gpu=$(nvidia-smi -L 2>/dev/null | head -1)
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
have_gpu=0
[ -n "$gpu" ] && have_gpu=1
say "machine: $(uname -n), $(nproc) cores; GPUs: ${gpus:-0} (${gpu:-none}); nvcc: $("$nvcc" --version | tail -2 | head -1)"

# ---- 2. the bundle -------------------------------------------------------------------------------------
[ -f "$bundle/bundle.tar.xz" ] ||
  die "$bundle/bundle.tar.xz is missing: run scripts/gpu_bundle.sh where there is network and carry '$bundle'"
rm -rf "$deps" && mkdir -p "$deps" && tar -C "$deps" -xJf "$bundle/bundle.tar.xz" || die "cannot unpack $bundle/bundle.tar.xz"
say "bundle: $(head -2 "$deps/MANIFEST" | tail -1)"

# NCCL: the toolkit's, else the one PyTorch's pip packages bring (nvidia-nccl-cu13)
nccl_inc="" nccl_lib=""
for d in "$cuda_home" /usr /usr/local; do
  if [ -f "$d/include/nccl.h" ]; then nccl_inc="$d/include"; fi
  for l in "$d/lib64" "$d/lib" "$d/lib/x86_64-linux-gnu" "$d/targets/x86_64-linux/lib"; do
    if [ -z "$nccl_lib" ] && ls "$l"/libnccl.so* > /dev/null 2>&1; then nccl_lib="$l"; fi
  done
done
if [ -z "$nccl_inc" ] || [ -z "$nccl_lib" ]; then
  py_nccl=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__))' 2>/dev/null ||
            python3 -c 'import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null)
  [ -n "$py_nccl" ] && nccl_inc="$py_nccl/include" && nccl_lib="$py_nccl/lib"
fi
[ -f "$nccl_inc/nccl.h" ] || die "no nccl.h (CUDA toolkit or the nvidia-nccl Python package)"
[ -e "$nccl_lib/libnccl.so" ] || ln -sf "$(ls "$nccl_lib"/libnccl.so* | head -1)" "$deps/lib/libnccl.so"
say "NCCL: $nccl_inc, $nccl_lib"

# cuDNN (for libtessera_cudnn_sdpa.so): the toolkit's, else the one PyTorch's pip packages bring (nvidia-cudnn-cu13)
cudnn_inc="" cudnn_lib=""
for d in "$cuda_home" /usr /usr/local; do
  if [ -z "$cudnn_inc" ] && [ -f "$d/include/cudnn.h" ]; then cudnn_inc="$d/include"; fi
  for l in "$d/lib64" "$d/lib" "$d/lib/x86_64-linux-gnu" "$d/targets/x86_64-linux/lib"; do
    if [ -z "$cudnn_lib" ] && ls "$l"/libcudnn.so* > /dev/null 2>&1; then cudnn_lib="$l"; fi
  done
done
if [ -z "$cudnn_inc" ] || [ -z "$cudnn_lib" ]; then
  py_cudnn=$(python3 -c 'import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)
  [ -n "$py_cudnn" ] && cudnn_inc="$py_cudnn/include" && cudnn_lib="$py_cudnn/lib"
fi
[ -e "$cudnn_lib/libcudnn.so" ] || { [ -n "$cudnn_lib" ] && ln -sf "$(ls "$cudnn_lib"/libcudnn.so* | head -1)" "$deps/lib/libcudnn.so"; }
say "cuDNN: ${cudnn_inc:-none}, ${cudnn_lib:-none}"

export LD_LIBRARY_PATH="$deps/lib:$deps/openmpi/lib:$nccl_lib:${cudnn_lib:+$cudnn_lib:}$cuda_home/lib64:${LD_LIBRARY_PATH:-}"
export OPAL_PREFIX="$deps/openmpi" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
flags=(-std=c++20 -O2 -arch=sm_$arch --expt-relaxed-constexpr -x cu -Xcompiler -fopenmp
       -I include -I tests/support -I "$deps/include" -I "$deps/openmpi/include" -I "$nccl_inc"
       -DTESSERA_TEST_NEEDS_CUDA -DTESSERA_CORPUS="\"$PWD/data/corpus.txt\""
       -DTESSERA_CUDNN_SDPA_PATH="\"$build/libtessera_cudnn_sdpa.so\"")
libs=(-L "$deps/lib" -L "$deps/openmpi/lib" -L "$nccl_lib" -lmpi -lnccl -lcublasLt -lcublas -lopenblas)

# ---- 3. build (in parallel) ----------------------------------------------------------------------------
build_one() {  # name source... (tests get the project's MPI doctest main)
  local name=$1; shift
  local t0; t0=$(date +%s)
  local extra=()
  [[ $name == test_* ]] && extra=(tests/support/mpi_doctest_main.cpp)
  local cmd=("$nvcc" "${flags[@]}" "$@" "${extra[@]}" "${libs[@]}" -o "$build/$name")
  if [ "$name" = libtessera_cudnn_sdpa.so ]; then  # cuDNN's fused attention: one g++ unit (the frontend)
    cmd=(g++ -std=c++20 -O2 -fPIC -shared -fvisibility=hidden -I include -isystem "$deps/include"
         -isystem "${cudnn_inc:-$cuda_home/include}" -isystem "$cuda_home/include" "$@" -L "$deps/lib"
         -L "${cudnn_lib:-$cuda_home/lib64}" -L "$cuda_home/lib64" -lcudnn -lnvrtc -lcudart -o "$build/$name")
  fi
  if "${cmd[@]}" > "$build/$name.build.log" 2>&1; then
    echo "ok $(elapsed "$t0")" > "$build/$name.build.status"
  else
    echo "failed $(elapsed "$t0")" > "$build/$name.build.status"
  fi
}
tests=(test_ops test_trainer test_nccl)
targets=(libtessera_cudnn_sdpa.so "${tests[@]}" bench_gpu_step)
source_of() {
  case $1 in
    bench_gpu_step) echo bench/gpu_step.cu ;;
    libtessera_cudnn_sdpa.so) echo src/cudnn/sdpa.cpp ;;
    *) echo "tests/cuda/$1.cu" ;;
  esac
}
if [ "${TESSERA_GPU_SKIP_BUILD:-0}" != 1 ]; then
  say "building ${targets[*]} for sm_$arch ($jobs at a time)"
  running=0
  for t in "${targets[@]}"; do
    build_one "$t" "$(source_of "$t")" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  done
  wait
fi
for t in "${targets[@]}"; do
  read -r st secs < "$build/$t.build.status" || st=missing
  status[build_$t]=$st seconds[build_$t]=${secs:-0}
  say "build $t: $st (${secs:-?} s)"
  [ "$st" = ok ] || tail -30 "$build/$t.build.log" | tee -a "$log"
done

# ---- 4. run ---------------------------------------------------------------------------------------------
run_one() {  # key timeout command...
  local key=$1 limit=$2; shift 2
  local t0; t0=$(date +%s)
  timeout "$limit" "$@" > "$out/$key.log" 2>&1
  local rc=$?
  seconds[$key]=$(elapsed "$t0")
  case $rc in
    0) status[$key]=passed ;;
    77) status[$key]=skipped ;;
    124) status[$key]="timed out" ;;
    *) status[$key]="failed (exit $rc)" ;;
  esac
  summary[$key]=$(grep -E "test cases:|SKIPPED|ERROR SUMMARY|error" "$out/$key.log" | head -3 | tr '\n' ' ')
  say "$key: ${status[$key]} (${seconds[$key]} s) ${summary[$key]}"
}
for t in "${tests[@]}"; do  # one rank: every case (NCCL on one GPU too; test_trainer's --trace case)
  if [ "${status[build_$t]}" = ok ]; then run_one "run_$t" 300 "$build/$t"; else status[run_$t]="not built"; fi
done
# several ranks on the GPU(s): the parity layouts through the staged communicator against the host trainer
# (tests/support/staged_layouts.hpp); mpirun from the bundle's Open MPI
mpirun=("$deps/openmpi/bin/mpirun" --oversubscribe --bind-to none -x LD_LIBRARY_PATH -x OPAL_PREFIX)
for np in 2 4 8; do
  if [ "${status[build_test_trainer]}" != ok ]; then status[run_test_trainer_np$np]="not built"
  elif [ "$have_gpu" = 0 ]; then status[run_test_trainer_np$np]="skipped (no GPU)"
  else run_one "run_test_trainer_np$np" 150 "${mpirun[@]}" -np "$np" "$build/test_trainer" -tc="several ranks on the GPU(s)*"
  fi
done
# NCCL with a GPU per rank: the collectives suite and the layouts through nccl_comm (as --comm nccl)
for np in 2 4 8; do
  for t in test_nccl test_trainer; do
    key=run_${t}_nccl_np$np
    if [ "${status[build_$t]}" != ok ]; then status[$key]="not built"
    elif [ "${gpus:-0}" -lt "$np" ]; then status[$key]="skipped (${gpus:-0} GPU(s), NCCL needs $np)"
    elif [ "$t" = test_nccl ]; then run_one "$key" 150 "${mpirun[@]}" -np "$np" "$build/test_nccl"
    else run_one "$key" 150 "${mpirun[@]}" -np "$np" "$build/test_trainer" -tc="several ranks, a GPU each*"
    fi
  done
done
budget=${TESSERA_GPU_BUDGET:-480}
time_left() { [ "$(elapsed "$started")" -lt "$1" ]; }
sanitizer=$(command -v compute-sanitizer || echo "$cuda_home/bin/compute-sanitizer")
if [ "$have_gpu" = 1 ] && [ -x "$sanitizer" ] && [ "${status[build_test_ops]}" = ok ] && time_left $((budget - 200)); then
  run_one sanitizer_memcheck 100 "$sanitizer" --tool memcheck --error-exitcode 1 "$build/test_ops" \
    -tc="*layernorm*,*cross-entropy forward*,*fused AdamW*"
  run_one sanitizer_racecheck 100 "$sanitizer" --tool racecheck --error-exitcode 1 "$build/test_ops" \
    -tc="*flash attention*"
else
  status[sanitizer_memcheck]="skipped (no GPU or no compute-sanitizer)"
  status[sanitizer_racecheck]="${status[sanitizer_memcheck]}"
fi

# the GPT step against PyTorch (bench/gpu_step_compare.py): GPT-2 124M, then the 1.3B GPT, alternating sides
if [ "${status[build_bench_gpu_step]}" = ok ] && time_left $((budget - 60)); then
  left=$((budget - $(elapsed "$started")))
  run_one bench_gpu_step "$left" python3 bench/gpu_step_compare.py --exe "$build/bench_gpu_step" --rounds 1 \
    --models "gpt2:8,gpt1.3b:4" --json "$out/bench_gpu_step.json" --timeout $((left / 4))
  table=$(grep -E "^\| gpt" "$out/bench_gpu_step.log" | tr '\n' ' ' | head -c 600)
  [ -n "$table" ] && summary[bench_gpu_step]=$table
elif [ "${status[build_bench_gpu_step]}" = ok ]; then
  status[bench_gpu_step]="skipped (time budget of $budget s)"
else
  status[bench_gpu_step]="not built"
fi

# ---- 5. the report --------------------------------------------------------------------------------------
total=$(elapsed "$started")
python3 - "$out" "$total" "${gpu:-none}" "$arch" <<EOF
import json, sys
out, total, gpu, arch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
status = {$(for k in "${!status[@]}"; do printf '"%s": "%s", ' "$k" "${status[$k]}"; done)}
seconds = {$(for k in "${!seconds[@]}"; do printf '"%s": %s, ' "$k" "${seconds[$k]}"; done)}
summary = {$(for k in "${!summary[@]}"; do printf '"%s": %s, ' "$k" "$(printf '%s' "${summary[$k]}" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"; done)}
report = {"gpu": gpu, "arch": "sm_" + arch, "seconds": total, "steps": {k: {"status": v, "seconds": seconds.get(k), "summary": summary.get(k, "")} for k, v in sorted(status.items())}}
json.dump(report, open(f"{out}/gpu_report.json", "w"), indent=1)
lines = [f"# tessera GPU check", "", f"GPU: {gpu}; sm_{arch}; {total} s in all", "", "| step | status | s | summary |", "|---|---|---|---|"]
for k, v in sorted(report["steps"].items()):
    lines.append(f"| {k} | {v['status']} | {v['seconds'] if v['seconds'] is not None else ''} | {v['summary'].strip()} |")
open(f"{out}/gpu_report.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
failed=0
for k in "${!status[@]}"; do case ${status[$k]} in failed*|"timed out"|"not built") failed=1 ;; esac; done
say "gpu_check: report in $out/gpu_report.md ($( [ $failed = 0 ] && echo 'nothing failed' || echo 'FAILURES above'))"
exit $failed
