"""The project's performance targets, checked against one run's medians.

At (8,64,64,64) x2 float32: ours >= 2x faster than torch, >= 10x faster than mlx.nn for
linear and cubic and not slower for nearest, forward within 2x of memcpy. In every case:
no slower than torch, no call allocating more than its result, no call growing resident
memory by more than its result (plus RSS_SLACK_MB).
"""

import numpy as np

from cases import MB, case_label

TARGET_CASE = ([8, 64, 64, 64], 2.0, "float32")
# Resident growth allowed on top of a call's result: thread stacks, per-thread buffers.
RSS_SLACK_MB = 4


def result_mb(row):
    """MB of the array a pass returns: the output (forward) or the input gradient."""
    shape = row["out_shape"] if row["pass"] == "fwd" else row["shape"]
    return np.prod(shape) * np.dtype(row["dtype"]).itemsize / MB


def verdict(ok):
    return "ok  " if ok else "MISS"


def headline_lines(rows):
    """The targets at TARGET_CASE: against torch, mlx.nn and memcpy, per mode and pass."""
    lines = []
    for r in rows:
        if (r["shape"], r["scale"], r["dtype"]) != TARGET_CASE or "+" in r["mode"]:
            continue
        label = f"{r['mode']} {r['pass']}"
        vs_torch, vs_mlx = r["speedup_vs_torch"], r["speedup_vs_mlx"]
        if vs_torch is not None:
            bound = (f" (torch/fill {r['torch_over_fill']:.2f}x: the most any forward can reach)"
                     if r["torch_over_fill"] is not None else "")
            lines.append(f"{verdict(vs_torch >= 2)} {label}: torch/ours {vs_torch:.2f}x, "
                         f"target >= 2x{bound}")
        need = 1 if r["mode"] == "nearest" else 10
        if vs_mlx is not None:
            lines.append(f"{verdict(vs_mlx >= need)} {label}: mlx/ours {vs_mlx:.1f}x, "
                         f"target >= {need}x")
        if r["pass"] == "fwd" and r["ours_over_memcpy"] is not None:
            lines.append(f"{verdict(r['ours_over_memcpy'] <= 2)} {label}: "
                         f"ours/memcpy {r['ours_over_memcpy']:.2f}x, target <= 2x")
    return lines


def target_lines(rows):
    """The performance targets of the project, checked against this run's medians."""
    lines = headline_lines(rows)
    slower = [r for r in rows if r["speedup_vs_torch"] is not None and r["speedup_vs_torch"] < 1]
    lines.append(f"{verdict(not slower)} slower than torch in {len(slower)} of "
                 f"{sum(r['speedup_vs_torch'] is not None for r in rows)} cases"
                 + "".join(f"\n       {case_label(r)} {r['mode']} {r['dtype']} {r['pass']}: "
                           f"{r['speedup_vs_torch']:.2f}x" for r in slower))
    over = [r for r in rows if r["peak_mb"]["ours"] is not None
            and r["peak_mb"]["ours"] > result_mb(r) * 1.01]
    lines.append(f"{verdict(not over)} ours allocates more than its result in {len(over)} "
                 f"of {len(rows)} cases")
    measured = [r for r in rows if r["rss_mb"]["ours"] is not None]
    grown = [r for r in measured if r["rss_mb"]["ours"] > result_mb(r) + RSS_SLACK_MB]
    lines.append(f"{verdict(not grown)} ours grows resident memory by more than its result "
                 f"(+{RSS_SLACK_MB} MB) in {len(grown)} of {len(measured)} cases"
                 + "".join(f"\n       {case_label(r)} {r['mode']} {r['dtype']} {r['pass']}: "
                           f"{r['rss_mb']['ours']:.1f} MB for {result_mb(r):.1f} MB" for r in grown))
    return lines
