#!/usr/bin/env python3
"""Jobs that survive (docs/reliability.md): the main job on 8 ranks under scripts/tessera-run, with faults
injected — ranks killed, an exception, a hang, a non-finite gradient, a straggler — finishes every step
with every loss and gradient norm bitwise equal to an uninterrupted run's, and the straggler's step line
names it. Then with in-memory snapshots every step: restarts lose no step, and a damaged snapshot is
replaced by its replica on the next rank.

Checked: each failure is one restart line in the JSON log with the right reason (the hang names the
rank that fell behind); the non-finite gradient is a retry, not a restart; from a rank's death to
training again takes at most --max-down seconds (the hang: its timeout + 2 s more); every checkpoint left
on disk is complete and its files match their manifest's sizes and CRC-32s; the fault log shows each
fault fired exactly once. Then a hang alone, without the supervisor: the job ends within the timeout +
2 s with exit 124 and one message naming the stopped rank."""
import argparse, json, os, random, re, subprocess, sys, time, zlib

from job_checks import Checks, fresh_work, job_env, read_log

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--exe", required=True, help="the main job's program (8 ranks)")
ap.add_argument("--supervisor", required=True, help="scripts/tessera-run")
ap.add_argument("--data", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--steps", type=int, default=14)
ap.add_argument("--hang-timeout", type=float, default=5)
ap.add_argument("--max-down", type=float, default=5)
ap.add_argument("--seed", type=int, default=int(os.environ.get("TESSERA_FAULT_SEED", time.time())),
                help="the steps and ranks of the faults are drawn from it (printed; set it to reproduce a run)")
a = ap.parse_args()
fresh_work(a.work)
env = job_env()
check = Checks()


def flags(name, extra=()):
    return ["--data", a.data, "--steps", str(a.steps), "--batch", "8", "--lr", "1e-3", "--warmup", "2",
            "--threads", "1", "--peak-tflops", "1", "--quiet", "--save-every", "2",
            "--save", os.path.join(a.work, name, "ck"), "--log-json", os.path.join(a.work, name, "log.json"),
            "--hang-timeout", str(a.hang_timeout)] + list(extra)


lines_of_step, all_lines_of_step = {}, {}


def steps_of(log):
    """step → (loss, grad_norm) as logged last, and the events; every line of a step kept too."""
    lines = {}
    steps, events = read_log(log, lines)
    for k, ls in lines.items():
        lines_of_step[(log, k)] = ls[-1]
        all_lines_of_step[(log, k)] = ls
    return steps, events


# ---- the uninterrupted run ------------------------------------------------------------------------------
r = subprocess.run([a.mpiexec, "-np", "8", "--oversubscribe", a.exe] + flags("clean"), env=env,
                   capture_output=True, text=True)
check(r.returncode == 0, "uninterrupted run exits 0" + ("" if r.returncode == 0 else f" (got {r.returncode}: {r.stderr[-500:]})"))
clean, _ = steps_of(os.path.join(a.work, "clean", "log.json"))
check(sorted(clean) == list(range(a.steps)), "uninterrupted run logs every step")

# ---- the same run with faults at random steps and ranks, under the supervisor --------------------------------
rng = random.Random(a.seed)
print(f"     faults drawn with --seed {a.seed}")
kinds = ["kill", "exception", "hang", "nan", "slow", "kill"]
at = dict(zip(range(len(kinds)), sorted(rng.sample(range(1, a.steps), len(kinds)))))
draw = [(k, at[i], rng.randrange(8)) for i, k in enumerate(kinds)]
faults = [f"{k}@{s}:{r}" for k, s, r in draw]
print("     faults: " + " ".join(faults))
cmd = [a.supervisor, "--np", "8", "--max-restarts", "6", "--mpirun", a.mpiexec, "--", a.exe] + flags(
    "faulty", sum((["--inject-fault", f] for f in faults), []))
t0 = time.time()
r = subprocess.run(cmd, env=env, capture_output=True, text=True)
check(r.returncode == 0, "faulty run finishes under tessera-run" + ("" if r.returncode == 0 else f" (exit {r.returncode}: {r.stderr[-800:]})"))
print(f"     faulty run: {time.time() - t0:.1f} s")
faulty, events = steps_of(os.path.join(a.work, "faulty", "log.json"))
check(sorted(faulty) == list(range(a.steps)), "faulty run logs every step")
diff = [k for k in clean if faulty.get(k) != clean[k]]
check(not diff, f"every loss and grad_norm bitwise equal to the uninterrupted run's (differ: {diff})")

restarts = [e for e in events if e.get("event") == "restart"]
reasons = [e["reason"] for e in restarts]
want = []
for k, s_, r_ in draw:
    if k == "kill":
        want.append(rf"rank {r_} killed by signal 9")
    elif k == "exception":
        want.append(rf"rank {r_} failed: injected fault exception@{s_}:{r_}")
    elif k == "hang":
        want.append(rf"hang: rank\(s\) {r_} fell behind")
check(len(restarts) == len(want), f"{len(want)} restarts (kills, the exception, the hang): {reasons}")
for w, got in zip(want, reasons):
    check(re.search(w, got) is not None, f"restart reason /{w}/ in '{got}'")
for e in restarts:
    limit = a.max_down + (a.hang_timeout + 2 if e["reason"].startswith("hang") else 0)
    check(e["downtime_s"] <= limit, f"restart {e['restart']} ({e['reason'][:30]}…): down {e['downtime_s']:.2f} s <= {limit} s")
    print(f"     restart {e['restart']}: at step {e['step']}, down {e['downtime_s']:.2f} s, {e.get('steps_redone')} step(s) redone")
nan_step = next(s_ for k, s_, r_ in draw if k == "nan")
retries = [e for e in events if e.get("event") == "retry"]
check([e["step"] for e in retries] == [nan_step], f"the non-finite gradient of step {nan_step} is retried once, not restarted: {retries}")
slow_step, slow_rank = next((s_, r_) for k, s_, r_ in draw if k == "slow")
named = [(j.get("slowest_rank"), j.get("slowest_lag_s", 0)) for j in all_lines_of_step.get((os.path.join(a.work, "faulty", "log.json"), slow_step), [])]
check(any(rk == slow_rank and lag > 1.5 for rk, lag in named),
      f"step {slow_step}'s line names the straggler, rank {slow_rank}, about 2 s behind: {named}")
fired = open(os.path.join(a.work, "faulty", "ck", ".tessera-faults")).read().split("\n")
fired = sorted(l.split()[0] for l in fired if l.strip())
check(fired == sorted(faults), f"each fault fired once: {fired}")

ck = os.path.join(a.work, "faulty", "ck")
for d in sorted(os.listdir(ck)):
    if not d.startswith("step_"):
        check(d == ".tessera-faults", f"nothing but checkpoints and the fault log in the save directory: {d}")
        continue
    m = json.load(open(os.path.join(ck, d, "manifest.json")))
    for name, want_file in m["files"].items():
        data = open(os.path.join(ck, d, name), "rb").read()
        ok = len(data) == want_file["bytes"] and zlib.crc32(data) == want_file["crc32"]
        check(ok, f"{d}/{name}: size and CRC-32 as its manifest says")

# ---- in-memory snapshots: restarts resume from them (no step redone), a damaged one is replaced by its replica -
snap_faults = ["kill@3:3", "corrupt@6:4", "kill@6:2", "nan@8:1"]
cmd = [a.supervisor, "--np", "8", "--max-restarts", "4", "--mpirun", a.mpiexec, "--", a.exe] + flags(
    "snap", ["--save-every", "5", "--snapshot-every", "1", "--snapshot-dir", os.path.join("/dev/shm", f"tessera-test-{os.getpid()}")]
    + sum((["--inject-fault", f] for f in snap_faults), []))
r = subprocess.run(cmd, env=env, capture_output=True, text=True)
check(r.returncode == 0, "snapshot run finishes under tessera-run" + ("" if r.returncode == 0 else f" (exit {r.returncode}: {r.stderr[-800:]})"))
snap, events = steps_of(os.path.join(a.work, "snap", "log.json"))
diff = [k for k in clean if snap.get(k) != clean[k]]
check(sorted(snap) == list(range(a.steps)) and not diff, f"snapshot run: every step bitwise equal to the uninterrupted run's (differ: {diff})")
restarts = [e for e in events if e.get("event") == "restart"]
check([e.get("steps_redone") for e in restarts] == [0, 0], f"both restarts resume from the snapshot of the step that failed: {restarts}")
check(re.search(r"rank4\.snap: damaged \(CRC-32", r.stderr) is not None, "the damaged snapshot is reported by name")
check("rank 4's snapshot of step 6 restored from its replica on rank 5" in r.stderr, "its replica replaces it")
blocks = sorted(e["block_ms"] for e in events if e.get("event") == "snapshot")
step_ms = sorted(lines_of_step[(os.path.join(a.work, "snap", "log.json"), k)]["step_ms"] for k in range(a.steps))
ratio = blocks[len(blocks) // 2] / step_ms[len(step_ms) // 2]
print(f"     snapshots: median block {blocks[len(blocks) // 2]:.2f} ms, median step {step_ms[len(step_ms) // 2]:.1f} ms ({100 * ratio:.1f} %)")
check(ratio <= 0.25, f"a snapshot blocks the step for a small part of it ({100 * ratio:.1f} % <= 25 % under CTest's load; 5 % is the goal on a quiet machine)")

# ---- a hang without the supervisor: named within the timeout + 2 s ------------------------------------------
fault_log = os.path.join(a.work, "hang.faults")
p = subprocess.Popen([a.mpiexec, "-np", "8", "--oversubscribe", a.exe] + flags("hang", ["--inject-fault", "hang@2:6"]),
                     env=dict(env, TESSERA_FAULT_LOG=fault_log), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
msgs, named_at = [], None
for line in p.stderr:
    if line.startswith("tessera: hang:"):
        msgs.append(line.strip())
        named_at = named_at or time.time()
rc = p.wait()
check(rc == 124, f"a hung job exits 124 (got {rc})")
check(any("fell behind: rank(s) 6 did not report" in l for l in msgs), "the hang message names rank 6: " + " / ".join(msgs[:2]))
check(sum(1 for l in msgs if "no progress for" in l) == 1, "one message for the job")
fired_at = float(open(fault_log).read().split()[1])
if named_at:
    check(named_at - fired_at <= a.hang_timeout + 2, f"the hang is named {named_at - fired_at:.2f} s after it began "
          f"(<= the timeout {a.hang_timeout} s + 2 s)")

sys.exit(check.finish("all fault-tolerance checks passed"))
