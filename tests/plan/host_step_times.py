#!/usr/bin/env python3
"""The planner's predicted step time against the measured one, on this machine, for the parity layouts.

For each world size the layouts use, tessera_calibrate --quick measures a host profile with that many
ranks (the GEMM, memory and MPI rates each rank sees while the others run). Each layout of the parity
programs then trains a few steps with --log-json; the measured step time is the median step_ms after
the warm-up steps. tessera_plan evaluates exactly that plan (read from the log's start line) with the
profile of its world size.

Two checks, because a shared 2-vCPU VM changes speed between processes and with the number of ranks
(docs/planner.md):
- ranking: within one world size, each layout's predicted/measured ratio over the geometric mean of the
  ratios of that world size — what choosing among layouts on one machine depends on — within a factor
  --tol (and the mean of those errors within --mean-tol);
- absolute: each world size's geometric mean ratio within a factor --abs-tol (a broken unit or a
  missing term shows there).

Layouts the planner cannot express are skipped and listed: uneven stage_layers (pp2_uneven, and the
pp3 V-schedules whose 8 layers split 2,1,1,1,1,2 over 6 stages), since the cost model splits layers
evenly.
"""
import argparse, json, os, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--calibrate", required=True, help="tessera_calibrate")
ap.add_argument("--planner", required=True, help="tessera_plan")
ap.add_argument("--exe", action="append", required=True, help="MODEL=parity program, e.g. gpt=/path/parity_gpt")
ap.add_argument("--layouts", required=True, help="comma-separated layout:ranks (the parity list)")
ap.add_argument("--work", required=True, help="directory for profiles and logs")
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--warmup", type=int, default=4, help="steps left out of the median")
ap.add_argument("--tol", type=float, default=0.15,
                help="largest max(r, 1/r) - 1 of one layout, r its ratio over its world size's geometric mean")
ap.add_argument("--mean-tol", type=float, default=None, help="largest mean |r - 1| over the layouts")
ap.add_argument("--abs-tol", type=float, default=0.15,
                help="largest max(g, 1/g) - 1 of a world size's geometric mean ratio g = predicted/measured")
ap.add_argument("--reuse", action="store_true", help="keep profiles and logs already in --work (model work)")
ap.add_argument("train_args", nargs=argparse.REMAINDER)
a = ap.parse_args()
os.makedirs(a.work, exist_ok=True)
train_args = [x for x in a.train_args if x != "--"]
t_start = time.time()


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        sys.exit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")
    return r.stdout


def profile(np_):
    path = os.path.join(a.work, f"host_profile_np{np_}.json")
    if not (a.reuse and os.path.exists(path)):
        run([a.mpiexec, "-np", str(np_), "--oversubscribe", "--bind-to", "none", a.calibrate, "--quick", "--threads", "1", "--out", path])
    return path


def measure(exe, layout, np_):
    log = os.path.join(a.work, f"{os.path.basename(exe)}.{layout}.json")
    args = train_args + ["--steps", str(a.steps)]  # the last --steps wins
    if not (a.reuse and os.path.exists(log)):
        run([a.mpiexec, "-np", str(np_), "--oversubscribe", "--bind-to", "none", exe, layout, "--log-json", log, "--quiet"] + args)
    lines = [json.loads(x) for x in open(log)]
    start = next(j for j in lines if j.get("event") == "start")
    ms = [j["step_ms"] for j in lines if "step_ms" in j and "event" not in j]
    return start, statistics.median(ms[a.warmup:])


def plan_flags(start):
    p, m = start["plan"], start["plan"]["model"]
    mesh, sched = p["mesh"], p["schedule"]
    world = mesh["dp"] * mesh["pp"] * mesh["tp"]
    b = start["batch"] // (mesh["dp"] * sched["microbatches"])
    f = ["--gpu", "host", "--gpus", str(world), "--gpus-per-node", str(world), "--family", m["family"],
         "--layers", str(m["layers"]), "--hidden", str(m["hidden"]), "--heads", str(m["heads"]),
         "--kv-heads", str(m["kv_heads"]), "--ffn", str(m["ffn"]), "--seq", str(m["seq"]), "--vocab", str(m["vocab"]),
         "--batch", str(start["batch"]), "--precision", p["precision"], "--tp", str(mesh["tp"]), "--pp", str(mesh["pp"]),
         "--dp", str(mesh["dp"]), "--microbatch-size", str(b), "--schedule", sched["kind"], "--zero", str(p["zero"]),
         "--recompute", p["recompute"], "--json"]
    if sched["kind"] == "interleaved":
        f += ["--chunks", str(sched["chunks"])]
    if p["sequence_parallel"]:
        f += ["--sequence-parallel"]
    return f


