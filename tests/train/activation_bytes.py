#!/usr/bin/env python3
"""activation_bytes.py --mpiexec M --exe E PLAN:RANKS[:LO:HI]... -- FLAGS: the activation formula of the start
line (`predicted_activation_bytes`: the program's most microbatch states at once x the bytes of one) against
the measured `peak_activation_bytes` after 2 steps: LO <= measured / predicted <= HI (default 0.95..1.05;
recompute plans, whose rebuilt caches come and go within a backward, get a wider lower bound)."""
import sys

from plan_runs import command_line, run_plan

mpiexec, exe, cases, flags, tmp = command_line("tessera_act_")
bad = []
for c in cases:
    parts = c.split(":")
    plan, np_ = parts[0], parts[1]
    lo, hi = (float(parts[2]), float(parts[3])) if len(parts) == 4 else (0.95, 1.05)
    lines = run_plan(mpiexec, exe, plan, np_, 2, flags, tmp)
    pred, got = lines[0]["predicted_activation_bytes"], lines[-1]["peak_activation_bytes"]
    ok = lo <= got / pred <= hi
    print(f"{plan} on {np_} ranks: measured {got} bytes, formula {pred:.0f} (ratio {got / pred:.3f}, "
          f"allowed {lo}..{hi}) {'ok' if ok else 'MISMATCH'}")
    if not ok:
        bad.append(plan)
if bad:
    sys.exit(f"FAIL: {bad}")
print("PASS")
