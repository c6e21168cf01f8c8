#!/usr/bin/env python3
"""bench/gpt2_step_torch.py — the PyTorch peer of bench/gpt2_step.cpp: one GPT-2 124M training step
(vocab 50304, T = 64, B = 4 by default, fp32, tied embeddings, AdamW), on the same token windows.

    gpt2_step_torch.py --data FILE --steps N [--batch 4] [--threads 2] [--bf16] [--json FILE]

Prints one line per step (ms) and, with --json, writes {"step_ms": [...], "tokens_per_step": n}.
The model is GPT-2 as Hugging Face defines it (pre-LN blocks, Conv1D-style q|k|v, gelu tanh, tied head),
written with torch.nn so autograd does the backward; the attention is softmax(QKᵀ/√D + causal mask)·V
(PyTorch 1.13 has no fused attention on CPU). The optimizer is torch.optim.AdamW (lr 3e-4,
betas 0.9/0.95, weight decay 0.1 on matrices and embeddings), clipping at 1.0 — what tessera's step does.
--bf16 runs the forward (and so the backward) under torch.autocast("cpu", torch.bfloat16): bf16 matmuls
(oneDNN), fp32 weights, gradients and optimizer — the peer of tessera's precision<bf16> plan.
"""
import argparse, json, math, time

import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=64)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--vocab", type=int, default=50304)
ap.add_argument("--layers", type=int, default=12)
ap.add_argument("--hidden", type=int, default=768)
ap.add_argument("--heads", type=int, default=12)
ap.add_argument("--bf16", action="store_true")
ap.add_argument("--json")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1234)
V, T, L, C, H = a.vocab, a.seq, a.layers, a.hidden, a.heads
D = C // H


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, x):
        B_, T_, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=-1)
        q, k, v = (t.view(B_, T_, H, D).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D))
        y = torch.softmax(s.masked_fill(self.mask[:T_, :T_], float("-inf")), dim=-1) @ v
        x = x + self.c_proj(y.transpose(1, 2).reshape(B_, T_, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        for p in self.parameters():
            if p.dim() > 1: nn.init.normal_(p, std=0.02)

    def forward(self, idx, tgt):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h: x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, V), tgt.view(-1))


model = GPT()
decay = [p for p in model.parameters() if p.dim() > 1]
no_decay = [p for p in model.parameters() if p.dim() <= 1]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
tokens = torch.tensor(list(open(a.data, "rb").read()), dtype=torch.long)
nwin = (len(tokens) - 1) // T
times, losses = [], []
for k in range(a.steps):
    wins = [(k * a.batch + i) % nwin for i in range(a.batch)]
    idx = torch.stack([tokens[w * T: w * T + T] for w in wins])
    tgt = torch.stack([tokens[w * T + 1: w * T + T + 1] for w in wins])
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    if a.bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(idx, tgt)
    else:
        loss = model(idx, tgt)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    ms = (time.perf_counter() - t0) * 1e3
    times.append(ms)
    print(f"torch step {k}: loss {loss.item():.4f}, {ms:.1f} ms", flush=True)
    losses.append(loss.item())
if a.json:
    json.dump({"step_ms": times, "loss": losses, "bf16": a.bf16, "tokens_per_step": a.batch * T, "torch": torch.__version__,
               "threads": a.threads}, open(a.json, "w"))
