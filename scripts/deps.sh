#!/usr/bin/env bash
# Installs what tessera needs from Debian's packages, idempotently (nothing happens when all are present).
set -euo pipefail
pkgs=(build-essential cmake g++ make libopenmpi-dev openmpi-bin doctest-dev libopenblas-dev
      nlohmann-json3-dev libcli11-dev python3 python3-numpy python3-torch)
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
# The CUDA backend is optional: nvcc from the CUDA toolkit is used when it is installed.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "tessera: using the CUDA toolkit in /usr/local/cuda" >&2
fi
