#!/usr/bin/env python3
"""bench/step_compare.py — GPT-2 124M training step: tessera vs PyTorch, alternating, on this machine.

    step_compare.py --mpiexec MPIEXEC --exe bench_gpt2_step --data FILE [--rounds 3] [--steps 3]
                    [--threads 2] [--batch 4] [--layouts dp2,pp2,tp2] [--fp32-only] [--markdown FILE]
                    [--docs docs/performance.md --svg docs/performance_step.svg]

Each round runs tessera (1 rank, --threads T) then PyTorch (T threads), each for 1 + --steps steps; the
first step of every run is warm-up and dropped. Reported: the medians over all kept steps, tokens/s, and
tessera/PyTorch in tokens/s (> 1: tessera faster). --layouts (default dp2,pp2,tp2; "" for none) also runs tessera on 2 ranks (dp2, pp2, tp2;
T/2 threads each, so the same cores) and reports each against the 1-rank run: the cost of communication.
Unless --fp32-only, every round also runs tessera's bf16 plan and PyTorch under bf16 autocast, with their speed-ups
over their own fp32 runs and the largest change of the loss over the steps (same data, same initial
weights as their fp32 runs).
Then one more tessera run with --profile gives the per-operator breakdown of the step (time, share,
GFLOP/s; every GEMM shape also run alone, the fastest of which is the machine's measured GEMM peak).
--docs replaces the text between the `<!-- bench:step -->` markers of that file with the results, and
--svg draws them (tokens/s of both, and the breakdown).
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
ap.add_argument("--layouts", default="dp2,pp2,tp2")
ap.add_argument("--fp32-only", dest="bf16", action="store_false")
ap.add_argument("--no-torch-bf16", dest="torch_bf16", action="store_false",
                help="tessera's bf16 plan only (PyTorch's bf16 autocast takes ~70 s a step without AVX512-BF16)")
ap.add_argument("--level", default="native", help="the -march the tessera side was built with (a label)")
ap.add_argument("--emulated", default="", help="what the run restricts both sides to (e.g. 'AVX2: OPENBLAS_CORETYPE=Haswell ...')")
ap.add_argument("--markdown")
ap.add_argument("--docs")
ap.add_argument("--svg")
a = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="tessera_step_")
here = os.path.dirname(os.path.abspath(__file__))


def tessera(layout, ranks, threads, profile=False):
    log = os.path.join(tmp, f"{layout}.json")
    cmd = [a.mpiexec, "-np", str(ranks), "--oversubscribe", "--bind-to", "none", a.exe, layout, "--data", a.data,
           "--steps", str(a.steps + 1), "--batch", str(a.batch), "--threads", str(threads), "--quiet",
           "--weight-decay", "0.1", "--log-json", log, "--peak-tflops", "1"] + (["--profile"] if profile else [])
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit(f"tessera {layout} failed ({r.returncode}):\n{r.stdout}")
    lines = [json.loads(l) for l in open(log)]
    steps = [j for j in lines if "step" in j and "event" not in j]
    starts = [j for j in lines if j.get("event") == "start"]
    if starts:
        machine.update(simd=starts[0].get("simd", {}), bf16_gemm=starts[0].get("bf16_gemm", ""),
                       openblas_core=starts[0].get("openblas_core", ""))
    if profile:
        return [j for j in lines if j.get("event") == "profile"][0]
    return [s["step_ms"] for s in steps[1:]], [s["loss"] for s in steps]


def torch_run(bf16=False):
    out = os.path.join(tmp, "torch.json")
    cmd = ["/usr/bin/python3", os.path.join(here, "gpt2_step_torch.py"), "--data", a.data, "--steps",
           str(a.steps + 1), "--batch", str(a.batch), "--threads", str(a.threads), "--json", out] + \
          (["--bf16"] if bf16 else [])
    # PyTorch runs on the same OpenBLAS kernels as tessera (which restarts itself with this CPU's kernel set
    # where OpenBLAS does not know the CPU; the start line names the set it ran on)
    env = dict(os.environ)
    if machine.get("openblas_core") and "OPENBLAS_CORETYPE" not in env:
        env["OPENBLAS_CORETYPE"] = machine["openblas_core"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"torch failed ({r.returncode}):\n{r.stdout}")
    j = json.load(open(out))
    return j["step_ms"][1:], j["torch"], j["loss"]


machine = {}
try:
    cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    cpu_model = "unknown CPU"
tok = a.batch * 64
ts_ms, th_ms, losses = [], [], None
bf_ms, thb_ms, bf_losses, th_losses, thb_losses = [], [], None, None, None
for rnd in range(a.rounds):
    t, losses = tessera("one", 1, a.threads)
    ts_ms += t
    p, version, th_losses = torch_run()
    th_ms += p
    line = f"round {rnd + 1}/{a.rounds}: tessera {statistics.median(t):8.1f} ms   torch {statistics.median(p):8.1f} ms"
    if a.bf16:
        t, bf_losses = tessera("one_bf16", 1, a.threads)
        bf_ms += t
        p = [float("nan")]
        if a.torch_bf16:
            p, _, thb_losses = torch_run(bf16=True)
            thb_ms += p
        line += f"   bf16: tessera {statistics.median(t):8.1f} ms   torch {statistics.median(p):8.1f} ms"
    print(line, file=sys.stderr, flush=True)
mt, mp = statistics.median(ts_ms), statistics.median(th_ms)
sm = machine.get("simd", {})
lines = [f"GPT-2 124M training step, B = {a.batch}, T = 64, fp32, AdamW, {a.threads} threads, one rank "
         f"(medians of {len(ts_ms)} steps each, {a.rounds} alternating rounds; torch {version})",
         "",
         f"tessera built with -march={a.level}: {sm.get('built', '?')}, {sm.get('lanes', '?')} float lanes, on a "
         f"{sm.get('cpu', '?')} CPU ({cpu_model}: {sm.get('cpu_features', '')})" +
         (f"; both sides restricted to {a.emulated}" if a.emulated else "") +
         f"; OpenBLAS kernels (both sides): {machine.get('openblas_core', '?')}; bf16 GEMMs: {machine.get('bf16_gemm', '?')}",
         "",
         "| | step ms | tokens/s |",
         "|---|---:|---:|",
         f"| tessera | {mt:.1f} | {tok / mt * 1e3:.0f} |",
         f"| PyTorch | {mp:.1f} | {tok / mp * 1e3:.0f} |",
         "",
         f"tessera / PyTorch (tokens/s): {mp / mt:.2f}"]
if a.bf16:
    mb = statistics.median(bf_ms)
    mpb = statistics.median(thb_ms) if a.torch_bf16 else float("nan")
    dl = max(abs(x - y) for x, y in zip(bf_losses, losses))
    dth = max(abs(x - y) for x, y in zip(thb_losses, th_losses)) if a.torch_bf16 else float("nan")
    lines += ["", f"bf16 (tessera: `precision<bf16>`, bf16 storage and activations, GEMMs on {machine.get('bf16_gemm', '?')}, "
              "fp32 master weights, moments and gradients; PyTorch: `torch.autocast(\"cpu\", torch.bfloat16)`), "
              "same rounds:", "",
              "| | step ms | tokens/s | vs own fp32 | largest loss change vs own fp32 |",
              "|---|---:|---:|---:|---:|",
              f"| tessera bf16 | {mb:.1f} | {tok / mb * 1e3:.0f} | {mt / mb:.2f} | {dl:.1e} |",
              (f"| PyTorch bf16 | {mpb:.1f} | {tok / mpb * 1e3:.0f} | {mp / mpb:.2f} | {dth:.1e} |" if a.torch_bf16 else
               "| PyTorch bf16 | not run (--no-torch-bf16) | | | |"),
              "", (f"tessera bf16 / PyTorch bf16 (tokens/s): {mpb / mb:.2f}; " if a.torch_bf16 else "") +
              f"tessera bf16 / PyTorch fp32: {mp / mb:.2f}"]
if a.layouts:
    lines += ["", f"Two ranks on the same {a.threads} cores ({max(1, a.threads // 2)} thread(s) each), against "
              "the one-rank run:", "", "| layout | step ms | tokens/s | vs one rank |", "|---|---:|---:|---:|"]
    for lay in a.layouts.split(","):
        t, _ = tessera(lay, 2, max(1, a.threads // 2))
        m = statistics.median(t)
        lines.append(f"| {lay} | {m:.1f} | {tok / m * 1e3:.0f} | {mt / m:.2f} |")
prof = tessera("one", 1, a.threads, profile=True)
g = prof["gemm"]
lines += ["", f"Where tessera's step goes (`--profile`, one rank, {a.threads} threads, {prof['steps']} steps after a "
          f"warm-up; a profiled step took {prof['step_ms']:.1f} ms). GFLOP/s: of the operator as it ran in the step; "
          "alone: the same GEMM shape run by itself.", "",
          "| operator | calls | ms / step | share | GFLOP/s | alone |", "|:--|--:|--:|--:|--:|--:|"]
other = 0.0
for o in prof["ops"]:
    if o["share"] < 0.004:
        other += o["ms_per_step"]
        continue
    lines.append(f"| {o['op']} | {o['calls_per_step']:.0f} | {o['ms_per_step']:.1f} | {100 * o['share']:.1f}% | "
                 f"{o['gflops']:.0f} |" if "gflops" in o else
                 f"| {o['op']} | {o['calls_per_step']:.0f} | {o['ms_per_step']:.1f} | {100 * o['share']:.1f}% | |")
    if "alone_gflops" in o:
        lines[-1] += f" {o['alone_gflops']:.0f} |"
    else:
        lines[-1] += " |"
lines += [f"| (everything under 0.4%) | | {other:.1f} | | | |",
          "", f"GEMMs: {g['ms_per_step']:.1f} ms per step ({100 * g['share_of_step']:.1f}% of it) at {g['gflops']:.1f} GFLOP/s "
          f"= {100 * g['fraction_of_peak']:.1f}% of the measured GEMM peak ({g['peak_gflops']:.1f} GFLOP/s, the fastest "
          f"of the step's shapes run alone; {g['sustained_gflops']:.1f} GFLOP/s when that shape runs back to back for 2 s, "
          f"the rate the cores keep up under a continuous load). Operators account for "
          f"{prof['profiled_ms_per_step']:.1f} ms of the step."]
if a.bf16:
    pb = tessera("one_bf16", 1, a.threads, profile=True)["gemm"]
    lines += ["", f"bf16 plan, profiled the same way: GEMMs {pb['ms_per_step']:.1f} ms per step "
              f"({100 * pb['share_of_step']:.1f}% of it) at {pb['gflops']:.1f} GFLOP/s = {100 * pb['fraction_of_peak']:.1f}% "
              f"of the measured bf16 GEMM peak ({pb['peak_gflops']:.1f} GFLOP/s; {pb['sustained_gflops']:.1f} sustained)."]
text = "\n".join(lines)
print(text)
if a.markdown:
    open(a.markdown, "w").write(text + "\n")


def svg(path):
    """Two panels: tokens/s of tessera and PyTorch; the step's breakdown by operator group."""
    groups = {}
    for o in prof["ops"]:
        name = o["op"]
        key = "GEMM (OpenBLAS)" if name.startswith("sgemm") else "GEMM (bf16, oneDNN)" if name.startswith("bf16gemm") else name.replace(" fwd", "").replace(" bwd", "")
        groups[key] = groups.get(key, 0) + o["ms_per_step"]
    items = sorted(groups.items(), key=lambda kv: -kv[1])[:10]
    bars = [("tessera", tok / mt * 1e3, "#2b7bb9"), ("PyTorch", tok / mp * 1e3, "#e07b39")]
    if a.bf16:
        bars += [("tessera bf16", tok / mb * 1e3, "#7fb3dc")]
        if a.torch_bf16:
            bars += [("PyTorch bf16", tok / mpb * 1e3, "#f0b48c")]
    W, bar = 760, 18
    y0 = 35 + len(bars) * (bar + 8) + 20
    h = y0 + 12 + len(items) * (bar + 6) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">GPT-2 124M training step, B = {a.batch}, T = 64, fp32, '
           f'{a.threads} threads: tokens/s (tessera / PyTorch = {mp / mt:.2f})</text>']
    best = max(v for _, v, _ in bars)
    for i, (name, v, col) in enumerate(bars):
        y = 35 + i * (bar + 8)
        wbar = (W - 260) * v / best
        out += [f'<text x="10" y="{y + 13}">{name}</text>',
                f'<rect x="120" y="{y}" width="{wbar:.1f}" height="{bar}" fill="{col}"/>',
                f'<text x="{125 + wbar:.1f}" y="{y + 13}">{v:.0f} tokens/s</text>']
    out.append(f'<text x="10" y="{y0}" font-size="14" font-weight="bold">tessera step by operator (ms per step; '
               f'GEMMs at {100 * g["fraction_of_peak"]:.0f}% of the measured GEMM peak)</text>')
    top = max(v for _, v in items)
    for i, (name, v) in enumerate(items):
        y = y0 + 12 + i * (bar + 6)
        wbar = (W - 330) * v / top
        out += [f'<text x="10" y="{y + 13}">{name}</text>',
                f'<rect x="200" y="{y}" width="{wbar:.1f}" height="{bar}" fill="#2b7bb9"/>',
                f'<text x="{205 + wbar:.1f}" y="{y + 13}">{v:.1f} ms ({100 * v / prof["step_ms"]:.1f}%)</text>']
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


