#!/usr/bin/env bash
# The suite's CPU-dependent part again, built one instruction-set level below this machine's CPU
# (scripts/isa_level.sh --below: x86-64-v3 on an AVX-512 machine, x86-64-v2 on an AVX2 one), standing in
# for the machines without this CPU's widest vectors: the vector and operator tests, the GEMM engines,
# the PyTorch oracle, the layout-parity suite, the base plan against the native build's losses
# (train.isa.*), the start-up check under an emulated CPU (core.isa_guard) and the contract's compile
# line with -march=<level>. Needs the native build ($TESSERA_BUILD) to have run its parity tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
level="${TESSERA_LOWER_ARCH:-$("$here/isa_level.sh" --below)}"
build="${TESSERA_LOWER_BUILD:-$TESSERA_ROOT/build-$level}"
echo "tessera: the suite's CPU-dependent tests, built for -march=$level in $build" >&2
t0=$(date +%s)
tessera_configure_at() { cmake -S "$TESSERA_ROOT" -B "$1" -DCMAKE_BUILD_TYPE=Release "${@:2}" >/dev/null; }
tessera_configure_at "$build" -DTESSERA_ARCH="$level" -DTESSERA_ENABLE_CUDA=OFF -DTESSERA_BUILD_EXAMPLES=OFF \
  -DTESSERA_BUILD_BENCH=OFF -DTESSERA_REFERENCE_BUILD="$TESSERA_BUILD"
cmake --build "$build" -j "$TESSERA_JOBS" --target cpu_report test_simd test_vector_math test_cpuid test_gradcheck test_gemm \
  test_oracle test_vocab_parallel parity_gpt parity_llama
t1=$(date +%s)
cd "$build"
ctest --output-on-failure -j "$TESSERA_JOBS" -R \
  '^(test_simd|test_vector_math|core\.isa_guard|test_gradcheck|test_gemm|ops\.oracle\.generate|test_oracle|test_vocab_parallel\.np[0-9]+|train\.parity\..*|train\.isa\..*|contract\.host_compile_line)$'
echo "tessera: -march=$level: built in $((t1 - t0)) s, tested in $(( $(date +%s) - t1 )) s" >&2