def predict(start, prof):
    # the run's own start-up GEMM measurement: the CPU's speed during that run (docs/planner.md)
    out = run([a.planner] + plan_flags(start) + ["--host-profile", prof, "--host-speed", str(start["peak_flops_per_rank"])])
    return 1000.0 * json.loads(out)["best"]["iteration_s"]


exes = dict(x.split("=", 1) for x in a.exe)
layouts = [(name, int(n)) for name, n in (x.split(":") for x in a.layouts.split(","))]
rows, skipped, bad = [], [], []
factor = lambda r: max(r, 1 / r) - 1  # symmetric: a factor either way
# world size by world size: each profile measured right before its layouts run, so that both see the
# same load on a shared machine
for np_ in sorted({n for _, n in layouts}):
    prof = profile(np_)
    for model, exe in exes.items():
        for layout, n in layouts:
            if n != np_:
                continue
            start, measured = measure(exe, layout, np_)
            stage_layers = start["plan"]["stage_layers"]
            if len(set(stage_layers)) > 1:
                skipped.append(f"{model}.{layout} (stage_layers {stage_layers}: the planner splits layers evenly)")
                continue
            predicted = predict(start, prof)
            rows.append([f"{model}.{layout}", np_, measured, predicted, predicted / measured])

# each world size's geometric mean ratio: the machine's speed at that many ranks as the model misses it
gmean = {}
for np_ in sorted({r[1] for r in rows}):
    ratios = [r[4] for r in rows if r[1] == np_]
    gmean[np_] = statistics.geometric_mean(ratios)
    if factor(gmean[np_]) > a.abs_tol:
        bad.append(f"{np_} ranks: predicted/measured {gmean[np_]:.2f} on average, beyond a factor {1 + a.abs_tol:.1f}")
print(f"{'layout':34} {'ranks':>5} {'measured_ms':>12} {'predicted_ms':>13} {'error':>8} {'ranking':>8}")
for name, np_, mea, pre, ratio in rows:
    rel = ratio / gmean[np_]
    print(f"{name:34} {np_:5d} {mea:12.2f} {pre:13.2f} {100 * (ratio - 1):+7.1f}% {100 * (rel - 1):+7.1f}%")
    if factor(rel) > a.tol:
        bad.append(f"{name}: predicted {pre:.2f} ms, measured {mea:.2f} ms: {100 * (rel - 1):+.1f}% against the "
                   f"other {np_}-rank layouts")
abs_errs = [abs(r[4] - 1) for r in rows]
rel_errs = [abs(r[4] / gmean[r[1]] - 1) for r in rows]
print(f"{len(rows)} layouts: absolute mean |error| {100 * statistics.mean(abs_errs):.1f}%, worst "
      f"{100 * max(abs_errs):.1f}%; per world size predicted/measured "
      + ", ".join(f"{n}: {g:.2f}" for n, g in gmean.items()) + f" (tolerance a factor {1 + a.abs_tol:.1f})")
print(f"ranking (ratio over its world size's mean): mean |error| {100 * statistics.mean(rel_errs):.1f}%, worst "
      f"{100 * max(rel_errs):.1f}% (tolerance {100 * a.tol:.0f}%, mean {100 * (a.mean_tol or 0):.0f}%); "
      f"{time.time() - t_start:.0f} s")
for s in skipped:
    print(f"skipped: {s}")
if a.mean_tol is not None and statistics.mean(rel_errs) > a.mean_tol:
    bad.append(f"ranking: mean |error| {100 * statistics.mean(rel_errs):.1f}% above {100 * a.mean_tol:.0f}%")
if bad:
    print("\n".join(bad))
    sys.exit("FAIL: predicted step times off by more than the tolerance")
print("PASS")
