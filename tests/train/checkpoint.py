#!/usr/bin/env python3
"""Checkpoints (contract §3): exact resume, resharding across layouts, damaged checkpoints.

  exact     run PLAN uninterrupted for --steps; then again, stopped at --stop (saving every --every steps),
            and resumed: every loss and grad_norm after the resume is bitwise equal to the uninterrupted run's.
  reshard   from the checkpoint of BASE (step --stop), each of --to PLAN:NP resumes without training and saves
            a copy under its own layout: every global tensor (parameters, both AdamW moments) assembled from
            the copy is bitwise equal to the one assembled from the original. Then it resumes and trains to
            --steps: losses within --tol of BASE's uninterrupted run.
  kill      PLAN saving every step is killed (SIGKILL to the whole job) once --stop checkpoints exist, at
            whatever point it is — mid-step or mid-save; resumed, it continues from the newest complete
            checkpoint and every later loss is bitwise equal to the uninterrupted run's.
  damaged   a truncated shard, a flipped byte, a missing shard, a damaged manifest, manifests with one field
            of the wrong type, rank or size (a non-boolean shuffle, no zero, slice starts and shapes that are
            empty, too short, beyond 2^64 or wrap around), no complete checkpoint, another model: each exits 2 with a message naming the file (or field), and no file changes; a
            newest step without a manifest (an interrupted save) is skipped for the one before it.

Every manifest's CRC-32s are also checked here with Python's zlib (an independent implementation)."""
import argparse, glob, hashlib, json, os, shutil, signal, struct, subprocess, sys, time, zlib

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--exe", required=True)
ap.add_argument("--other-exe", help="a program of another model (for the wrong-model case)")
ap.add_argument("--mode", choices=["exact", "kill", "reshard", "damaged"], required=True)
ap.add_argument("--plan", required=True, help="PLAN:NP")
ap.add_argument("--to", default="", help="PLAN:NP,... (reshard)")
ap.add_argument("--work", required=True)
ap.add_argument("--steps", type=int, default=12)
ap.add_argument("--stop", type=int, default=6)
ap.add_argument("--every", type=int, default=4)
ap.add_argument("--tol", type=float, default=1e-5)
ap.add_argument("train_args", nargs=argparse.REMAINDER)
a = ap.parse_args()
targs = [x for x in a.train_args if x != "--"]
shutil.rmtree(a.work, ignore_errors=True)
os.makedirs(a.work)
failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def run(spec, *flags, expect=0, exe=None):
    plan, np_ = spec.split(":")
    cmd = [a.mpiexec, "-np", np_, "--oversubscribe", exe or a.exe, plan, "--quiet"] + targs + \
          ["--steps", str(a.steps)] + [str(f) for f in flags]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != expect:
        print(r.stdout[-3000:])
        sys.exit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}, expected {expect}")
    return r.stdout


def steps(path):
    out = {}
    for j in map(json.loads, open(path)):
        if "step" in j and "event" not in j:
            out[j["step"]] = j
    return out


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        assert v["dtype"] == "F32", v
        out[k] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").reshape(v["shape"])
    return out


def assemble(step_dir):
    """Every (tensor, kind) of a checkpoint as one global array; CRC-32s checked with zlib."""
    man = json.load(open(os.path.join(step_dir, "manifest.json")))
    for f, info in man["files"].items():
        data = open(os.path.join(step_dir, f), "rb").read()
        if len(data) != info["bytes"] or zlib.crc32(data) != info["crc32"]:
            fail(f"{step_dir}/{f}: size/CRC-32 differ from the manifest (zlib)")
    files = {f: read_safetensors(os.path.join(step_dir, f)) for f in man["files"]}
    out = {}
    for name, t in man["tensors"].items():
        for kind in ("param", "exp_avg", "exp_avg_sq"):
            arr = np.full(t["shape"], np.nan, dtype=np.float32)
            for s in t["slices"]:
                if s["kind"] != kind:
                    continue
                r, c = s["start"]
                h, w = s["shape"]
                arr[r:r + h, c:c + w] = files[s["file"]][s["key"]]
            if np.isnan(arr).any():
                fail(f"{step_dir}: {name} ({kind}) not covered by its slices")
            out[(name, kind)] = arr
    return man, out


def snapshot(root):
    return {p: hashlib.sha256(open(p, "rb").read()).hexdigest()
            for p in glob.glob(os.path.join(root, "**"), recursive=True) if os.path.isfile(p)}


