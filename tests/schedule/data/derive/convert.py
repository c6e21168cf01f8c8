#!/usr/bin/env python3
"""Run Li & Hoefler's Chimera generator (chimera_pipeline_rank.py, unmodified) and convert
its output to tessera's notation (<global stage><F|B><microbatch>, per rank).

Usage: python3 convert.py <dir holding chimera_pipeline_rank.py> <out.json> <commit>
"""
import copy, importlib.util, json, sys

SRC_DIR, OUT, COMMIT = sys.argv[1], sys.argv[2], sys.argv[3]
spec = importlib.util.spec_from_file_location("chimera_pipeline_rank", f"{SRC_DIR}/chimera_pipeline_rank.py")
cpr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cpr)
A, MyPipeLine = cpr.AutoGeneratePipelineRank, cpr.MyPipeLine

# ---- recording wrapper (does not change behaviour: calls the original and copies its result) ----
_orig_next_pass = MyPipeLine.next_pass
_calls = []  # calls in the current step


def _rec_next_pass(self):
    res = _orig_next_pass(self)
    devs, _pop, dirs, _ud, _sync = res
    _calls.append((self, {k: devs[k] for k in devs}, {k: dirs[k] for k in devs}))
    return res


def run_generator(P, M, fixed=False):
    """Drive the generator exactly as pipeline.py does: AutoGeneratePipelineRank(P, 2, M);
    generate_pipeline(); list(get_schedule(True)).  Returns (consumed, full):
    consumed[step][rank] = the string pipeline.py reads ('' / 'i@down@f' / 'i@up@b' / 'i@..@s'),
    full[step] = list of (rank, pipeline object, 'f'|'b') for every op the generator moved."""
    MyPipeLine.next_pass = _rec_next_pass
    _calls.clear()
    g = A(P, 2, M)
    g.generate_pipeline()
    consumed, full = [], []

    def flush():
        ops = []
        for pl, devs, dirs in _calls:
            for k in devs:
                ops.append((devs[k] % P, pl, 'f' if dirs[k] == 1 else 'b'))
        full.append(ops)
        _calls.clear()

    for sub in g.get_schedule(True):
        consumed.append(list(sub))
        flush()
    flush()  # last step: not yielded by get_schedule (no F/B left in it)
    MyPipeLine.next_pass = _orig_next_pass
    return consumed, full


def to_tessera_from_consumed(P, consumed, world_view=False):
    """Executor semantics of pipeline.py: each entry of row d is one call on the pipeline labelled
    down/up; per (rank, pipeline) forwards take the next microbatch, backwards pop FIFO.
    Generator label 'down' (MyPipeLine up_or_down=True: its stage k on device k) -> tessera down
    pipeline, global stage d; label 'up' (stage P-1-k on device k) -> tessera up pipeline local
    stage P-1-d, global stage P+(P-1-d) = 2P-1-d.
    world_view: main_bert.py calls stage.call_pipeline on its up-pipe stage whose stage_id = P-1-rank,
    so world rank r reads row P-1-r with the roles swapped; gives the same orders when the schedule is
    mirror-symmetric."""
    out = {}
    for r in range(P):
        d = P - 1 - r if world_view else r
        nf, nb, acts = {}, {}, []
        for sub in consumed:
            s = sub[d]
            if s == '':
                continue
            idx, lab, fb = s.split('@')
            if fb == 's':
                continue
            if world_view:
                stage = r if lab == 'up' else 2 * P - 1 - r
            else:
                stage = r if lab == 'down' else 2 * P - 1 - r
            cnt = nf if fb == 'f' else nb
            mb = cnt.get(stage, 0)
            cnt[stage] = mb + 1
            acts.append(f"{stage}{'F' if fb == 'f' else 'B'}{mb}")
        out[str(r)] = acts
    return out


