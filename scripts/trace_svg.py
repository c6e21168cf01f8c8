#!/usr/bin/env python3
"""scripts/trace_svg.py TRACE.json OUT.svg — one traced step (`--trace`) as a picture for the docs.

A row pair per rank: its pipeline actions (forward blue, backward green, weight-gradient teal; the label
is the action) and, below, its communication — dp bucket reductions orange, everything else (tp
collectives, pipeline sends and receives) grey. On a device trace, the device's compute and
communication streams replace the host's rows. Times are the trace's: microseconds from the barrier that
starts the step on each rank. Open the JSON itself in ui.perfetto.dev for the operators.
"""
import collections, json, re, sys

if len(sys.argv) != 3:
    sys.exit("usage: scripts/trace_svg.py TRACE.json OUT.svg")
doc = json.load(open(sys.argv[1]))
events = doc["traceEvents"]
names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
tracks = collections.defaultdict(lambda: collections.defaultdict(list))
for e in events:
    if e["ph"] == "X":
        tracks[e["pid"]][e["tid"]].append(e)
device = any(3 in t for t in tracks.values())
rows = (3, 4) if device else (2, 1)  # (work, communication)
t_end = max(e["ts"] + e["dur"] for t in tracks.values() for tid in rows for e in t[tid]) or 1.0
width, left, row_h, gap = 1100, 150, 16, 10
scale = (width - left - 10) / t_end
ranks = sorted(tracks)
height = 40 + len(ranks) * (2 * row_h + gap) + 30


def colour(e, tid):
    n = e["name"]
    if tid in (1, 4):
        return "#f28e2b" if "on dp" in n else "#9d9d9d"
    kind = (re.fullmatch(r"\d+([FBIW])\d+", n) or [None, "B" if "OVERLAP" in n else ""])[1]
    return {"F": "#4e79a7", "B": "#59a14f", "I": "#59a14f", "W": "#76b7b2"}.get(kind, "#bab0ac" if tid == 2 else "#4e79a7")


out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="10">',
       f'<text x="{left}" y="16" font-size="12">step {doc.get("otherData", {}).get("step", "?")}: '
       f'{"device streams" if device else "pipeline actions"} (upper row) and communication (lower row; dp bucket '
       f'reductions orange) per rank, 0–{t_end / 1e3:.1f} ms</text>']
y = 30
for r in ranks:
    out.append(f'<text x="4" y="{y + row_h + 4}">{names.get(r, f"rank {r}")[:26]}</text>')
    for i, tid in enumerate(rows):
        for e in sorted(tracks[r][tid], key=lambda e: e["dur"], reverse=True):
            x, w = left + e["ts"] * scale, max(e["dur"] * scale, 0.5)
            yy = y + i * row_h
            out.append(f'<rect x="{x:.1f}" y="{yy}" width="{w:.1f}" height="{row_h - 2}" fill="{colour(e, tid)}" '
                       f'fill-opacity="{0.55 if tid in (1, 4) else 0.9}"><title>{e["name"]}: {e["dur"] / 1e3:.2f} ms</title></rect>')
            if tid == 2 and w > 14:
                out.append(f'<text x="{x + 2:.1f}" y="{yy + row_h - 5}" fill="white" font-size="8">{e["name"][:6]}</text>')
    y += 2 * row_h + gap
for k in range(0, 11):  # time axis
    t = t_end * k / 10
    out.append(f'<text x="{left + t * scale:.1f}" y="{y + 12}" text-anchor="middle">{t / 1e3:.0f}</text>')
out.append(f'<text x="{width - 10}" y="{y + 24}" text-anchor="end">ms</text></svg>')
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print(f"{sys.argv[2]}: {len(ranks)} ranks, {t_end / 1e3:.1f} ms")
