#!/usr/bin/env python3
"""PyTorch oracle for the tessera host operators (tests/ops/test_oracle.cpp reads what this writes).

For every operator and a handful of shapes (odd sizes included) this script draws deterministic inputs
(torch.manual_seed), computes the forward AND the backward (torch.autograd.grad with a random upstream
gradient) with PyTorch, and writes

    <out>/oracle.json   manifest: {"format": 1, "cases": {name: case}}
    <out>/oracle.bin    every tensor, raw little-endian, one after another (64-byte aligned)

where case = {"op": str, "dtype": "f32" | "bf16", "params": {name: number},
              "tensors": {name: {"shape": [int], "offset": bytes, "dtype": "f32" | "i32"}}}.
Tensor names ending in "_ref" are PyTorch's answers; the others are inputs.

bf16 cases: the inputs are rounded to bf16 (and stored as the fp32 values of those bf16 numbers, so the
C++ side converts them exactly), the reference is computed in fp32 from the rounded inputs and stored in
fp32; tessera then runs with bf16 storage. Nothing is cached in the repository: CTest runs this script
as a fixture before test_oracle.
"""
import argparse
import json
import math
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.stderr.write(f"oracle.py: PyTorch is needed ({e})\n")
    sys.exit(1)

DTYPES = ("f32", "bf16")


class Writer:
    def __init__(self):
        self.cases = {}
        self.chunks = []
        self.offset = 0

    def _put(self, t, dtype):
        t = t.detach().contiguous().cpu()
        if dtype == "i32":
            data = t.to(torch.int32).numpy().tobytes()
        else:
            data = t.to(torch.float32).numpy().tobytes()
        pad = (-self.offset) % 64
        if pad:
            self.chunks.append(b"\0" * pad)
            self.offset += pad
        off = self.offset
        self.chunks.append(data)
        self.offset += len(data)
        return {"shape": list(t.shape), "offset": off, "dtype": dtype}

    def case(self, name, op, dtype, params, tensors):
        assert name not in self.cases, name
        entry = {"op": op, "dtype": dtype, "params": params, "tensors": {}}
        for k, t in tensors.items():
            kind = "i32" if t.dtype in (torch.int32, torch.int64) else "f32"
            entry["tensors"][k] = self._put(t, kind)
        self.cases[name] = entry

    def write(self, out):
        os.makedirs(out, exist_ok=True)
        blob = os.path.join(out, "oracle.bin")
        manifest = os.path.join(out, "oracle.json")
        with open(blob + ".tmp", "wb") as f:
            for c in self.chunks:
                f.write(c)
        with open(manifest + ".tmp", "w") as f:
            json.dump({"format": 1, "blob": "oracle.bin", "bytes": self.offset, "cases": self.cases}, f,
                      indent=1, sort_keys=True)
        os.replace(blob + ".tmp", blob)
        os.replace(manifest + ".tmp", manifest)


def as_dtype(t, dtype):
    """The fp32 tensor rounded to bf16 (and back to fp32) for bf16 cases; unchanged for f32."""
    return t.to(torch.bfloat16).to(torch.float32) if dtype == "bf16" else t


def rnd(*shape, scale=1.0, shift=0.0, dtype="f32"):
    """Normal draw (times scale, plus shift), rounded to bf16 for bf16 cases; always returned as fp32."""
    return as_dtype(torch.randn(*shape, dtype=torch.float32) * scale + shift, dtype)


def leaf(t):
    return t.clone().requires_grad_(True)


def grads(y, xs, dy):
    return torch.autograd.grad(y, xs, dy)


# ---- element-wise ----------------------------------------------------------------------------------------
def gen_gelu(w, dt):
    for n in (1, 7 * 33, 65 * 768):
        x = leaf(rnd(n, scale=2.0, dtype=dt))
        dy = rnd(n, dtype=dt)
        y = F.gelu(x, approximate="tanh")
        (dx,) = grads(y, [x], dy)
        w.case(f"gelu/{dt}/n{n}", "gelu", dt, {"n": n}, {"x": x, "dy": dy, "y_ref": y, "dx_ref": dx})