def to_tessera_from_full(P, full):
    """Same conversion from the complete op record (no collisions possible to hide);
    also returns the list of (step, rank) where >1 op of the generator land on one rank."""
    out = {str(r): [] for r in range(P)}
    nf = [dict() for _ in range(P)]
    nb = [dict() for _ in range(P)]
    coll = []
    for t, ops in enumerate(full):
        seen = {}
        for r, pl, fb in ops:
            seen[r] = seen.get(r, 0) + 1
            stage = r if pl.up_or_down else 2 * P - 1 - r
            cnt = nf[r] if fb == 'f' else nb[r]
            mb = cnt.get(stage, 0)
            cnt[stage] = mb + 1
            out[str(r)].append(f"{stage}{'F' if fb == 'f' else 'B'}{mb}")
        coll += [(t, r, n) for r, n in seen.items() if n > 1]
    return out, coll


def counts_ok(P, M, orders):
    for r in range(P):
        for st in (r, 2 * P - 1 - r):
            for k in 'FB':
                got = [a for a in orders[str(r)] if a.startswith(f"{st}{k}")]
                if got != [f"{st}{k}{i}" for i in range(M // 2)]:
                    return False
    return True


# ---- the un-dropped concatenation: one change to get_schedule ----
def run_fixed(P, M):
    """Same generator, but a unit pipeline spawns its successor (same direction, next P/2
    microbatches) only at its FIRST completed microbatch (the stored code spawns one at every
    completed microbatch while the unit is still running, which for P/2 > 2 creates overlapping
    units of one direction). For P = 4 (units of 2) and for M <= 2P this is what the stored code does."""
    src = open(f"{SRC_DIR}/chimera_pipeline_rank.py").read()
    old = "                    if is_pop and pipeline.has_next_pass():"
    new = ("                    if is_pop and not getattr(pipeline, '_spawned', False) and (pipeline.has_next_pass() or P2_FIX_ALLOW_LAST):\n"
           "                        pipeline._spawned = True")
    assert src.count(old) == 1
    src = src.replace(old, new)
    ns = {"P2_FIX_ALLOW_LAST": True}
    exec(compile(src, "chimera_pipeline_rank_fixed.py", "exec"), ns)
    global A, MyPipeLine, _orig_next_pass
    saved = (A, MyPipeLine, _orig_next_pass)
    A, MyPipeLine = ns["AutoGeneratePipelineRank"], ns["MyPipeLine"]
    _orig_next_pass = MyPipeLine.next_pass
    try:
        return run_generator(P, M)
    finally:
        MyPipeLine.next_pass = _orig_next_pass
        A, MyPipeLine, _orig_next_pass = saved


if __name__ == "__main__":
    cases = [(P, M) for P in range(2, 17, 2) for M in (P, 2 * P)] + [(P, 4 * P) for P in (2, 4, 6, 8)]
    result = {}
    report = []
    for P, M in cases:
        consumed, full = run_generator(P, M)
        a = to_tessera_from_consumed(P, consumed)
        b = to_tessera_from_consumed(P, consumed, world_view=True)
        c, coll = to_tessera_from_full(P, full)
        ok = counts_ok(P, M, a)
        fc, ff = run_fixed(P, M)
        fa = to_tessera_from_consumed(P, fc)
        fb_, fcoll = to_tessera_from_full(P, ff)
        fok = counts_ok(P, M, fa)
        report.append(dict(P=P, M=M, stored_complete=ok, stored_collisions=len(coll),
                           mirror_same=(a == b), consumed_eq_full=(a == c),
                           stored_ops_per_rank=[len(a[str(r)]) for r in range(P)],
                           fixed_complete=fok, fixed_collisions=len(fcoll), fixed_eq_stored=(fa == a),
                           fixed_mirror_same=(fa == to_tessera_from_consumed(P, fc, True)), fixed_eq_full=(fa == fb_)))
        result[f"chimera_p{P}_m{M}"] = dict(stored=a, fixed=fa, stored_consumed=consumed)
    json.dump(dict(report=report, result=result), open(OUT, "w"))
    for x in report:
        print(x)
