#!/usr/bin/env bash
# cudnn_frontend.sh DEST: puts the cuDNN frontend's C++ headers (the PyPI package nvidia-cudnn-frontend, a
# header-only library) in DEST/include, once. The CUDA backend's cuDNN attention library
# (libtessera_cudnn_sdpa.so, src/cudnn/sdpa.cpp) is compiled against them. Exit 3 when PyPI is unreachable.
set -euo pipefail
version=1.32.0
dest=${1:?usage: cudnn_frontend.sh DEST}
if [ -e "$dest/include/cudnn_frontend.h" ] && [ "$(cat "$dest/.cudnn_frontend_version" 2>/dev/null)" = "$version" ]; then exit 0; fi
pip="python3 -m pip"
$pip --version > /dev/null 2>&1 || pip="/usr/bin/python3 -m pip"
$pip --version > /dev/null 2>&1 || { echo "cudnn_frontend.sh: error: no pip (apt-get install python3-pip)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
  -d "$tmp" "nvidia-cudnn-frontend==$version" || {
  echo "cudnn_frontend.sh: error: pip download nvidia-cudnn-frontend==$version failed (is PyPI reachable?)" >&2
  exit 3
}
mkdir -p "$dest"
python3 - "$tmp" "$dest" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(f"{tmp}/nvidia_cudnn_frontend-*.whl")[0])
for info in wheel.infolist():
    name = "/" + info.filename
    if "/include/" in name and name.endswith((".h", ".hpp", ".inl")) and not info.is_dir():
        out = os.path.join(dest, "include", name.split("/include/", 1)[1])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with wheel.open(info) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
[ -e "$dest/include/cudnn_frontend.h" ] || { echo "cudnn_frontend.sh: error: the wheel has no cudnn_frontend.h" >&2; exit 1; }
echo "$version" > "$dest/.cudnn_frontend_version"
echo "tessera: cuDNN frontend $version headers in $dest/include" >&2
