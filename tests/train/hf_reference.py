#!/usr/bin/env python3
"""Hugging Face weights against an outside reference.

1. Asks the program for its model (the `start` line of --log-json), draws random weights under the HF
   names of contract §3 and writes them as safetensors (fp32, and bf16 for the round trip).
2. Computes the eval loss of those weights with GPT-2 / LLaMA written here in PyTorch from the HF layer
   definitions (GPT2LMHeadModel: Conv1D [in, out], gelu_new, tied head; LlamaForCausalLM: RMSNorm,
   rotate_half RoPE, repeat_kv GQA, SwiGLU), in float64, over the contract's eval batches.
3. Runs the program with --init-from --eval-only on every --plans entry and compares: |d| <= tol * loss.
4. Round trip: --steps 0 --init-from W --export OUT is bitwise identical to W (fp32 and bf16).
"""
import argparse, json, math, os, struct, subprocess, sys, tempfile

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--exe", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--plans", required=True, help="comma-separated PLAN:RANKS")
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--eval-batches", type=int, default=3)
ap.add_argument("--tol", type=float, default=1e-5)
ap.add_argument("--seed", type=int, default=7)
a = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="tessera_hf_")


def run(plan, np_, *args):
    cmd = [a.mpiexec, "-np", str(np_), "--oversubscribe", a.exe, plan, "--data", a.data, "--threads", "1",
           "--quiet", "--batch", str(a.batch)] + list(args)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        sys.exit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")
    return r.stdout


def log_lines(path):
    return [json.loads(l) for l in open(path)]


# ---- safetensors, written and read here (the format: u64 header length, JSON header, raw data) ----------
DT = {torch.float32: ("F32", 4), torch.bfloat16: ("BF16", 2)}


def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        code, size = DT[t.dtype]
        raw = t.contiguous().view(torch.int16 if size == 2 else torch.int32).numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read_raw(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}


# ---- the model the program holds ------------------------------------------------------------------------
cfg_log = os.path.join(tmp, "cfg.json")
run("ref", 1, "--steps", "0", "--log-json", cfg_log)
m = log_lines(cfg_log)[0]["plan"]["model"]
fam, V, T, L, C = m["family"], m["vocab"], m["seq"], m["layers"], m["hidden"]
H, KV, FF = m["heads"], m["kv_heads"], m["ffn"]
D = C // H
eps, theta = m["norm_eps"], m["rope_theta"]
ln, swiglu, rope, tied, bias = m["norm"] == "layernorm", m["mlp"] == "swiglu", m["position"] == "rope", \
    m["tied_embeddings"], m["bias"]

g = torch.Generator().manual_seed(a.seed)


def rnd(*shape, sd=0.02, mean=0.0):
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * sd + mean).float()


w = {}
if fam == "gpt":
    w["transformer.wte.weight"] = rnd(V, C, sd=0.1)
    if not rope:
        w["transformer.wpe.weight"] = rnd(T, C, sd=0.05)
    for i in range(L):
        p = f"transformer.h.{i}."
        w[p + "ln_1.weight"] = rnd(C, sd=0.1, mean=1.0)
        if ln: w[p + "ln_1.bias"] = rnd(C, sd=0.05)
        w[p + "attn.c_attn.weight"] = rnd(C, (H + 2 * KV) * D, sd=0.08)
        if bias: w[p + "attn.c_attn.bias"] = rnd((H + 2 * KV) * D, sd=0.05)
        w[p + "attn.c_proj.weight"] = rnd(H * D, C, sd=0.05)
        if bias: w[p + "attn.c_proj.bias"] = rnd(C, sd=0.02)
        w[p + "ln_2.weight"] = rnd(C, sd=0.1, mean=1.0)
        if ln: w[p + "ln_2.bias"] = rnd(C, sd=0.05)
        w[p + "mlp.c_fc.weight"] = rnd(C, (2 if swiglu else 1) * FF, sd=0.08)
        if bias: w[p + "mlp.c_fc.bias"] = rnd((2 if swiglu else 1) * FF, sd=0.05)
        w[p + "mlp.c_proj.weight"] = rnd(FF, C, sd=0.05)
        if bias: w[p + "mlp.c_proj.bias"] = rnd(C, sd=0.02)
    w["transformer.ln_f.weight"] = rnd(C, sd=0.1, mean=1.0)
    if ln: w["transformer.ln_f.bias"] = rnd(C, sd=0.05)
    if not tied: w["lm_head.weight"] = rnd(V, C, sd=0.1)
