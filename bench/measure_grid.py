"""The grid_sample cases measured (grid_cases.py): ours, the pure-MLX composition of
gathers (grid_baseline.py) and PyTorch's grid_sample on its NCHW tensor, same data and
thread count, forward and backward (the gradients of x and of the grid together). Timed
like the main cases (timing.py: interleaved rounds, warm-up, re-timing noisy ones);
"check" is the largest difference from PyTorch's result (its forward output, its x
gradient), float32 against float32."""

import math

import mlx.core as mx
import numpy as np
import torch
import torch.nn.functional as F

import mlx_upsample

from grid_baseline import grid_sample_baseline
from grid_cases import FLOW_PIXELS, GRID_IMPLS
from measure import mlx_contenders, ratio
from report import fmt_ms, fmt_ratio
from timing import Contender, time_rounds


def identity_theta(n):
    return np.tile(np.eye(2, 3, dtype=np.float32), (n, 1, 1))


def smooth_flow(rng, n, height, width):
    """(n, height, width, 2) in normalised units: three sinusoids of random direction,
    frequency (at most 3 periods across the image) and phase per component, scaled to
    at most FLOW_PIXELS pixels."""
    ys, xs = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    flow = np.zeros((n, height, width, 2), np.float32)
    for b in range(n):
        for c, size in ((0, width), (1, height)):
            f = rng.uniform(-3, 3, (3, 2))
            phase = rng.uniform(0, 2 * math.pi, 3)
            wave = sum(np.sin(2 * math.pi * (f[k, 0] * xs + f[k, 1] * ys) + phase[k])
                       for k in range(3)) / 3
            flow[b, ..., c] = wave * FLOW_PIXELS * 2 / size
    return flow


def build_grid(kind, shape, out_size, align_corners, rng):
    n, c = shape[0], shape[-1]
    theta = identity_theta(n)
    if kind == "affine":
        theta = theta + 0.1 * rng.standard_normal(theta.shape).astype(np.float32)
    grid = np.array(mlx_upsample.affine_grid(mx.array(theta), (n, *out_size, c), align_corners))
    if kind == "flow":
        grid = grid + smooth_flow(rng, n, *out_size)
    return grid.astype(np.float32)


def torch_contenders(x_np, grid_np, cot_np, kwargs):
    x_t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_np, -1, 1)))
    grid_t = torch.from_numpy(grid_np)
    cot_t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(cot_np, -1, 1)))
    x_g = x_t.clone().requires_grad_(True)
    grid_g = grid_t.clone().requires_grad_(True)
    out_g = F.grid_sample(x_g, grid_g, **kwargs)

    def forward():
        with torch.no_grad():
            return F.grid_sample(x_t, grid_t, **kwargs)

    def backward():
        return torch.autograd.grad(out_g, (x_g, grid_g), cot_t, retain_graph=True)

    return Contender("torch", "fwd", forward), Contender("torch", "bwd", backward)


def max_diff_vs_torch(mlx_result, torch_result, pass_name):
    """Largest |ours - torch| of the forward output or of the x gradient (channels-last)."""
    if mlx_result is None or torch_result is None:
        return None
    a = mlx_result if pass_name == "fwd" else mlx_result[0]
    t = torch_result if pass_name == "fwd" else torch_result[0]
    return float(np.max(np.abs(np.array(a) - np.moveaxis(t.numpy(), 1, -1))))


def bench_grid_case(case, args, rng):
    name, shape, out_size, mode, padding, align_corners, kind = case
    kwargs = dict(mode=mode, padding_mode=padding, align_corners=align_corners)
    x_np = rng.standard_normal(shape, dtype=np.float32)
    grid_np = build_grid(kind, shape, out_size, align_corners, rng)
    cot_np = rng.standard_normal((shape[0], *out_size, shape[-1]), dtype=np.float32)
    x, grid, cot = mx.array(x_np), mx.array(grid_np), mx.array(cot_np)
    mx.eval(x, grid, cot)

    pairs = {
        "ours": mlx_contenders("ours", lambda a, g: mlx_upsample.grid_sample(a, g, **kwargs),
                               (x, grid), cot),
        "mlx gathers": mlx_contenders(
            "mlx gathers", lambda a, g: grid_sample_baseline(a, g, **kwargs), (x, grid), cot),
        "torch": torch_contenders(x_np, grid_np, cot_np, kwargs),
    }
    contenders = [c for impl in GRID_IMPLS for c in pairs[impl]]
    results = {(c.impl, c.pass_name): c.warm_up(args.warmup, args.repeats) for c in contenders}
    checks = {(impl, p): max_diff_vs_torch(results[(impl, p)], results[("torch", p)], p)
              for impl in GRID_IMPLS[:2] for p in ("fwd", "bwd")}
    del results
    attempts = time_rounds(contenders, args.repeats)

    rows = []
    for k, pass_name in enumerate(("fwd", "bwd")):
        stats = {impl: pairs[impl][k].stats() for impl in GRID_IMPLS}
        rows.append({
            "name": name, "shape": list(shape), "out_size": list(out_size), "mode": mode,
            "padding": padding, "align_corners": align_corners, "grid": kind,
            "pass": pass_name, "stats": stats, "attempts": attempts,
            "speedup_vs_baseline": ratio(stats["mlx gathers"], stats["ours"]),
            "speedup_vs_torch": ratio(stats["torch"], stats["ours"]),
            "max_diff_vs_torch": {impl: checks[(impl, pass_name)] for impl in GRID_IMPLS[:2]},
        })
    mx.clear_cache()
    return rows


def render_grid(rows):
    """A text table: medians in ms, ours' speedups, and each MLX contender's check."""
    head = (f"{'case':<17} {'x shape':<14} {'out':<7} {'mode':<16} {'pass':<4} "
            f"{'ours':>8} {'gathers':>8} {'torch':>8} {'gathers/ours':>12} "
            f"{'torch/ours':>10} {'check ours':>10} {'check gathers':>13}")
    lines = [head, "-" * len(head)]
    for r in rows:
        med = {impl: r["stats"][impl].get("median_ms") for impl in GRID_IMPLS}
        diff = r["max_diff_vs_torch"]

        def ms(v):
            return "-" if v is None else fmt_ms(v)

        def check(v):
            return "-" if v is None else f"{v:.1e}"

        lines.append(
            f"{r['name']:<17} {'x'.join(map(str, r['shape'])):<14} "
            f"{'x'.join(map(str, r['out_size'])):<7} {r['mode'] + ', ' + r['padding']:<16} "
            f"{r['pass']:<4} {ms(med['ours']):>8} {ms(med['mlx gathers']):>8} "
            f"{ms(med['torch']):>8} {fmt_ratio(r['speedup_vs_baseline']):>12} "
            f"{fmt_ratio(r['speedup_vs_torch']):>10} {check(diff['ours']):>10} "
            f"{check(diff['mlx gathers']):>13}")
    return "\n".join(lines)


def grid_target_lines(rows):
    """The issue's goal, reported (never asserted): ahead of both in every case and pass."""
    out = []
    for r in rows:
        checks = []
        for key, text in (("speedup_vs_baseline", "vs mlx gathers"), ("speedup_vs_torch", "vs torch")):
            v = r[key]
            if v is not None:
                checks.append(f"{text} {v:.2f}x {'ok' if v >= 1 else 'MISSED'}")
        out.append(f"  {r['name']} {r['mode']} {r['pass']}: " + ", ".join(checks))
    return out
