# Sourced by the scripts: MPI as root on a small machine, the CUDA toolkit on PATH when present.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
TESSERA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TESSERA_BUILD="${TESSERA_BUILD:-$TESSERA_ROOT/build}"
TESSERA_JOBS="${TESSERA_JOBS:-$(nproc)}"
export TESSERA_ROOT TESSERA_BUILD TESSERA_JOBS
tessera_configure() {
  cmake -S "$TESSERA_ROOT" -B "$TESSERA_BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
}