else:
    w["model.embed_tokens.weight"] = rnd(V, C, sd=0.1)
    for i in range(L):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = rnd(C, sd=0.1, mean=1.0)
        w[p + "self_attn.q_proj.weight"] = rnd(H * D, C, sd=0.08)
        w[p + "self_attn.k_proj.weight"] = rnd(KV * D, C, sd=0.08)
        w[p + "self_attn.v_proj.weight"] = rnd(KV * D, C, sd=0.08)
        w[p + "self_attn.o_proj.weight"] = rnd(C, H * D, sd=0.05)
        w[p + "post_attention_layernorm.weight"] = rnd(C, sd=0.1, mean=1.0)
        w[p + "mlp.gate_proj.weight"] = rnd(FF, C, sd=0.08)
        w[p + "mlp.up_proj.weight"] = rnd(FF, C, sd=0.08)
        w[p + "mlp.down_proj.weight"] = rnd(C, FF, sd=0.05)
    w["model.norm.weight"] = rnd(C, sd=0.1, mean=1.0)
    w["lm_head.weight"] = rnd(V, C, sd=0.1)
    assert not bias and not ln and swiglu and rope, "the reference LLaMA is the HF one: no bias, RMSNorm, SwiGLU, RoPE"

w32 = os.path.join(tmp, "weights_f32.safetensors")
st_write(w32, w)

# ---- the reference forward, float64 --------------------------------------------------------------------
W = {k: v.double() for k, v in w.items()}


def norm(x, weight, b):
    if ln:
        return F.layer_norm(x, (C,), weight, b, eps)
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def attention(q, k, v):  # q [B,H,T,D], k/v [B,KV,T,D]
    Tn = q.shape[2]
    if rope:
        inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
        freqs = torch.outer(torch.arange(Tn, dtype=torch.float64), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
    rep = H // KV
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    s = s.masked_fill(torch.triu(torch.ones(Tn, Tn, dtype=torch.bool), 1), float("-inf"))
    return torch.softmax(s, -1) @ v


def heads(x, n):
    Bn, Tn, _ = x.shape
    return x.view(Bn, Tn, n, D).transpose(1, 2)


def merge(x):
    Bn, _, Tn, _ = x.shape
    return x.transpose(1, 2).reshape(Bn, Tn, H * D)


def forward(idx, tgt):
    Bn, Tn = idx.shape
    if fam == "gpt":
        x = W["transformer.wte.weight"][idx]
        if not rope: x = x + W["transformer.wpe.weight"][:Tn]
        for i in range(L):
            p = f"transformer.h.{i}."
            h = norm(x, W[p + "ln_1.weight"], W.get(p + "ln_1.bias"))
            qkv = h @ W[p + "attn.c_attn.weight"] + (W[p + "attn.c_attn.bias"] if bias else 0)
            q, k, v = qkv.split([H * D, KV * D, KV * D], -1)
            att = merge(attention(heads(q, H), heads(k, KV), heads(v, KV)))
            x = x + att @ W[p + "attn.c_proj.weight"] + (W[p + "attn.c_proj.bias"] if bias else 0)
            h = norm(x, W[p + "ln_2.weight"], W.get(p + "ln_2.bias"))
            u = h @ W[p + "mlp.c_fc.weight"] + (W[p + "mlp.c_fc.bias"] if bias else 0)
            if swiglu:
                gt, up = u.split([FF, FF], -1)
                u = F.silu(gt) * up
            else:
                u = F.gelu(u, approximate="tanh")
            x = x + u @ W[p + "mlp.c_proj.weight"] + (W[p + "mlp.c_proj.bias"] if bias else 0)
        x = norm(x, W["transformer.ln_f.weight"], W.get("transformer.ln_f.bias"))
        head = W["transformer.wte.weight"] if tied else W["lm_head.weight"]
    else:
        x = W["model.embed_tokens.weight"][idx]
        for i in range(L):
            p = f"model.layers.{i}."
            h = norm(x, W[p + "input_layernorm.weight"], None)
            q, k, v = (h @ W[p + f"self_attn.{n}_proj.weight"].T for n in "qkv")
            x = x + merge(attention(heads(q, H), heads(k, KV), heads(v, KV))) @ W[p + "self_attn.o_proj.weight"].T
            h = norm(x, W[p + "post_attention_layernorm.weight"], None)
            x = x + (F.silu(h @ W[p + "mlp.gate_proj.weight"].T) * (h @ W[p + "mlp.up_proj.weight"].T)) \
                @ W[p + "mlp.down_proj.weight"].T
        x = norm(x, W["model.norm.weight"], None)
        head = W["lm_head.weight"]
    logits = x @ head.T
    return F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1))