if a.mode == "exact":
    ref_log, log = os.path.join(a.work, "whole.json"), os.path.join(a.work, "parts.json")
    run(a.plan, "--log-json", ref_log)
    ck = os.path.join(a.work, "ck")
    run(a.plan, "--log-json", log, "--save", ck, "--save-every", a.every, "--stop-after", a.stop)
    have = sorted(os.listdir(ck))
    want = sorted({f"step_{k:08d}" for k in range(a.every, a.stop + 1, a.every)} | {f"step_{a.stop:08d}"})
    if have != want:
        fail(f"checkpoints {have}, expected {want}")
    run(a.plan, "--log-json", log, "--resume", ck)
    whole, parts = steps(ref_log), steps(log)
    if sorted(whole) != sorted(parts):
        fail(f"steps {sorted(parts)} logged across stop and resume, uninterrupted {sorted(whole)}")
    diff = [k for k in whole if k in parts and any(whole[k][x] != parts[k][x] for x in ("loss", "grad_norm"))]
    if diff:
        k = diff[0]
        fail(f"step {k}: loss {parts[k]['loss']!r} after resume vs {whole[k]['loss']!r} uninterrupted")
    print(f"{a.plan}: stopped at step {a.stop}, resumed: {len(whole)} steps, losses and grad norms bitwise equal "
          f"({len(whole) - len(diff)}/{len(whole)}); final loss {whole[max(whole)]['loss']:.6f}")

