#!/usr/bin/env python3
"""--trace FILE of a dp2 x pp2 x tp2 job: a valid Chrome/Perfetto trace of the last step of every rank, and
how much of the gradient buckets' dp reductions the backward hides.

Runs the command after -- (a dp2 x pp2 x tp2 program and its flags) on 8 ranks with --trace, then checks:
the file is JSON in the Trace Event Format; every rank is a process with its three tracks named (compute,
communication, pipeline) and spans on each; every span has a non-negative duration; each rank's pipeline
track holds forward and backward actions. It prints, per rank, the dp bucket reductions (non-blocking,
from start to completion) and how much of their time no pipeline action of the rank ran (exposed).
--expect-overlap: on every rank some dp reduction starts while the rank's backward is still running
(after its first backward action starts, before its last one ends): buckets launch as their layers'
gradients become final, inside a chunk's last backward (and, with interleaving, while another chunk's
backward runs). --check-bad-path:
--trace to a file that cannot be written exits 2 before training, naming the file.
"""
import argparse, collections, json, os, re, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--expect-overlap", action="store_true")
ap.add_argument("--check-bad-path", action="store_true")
ap.add_argument("command", nargs=argparse.REMAINDER)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
path = os.path.join(a.out, "step.json")
log = os.path.join(a.out, "log.json")
cmd = [a.mpiexec, "-np", "8", "--oversubscribe"] + [x for x in a.command if x != "--"] + ["--steps", "3", "--log-json", log, "--trace", path]
r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
if r.returncode != 0:
    sys.exit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}:\n{r.stdout}")
doc = json.load(open(path))
events = doc["traceEvents"]
bad = []
names = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] in ("process_name", "thread_name")}
spans = [e for e in events if e["ph"] == "X"]
by_rank = collections.defaultdict(lambda: collections.defaultdict(list))
for e in spans:
    by_rank[e["pid"]][e["tid"]].append(e)
    if e["dur"] < 0:
        bad.append(f"negative duration: {e}")
if sorted(by_rank) != list(range(8)):
    bad.append(f"ranks in the trace: {sorted(by_rank)}, expected 0..7")
for rank in range(8):
    if not names.get((rank, None), "").startswith(f"rank {rank}: dp "):
        bad.append(f"rank {rank}: process name {names.get((rank, None))!r}")
    for tid, track in enumerate(["compute", "communication", "pipeline"]):
        if names.get((rank, tid)) != track:
            bad.append(f"rank {rank}: thread {tid} named {names.get((rank, tid))!r}, expected {track}")
        if not by_rank[rank][tid]:
            bad.append(f"rank {rank}: no spans on the {track} track")
    kind = lambda e: "FB" if "OVERLAP" in e["name"] else (re.fullmatch(r"\d+([FBIW])\d+", e["name"]) or [None, ""])[1]
    backward = [e for e in by_rank[rank][2] if kind(e) in ("B", "I", "W", "FB")]
    forward = [e for e in by_rank[rank][2] if kind(e) in ("F", "FB")]
    if not backward or not forward:
        bad.append(f"rank {rank}: pipeline actions {[e['name'] for e in by_rank[rank][2]]}: no forward or backward")
        continue
    b0 = min(e["ts"] for e in backward)
    b1 = max(e["ts"] + e["dur"] for e in backward)
    reductions = [e for e in by_rank[rank][1] if "(non-blocking) on dp" in e["name"]]
    overlapping = [e for e in reductions if b0 <= e["ts"] < b1]
    busy = sorted((e["ts"], e["ts"] + e["dur"]) for e in forward + backward)
    def covered(lo, hi):  # time of [lo, hi] during which some pipeline action ran
        t, last = 0.0, lo
        for s0, s1 in busy:
            s0, s1 = max(s0, last), min(s1, hi)
            if s1 > s0:
                t += s1 - s0
                last = s1
        return t
    total = sum(e["dur"] for e in reductions)
    hidden = sum(covered(e["ts"], e["ts"] + e["dur"]) for e in reductions)
    print(f"rank {rank}: {len(by_rank[rank][0])} operator spans, {len(by_rank[rank][1])} communication spans, "
          f"{len(by_rank[rank][2])} pipeline actions; backward {b0 / 1e3:.2f}-{b1 / 1e3:.2f} ms; "
          f"{len(overlapping)} of {len(reductions)} dp bucket reductions start inside it; dp reductions "
          f"{total / 1e3:.2f} ms in flight, {(total - hidden) / 1e3:.2f} ms of it exposed")
    if not reductions:
        bad.append(f"rank {rank}: no dp bucket reduction in the trace")
    if a.expect_overlap and not overlapping:
        bad.append(f"rank {rank}: no dp reduction starts during the backward")
# the log: the start line names the backend and the communicator; every step line has the communication
# time and the time blocked in it (means over the ranks; the step's time bounds the mean)
lines = [json.loads(x) for x in open(log)]
start = next(j for j in lines if j.get("event") == "start")
if (start.get("backend"), start.get("communicator")) != ("host", "mpi"):
    bad.append(f"start line: backend {start.get('backend')!r}, communicator {start.get('communicator')!r}")
for j in (j for j in lines if "loss" in j and "event" not in j):
    comm, wait, worst, step = j.get("comm_ms", -1), j.get("comm_wait_ms", -1), j.get("comm_wait_max_ms", -1), j["step_ms"]
    print(f"step {j['step'] + 1}: {step:.1f} ms; communication {comm:.1f} ms per rank, blocked in it {wait:.1f} ms "
          f"(largest rank {worst:.1f} ms): {100 * max(0.0, 1 - wait / comm) if comm > 0 else 0:.0f}% hidden")
    # each rank times its own step from the barrier, so a rank may be blocked a little longer than rank 0's
    # step lasted; the mean over the ranks may not
    if not (comm > 0 and 0 <= wait <= worst and wait <= step * 1.2):
        bad.append(f"step {j['step']}: comm_ms {comm}, comm_wait_ms {wait}, comm_wait_max_ms {worst}, step_ms {step}")
# the picture of it (scripts/trace_svg.py): every pipeline action and communication span drawn
svg = os.path.join(a.out, "step.svg")
r = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "trace_svg.py"), path, svg],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
if r.returncode != 0 or open(svg).read().count("<title>") != sum(e["tid"] in (1, 2) for e in spans):
    bad.append(f"scripts/trace_svg.py: exit {r.returncode}: {r.stdout[-1000:]}")
if a.check_bad_path:  # a file that cannot be written: exit 2 before training
    nowhere = os.path.join(a.out, "no-such-dir", "step.json")
    r = subprocess.run(cmd[:-1] + [nowhere], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 2 or f"--trace {nowhere}: cannot open the file for writing" not in r.stdout or "step " in r.stdout:
        bad.append(f"--trace {nowhere}: exit {r.returncode}, output:\n{r.stdout[-2000:]}")
if bad:
    print("\n".join(bad))
    sys.exit("FAIL")
print(f"PASS: {len(spans)} spans from 8 ranks in {path}")