tokens = torch.tensor(list(open(a.data, "rb").read()), dtype=torch.long)
nwin = (len(tokens) - 1) // T
losses = []
with torch.no_grad():
    for k in range(a.eval_batches):
        wins = [(k * a.batch + i) % nwin for i in range(a.batch)]
        idx = torch.stack([tokens[s * T: s * T + T] for s in wins])
        tgt = torch.stack([tokens[s * T + 1: s * T + T + 1] for s in wins])
        losses.append(forward(idx, tgt).item())
ref = sum(losses) / len(losses)
print(f"{fam}: PyTorch (float64, HF layer definitions) eval loss over {a.eval_batches} batches of {a.batch}: {ref:.9f}")

bad = []
for spec in a.plans.split(","):
    plan, np_ = spec.split(":")
    log = os.path.join(tmp, f"eval_{plan}.json")
    out = run(plan, int(np_), "--init-from", w32, "--eval-only", "--eval-batches", str(a.eval_batches),
              "--log-json", log)
    got = [j for j in log_lines(log) if j.get("event") == "eval"][0]["eval_loss"]
    if f"eval_loss" not in out:
        bad.append(f"{plan}: no 'eval_loss' line on stdout")
    rel = abs(got - ref) / ref
    print(f"{plan} on {np_} ranks: tessera eval loss {got:.9f}, relative difference {rel:.2e} (tolerance {a.tol:g})")
    if rel > a.tol:
        bad.append(f"{plan}: eval loss {got:.9f} vs PyTorch {ref:.9f}")

# ---- import then export: bitwise identical ---------------------------------------------------------------
wb = os.path.join(tmp, "weights_bf16.safetensors")
st_write(wb, {k: v.to(torch.bfloat16) for k, v in w.items()})
for spec in a.plans.split(","):
    plan, np_ = spec.split(":")
    for src, dt in ((w32, "f32"), (wb, "bf16")):
        out_path = os.path.join(tmp, f"export_{plan}_{dt}.safetensors")
        run(plan, int(np_), "--steps", "0", "--init-from", src, "--export", out_path, "--export-dtype", dt)
        x, y = st_read_raw(src), st_read_raw(out_path)
        if set(x) != set(y):
            bad.append(f"{plan} {dt} export: names differ: {sorted(set(x) ^ set(y))[:5]}")
            continue
        diff = [k for k in x if x[k] != y[k]]
        print(f"{plan} on {np_} ranks: {dt} import -> export of {len(x)} tensors: "
              f"{'bitwise identical' if not diff else str(len(diff)) + ' differ'}")
        if diff:
            bad.append(f"{plan} {dt} export differs from the import: {diff[:5]}")

# ---- bad files: a clear error naming the file (and tensor), exit code 2, the file left as it was ----------
def expect_error(path, *needles):
    before = open(path, "rb").read()
    cmd = [a.mpiexec, "-np", "1", "--oversubscribe", a.exe, "ref", "--data", a.data, "--threads", "1", "--quiet",
           "--eval-only", "--eval-batches", "1", "--init-from", path]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ok = r.returncode == 2 and all(n in r.stdout for n in needles) and open(path, "rb").read() == before
    msg = [l for l in r.stdout.splitlines() if "tessera:" in l][:1]
    print(f"bad file {os.path.basename(path)}: exit {r.returncode}, message: {msg}")
    if not ok:
        bad.append(f"{path}: expected exit 2 naming {needles}, got {r.returncode}: {r.stdout.strip()[-300:]}")


raw = open(w32, "rb").read()
trunc = os.path.join(tmp, "truncated.safetensors")
open(trunc, "wb").write(raw[: len(raw) - 100])
expect_error(trunc, trunc, "truncated")
first = next(iter(w))
missing = os.path.join(tmp, "missing.safetensors")
st_write(missing, {k: v for k, v in w.items() if k != first})
expect_error(missing, missing, first)
wrong = os.path.join(tmp, "wrong_shape.safetensors")
st_write(wrong, {k: (v[:-1] if k == first else v) for k, v in w.items()})
expect_error(wrong, wrong, first, "shape")

if bad:
    print("\n".join(bad))
    sys.exit("FAIL: Hugging Face weights")
print("PASS")
