#!/usr/bin/env bash
# Installs what tessera needs from Debian's packages, idempotently (nothing happens when all are present).
# deps.sh [PKG ...]: also these packages (scripts/deps_aarch64.sh adds the cross compiler).
set -euo pipefail
pkgs=(build-essential cmake g++ make libopenmpi-dev openmpi-bin doctest-dev libopenblas-dev libopenblas0-openmp
      nlohmann-json3-dev libcli11-dev libdnnl-dev zlib1g-dev python3 python3-numpy python3-torch qemu-user-static
      "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "tessera: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# OpenBLAS: the OpenMP build, so BLAS calls share the OpenMP thread pool of tessera's own loops (with the
# default pthreads build the two sets of threads spin and yield against each other: ~1.6x slower steps on
# 2 cores). Debian selects the variant through alternatives; point the BLAS, LAPACK and OpenBLAS ones at
# the OpenMP build (PyTorch, the benchmarks' peer, then uses the same library).
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for lib in libopenblas.so.0 libblas.so.3 liblapack.so.3; do
  alt="$lib-$multiarch"
  target="/usr/lib/$multiarch/openblas-openmp/$lib"
  if [ -e "$target" ] && [ "$(readlink -f "/etc/alternatives/$alt" 2>/dev/null)" != "$(readlink -f "$target")" ]; then
    echo "tessera: selecting the OpenMP build of OpenBLAS for $lib (update-alternatives)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO update-alternatives --quiet --set "$alt" "$target"
  fi
done
# The CUDA backend is optional: nvcc from the CUDA toolkit is used when it is installed. With cuDNN there, the
# cuDNN frontend's headers (PyPI) go to .deps/ for libtessera_cudnn_sdpa.so (cuDNN attention); offline, the
# build leaves that library out and bf16 attention on GPUs runs tessera's own kernel.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "tessera: using the CUDA toolkit in /usr/local/cuda" >&2
fi
if [ -f /usr/local/cuda/include/cudnn.h ] || [ -f /usr/include/cudnn.h ]; then
  "$(dirname "$0")/cudnn_frontend.sh" "$(cd "$(dirname "$0")/.." && pwd)/.deps/cudnn_frontend" ||
    echo "tessera: warning: no cuDNN frontend headers (PyPI unreachable?): cuDNN attention is not built" >&2
fi
