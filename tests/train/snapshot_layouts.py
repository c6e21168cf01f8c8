#!/usr/bin/env python3
"""In-memory snapshots on the layouts whose state is spread differently (docs/reliability.md): ZeRO-3
(parameters sharded, shared slots whole), bf16 with ZeRO-1 (fp32 masters sharded), Chimera (every stage
on two pipeline ranks). For each, PLAN under scripts/tessera-run with a snapshot after every step, a kill,
a damaged snapshot and a second kill at the step it was taken: every loss and gradient norm is bitwise
the uninterrupted run's, and both restarts resume from a snapshot (no step redone)."""
import argparse, os, subprocess, sys

from job_checks import Checks, fresh_work, job_env, read_log

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--exe", required=True, help="a parity program (PLAN as its first argument)")
ap.add_argument("--supervisor", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--plans", default="3d_sp_bf16_zero3:8,dp4_bf16_zero1:4,dp2_pp2_chimera_zero1:4")
ap.add_argument("--steps", type=int, default=10)
a = ap.parse_args()
fresh_work(a.work)
env = job_env()
check = Checks()
run_log = read_log

for spec in a.plans.split(","):
    plan, np_ = spec.split(":")
    work = os.path.join(a.work, plan)
    common = ["--data", a.data, "--steps", str(a.steps), "--batch", "8", "--lr", "1e-3", "--warmup", "2", "--threads", "1",
              "--peak-tflops", "1", "--quiet"]
    r = subprocess.run([a.mpiexec, "-np", np_, "--oversubscribe", a.exe, plan] + common
                       + ["--log-json", os.path.join(work, "clean.json")], env=env, capture_output=True, text=True)
    check(r.returncode == 0, f"{plan}: uninterrupted run" + ("" if r.returncode == 0 else f" ({r.returncode}: {r.stderr[-300:]})"))
    clean, _ = run_log(os.path.join(work, "clean.json"))
    last = int(np_) - 1
    faults = [f"kill@3:{last}", "corrupt@6:1", "kill@6:0"]
    r = subprocess.run([a.supervisor, "--np", np_, "--mpirun", a.mpiexec, "--", a.exe, plan] + common
                       + ["--save", os.path.join(work, "ck"), "--save-every", "5", "--snapshot-every", "1",
                          "--snapshot-dir", os.path.join("/dev/shm", f"tessera-test-{os.getpid()}-{plan}"),
                          "--log-json", os.path.join(work, "faulty.json")]
                       + sum((["--inject-fault", f] for f in faults), []), env=env, capture_output=True, text=True)
    check(r.returncode == 0, f"{plan}: run with faults finishes" + ("" if r.returncode == 0 else f" ({r.returncode}: {r.stderr[-500:]})"))
    got, events = run_log(os.path.join(work, "faulty.json"))
    diff = [k for k in clean if got.get(k) != clean[k]]
    check(sorted(got) == sorted(clean) and not diff, f"{plan}: every step bitwise the uninterrupted run's (differ: {diff})")
    redone = [e.get("steps_redone") for e in events if e.get("event") == "restart"]
    check(redone == [0, 0], f"{plan}: both restarts resume from a snapshot, no step redone: {redone}")
    check("rank1.snap: damaged" in r.stderr and "restored from its replica" in r.stderr,
          f"{plan}: the damaged snapshot is named and replaced by its replica")

sys.exit(check.finish("snapshot layout checks passed"))