if a.svg:
    svg(a.svg)
def summary_row():
    """One row of the per-level table: the level, both sides' fp32 (and bf16) step, the ratios, shares."""
    share = {o["op"]: o["share"] for o in prof["ops"]}
    top = lambda name: f"{100 * share.get(name, 0):.1f}%"
    row = (f"| {a.level} | {sm.get('lanes', '?')} | {a.emulated or '—'} | {mt:.0f} | {mp:.0f} | **{mp / mt:.2f}** | ")
    row += (f"{mb:.0f} | {mpb:.0f} | {mt / mb:.2f} | " if a.bf16 else "— | — | — | ").replace("| nan |", "| — |")
    row += f"{top('adamw')} | {top('cross-entropy fwd')} | {100 * g['share_of_step']:.1f}% |"
    return row


if a.docs:
    doc = open(a.docs).read()
    marker = "" if a.level == "native" else ":" + a.level
    begin, end = f"<!-- bench:step{marker} -->", f"<!-- /bench:step{marker} -->"
    if begin in doc and end in doc:
        i, j = doc.index(begin) + len(begin), doc.index(end)
        doc = doc[:i] + "\n" + text + "\n" + doc[j:]
    else:
        print(f"--docs {a.docs}: no {begin} ... {end} markers; the step section not updated", file=sys.stderr)
    lb, le = "<!-- bench:levels -->", "<!-- /bench:levels -->"
    if lb in doc and le in doc:
        i, j = doc.index(lb) + len(lb), doc.index(le)
        rows = [r for r in doc[i:j].strip().splitlines() if r.startswith("| ") and not r.startswith("| level")]
        rows = [r for r in rows if not r.startswith(f"| {a.level} |")] + [summary_row()]
        head = ["| level (-march) | lanes | both sides restricted to | tessera fp32 ms | PyTorch fp32 ms | "
                "fp32 ratio (tokens/s) | tessera bf16 ms | PyTorch bf16 ms | tessera bf16 speed-up over own fp32 | "
                "adamw share | cross-entropy fwd share | GEMM share |", "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        doc = doc[:i] + "\n" + "\n".join(head + sorted(rows)) + "\n" + doc[j:]
    open(a.docs, "w").write(doc)
