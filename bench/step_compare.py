#!/usr/bin/env python3
"""bench/step_compare.py — GPT-2 124M training step: tessera vs PyTorch, alternating, on this machine.

    step_compare.py --mpiexec MPIEXEC --exe bench_gpt2_step --data FILE [--rounds 3] [--steps 3]
                    [--threads 2] [--batch 4] [--layouts dp2,pp2,tp2] [--markdown FILE]

Each round runs tessera (1 rank, --threads T) then PyTorch (T threads), each for 1 + --steps steps; the
first step of every run is warm-up and dropped. Reported: the medians over all kept steps, tokens/s, and
tessera/PyTorch in tokens/s (> 1: tessera faster). --layouts also runs tessera on 2 ranks (dp2, pp2, tp2;
T/2 threads each, so the same cores) and reports each against the 1-rank run: the cost of communication.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", default="mpirun")
ap.add_argument("--exe", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--layouts", default="")
ap.add_argument("--markdown")
a = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="tessera_step_")
here = os.path.dirname(os.path.abspath(__file__))


def tessera(layout, ranks, threads):
    log = os.path.join(tmp, f"{layout}.json")
    cmd = [a.mpiexec, "-np", str(ranks), "--oversubscribe", "--bind-to", "none", a.exe, layout, "--data", a.data,
           "--steps", str(a.steps + 1), "--batch", str(a.batch), "--threads", str(threads), "--quiet",
           "--weight-decay", "0.1", "--log-json", log, "--peak-tflops", "1"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit(f"tessera {layout} failed ({r.returncode}):\n{r.stdout}")
    steps = [j for j in map(json.loads, open(log)) if "step" in j]
    return [s["step_ms"] for s in steps[1:]], [s["loss"] for s in steps]


def torch_run():
    out = os.path.join(tmp, "torch.json")
    cmd = ["/usr/bin/python3", os.path.join(here, "gpt2_step_torch.py"), "--data", a.data, "--steps",
           str(a.steps + 1), "--batch", str(a.batch), "--threads", str(a.threads), "--json", out]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit(f"torch failed ({r.returncode}):\n{r.stdout}")
    j = json.load(open(out))
    return j["step_ms"][1:], j["torch"]


tok = a.batch * 64
ts_ms, th_ms, losses = [], [], None
for rnd in range(a.rounds):
    t, losses = tessera("one", 1, a.threads)
    ts_ms += t
    p, version = torch_run()
    th_ms += p
    print(f"round {rnd + 1}/{a.rounds}: tessera {statistics.median(t):8.1f} ms   torch {statistics.median(p):8.1f} ms",
          file=sys.stderr, flush=True)
mt, mp = statistics.median(ts_ms), statistics.median(th_ms)
lines = [f"GPT-2 124M training step, B = {a.batch}, T = 64, fp32, AdamW, {a.threads} threads, one rank "
         f"(medians of {len(ts_ms)} steps each, {a.rounds} alternating rounds; torch {version})",
         "",
         "| | step ms | tokens/s |",
         "|---|---:|---:|",
         f"| tessera | {mt:.1f} | {tok / mt * 1e3:.0f} |",
         f"| PyTorch | {mp:.1f} | {tok / mp * 1e3:.0f} |",
         "",
         f"tessera / PyTorch (tokens/s): {mp / mt:.2f}"]
if a.layouts:
    lines += ["", f"Two ranks on the same {a.threads} cores ({max(1, a.threads // 2)} thread(s) each), against "
              "the one-rank run:", "", "| layout | step ms | tokens/s | vs one rank |", "|---|---:|---:|---:|"]
    for lay in a.layouts.split(","):
        t, _ = tessera(lay, 2, max(1, a.threads // 2))
        m = statistics.median(t)
        lines.append(f"| {lay} | {m:.1f} | {tok / m * 1e3:.0f} | {mt / m:.2f} |")
print("\n".join(lines))
if a.markdown:
    open(a.markdown, "w").write("\n".join(lines) + "\n")
