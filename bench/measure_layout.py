"""The layout cases measured (layout_cases.py): ours on the view and on a contiguous
copy, mlx.nn.Upsample on the view, PyTorch on its contiguous channels-first tensor.
Timed like the main cases (timing.py: interleaved rounds, warm-up, re-timing noisy ones)."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import torch
import torch.nn.functional as F

import mlx_upsample

from layout_cases import out_spatial
from measure import mlx_contenders
from timing import Contender, time_rounds

TORCH_MODES = {("linear", 1): "linear", ("linear", 2): "bilinear", ("cubic", 2): "bicubic",
               ("nearest", 1): "nearest", ("nearest", 2): "nearest"}


def channels_last_view(a):
    """(N, C, *S) -> the (N, *S, C) view of the same memory."""
    nd = a.ndim - 2
    return a.transpose(0, *range(2, 2 + nd), 1)


def bench_layout_case(case, args, rng):
    name, shape, mode, scale, passes = case
    nd = len(shape) - 2
    out_cf = (shape[0], shape[1], *out_spatial(shape, scale))
    x_np = rng.standard_normal(shape, dtype=np.float32)
    cot_np = rng.standard_normal(out_cf, dtype=np.float32)
    x_cf, cot_cf = mx.array(x_np), mx.array(cot_np)
    view, cot_view = channels_last_view(x_cf), channels_last_view(cot_cf)
    contig, cot_contig = mx.contiguous(view), mx.contiguous(cot_view)
    mx.eval(x_cf, cot_cf, contig, cot_contig)
    scale_arg = scale[0] if nd == 1 else scale

    def ours(a):
        return mlx_upsample.upsample(a, scale_arg, mode=mode)

    up = nn.Upsample(scale_factor=scale_arg, mode=mode)
    # The views are rebuilt by every call, lazily, as a client's code would.
    ours_view = mlx_contenders("ours view", lambda a: ours(channels_last_view(a)), x_cf, cot_view)
    ours_contig = mlx_contenders("ours contig", ours, contig, cot_contig)
    mlx_view = mlx_contenders("mlx.nn view", lambda a: up(channels_last_view(a)), x_cf, cot_view)

    tmode = TORCH_MODES[(mode, nd)]
    kwargs = {} if tmode == "nearest" else {"align_corners": False}
    size = out_spatial(shape, scale)
    x_t = torch.from_numpy(x_np)
    cot_t = torch.from_numpy(cot_np)
    x_grad = x_t.detach().clone().requires_grad_(True)
    out_grad = F.interpolate(x_grad, size=size, mode=tmode, **kwargs)

    def torch_fwd():
        with torch.no_grad():
            return F.interpolate(x_t, size=size, mode=tmode, **kwargs)

    def torch_bwd():
        return torch.autograd.grad(out_grad, x_grad, cot_t, retain_graph=True)[0]

    torch_pair = (Contender("torch", "fwd", torch_fwd), Contender("torch", "bwd", torch_bwd))
    pairs = {"ours view": ours_view, "ours contig": ours_contig, "mlx.nn view": mlx_view,
             "torch": torch_pair}
    rows = []
    for k, pass_name in enumerate(("fwd", "bwd")):
        if pass_name not in passes:
            continue
        contenders = [p[k] for p in pairs.values()]
        results = {c.impl: c.warm_up(args.warmup, args.repeats) for c in contenders}
        # Same bits on the view and on the copy; and the view's result keeps its layout.
        a, b = results["ours view"], results["ours contig"]
        if pass_name == "bwd" and a is not None:
            a = channels_last_view(a)  # the gradient of x_cf: (N, C, *S)
        same = a is not None and b is not None and bool(mx.array_equal(a, b).item())
        del results
        time_rounds(contenders, args.repeats)
        stats = {c.impl: c.stats() for c in contenders}

        def ratio(p, q):
            if stats[p]["status"] != "ok" or stats[q]["status"] != "ok":
                return None
            return stats[p]["median_ms"] / stats[q]["median_ms"]

        rows.append({
            "name": name, "shape": list(shape), "mode": mode, "scale": list(scale),
            "pass": pass_name, "stats": stats, "same_bits_view_contig": same,
            "view_over_contig": ratio("ours view", "ours contig"),
            "speedup_vs_mlx": ratio("mlx.nn view", "ours view"),
            "speedup_vs_torch": ratio("torch", "ours view"),
        })
    mx.clear_cache()
    return rows


def fmt(ms):
    return "-" if ms is None else (f"{ms:.3f}" if ms < 1 else f"{ms:.2f}")


def render_layout(rows):
    """A text table: medians in ms, then ours-view speedups and view/contig."""
    head = (f"{'case':<18} {'shape (N,C,*S)':<18} {'mode':<8} {'pass':<4} "
            f"{'view':>8} {'contig':>8} {'mlx.nn':>8} {'torch':>8} "
            f"{'vs mlx':>7} {'vs torch':>8} {'view/ctg':>8} bits")
    lines = [head, "-" * len(head)]
    for r in rows:
        s = r["stats"]
        med = {k: s[k].get("median_ms") for k in s}

        def x(v):
            return "-" if v is None else f"{v:.2f}x"

        lines.append(
            f"{r['name']:<18} {'x'.join(map(str, r['shape'])):<18} {r['mode']:<8} "
            f"{r['pass']:<4} {fmt(med['ours view']):>8} {fmt(med['ours contig']):>8} "
            f"{fmt(med['mlx.nn view']):>8} {fmt(med['torch']):>8} "
            f"{x(r['speedup_vs_mlx']):>7} {x(r['speedup_vs_torch']):>8} "
            f"{'-' if r['view_over_contig'] is None else format(r['view_over_contig'], '.2f'):>8} "
            f"{'ok' if r['same_bits_view_contig'] else 'DIFF'}")
    return "\n".join(lines)


def layout_target_lines(rows):
    """The issue's goals, reported (never asserted): ours on the view at least as fast as
    mlx.nn and torch, and within 1.25x of ours on the contiguous copy."""
    out = []
    for r in rows:
        label = f"{r['name']} {r['mode']} {r['pass']}"
        checks = []
        for key, want, text in (("speedup_vs_mlx", lambda v: v >= 1, "vs mlx.nn"),
                                ("speedup_vs_torch", lambda v: v >= 1, "vs torch"),
                                ("view_over_contig", lambda v: v <= 1.25, "view/contig <= 1.25")):
            v = r[key]
            if v is not None:
                checks.append(f"{text} {v:.2f} {'ok' if want(v) else 'MISSED'}")
        out.append(f"  {label}: " + ", ".join(checks))
    return out