elif a.mode == "kill":
    ref_log, log = os.path.join(a.work, "whole.json"), os.path.join(a.work, "parts.json")
    run(a.plan, "--log-json", ref_log)
    ck = os.path.join(a.work, "ck")
    plan, np_ = a.plan.split(":")
    cmd = [a.mpiexec, "-np", np_, "--oversubscribe", a.exe, plan, "--quiet"] + targs + \
          ["--steps", str(a.steps), "--save", ck, "--save-every", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if os.path.isdir(ck) and len([d for d in os.listdir(ck) if d.startswith("step_")]) >= a.stop:
            break
        time.sleep(0.005)
    if p.poll() is not None:
        sys.exit(f"FAIL: the run ended (exit {p.returncode}) before it could be killed; use more --steps")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(0.5)
    done = sorted(d for d in os.listdir(ck) if d.startswith("step_"))
    tmp = sorted(d for d in os.listdir(ck) if d.startswith("."))
    run(a.plan, "--log-json", log, "--resume", ck)
    whole, parts = steps(ref_log), steps(log)
    first = min(parts)
    if first < a.stop or max(parts) != a.steps - 1:
        fail(f"resumed at step {first} (checkpoints {done}), logged up to {max(parts)}")
    diff = [k for k in parts if any(whole[k][x] != parts[k][x] for x in ("loss", "grad_norm"))]
    if diff:
        fail(f"step {diff[0]}: loss {parts[diff[0]]['loss']!r} after the kill vs {whole[diff[0]]['loss']!r}")
    print(f"{a.plan}: killed with {len(done)} checkpoints on disk{' and an interrupted save ' + str(tmp) if tmp else ''}; "
          f"resumed at step {first}: steps {first}..{max(parts)} bitwise equal to the uninterrupted run")

elif a.mode == "reshard":
    base_log = os.path.join(a.work, "base.json")
    ck = os.path.join(a.work, "ck")
    run(a.plan, "--log-json", base_log)
    run(a.plan, "--save", ck, "--stop-after", a.stop)
    src = os.path.join(ck, f"step_{a.stop:08d}")
    man0, t0 = assemble(src)
    base = steps(base_log)
    for spec in a.to.split(","):
        plan = spec.split(":")[0]
        copy = os.path.join(a.work, "copy_" + plan)
        run(spec, "--resume", ck, "--save", copy, "--stop-after", a.stop)  # no step: a resharded copy
        man1, t1 = assemble(os.path.join(copy, f"step_{a.stop:08d}"))
        if man1["plan"]["mesh"] == man0["plan"]["mesh"] and man1["plan"]["zero"] == man0["plan"]["zero"]:
            fail(f"{plan}: same layout as the base, not a resharding test")
        unequal = [f"{n} ({k})" for (n, k), v in t0.items() if not np.array_equal(v, t1[(n, k)])]
        if unequal or set(t0) != set(t1):
            fail(f"{plan}: tensors differ from the original checkpoint: {unequal[:5]}")
        log = os.path.join(a.work, plan + ".json")
        run(spec, "--resume", ck, "--log-json", log)
        got = steps(log)
        worst = 0.0
        for k, g in got.items():
            rel = abs(g["loss"] - base[k]["loss"]) / abs(base[k]["loss"])
            worst = max(worst, rel)
        if sorted(got) != list(range(a.stop, a.steps)) or worst > a.tol:
            fail(f"{plan}: steps {sorted(got)}, worst relative loss difference {worst:.2e} (tolerance {a.tol:g})")
        print(f"{a.plan} step {a.stop} -> {spec} (mesh {man1['plan']['mesh']}, zero {man1['plan']['zero']}, "
              f"{man1['plan']['schedule']['kind']}): {len(t0)} tensors bitwise equal, {len(man1['files'])} shard files; "
              f"steps {a.stop}..{a.steps - 1} worst |dloss|/loss {worst:.2e}")

else:  # damaged
    ck = os.path.join(a.work, "ck")
    log_whole = os.path.join(a.work, "whole.json")
    run(a.plan, "--log-json", log_whole, "--save", ck, "--save-every", a.every, "--stop-after", 2 * a.every)
    newest = os.path.join(ck, f"step_{2 * a.every:08d}")
    shard = sorted(glob.glob(os.path.join(newest, "shard_*.safetensors")))[0]

    def expect_error(what, pattern, root=ck, exe=None):
        before = snapshot(root)
        out = run(a.plan, "--resume", root, expect=2, exe=exe)
        if pattern not in out:
            fail(f"{what}: message {out.strip()[-300:]!r} does not contain {pattern!r}")
        if snapshot(root) != before:
            fail(f"{what}: files changed")
        print(f"{what}: exit 2, {pattern!r} named")

    good = open(shard, "rb").read()
    with open(shard, "wb") as f:
        f.write(good[:len(good) // 2])
    expect_error("truncated shard", f"{shard} has {len(good) // 2} bytes, the manifest says {len(good)}")
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    with open(shard, "wb") as f:
        f.write(flipped)
    expect_error("flipped byte", f"checkpoint file {shard} is damaged: CRC-32")
    os.remove(shard)
    expect_error("missing shard", f"checkpoint file {shard} is missing")
    with open(shard, "wb") as f:
        f.write(good)
    man = os.path.join(newest, "manifest.json")
    text = open(man).read()
    with open(man, "w") as f:
        f.write(text[:len(text) // 2])
    expect_error("damaged manifest", f"checkpoint {man} is damaged: not valid JSON")
    with open(man, "w") as f:
        f.write(text)

    # manifests with one field damaged: each named with its path and value, never a crash or garbage
    def with_manifest(what, edit, pattern):
        m = json.loads(text)
        edit(m)
        with open(man, "w") as f:
            f.write(json.dumps(m, indent=1))
        expect_error(what, pattern)
        with open(man, "w") as f:
            f.write(text)

    at = f"checkpoint {man}: "
    t0 = next(iter(json.loads(text)["tensors"]))
    slice0 = lambda m: m["tensors"][t0]["slices"][0]
    with_manifest("data.shuffle not a boolean", lambda m: m["data"].__setitem__("shuffle", "yes"),
                  at + 'data.shuffle is "yes", expected true or false')
    with_manifest("plan without zero", lambda m: m["plan"].pop("zero"), at + "plan.zero is missing")
    with_manifest("slice start []", lambda m: slice0(m).__setitem__("start", []),
                  at + f"tensors.{t0}.slices[0].start is [], expected 2 integers")
    with_manifest("slice shape [32]", lambda m: slice0(m).__setitem__("shape", [32]),
                  at + f"tensors.{t0}.slices[0].shape is [32], expected 2 integers")
    with_manifest("slice start [2^64-1]", lambda m: slice0(m).__setitem__("start", [2**64 - 1]),
                  at + f"tensors.{t0}.slices[0].start is [18446744073709551615], expected 2 integers")
    with_manifest("slice start [2^64-1, 0]", lambda m: slice0(m).__setitem__("start", [2**64 - 1, 0]),
                  at + f"tensors.{t0}.slices[0].start[0] is 18446744073709551615, expected an integer in [0, ")
    with_manifest("slice shape wraps", lambda m: slice0(m).__setitem__("shape", [2**62 + 8, 256]),
                  at + f"tensors.{t0}.slices[0] (start ")
    with_manifest("tensor shape wraps", lambda m: m["tensors"][t0].__setitem__("shape", [2**62, 4]),
                  at + f"tensors.{t0}.shape is [4611686018427387904,4]: its size overflows 64 bits")
    if a.other_exe:
        expect_error("another model", "holds a different model", exe=a.other_exe)
    # an interrupted save: the newest step has no manifest; a leftover .tmp directory -> the step before it
    os.remove(man)
    os.makedirs(os.path.join(ck, f".step_{3 * a.every:08d}.tmp"))
    log = os.path.join(a.work, "after.json")
    out = run(a.plan, "--resume", ck, "--log-json", log, "--stop-after", 2 * a.every)
    if "no manifest.json" not in out:
        fail("the step without a manifest was not reported")
    got, whole = steps(log), steps(log_whole)
    if sorted(got) != list(range(a.every, 2 * a.every)) or any(got[k]["loss"] != whole[k]["loss"] for k in got):
        fail(f"resume from step {a.every} after skipping the incomplete step: steps {sorted(got)}")
    else:
        print(f"step without manifest skipped (reported); resumed from step {a.every}, losses bitwise equal")
    only = os.path.join(a.work, "only_incomplete")
    os.makedirs(os.path.join(only, "step_00000003"))
    expect_error("no complete checkpoint", "no complete checkpoint", root=only)
    expect_error("no such directory", "no such directory", root=os.path.join(a.work, "nope"))

if failures:
    sys.exit(f"FAIL: {len(failures)} problem(s)")
print("PASS")
