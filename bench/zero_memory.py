#!/usr/bin/env python3
"""Peak resident memory per rank for ZeRO 0..3 on dp8 (bench_zero_memory), next to the ZeRO formula.

Each stage trains --steps steps on 8 ranks; the log gives the rank's state bytes (parameters, gradients,
moments held between steps), the formula's prediction, and the peak resident set size of the largest rank
since training started (VmHWM, reset after set-up). Resident memory also holds the activations, a ZeRO-3
unit being gathered, MPI's buffers and the program itself, so it falls by the state saved, not to it."""
import argparse, json, os, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--exe", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--mpiexec", default="mpirun")
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--markdown")
a = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="tessera_zero_")
rows = []
for z in range(4):
    log = os.path.join(tmp, f"z{z}.json")
    cmd = [a.mpiexec, "-np", "8", "--oversubscribe", a.exe, str(z), "--data", a.data, "--steps", str(a.steps),
           "--batch", "8", "--threads", "1", "--quiet", "--log-json", log]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}")
    lines = [json.loads(l) for l in open(log)]
    start, last = lines[0], [l for l in lines if "step" in l and "event" not in l][-1]
    n = start["params"]
    formula = [16, 8 + 8 / 8, 4 + 12 / 8, 16 / 8][z] * n
    rows.append((z, n, start["state_bytes_per_rank"], formula, last["peak_rss_bytes"], last["loss"], last["step_ms"]))
base_rss = rows[0][4]
out = ["| ZeRO | state bytes / rank (logged) | ZeRO formula | peak RSS / rank | RSS saved vs ZeRO-0 | state saved vs ZeRO-0 | loss after %d steps |" % a.steps,
       "|---:|---:|---:|---:|---:|---:|---:|"]
MB = 1e6
for z, n, st, f, rss, loss, ms in rows:
    out.append(f"| {z} | {st / MB:.1f} MB ({st / n:.2f} B/param) | {f / MB:.1f} MB | {rss / MB:.1f} MB | "
               f"{(base_rss - rss) / MB:.1f} MB | {(rows[0][2] - st) / MB:.1f} MB | {loss:.6f} |")
text = f"dp8, {rows[0][1] / 1e6:.1f} M parameters (fp32, AdamW), 8 ranks on this machine:\n\n" + "\n".join(out)
print(text)
if a.markdown:
    open(a.markdown, "w").write(text + "\n")