def gen_swiglu(w, dt):
    for N, Fd in ((1, 33), (7, 64), (65, 768)):
        gate = leaf(rnd(N, Fd, scale=2.0, dtype=dt))
        up = leaf(rnd(N, Fd, dtype=dt))
        dy = rnd(N, Fd, dtype=dt)
        y = F.silu(gate) * up
        dgate, dup = grads(y, [gate, up], dy)
        w.case(f"swiglu/{dt}/N{N}_F{Fd}", "swiglu", dt, {"N": N, "F": Fd},
               {"gate": gate, "up": up, "dy": dy, "y_ref": y, "dgate_ref": dgate, "dup_ref": dup})


def gen_add(w, dt):
    for n in (1, 7 * 33, 65 * 768):
        # forward only: the backward of a residual add passes dy through unchanged (no operator)
        a = rnd(n, dtype=dt)
        b = rnd(n, scale=3.0, dtype=dt)
        w.case(f"add/{dt}/n{n}", "add", dt, {"n": n}, {"a": a, "b": b, "y_ref": a + b})


# ---- normalisation ---------------------------------------------------------------------------------------
NORM_SHAPES = ((1, 33), (7, 64), (65, 768))


def gen_layernorm(w, dt):
    eps = 1e-5
    for N, C in NORM_SHAPES:
        for bias in (True, False):
            x = leaf(rnd(N, C, scale=1.5, shift=0.5, dtype=dt))
            g = leaf(rnd(C, scale=0.3, shift=1.0, dtype=dt))
            b = leaf(rnd(C, scale=0.3, dtype=dt)) if bias else None
            dy = rnd(N, C, dtype=dt)
            y = F.layer_norm(x, (C,), g, b, eps)
            ins = [x, g] + ([b] if bias else [])
            gs = grads(y, ins, dy)
            mean = x.detach().mean(-1)
            rstd = torch.rsqrt(x.detach().var(-1, unbiased=False) + eps)
            t = {"x": x, "gamma": g, "dy": dy, "y_ref": y, "mean_ref": mean, "rstd_ref": rstd,
                 "dx_ref": gs[0], "dgamma_ref": gs[1]}
            if bias:
                t["beta"] = b
                t["dbeta_ref"] = gs[2]
            w.case(f"layernorm/{dt}/N{N}_C{C}_{'bias' if bias else 'nobias'}", "layernorm", dt,
                   {"N": N, "C": C, "eps": eps, "bias": int(bias)}, t)


def llama_rmsnorm(x, weight, eps):
    """transformers' LlamaRMSNorm.forward, verbatim (fp32 input: the casts are no-ops)."""
    input_dtype = x.dtype
    hs = x.to(torch.float32)
    variance = hs.pow(2).mean(-1, keepdim=True)
    hs = hs * torch.rsqrt(variance + eps)
    return weight * hs.to(input_dtype)


def gen_rmsnorm(w, dt):
    for N, C in NORM_SHAPES:
        for eps in (1e-6, 1e-5):
            x = leaf(rnd(N, C, scale=1.5, dtype=dt))
            g = leaf(rnd(C, scale=0.3, shift=1.0, dtype=dt))
            dy = rnd(N, C, dtype=dt)
            y = llama_rmsnorm(x, g, eps)
            dx, dg = grads(y, [x, g], dy)
            rstd = torch.rsqrt(x.detach().pow(2).mean(-1) + eps)
            w.case(f"rmsnorm/{dt}/N{N}_C{C}_eps{eps:g}", "rmsnorm", dt, {"N": N, "C": C, "eps": eps},
                   {"x": x, "gamma": g, "dy": dy, "y_ref": y, "rstd_ref": rstd, "dx_ref": dx, "dgamma_ref": dg})


# ---- linear ----------------------------------------------------------------------------------------------
def gen_linear(w, dt):
    for N, fin, fout in ((1, 33, 17), (7, 64, 33), (65, 768, 96)):
        for bias in (True, False):
            x = leaf(rnd(N, fin, dtype=dt))
            W = leaf(rnd(fout, fin, scale=1.0 / math.sqrt(fin), dtype=dt))
            b = leaf(rnd(fout, scale=0.5, dtype=dt)) if bias else None
            dy = rnd(N, fout, dtype=dt)
            y = F.linear(x, W, b)
            gs = grads(y, [x, W] + ([b] if bias else []), dy)
            t = {"x": x, "W": W, "dy": dy, "y_ref": y, "dx_ref": gs[0], "dW_ref": gs[1]}
            if bias:
                t["b"] = b
                t["db_ref"] = gs[2]
            w.case(f"linear/{dt}/N{N}_in{fin}_out{fout}_{'bias' if bias else 'nobias'}", "linear", dt,
                   {"N": N, "in": fin, "out": fout, "bias": int(bias)}, t)


