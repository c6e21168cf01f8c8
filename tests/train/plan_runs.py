"""plan_runs.py — what the memory-accounting checks (state_bytes.py, activation_bytes.py) share: their command
line (--mpiexec M --exe E CASE... -- FLAGS, each CASE holding ':'), one run of a plan of the parity
executable that returns the JSON lines of its log, and the verdict over all cases."""
import argparse, json, os, subprocess, sys, tempfile


def command_line(prefix):
    """(mpiexec, exe, cases, flags, scratch dir) from sys.argv."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--exe", required=True)
    ap.add_argument("cases", nargs="+")
    a, _ = ap.parse_known_args()
    flags = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    cases = [c for c in a.cases if c != "--" and ":" in c and c not in flags]
    return a.mpiexec, a.exe, cases, flags, tempfile.mkdtemp(prefix=prefix)


def run_plan(mpiexec, exe, plan, ranks, steps, flags, tmp):
    """Runs PLAN on RANKS ranks for STEPS steps with FLAGS; exits with the output on failure; returns the
    log's JSON objects."""
    log = os.path.join(tmp, plan + ".json")
    cmd = [mpiexec, "-np", str(ranks), "--oversubscribe", exe, plan, "--steps", str(steps), "--quiet", "--log-json",
           log] + flags
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        sys.exit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")
    return [json.loads(l) for l in open(log)]


def check_cases(prefix, check):
    """Runs check(case, run) for every CASE of the command line, where run(plan, ranks, steps) gives the log's
    JSON objects; check prints its line and returns (plan, ok). Exits FAIL naming the plans that were not ok,
    else prints PASS."""
    mpiexec, exe, cases, flags, tmp = command_line(prefix)
    run = lambda plan, ranks, steps: run_plan(mpiexec, exe, plan, ranks, steps, flags, tmp)
    bad = [plan for plan, ok in (check(c, run) for c in cases) if not ok]
    if bad:
        sys.exit(f"FAIL: {bad}")
    print("PASS")
