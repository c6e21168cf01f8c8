#!/usr/bin/env python3
"""The PyTorch peer of bench_gpu_step: the same GPT (GPT-2 124M or a 1.3B GPT: LayerNorm, GELU-tanh, learned
positions, tied head, biases) trained in bf16 on one GPU the way a PyTorch user would — bf16 autocast,
scaled_dot_product_attention (causal), torch.compile, fused AdamW — and timed the same way: warm-up steps,
then the mean of the timed steps, each ending with the loss on the host. Prints one JSON line like
bench_gpu_step's. Without a CUDA device: a message and exit 77.

  gpu_step_torch.py --model gpt2|gpt1.3b [--batch B] [--steps N] [--warmup W] [--no-compile]
"""
import argparse
import json
import math
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the peer is missing, not broken
    print(f"SKIPPED: no PyTorch in {sys.executable} ({e})")
    sys.exit(77)

MODELS = {"gpt2": dict(layers=12, hidden=768, heads=12), "gpt1.3b": dict(layers=24, hidden=2048, heads=16)}
VOCAB, SEQ = 50257, 1024


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.c_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (y.view(b, t, self.heads, c // self.heads).transpose(1, 2) for y in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, c)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, layers, hidden, heads):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, hidden), nn.Embedding(SEQ, hidden)
        self.h = nn.ModuleList(Block(hidden, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.h:
            x = blk(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied head
        return F.cross_entropy(logits.float().view(-1, VOCAB), targets.view(-1))


def peak_flops():
    n = 8192
    a = torch.full((n, n), 0.01, device="cuda", dtype=torch.bfloat16)
    b = torch.full((n, n), 0.02, device="cuda", dtype=torch.bfloat16)
    best = math.inf
    for rep in range(13):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        torch.matmul(a, b)
        e.record()
        e.synchronize()
        if rep >= 3:
            best = min(best, s.elapsed_time(e) * 1e-3)
    return 2.0 * n ** 3 / best


def flops_per_token(layers, hidden):  # 6·N + 12·L·C·T, N without the position table (docs/training.md)
    n = layers * (12 * hidden * hidden + 13 * hidden) + VOCAB * hidden + 2 * hidden
    return 6.0 * n + 12.0 * layers * hidden * SEQ


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=MODELS, default="gpt2")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device (torch.cuda.is_available() is False)")
        sys.exit(77)
    torch.manual_seed(1234)
    cfg = MODELS[a.model]
    model = GPT(**cfg).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.0, fused=True)
    step_fn = model if a.no_compile else torch.compile(model)
    idx = torch.randint(0, VOCAB, (a.batch, SEQ + 1), device="cuda")
    x, y = idx[:, :-1].contiguous(), idx[:, 1:].contiguous()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_fn(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    s = (time.perf_counter() - t0) / a.steps
    tokens = a.batch * SEQ
    peak = peak_flops()
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"system": "pytorch", "model": a.model, "batch": a.batch, "seq": SEQ, "params": params,
                      "tokens_per_s": tokens / s, "step_ms": 1e3 * s,
                      "mfu": flops_per_token(cfg["layers"], cfg["hidden"]) * tokens / s / peak,
                      "peak_tflops": peak / 1e12, "loss": loss, "compiled": not a.no_compile,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