# ---- attention -------------------------------------------------------------------------------------------
def causal_gqa_attention(q, k, v, B, T, Hq, Hkv, D, scale):
    """softmax(Q·Kᵀ·scale + causal mask)·V, kv heads repeated for GQA; q [B·T, Hq·D], k/v [B·T, Hkv·D].
    Returns o [B·T, Hq·D] and lse [B, Hq, T]."""
    rep = Hq // Hkv
    q4 = q.view(B, T, Hq, D).transpose(1, 2)
    k4 = k.view(B, T, Hkv, D).transpose(1, 2).repeat_interleave(rep, dim=1)
    v4 = v.view(B, T, Hkv, D).transpose(1, 2).repeat_interleave(rep, dim=1)
    s = torch.matmul(q4, k4.transpose(-1, -2)) * scale
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    s = s.masked_fill(mask, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.softmax(s, dim=-1)
    o = torch.matmul(p, v4).transpose(1, 2).reshape(B * T, Hq * D)
    return o, lse


def gen_attention(w, dt):
    shapes = ((1, 1, 4, 4, 32), (2, 37, 4, 2, 32), (1, 64, 6, 1, 64), (2, 37, 6, 1, 64), (1, 130, 4, 2, 32),
              (1, 65, 4, 4, 64))
    for B, T, Hq, Hkv, D in shapes:
        scale = 1.0 / math.sqrt(D)
        q = leaf(rnd(B * T, Hq * D, dtype=dt))
        k = leaf(rnd(B * T, Hkv * D, dtype=dt))
        v = leaf(rnd(B * T, Hkv * D, dtype=dt))
        do = rnd(B * T, Hq * D, dtype=dt)
        o, lse = causal_gqa_attention(q, k, v, B, T, Hq, Hkv, D, scale)
        dq, dk, dv = grads(o, [q, k, v], do)
        w.case(f"attention/{dt}/B{B}_T{T}_Hq{Hq}_Hkv{Hkv}_D{D}", "attention", dt,
               {"B": B, "T": T, "Hq": Hq, "Hkv": Hkv, "D": D, "scale": scale},
               {"q": q, "k": k, "v": v, "do": do, "o_ref": o, "lse_ref": lse, "dq_ref": dq, "dk_ref": dk,
                "dv_ref": dv})


# ---- RoPE (Hugging Face LlamaRotaryEmbedding + apply_rotary_pos_emb) ------------------------------------
def hf_rope_cos_sin(dim, base, positions):
    """LlamaRotaryEmbedding: float32 inverse frequencies, float32 angles, emb = cat(freqs, freqs)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    t = positions.to(inv_freq.dtype)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(x, cos, sin):
    return (x * cos) + (rotate_half(x) * sin)


def gen_rope(w, dt):
    for B, T, H, D, pos0, theta in ((1, 1, 4, 32, 0, 10000.0), (2, 37, 6, 64, 5, 10000.0),
                                    (1, 64, 2, 32, 0, 500000.0), (3, 7, 1, 64, 100, 10000.0),
                                    (1, 9, 2, 64, 4090, 10000.0)):  # long positions: fp32 angles matter
        x = leaf(rnd(B * T, H * D, dtype=dt))
        dy = rnd(B * T, H * D, dtype=dt)
        cos, sin = hf_rope_cos_sin(D, theta, torch.arange(pos0, pos0 + T))
        x4 = x.view(B, T, H, D)
        y = apply_rotary_pos_emb(x4, cos[None, :, None, :], sin[None, :, None, :]).reshape(B * T, H * D)
        (dx,) = grads(y, [x], dy)
        P = pos0 + T
        call, sall = hf_rope_cos_sin(D, theta, torch.arange(0, P))
        w.case(f"rope/{dt}/B{B}_T{T}_H{H}_D{D}_pos{pos0}_theta{theta:g}", "rope", dt,
               {"B": B, "T": T, "H": H, "D": D, "pos0": pos0, "theta": theta},
               {"x": x, "dy": dy, "y_ref": y, "dx_ref": dx, "cos_ref": call[:, : D // 2],
                "sin_ref": sall[:, : D // 2]})


# ---- token + position embedding --------------------------------------------------------------------------
def gen_embedding(w, dt):
    for B, T, C, V, pos0 in ((1, 1, 33, 50, 0), (2, 37, 64, 257, 3), (4, 64, 96, 50, 0), (3, 5, 768, 257, 11)):
        P = pos0 + T + 2
        N = B * T
        tokens = torch.randint(0, V, (N,), dtype=torch.int64)
        tokens[0] = V - 1  # the last row, and a repeated token to accumulate
        if N > 2:
            tokens[1] = 0
            tokens[2] = V - 1
        wte = leaf(rnd(V, C, dtype=dt))
        wpe = leaf(rnd(P, C, scale=0.5, dtype=dt))
        dy = rnd(N, C, dtype=dt)
        y = F.embedding(tokens.view(B, T), wte) + wpe[pos0:pos0 + T][None, :, :]
        y = y.reshape(N, C)
        dwte, dwpe = grads(y, [wte, wpe], dy)
        w.case(f"embedding/{dt}/B{B}_T{T}_C{C}_V{V}_pos{pos0}", "embedding", dt,
               {"B": B, "T": T, "C": C, "V": V, "P": P, "pos0": pos0},
               {"tokens": tokens, "wte": wte, "wpe": wpe, "dy": dy, "y_ref": y, "dwte_ref": dwte,
                "dwpe_ref": dwpe})


# ---- cross-entropy ---------------------------------------------------------------------------------------
def gen_cross_entropy(w, dt):
    for N, V in ((1, 50), (7, 257), (65, 257), (37, 50)):
        logits = leaf(rnd(N, V, scale=3.0, dtype=dt))
        targets = torch.randint(0, V, (N,), dtype=torch.int64)
        targets[0] = V - 1
        if N > 1:
            targets[1] = 0
        g = float(torch.rand(()) + 0.5)  # upstream gradient of the mean loss
        loss = F.cross_entropy(logits, targets)
        (dlogits,) = grads(loss, [logits], torch.tensor(g))
        rows = F.cross_entropy(logits.detach(), targets, reduction="none")
        lse = torch.logsumexp(logits.detach(), dim=-1)
        w.case(f"cross_entropy/{dt}/N{N}_V{V}", "cross_entropy", dt, {"N": N, "V": V, "dloss": g},
               {"logits": logits, "targets": targets, "loss_ref": loss.reshape(1), "rows_ref": rows,
                "lse_ref": lse, "dlogits_ref": dlogits})


# ---- AdamW -----------------------------------------------------------------------------------------------
def gen_adamw(w, dt):
    lr, b1, b2, eps, steps = 1e-3, 0.9, 0.95, 1e-8, 3
    for n in (1, 7 * 33, 65 * 768):
        for wd in (0.1, 0.0):
            w0 = rnd(n, dtype=dt)  # bf16: the master weights start as the bf16 parameter's values
            gs = torch.randn(steps, n) * 0.5  # gradients are fp32 (grad_t) for both storage types
            p = torch.nn.Parameter(w0.clone())
            opt = torch.optim.AdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
            for s in range(steps):
                p.grad = gs[s].clone()
                opt.step()
            st = opt.state[p]
            w.case(f"adamw/{dt}/n{n}_wd{wd:g}", "adamw", dt,
                   {"n": n, "lr": lr, "beta1": b1, "beta2": b2, "eps": eps, "weight_decay": wd, "steps": steps},
                   {"w0": w0, "grads": gs, "param_ref": p.detach(), "exp_avg_ref": st["exp_avg"],
                    "exp_avg_sq_ref": st["exp_avg_sq"]})


GENERATORS = (gen_gelu, gen_swiglu, gen_add, gen_layernorm, gen_rmsnorm, gen_linear, gen_attention, gen_rope,
              gen_embedding, gen_cross_entropy, gen_adamw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory for oracle.json and oracle.bin")
    ap.add_argument("--seed", type=int, default=20240521)
    args = ap.parse_args()
    torch.set_num_threads(1)
    w = Writer()
    for i, gen in enumerate(GENERATORS):
        for j, dt in enumerate(DTYPES):
            torch.manual_seed(args.seed + 100 * i + j)  # each (op, dtype) independent of the others
            gen(w, dt)
    w.write(args.out)
    print(f"oracle.py: torch {torch.__version__}, {len(w.cases)} cases, {w.offset / 1e6:.1f} MB -> {args.out}")


if __name__ == "__main__":
    main()
