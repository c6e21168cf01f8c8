#!/usr/bin/env python3
"""loss_falls.py --drop X -- CMD...: runs a ts::train program with --log-json and passes when it exits 0,
prints its progress, and the last step's loss is at least X below the first step's. With --sample in the
command it must print a sample; with --save DIR, DIR must hold a complete checkpoint of the last step."""
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
steps = [j for j in map(json.loads, open(log)) if "step" in j and "event" not in j]
if not steps or "step " not in r.stdout:
    sys.exit("FAIL: no steps logged or no progress printed")
first, last = steps[0]["loss"], steps[-1]["loss"]
if "--sample" in cmd and "--- sample" not in r.stdout:
    sys.exit("FAIL: --sample given but no sample printed")
if "--save" in cmd:
    d = cmd[cmd.index("--save") + 1]
    last_dir = os.path.join(d, f"step_{steps[-1]['step'] + 1:08d}")
    if not os.path.isfile(os.path.join(last_dir, "manifest.json")):
        sys.exit(f"FAIL: no complete checkpoint {last_dir}")
    print(f"checkpoint {last_dir}: {len(os.listdir(last_dir)) - 1} shard files")
print(f"loss {first:.4f} -> {last:.4f} over {len(steps)} steps (wanted a drop of at least {a.drop})")
if first - last < a.drop:
    sys.exit("FAIL: the loss did not fall enough")
print("PASS")
