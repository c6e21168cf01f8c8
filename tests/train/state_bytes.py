#!/usr/bin/env python3
"""state_bytes.py --mpiexec M --exe E CASE... -- FLAGS: each CASE is PLAN:RANKS:BYTES_PER_PARAM. Runs the
plan for 0 steps and checks that the `state_bytes_per_rank` of its start line (rank 0: parameters,
gradients, moments, masters) is BYTES_PER_PARAM x params, within a few elements of padding per bucket
(ZeRO's parts of a bucket differ by at most one element)."""
from plan_runs import check_cases


def check(c, run):
    plan, np_, per = c.split(":")
    start = run(plan, np_, 0)[0]
    n, got = start["params"], start["state_bytes_per_rank"]
    want = eval(per, {}, {}) * n
    pred = start["predicted_state_bytes_per_rank"]
    ok = abs(got - want) <= 64 * 16 and abs(pred - got) <= 64 * 16
    print(f"{plan} on {np_} ranks: {got} bytes = {got / n:.4f} B/param, formula {per} = {eval(per):.4f} B/param "
          f"(the start line predicts {pred:.0f}) ({'ok' if ok else 'MISMATCH'})")
    return plan, ok


check_cases("tessera_state_", check)
