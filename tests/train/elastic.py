#!/usr/bin/env python3
"""Elastic restarts (docs/reliability.md): train_elastic (ts::elastic: plans for 8, 4 and 2 ranks) runs on 8
ranks under scripts/tessera-run --min-np 2 with slots from a hostfile; a rank is killed at step 5 and the
hostfile then offers only 4 slots, so the relaunch on 8 fails and the supervisor goes on with 4 ranks
from the last checkpoint, resharded on load. Every step is logged; the steps before the failure are
bitwise those of an uninterrupted 8-rank run, the later ones within --tol of it (another layout sums in
another order); the restart line says the job went on with 4 ranks."""
import argparse, os, subprocess, sys, threading, time

from job_checks import Checks, fresh_work, job_env, read_log

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--exe", required=True)
ap.add_argument("--supervisor", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--steps", type=int, default=12)
ap.add_argument("--tol", type=float, default=2e-5)
a = ap.parse_args()
fresh_work(a.work)
env = job_env(OMPI_MCA_rmaps_base_oversubscribe="0")
hostfile = os.path.join(a.work, "hosts")
check = Checks()


def slots(n):
    with open(hostfile + ".new", "w") as f:
        f.write(f"localhost slots={n}\n")
    os.replace(hostfile + ".new", hostfile)


def flags(name, extra=()):
    return ["--data", a.data, "--steps", str(a.steps), "--batch", "8", "--lr", "1e-3", "--warmup", "2",
            "--threads", "1", "--peak-tflops", "1", "--quiet", "--save-every", "2",
            "--save", os.path.join(a.work, name, "ck"), "--log-json", os.path.join(a.work, name, "log.json")] + list(extra)


def log_of(name):
    return read_log(os.path.join(a.work, name, "log.json"))


slots(8)
r = subprocess.run([a.mpiexec, "--hostfile", hostfile, "-np", "8", a.exe] + flags("clean"), env=env,
                   capture_output=True, text=True)
check(r.returncode == 0, f"uninterrupted 8-rank run exits 0 ({r.returncode}: {r.stderr[-400:]})")
clean, _ = log_of("clean")

fault_log = os.path.join(a.work, "elastic", "ck", ".tessera-faults")
p = subprocess.Popen([a.supervisor, "--np", "8", "--min-np", "2", "--hostfile", hostfile, "--mpirun", a.mpiexec, "--",
                      a.exe] + flags("elastic", ["--inject-fault", "kill@5:3"]), env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
out = []
reader = threading.Thread(target=lambda: out.extend(p.stdout))
reader.start()
deadline = time.time() + 120
while time.time() < deadline and p.poll() is None:  # the slots go as the rank dies
    if os.path.exists(fault_log) and "kill@5:3" in open(fault_log).read():
        slots(4)
        break
    time.sleep(0.01)
rc = p.wait(timeout=300)
reader.join()
text = "".join(out)
check(rc == 0, f"the elastic job finishes (exit {rc}: {text[-600:]})")
check("8 slots are not available; going on with 4 ranks" in text, "the supervisor goes on with 4 ranks")
steps, events = log_of("elastic")
check(sorted(steps) == list(range(a.steps)), "every step logged")
restarts = [e for e in events if e.get("event") == "restart"]
check(len(restarts) == 1 and restarts[0].get("world") == 4 and "on 4 ranks" in restarts[0]["reason"],
      f"one restart, on 4 ranks: {restarts}")
k0 = restarts[0]["step"] if restarts else a.steps
check(all(steps[k] == clean[k] for k in range(k0)), f"steps before the restart (< {k0}) bitwise equal to the 8-rank run")
worst = max((abs(steps[k][0] - clean[k][0]) for k in range(k0, a.steps)), default=0.0)
check(worst <= a.tol, f"steps after it, on 4 ranks, within {a.tol} of the 8-rank run (worst |dloss| {worst:.2e})")
sys.exit(check.finish("elastic restart checks passed"))
