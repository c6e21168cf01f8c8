#!/usr/bin/env python3
"""state_bytes.py --mpiexec M --exe E CASE... -- FLAGS: each CASE is PLAN:RANKS:BYTES_PER_PARAM. Runs the
plan for 0 steps and checks that the `state_bytes_per_rank` of its start line (rank 0: parameters,
gradients, moments, masters) is BYTES_PER_PARAM x params, within a few elements of padding per bucket
(ZeRO's parts of a bucket differ by at most one element)."""
import argparse, json, os, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--exe", required=True)
ap.add_argument("cases", nargs="+")
a, rest = ap.parse_known_args()
cases = [c for c in a.cases if c != "--" and ":" in c]
flags = [x for x in sys.argv[sys.argv.index("--") + 1:]] if "--" in sys.argv else []
tmp = tempfile.mkdtemp(prefix="tessera_state_")
bad = []
for c in cases:
    plan, np_, per = c.split(":")
    log = os.path.join(tmp, plan + ".json")
    cmd = [a.mpiexec, "-np", np_, "--oversubscribe", a.exe, plan, "--steps", "0", "--quiet", "--log-json", log] + flags
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        sys.exit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")
    start = json.loads(open(log).readline())
    n, got = start["params"], start["state_bytes_per_rank"]
    want = eval(per, {}, {}) * n
    pred = start["predicted_state_bytes_per_rank"]
    ok = abs(got - want) <= 64 * 16 and abs(pred - got) <= 64 * 16
    print(f"{plan} on {np_} ranks: {got} bytes = {got / n:.4f} B/param, formula {per} = {eval(per):.4f} B/param "
          f"(the start line predicts {pred:.0f}) ({'ok' if ok else 'MISMATCH'})")
    if not ok:
        bad.append(plan)
if bad:
    sys.exit(f"FAIL: {bad}")
print("PASS")
