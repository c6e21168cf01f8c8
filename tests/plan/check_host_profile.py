#!/usr/bin/env python3
"""check_host_profile.py --ranks R -- CMD...: runs tessera_calibrate (CMD holds --out FILE) and passes when it
exits 0, prints its table, and FILE is a complete host profile of R ranks with plausible numbers (no
temporary file left beside it)."""
import argparse, glob, json, os, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--ranks", type=int, required=True)
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = [x for x in a.cmd if x != "--"]
out = cmd[cmd.index("--out") + 1]
if os.path.exists(out):
    os.remove(out)
r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print(r.stdout)
if r.returncode != 0:
    sys.exit(f"FAIL: exit code {r.returncode}")
if "GEMM fp32 best" not in r.stdout or f"wrote {out}" not in r.stdout:
    sys.exit("FAIL: no table printed")
if glob.glob(out + ".tmp*"):
    sys.exit(f"FAIL: temporary files left: {glob.glob(out + '.tmp*')}")
p = json.load(open(out))

def need(cond, what):
    if not cond:
        sys.exit(f"FAIL: {out}: {what}")

need(p.get("format") == "tessera-host-profile" and p.get("version") == 1, "format/version")
need(p["ranks_measured"] == a.ranks and p["threads"] >= 1 and p["cpu"], "ranks_measured/threads/cpu")
g = p["gemm"]
shapes = {(x["m"], x["n"], x["k"]) for x in g}
axes = [sorted({s[i] for s in shapes}) for i in range(3)]
need(len(shapes) == len(g) == len(axes[0]) * len(axes[1]) * len(axes[2]), "gemm is not a full grid")
need(all(1e6 < x["flops_per_s"] < 1e14 for x in g), "a GEMM rate outside 1 MFLOP/s .. 100 TFLOP/s")
best = max(x["flops_per_s"] for x in g)
d = p["device"]
need(d["name"].startswith("host ("), "device.name")
need(abs(d["peak_fp32"] - best / 0.9) <= 1e-9 * best and d["peak_bf16"] == d["peak_fp32"], "peak = best / 0.9")
need(1e8 < d["memory_bw"] < 1e13 and 1e8 < p["elementwise_bytes_per_s"] < 1e14, "memory rates")
need(d["memory_bytes"] > 0 and d["reserved_bytes"] == 256 * 2**20, "memory_bytes/reserved_bytes")
need(1 <= d["gemm_half_size"] <= max(axes[0]), "gemm_half_size")
for k in ("allreduce", "p2p"):
    if a.ranks >= 2:
        need(0 <= p[k]["alpha_s"] < 0.1 and 0 < p[k]["beta_s_per_byte"] < 1e-6, f"{k} fit")
    else:
        need(p[k]["alpha_s"] == 0 and p[k]["beta_s_per_byte"] == 0, f"{k}: 1 rank, expected zeros")
if a.ranks >= 2:
    need(abs(d["intra_bw"] * p["allreduce"]["beta_s_per_byte"] - 2 * (a.ranks - 1) / a.ranks) < 1e-9, "intra_bw")
print(f"PASS: {len(g)} GEMM shapes, best {best / 1e9:.2f} GFLOP/s, memory {d['memory_bw'] / 1e9:.2f} GB/s")
