#!/usr/bin/env python3
"""activation_bytes.py --mpiexec M --exe E PLAN:RANKS[:LO:HI]... -- FLAGS: the activation formula of the start
line (`predicted_activation_bytes`: the program's most microbatch states at once x the bytes of one) against
the measured `peak_activation_bytes` after 2 steps: LO <= measured / predicted <= HI (default 0.95..1.05;
recompute plans, whose rebuilt caches come and go within a backward, get a wider lower bound)."""
from plan_runs import check_cases


def check(c, run):
    parts = c.split(":")
    plan, np_ = parts[0], parts[1]
    lo, hi = (float(parts[2]), float(parts[3])) if len(parts) == 4 else (0.95, 1.05)
    lines = run(plan, np_, 2)
    pred, got = lines[0]["predicted_activation_bytes"], lines[-1]["peak_activation_bytes"]
    ok = lo <= got / pred <= hi
    print(f"{plan} on {np_} ranks: measured {got} bytes, formula {pred:.0f} (ratio {got / pred:.3f}, "
          f"allowed {lo}..{hi}) {'ok' if ok else 'MISMATCH'}")
    return plan, ok


check_cases("tessera_act_", check)
