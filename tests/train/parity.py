#!/usr/bin/env python3
"""Layout-parity check: run one plan of a parity program under mpiexec and compare its per-step loss
and gradient norm with the one-rank reference log: |d| <= tol * |reference| at every step."""
import argparse, json, os, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--exe", required=True)
ap.add_argument("--plan", required=True)
ap.add_argument("--np", type=int, required=True)
ap.add_argument("--ref", required=True, help="reference JSON log (written when --write-ref)")
ap.add_argument("--write-ref", action="store_true")
ap.add_argument("--baseline", help="compare with this plan (run here, same ranks) instead of --ref")
ap.add_argument("--less-memory", action="store_true",
                help="also require a smaller peak_activation_bytes than the reference's (recompute)")
ap.add_argument("--log", help="where this run's JSON log goes (default: beside --ref)")
ap.add_argument("--tol", type=float, default=1e-4)
ap.add_argument("--keys", default="loss,grad_norm", help="logged values compared at every step")
ap.add_argument("train_args", nargs=argparse.REMAINDER)
a = ap.parse_args()

log = a.ref if a.write_ref else a.log or a.ref.replace(".json", "") + "." + a.plan + ".json"


def run(plan, log):
    cmd = [a.mpiexec, "-np", str(a.np), "--oversubscribe", a.exe, plan, "--log-json", log, "--quiet"] + \
          [x for x in a.train_args if x != "--"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        sys.exit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")


if a.baseline:
    a.ref = a.ref.replace(".json", "") + "." + a.baseline + ".baseline.json"
    run(a.baseline, a.ref)
run(a.plan, log)

def steps(path):
    return [j for j in map(json.loads, open(path)) if "step" in j and "event" not in j]

def simd(path):
    starts = [j for j in map(json.loads, open(path)) if j.get("event") == "start"]
    return starts[0].get("simd", {}) if starts else {}

got = steps(log)
if a.write_ref:
    print(f"reference: {len(got)} steps, loss {got[0]['loss']:.6f} -> {got[-1]['loss']:.6f}")
    sys.exit(0)
ref = steps(a.ref)
if len(got) != len(ref):
    sys.exit(f"FAIL: {len(got)} steps logged, reference has {len(ref)}")
worst = {k: 0.0 for k in a.keys.split(",")}
bad = []
for g, r_ in zip(got, ref):
    for key in worst:
        rel = abs(g[key] - r_[key]) / max(abs(r_[key]), 1e-30)
        worst[key] = max(worst[key], rel)
        if rel > a.tol or (a.tol == 0 and g[key] != r_[key]):
            bad.append(f"step {g['step']}: {key} {g[key]:.8g} vs reference {r_[key]:.8g} (rel {rel:.2e})")
print(f"{a.plan} on {a.np} ranks: {len(got)} steps, worst relative " +
      ", ".join(f"|d{k}| {v:.2e}" for k, v in worst.items()) + f" (tolerance {a.tol:g}); final loss {got[-1]['loss']:.6f}")
if a.log:  # a run from another build (instruction-set levels): say which vectors each used
    mine, theirs = simd(log), simd(a.ref)
    print(f"this build: {mine.get('built')} ({mine.get('lanes')} lanes); reference build: "
          f"{theirs.get('built')} ({theirs.get('lanes')} lanes); CPU {mine.get('cpu')}")
if a.less_memory:
    mine, theirs = got[-1]["peak_activation_bytes"], ref[-1]["peak_activation_bytes"]
    print(f"peak activation bytes per rank: {mine} vs {theirs} without ({mine / theirs:.2f}x)")
    if not mine < theirs:
        bad.append(f"peak activation bytes {mine} not below the reference's {theirs}")
if bad:
    print("\n".join(bad[:20]))
    sys.exit("FAIL: layout parity")
print("PASS")
