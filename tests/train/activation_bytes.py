#!/usr/bin/env python3
"""activation_bytes.py --mpiexec M --exe E PLAN:RANKS[:LO:HI]... -- FLAGS: the activation formula of the start
line (`predicted_activation_bytes`: the program's most microbatch states at once x the bytes of one) against
the measured `peak_activation_bytes` after 2 steps: LO <= measured / predicted <= HI (default 0.95..1.05;
recompute plans, whose rebuilt caches come and go within a backward, get a wider lower bound)."""
import argparse, json, os, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--exe", required=True)
ap.add_argument("cases", nargs="+")
a, _ = ap.parse_known_args()
flags = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
cases = [c for c in a.cases if ":" in c and c not in flags]
tmp = tempfile.mkdtemp(prefix="tessera_act_")
bad = []
for c in cases:
    parts = c.split(":")
    plan, np_ = parts[0], parts[1]
    lo, hi = (float(parts[2]), float(parts[3])) if len(parts) == 4 else (0.95, 1.05)
    log = os.path.join(tmp, plan + ".json")
    cmd = [a.mpiexec, "-np", np_, "--oversubscribe", a.exe, plan, "--steps", "2", "--quiet", "--log-json", log] + flags
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        sys.exit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")
    lines = [json.loads(l) for l in open(log)]
    pred, got = lines[0]["predicted_activation_bytes"], lines[-1]["peak_activation_bytes"]
    ok = lo <= got / pred <= hi
    print(f"{plan} on {np_} ranks: measured {got} bytes, formula {pred:.0f} (ratio {got / pred:.3f}, "
          f"allowed {lo}..{hi}) {'ok' if ok else 'MISMATCH'}")
    if not ok:
        bad.append(plan)
if bad:
    sys.exit(f"FAIL: {bad}")
print("PASS")
