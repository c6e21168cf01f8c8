#!/usr/bin/env python3
"""loss_falls.py --drop X -- CMD...: runs a ts::train program with --log-json and passes when it exits 0,
prints its progress, and the last step's loss is at least X below the first step's."""
import argparse, json, os, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--drop", type=float, required=True)
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = [x for x in a.cmd if x != "--"]
log = os.path.join(tempfile.mkdtemp(prefix="tessera_loss_"), "log.json")
r = subprocess.run(cmd + ["--log-json", log], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print(r.stdout)
if r.returncode != 0:
    sys.exit(f"FAIL: exit code {r.returncode}")
steps = [j for j in map(json.loads, open(log)) if "step" in j]
if not steps or "step " not in r.stdout:
    sys.exit("FAIL: no steps logged or no progress printed")
first, last = steps[0]["loss"], steps[-1]["loss"]
print(f"loss {first:.4f} -> {last:.4f} over {len(steps)} steps (wanted a drop of at least {a.drop})")
if first - last < a.drop:
    sys.exit("FAIL: the loss did not fall enough")
print("PASS")
