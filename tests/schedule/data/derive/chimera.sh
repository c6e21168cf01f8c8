#!/bin/sh
# Re-derives tests/schedule/data/chimera-orders.json by running Li & Hoefler's own generator
# (chimera_pipeline_rank.py of github.com/Shigangli/Chimera at commit C, unmodified; python3 only).
#   tests/schedule/data/derive/chimera.sh GIT_DIR_OF_A_CHIMERA_CLONE
set -e
G=${1:?usage: chimera.sh GIT_DIR_OF_A_CLONE_OF_Shigangli/Chimera}
C=6b78ac7ddeb7cc04cba1835c25e7bb8b9a3e02f0
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
git --git-dir="$G" show "$C:chimera_pipeline_rank.py" > "$work/chimera_pipeline_rank.py"
cp "$here/convert.py" "$work/"
python3 "$here/write_orders.py" "$work" "$C" "$here/../chimera-orders.json"
rm -rf "$work"
