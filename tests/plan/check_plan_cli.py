#!/usr/bin/env python3
"""tests/plan: tessera_plan's answers — the JSON object, a fully fixed plan, --emit-cpp source that compiles
into a ts::plan, the published table — and its errors on bad input (a message naming it, exit 2).

  check_plan_cli.py TESSERA_PLAN CASE [--cxx CXX --include DIR]
"""
import json
import subprocess
import sys
import tempfile

GPT175 = ["--layers", "96", "--hidden", "12288", "--heads", "96", "--seq", "2048", "--vocab", "51200"]
SMALL = ["--gpu", "host", "--gpus", "4", "--gpus-per-node", "4", "--layers", "4", "--hidden", "128", "--heads", "4",
         "--seq", "64", "--vocab", "256", "--batch", "8", "--precision", "fp32"]


def run(tool, args, code=0):
    p = subprocess.run([tool] + args, capture_output=True, text=True, timeout=600)
    if p.returncode != code:
        sys.exit(f"FAIL: {' '.join(args)}: exit {p.returncode}, expected {code}\n{p.stdout}\n{p.stderr}")
    return p


def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")


def case_json(tool, _):
    out = json.loads(run(tool, ["--gpu", "a100-80g", "--gpus", "1024", "--batch", "1536", "--json"] + GPT175).stdout)
    best = out["best"]
    for key in ("iteration_s", "mfu", "memory_gib_per_gpu", "plan", "bubble_s", "exposed_comm_s", "tokens_per_s"):
        check(key in best, f"best has {key}")
    check(0.3 < best["mfu"] < 0.8, f"MFU of the best 175B plan on 1024 A100s is plausible: {best['mfu']}")
    check(best["memory_gib_per_gpu"] <= 80, "the best plan fits in 80 GB")
    plan = best["plan"]
    check(plan["tp"] * plan["pp"] * plan["dp"] == 1024, "the plan uses all 1024 GPUs")
    check(plan["global_batch"] == 1536, "the plan trains the batch asked for")
    times = [x["iteration_s"] for x in out["top"]]
    check(times == sorted(times) and len(times) == 10, "the top plans are ranked by time")


def case_fixed(tool, _):
    args = ["--gpu", "h100-sxm", "--gpus", "64", "--batch", "256", "--tp", "8", "--pp", "4", "--dp", "2",
            "--microbatch-size", "1", "--schedule", "interleaved", "--chunks", "3", "--zero", "1",
            "--recompute", "selective", "--sequence-parallel", "--json"] + GPT175
    out = json.loads(run(tool, args).stdout)
    check(len(out["top"]) == 1, "all choices fixed: exactly one plan")
    plan = out["best"]["plan"]
    want = {"tp": 8, "pp": 4, "dp": 2, "microbatch_size": 1, "microbatches": 128, "schedule": "interleaved", "chunks": 3,
            "zero": 1, "recompute": "selective", "sequence_parallel": True}
    for k, v in want.items():
        check(plan[k] == v, f"fixed {k} = {v} (got {plan[k]})")


def case_emit_cpp(tool, extra):
    cxx, include = extra[extra.index("--cxx") + 1], extra[extra.index("--include") + 1]
    src = run(tool, SMALL + ["--emit-cpp"]).stdout
    check("using plan = ts::plan<model, ts::mesh<" in src, "--emit-cpp prints a ts::plan type")
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/emitted.cpp"
        with open(path, "w") as f:
            f.write("#include <tessera/train/plan.hpp>\nnamespace ts = tessera;\n" + src +
                    "static_assert(plan::desc.mesh.world() == 4);\nint main() {}\n")
        p = subprocess.run([cxx, "-std=c++20", "-fsyntax-only", "-I", include, path], capture_output=True, text=True)
        check(p.returncode == 0, f"the emitted plan compiles:\n{src}\n{p.stderr[-3000:]}")


def case_published(tool, _):
    out = json.loads(run(tool, ["--published", "--json"]).stdout)
    check(len(out["rows"]) == 19, "19 published rows")
    check(out["worst_abs_error"] <= 0.10 and out["mean_abs_error"] <= 0.05,
          f"published rows: mean {out['mean_abs_error']:.3f}, worst {out['worst_abs_error']:.3f}")


ERRORS = [
    (SMALL[:-2] + ["--tp", "3"], "heads (4) not divisible by tp (3)"),
    (["--gpu", "a100-80g", "--batch", "8"] + GPT175, "--gpus is required"),
    (["--gpu", "b200", "--gpus", "8", "--batch", "8"] + GPT175, "--gpu 'b200' is not one of"),
    (SMALL + ["--schedule", "pipedream"], "unknown --schedule 'pipedream'"),
    ([("6" if a == "4" and i == 3 else a) for i, a in enumerate(SMALL)], "gpus (6) not divisible by gpus-per-node (4)"),
    (["--gpu", "host", "--gpus", "2", "--batch", "8"] + GPT175, "no plan fits in memory: the least any plan needs is"),
    (SMALL + ["--zero", "5"], "--zero must be 0, 1, 2 or 3 (got 5)"),
    (SMALL + ["--host-profile", "/nonexistent/profile.json"], "/nonexistent/profile.json"),
    (SMALL + ["--frobnicate"], "The following argument was not expected: --frobnicate"),
]


def case_errors(tool, _):
    for args, message in ERRORS:
        p = run(tool, args, code=2)
        check(message in p.stderr, f"{' '.join(args)}: stderr names the problem ({message!r}):\n{p.stderr}")
        check(p.stdout == "", f"{' '.join(args)}: nothing on stdout")


if __name__ == "__main__":
    tool, case = sys.argv[1], sys.argv[2]
    globals()["case_" + case](tool, sys.argv[3:])
    print(f"PASS: tessera_plan {case}")
