#!/usr/bin/env bash
# Installs what the aarch64 cross build (scripts/cross_aarch64.sh) needs, idempotently (nothing is fetched when
# all is present):
#   - Debian's cross compiler g++-aarch64-linux-gnu and qemu-user-static (amd64 packages);
#   - an arm64 sysroot, $TESSERA_AARCH64_SYSROOT (default /opt/tessera-aarch64-sysroot), holding what the
#     programs link and run against: Debian's arm64 OpenBLAS (OpenMP build), Open MPI (libraries and headers)
#     and their dependency closure (glibc, libstdc++, libgomp, hwloc, PMIx, ...).
#
# The sysroot is unpacked from Debian's arm64 .debs (dpkg-deb -x), not installed with dpkg: libopenmpi3:arm64
# and libopenmpi-dev:arm64 cannot be co-installed with the amd64 Open MPI that the native build uses
# (libmunge2 is not Multi-Arch: same, and libopenmpi-dev:arm64 depends on openmpi-bin:arm64, which replaces
# openmpi-bin), so installing them would remove the x86 MPI. No arm64 package is installed: the amd64
# packages and their alternatives stay exactly as scripts/deps.sh left them. The arm64 architecture is
# enabled in dpkg (dpkg --add-architecture arm64) only so that apt knows the arm64 package lists.
set -euo pipefail
SYSROOT="${TESSERA_AARCH64_SYSROOT:-/opt/tessera-aarch64-sysroot}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

updated=0
apt_update() {
  if [ "$updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
}

# 1. The host tools: scripts/deps.sh's packages (qemu-user-static among them) and the cross compiler.
"$(dirname "$0")/deps.sh" g++-aarch64-linux-gnu

# 2. The arm64 sysroot. The stamp names what it was made from; a sysroot with the same stamp is kept as is.
# Roots of the closure: the runtime (glibc, libstdc++, libgomp), OpenBLAS's OpenMP build with its headers, and
# Open MPI's libraries; libopenmpi-dev (mpi.h, libmpi.so) is unpacked alone, without its dependencies (gfortran,
# openmpi-bin, ...), which a program that links libmpi does not need.
roots=(libc6 libstdc++6 libgcc-s1 libgomp1 libopenblas0-openmp libopenblas-openmp-dev libopenmpi3)
alone=(libopenmpi-dev)
stamp="tessera aarch64 sysroot v3: ${roots[*]} + ${alone[*]}"
if [ -f "$SYSROOT/.tessera-sysroot" ] && [ "$(head -n1 "$SYSROOT/.tessera-sysroot")" = "$stamp" ]; then
  exit 0
fi
echo "tessera: unpacking an arm64 sysroot into $SYSROOT" >&2

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "tessera: enabling the arm64 package lists (dpkg --add-architecture arm64)" >&2
  $SUDO dpkg --add-architecture arm64
  updated=0
  apt_update
fi
apt-cache show libopenmpi3:arm64 >/dev/null 2>&1 || apt_update

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/status" "$work/debs/partial" "$work/root"
touch "$work/status/status"
# apt resolves the closure as for an empty arm64 system (its own dpkg status file, arm64 the only
# architecture) and only downloads it.
apt_arm64=(apt-get -qq -o APT::Architecture=arm64 -o APT::Architectures::=arm64
           -o Dir::State::status="$work/status/status" -o Dir::Cache::archives="$work/debs"
           -o APT::Sandbox::User=root)
fetch() {
  "${apt_arm64[@]}" -y --no-install-recommends --download-only install "${roots[@]}" >/dev/null &&
    (cd "$work/debs" && "${apt_arm64[@]}" download "${alone[@]}" >/dev/null)
}
if ! fetch; then  # stale package lists (a superseded version): refresh them once
  updated=0
  apt_update
  fetch
fi
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$work/root"
done
# Only the libraries and headers are needed (qemu's -L resolves absolute paths in the sysroot first, so
# nothing else should shadow the host's files: /etc, /usr/share, binaries).
(cd "$work/root" && find . -mindepth 1 -maxdepth 1 ! -name lib ! -name usr -exec rm -rf {} + &&
  find usr -mindepth 1 -maxdepth 1 ! -name lib ! -name include -exec rm -rf {} +)
# What update-alternatives would have set up for libopenblas0-openmp and libopenblas-openmp-dev (relative
# links, so that they resolve both on the host and under qemu -L).
lib="$work/root/usr/lib/aarch64-linux-gnu"
inc="$work/root/usr/include/aarch64-linux-gnu"
for l in libopenblas.so libopenblas.so.0 libblas.so libblas.so.3 liblapack.so liblapack.so.3; do
  ln -sf "openblas-openmp/$l" "$lib/$l"
done
for h in cblas.h f77blas.h openblas_config.h; do
  ln -sf "openblas-openmp/$h" "$inc/$h"
done
# ... and for libopenmpi-dev (the "mpi" alternative; FindMPI reads mpi-cxx.pc).
ln -sfn ../../lib/aarch64-linux-gnu/openmpi/include "$inc/mpi"
ln -sf openmpi/lib/libmpi.so "$lib/libmpi.so"
ln -sf openmpi/lib/libmpi_cxx.so "$lib/libmpi++.so"
for pc in mpi mpi-c mpi-cxx mpi-fort; do
  ln -sf "o$pc.pc" "$lib/pkgconfig/$pc.pc"
done
if find "$work/root" -lname '/*' | grep -q .; then
  echo "tessera: warning: absolute symbolic links in the arm64 sysroot (they resolve on the host, not in it):" >&2
  find "$work/root" -lname '/*' >&2
fi
{
  echo "$stamp"
  # shellcheck disable=SC2016  # dpkg-deb's format, not the shell's
  for deb in "$work"/debs/*.deb; do dpkg-deb -W --showformat='${Package}:${Architecture} ${Version}\n' "$deb"; done
} >"$work/root/.tessera-sysroot"
$SUDO rm -rf "$SYSROOT.old"
[ ! -e "$SYSROOT" ] || $SUDO mv "$SYSROOT" "$SYSROOT.old"
$SUDO mkdir -p "$(dirname "$SYSROOT")"
$SUDO mv "$work/root" "$SYSROOT"
$SUDO rm -rf "$SYSROOT.old"
echo "tessera: arm64 sysroot ready ($(($(wc -l <"$SYSROOT/.tessera-sysroot") - 1)) packages)" >&2
