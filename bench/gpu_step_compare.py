#!/usr/bin/env python3
"""Runs bench_gpu_step (tessera) and gpu_step_torch.py (PyTorch) alternately on one GPU and prints each
model's median tokens/s, MFU and the ratio tessera / PyTorch, as a markdown table and (--json FILE) JSON.
Exit 77 when there is no GPU (both sides say SKIPPED).

  gpu_step_compare.py --exe bench_gpu_step [--python python3] [--rounds R] [--models gpt2:8,gpt1.3b:4]
                      [--data FILE] [--json FILE] [--timeout S]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--exe", required=True)
ap.add_argument("--python", default="python3")
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--models", default="gpt2:8,gpt1.3b:4", help="model:batch,...")
ap.add_argument("--data", default=os.path.join(here, "..", "data", "corpus.txt"))
ap.add_argument("--json", default="")
ap.add_argument("--timeout", type=int, default=300, help="seconds per run")
a = ap.parse_args()


def one(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {a.timeout} s"}
    if p.returncode == 77:
        return {"skipped": (p.stdout + p.stderr).strip()}
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {(p.stdout + p.stderr)[-600:]}"}
    return json.loads(lines[-1])


results, skipped = {}, None
for spec in a.models.split(","):
    model, batch = spec.split(":")
    runs = results.setdefault(model, {"tessera": [], "pytorch": []})  # a model named twice: more rounds
    for _ in range(a.rounds):  # alternating, so that both sides see the same GPU state
        for side, cmd in (("tessera", [a.exe, "--model", model, "--batch", batch, "--data", a.data]),
                          ("pytorch", [a.python, os.path.join(here, "gpu_step_torch.py"), "--model", model,
                                       "--batch", batch])):
            r = one(cmd)
            if "skipped" in r:
                skipped = r["skipped"]
            runs[side].append(r)
if skipped and all("skipped" in r for m in results.values() for side in m.values() for r in side):
    print(f"SKIPPED: {skipped}")
    sys.exit(77)

rows = ["| model | batch | tessera tokens/s | PyTorch tokens/s | ratio | tessera MFU | PyTorch MFU |",
        "|---|---|---|---|---|---|---|"]
summary = {}
for model, runs in results.items():
    ok = {s: [r for r in v if "tokens_per_s" in r] for s, v in runs.items()}
    med = {s: statistics.median(r["tokens_per_s"] for r in v) if v else 0.0 for s, v in ok.items()}
    mfu = {s: statistics.median(r["mfu"] for r in v) if v else 0.0 for s, v in ok.items()}
    ratio = med["tessera"] / med["pytorch"] if med["pytorch"] else 0.0
    batch = next((r["batch"] for v in ok.values() for r in v), "?")
    rows.append(f"| {model} | {batch} | {med['tessera']:.0f} | {med['pytorch']:.0f} | {ratio:.2f}× | "
                f"{100 * mfu['tessera']:.1f}% | {100 * mfu['pytorch']:.1f}% |")
    errors = [r["error"] for v in runs.values() for r in v if "error" in r]
    summary[model] = {"tessera_tokens_per_s": med["tessera"], "pytorch_tokens_per_s": med["pytorch"], "ratio": ratio,
                      "tessera_mfu": mfu["tessera"], "pytorch_mfu": mfu["pytorch"], "runs": runs, "errors": errors}
    for e in errors:
        rows.append(f"|  {model}: error | {e.splitlines()[-1] if e else ''} | | | | | |")
    attention = next((r.get("attention") for r in ok["tessera"] if r.get("attention")), None)
    if attention:  # which attention engine tessera ran (cuDNN, or its own kernel and why)
        summary[model]["tessera_attention"] = attention
        rows.append(f"|  {model}: tessera attention | {attention} | | | | | |")
print("\n".join(rows))
if a.json:
    with open(a.json, "w") as f:
        json.dump(summary, f, indent=1)
sys.exit(1 if any(s["errors"] for s in summary.values()) else 0)
