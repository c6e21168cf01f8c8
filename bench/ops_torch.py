#!/usr/bin/env python3
"""bench/ops_torch.py — the PyTorch (CPU) side of bench/ops.cpp, and the table that compares the two.

    ops_torch.py [--batch 4] [--seq 64,128,...] [--quick] [--threads 2] [--part all|ops|adamw] [--json FILE]
    ops_torch.py --compare TESSERA.json TORCH.json [--markdown]

The same GPT-2 small shapes and operators as bench_ops (C = 768, 12 heads × 64, ffn 3072, vocab 50304),
in fp32, built from the torch ops a GPT-2 training step uses: F.embedding, F.layer_norm, F.linear, causal
attention written out as softmax(QKᵀ·scale + mask)·V (PyTorch 1.13 has no scaled_dot_product_attention),
F.gelu(approximate="tanh"), +, F.cross_entropy (mean) and torch.optim.AdamW.

Timing: after two warm-up calls, calls until the budget is spent (at least --min-reps); the median.
Forward: the op with autograd recording (inputs require grad), as in training. Backward: each repetition
runs the forward outside the clock, then times torch.autograd.grad(out, inputs, upstream grad) alone, so
the forward is excluded entirely and the graph is used once (no retain_graph). AdamW: one optimizer.step()
over the 148 GPT-2 small parameter tensors (124,475,904 values), decay on matrices and embeddings; 1.13's
default is the single-tensor loop (foreach=None means False there), and --adamw-foreach times foreach=True.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

C, H, D, FF, V, MAXPOS, LAYERS = 768, 12, 64, 3072, 50304, 1024, 12
ORDER = ["embedding", "layernorm", "linear_qkv", "attention", "linear_proj", "add", "linear_fc", "gelu",
         "cross_entropy", "adamw"]
DIRS = {"fwd": 0, "bwd": 1, "step": 2}


def timed(fn, args, setup=None):
    """(median, min) ms of fn(*setup()) (or fn()) after two warm-up calls; setup runs outside the clock."""
    def once():
        a = setup() if setup else ()
        t0 = time.perf_counter()
        fn(*a)
        return (time.perf_counter() - t0) * 1e3

    once()
    once()
    ts, start = [], time.perf_counter()
    while len(ts) < args.min_reps or (len(ts) < args.max_reps and (time.perf_counter() - start) * 1e3 < args.budget_ms):
        ts.append(once())
    return statistics.median(ts), min(ts), len(ts)


def run(args):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []

    def finish():
        return {"side": "torch", "version": torch.__version__, "batch": args.batch,
                "threads": torch.get_num_threads(), "adamw_foreach": bool(args.adamw_foreach), "results": results}

    def record(op, T, d, ms_reps):
        ms, min_ms, reps = ms_reps
        results.append({"op": op, "T": T, "dir": d, "dtype": "fp32", "ms": ms, "min_ms": min_ms, "reps": reps})
        print(f"{op:<14} {T:>6} {d:>4} {'fp32':>5} {ms:12.3f} {reps:5d}", flush=True)

    def fwd_bwd(op, T, f, inputs, grad_out=None):
        """Times f(*inputs) with autograd recording, then autograd.grad of it alone."""
        def forward():
            return f(*inputs)

        record(op, T, "fwd", timed(forward, args))

        def setup():
            out = forward()
            g = grad_out if grad_out is not None else torch.ones_like(out)
            return out, g

        def backward(out, g):
            torch.autograd.grad(out, inputs, g)

        record(op, T, "bwd", timed(backward, args, setup))

    def rnd(*shape, lo=-1.0, hi=1.0, grad=True):
        return (torch.rand(*shape) * (hi - lo) + lo).requires_grad_(grad)

    print(f"torch {torch.__version__} operators: B = {args.batch}, C = {C}, heads {H} × {D}, ffn {FF}, "
          f"vocab {V}; torch.get_num_threads() = {torch.get_num_threads()}")
    print(f"{'op':<14} {'T':>6} {'dir':>4} {'dtype':>5} {'median ms':>12} {'reps':>5}")
    mask = torch.tril(torch.ones(MAXPOS, MAXPOS, dtype=torch.bool))
    for T in (args.seq if args.part != "adamw" else []):
        B, N = args.batch, args.batch * T
        # embedding: x = wte[idx] + wpe[pos]; grads of wte and wpe (dense, as GPT-2 trains them)
        idx = torch.randint(0, V, (B, T))
        pos = torch.arange(T)
        wte, wpe = rnd(V, C, lo=-0.1, hi=0.1), rnd(MAXPOS, C, lo=-0.1, hi=0.1)
        fwd_bwd("embedding", T, lambda wte, wpe: F.embedding(idx, wte) + F.embedding(pos, wpe), [wte, wpe],
                torch.rand(B, T, C) * 2 - 1)
        del wte, wpe
        # layernorm
        x, g, b = rnd(B, T, C, lo=-2, hi=2), rnd(C, lo=0.5, hi=1.5), rnd(C, lo=-0.5, hi=0.5)
        fwd_bwd("layernorm", T, lambda x, g, b: F.layer_norm(x, (C,), g, b, 1e-5), [x, g, b],
                torch.rand(B, T, C) * 2 - 1)

        def linear(name, fin, fout):
            x, W, b = rnd(B, T, fin), rnd(fout, fin, lo=-0.05, hi=0.05), rnd(fout, lo=-0.1, hi=0.1)
            fwd_bwd(name, T, F.linear, [x, W, b], torch.rand(B, T, fout) * 2 - 1)

        linear("linear_qkv", C, 3 * C)

        # attention on the fused qkv [B, T, 3C], nanoGPT's non-flash path
        def attention(qkv):
            q, k, v = qkv.split(C, dim=2)
            q = q.view(B, T, H, D).transpose(1, 2)
            k = k.view(B, T, H, D).transpose(1, 2)
            v = v.view(B, T, H, D).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
            att = att.masked_fill(~mask[:T, :T], float("-inf"))
            att = F.softmax(att, dim=-1)
            return (att @ v).transpose(1, 2).contiguous().view(B, T, C)

        fwd_bwd("attention", T, attention, [rnd(B, T, 3 * C)], torch.rand(B, T, C) * 2 - 1)
        linear("linear_proj", C, C)
        a, b2 = rnd(B, T, C, grad=False), rnd(B, T, C, grad=False)
        record("add", T, "fwd", timed(lambda: a + b2, args))
        linear("linear_fc", C, FF)
        fwd_bwd("gelu", T, lambda h: F.gelu(h, approximate="tanh"), [rnd(B, T, FF, lo=-3, hi=3)],
                torch.rand(B, T, FF) * 2 - 1)
        # cross-entropy over the vocabulary, mean over the B·T rows; upstream grad 1
        targets = torch.randint(0, V, (N,))
        logits = rnd(N, V, lo=-4, hi=4)
        fwd_bwd("cross_entropy", T, lambda lg: F.cross_entropy(lg, targets), [logits], torch.tensor(1.0))
        del logits

    if args.part == "ops":
        return finish()
    # AdamW over GPT-2 small's parameters
    shapes = [((V, C), True), ((MAXPOS, C), True)]
    for _ in range(LAYERS):
        shapes += [((C,), False), ((C,), False), ((3 * C, C), True), ((3 * C,), False), ((C, C), True),
                   ((C,), False), ((C,), False), ((C,), False), ((FF, C), True), ((FF,), False),
                   ((C, FF), True), ((C,), False)]
    shapes += [((C,), False), ((C,), False)]
    params = [torch.nn.Parameter(torch.rand(*s) * 0.2 - 0.1) for s, _ in shapes]
    for p in params:
        p.grad = torch.rand_like(p) * 0.02 - 0.01
    assert sum(p.numel() for p in params) == 124_475_904 and len(params) == 148
    groups = [{"params": [p for p, (_, d) in zip(params, shapes) if d], "weight_decay": 0.1},
              {"params": [p for p, (_, d) in zip(params, shapes) if not d], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), eps=1e-8,
                            foreach=True if args.adamw_foreach else None)
    record("adamw", 0, "step", timed(opt.step, args))
    return finish()


def compare(tessera_file, torch_file, markdown, stat="ms"):
    """One table: op, T, direction, tessera fp32 (and bf16) ms, torch fp32 ms, torch / tessera (fp32).

    stat: "ms" (medians) or "min_ms" (fastest calls)."""
    with open(tessera_file) as f:
        ts = json.load(f)
    with open(torch_file) as f:
        pt = json.load(f)
    tes = {(r["op"], r["T"], r["dir"], r["dtype"]): r[stat] for r in ts["results"]}
    tor = {(r["op"], r["T"], r["dir"]): r[stat] for r in pt["results"]}
    keys = sorted({k[:3] for k in tes} | set(tor), key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99,
                                                                  k[1], DIRS.get(k[2], 9)))
    head = ["op", "T", "dir", "tessera fp32 ms", "tessera bf16 ms", "torch fp32 ms", "torch/tessera"]
    rows = []
    for op, T, d in keys:
        a, b16, t = tes.get((op, T, d, "fp32")), tes.get((op, T, d, "bf16")), tor.get((op, T, d))
        fmt = lambda v: "—" if v is None else f"{v:.3f}"
        ratio = "—" if a is None or t is None else f"{t / a:.2f}"
        rows.append([op, str(T) if T else "all", d, fmt(a), fmt(b16), fmt(t), ratio])
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join([":--", "--:", ":--"] + ["--:"] * 4) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]
        line = lambda r: "  ".join(c.ljust(w[i]) if i in (0, 2) else c.rjust(w[i]) for i, c in enumerate(r))
        print(line(head))
        for r in rows:
            print(line(r))
    print(f"\ntessera: B = {ts['batch']}, {ts['omp_threads']} OpenMP threads, {ts['openblas_threads']} OpenBLAS "
          f"threads; torch {pt['version']}: {pt['threads']} threads, AdamW foreach={pt['adamw_foreach']}. "
          + ("Medians" if stat == "ms" else "Fastest calls") + "; ratio > 1: tessera faster.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=lambda s: [int(x) for x in s.split(",")], default=[64, 128, 256, 512, 1024])
    ap.add_argument("--quick", action="store_true", help="T in {64, 256} only")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--max-reps", type=int, default=30)
    ap.add_argument("--budget-ms", type=float, default=400)
    ap.add_argument("--part", choices=["all", "ops", "adamw"], default="all",
                    help="ops: the T-dependent operators only; adamw: the optimizer step only")
    ap.add_argument("--adamw-foreach", action="store_true", help="AdamW(foreach=True) instead of the default")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--compare", nargs=2, metavar=("TESSERA_JSON", "TORCH_JSON"), help="print the table only")
    ap.add_argument("--markdown", action="store_true", help="--compare prints a Markdown table")
    ap.add_argument("--min", action="store_true", help="--compare uses the fastest call, not the median")
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare, args.markdown, "min_ms" if args.min else "ms")
        return 0
    if args.quick:
        args.seq = [64, 256]
    args.max_reps = max(args.max_reps, args.min_reps)
    out = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
