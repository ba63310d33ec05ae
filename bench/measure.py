"""One case measured: its contenders built, checked against mlx.nn, their memory, their times.

Backward is the input gradient for a fixed cotangent: mx.vjp for MLX (only the gradient is
evaluated), torch.autograd.grad on a recorded forward graph for torch. Inputs and
cotangents are materialised before timing; every timed MLX call ends with mx.eval (which
also synchronises the GPU). Peak memory (MLX only) is mx.get_peak_memory() after
mx.reset_peak_memory() minus the memory already in use, i.e. what one call allocates on
top of its resident inputs; the peak resident growth of one call comes from probe.py.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import torch
import torch.nn.functional as F

import mlx_upsample

from cases import MB, split_mode
from timing import Contender, time_rounds

PROBE = Path(__file__).with_name("probe.py")


def torch_mode(mode, n_spatial):
    mode, antialias = split_mode(mode)
    if antialias and n_spatial != 2:
        return None  # torch's antialias exists for 4-D (N, C, H, W) tensors only
    if mode == "nearest":
        return "nearest"
    if mode == "linear":
        return {1: "linear", 2: "bilinear", 3: "trilinear"}[n_spatial]
    return "bicubic" if n_spatial == 2 else None


def to_torch_layout(a):
    """Channels-last numpy array (N, *spatial, C) -> torch tensor, logical (N, C, *spatial)."""
    t = torch.from_numpy(np.moveaxis(a, -1, 1))
    if t.ndim == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if t.ndim == 5:
        return t.contiguous(memory_format=torch.channels_last_3d)
    return t.contiguous()


def mlx_contenders(name, fn, x, cot):
    """Forward and backward of fn(x); x may be a tuple of arrays (fn takes them all, the
    backward computes every gradient and returns them all)."""
    primals = list(x) if isinstance(x, tuple) else [x]

    def forward():
        y = fn(*primals)
        mx.eval(y)
        return y

    def backward():
        grads = mx.vjp(fn, primals, [cot])[1]
        mx.eval(grads)
        return tuple(grads) if isinstance(x, tuple) else grads[0]

    return Contender(name, "fwd", forward), Contender(name, "bwd", backward)


def torch_contenders(x_np, cot_np, scale, mode):
    tmode = torch_mode(mode, x_np.ndim - 2)
    if tmode is None:
        return Contender("torch", "fwd", None), Contender("torch", "bwd", None)
    kwargs = {} if tmode == "nearest" else {"align_corners": False}
    if split_mode(mode)[1]:
        kwargs["antialias"] = True
    x_t = to_torch_layout(x_np)
    cot_t = to_torch_layout(cot_np)
    x_grad = x_t.detach().clone().requires_grad_(True)
    try:
        out_grad = F.interpolate(x_grad, scale_factor=scale, mode=tmode, **kwargs)
    except (NotImplementedError, RuntimeError):
        # e.g. PyTorch has no float16 antialias kernel on the CPU.
        return Contender("torch", "fwd", None), Contender("torch", "bwd", None)

    def forward():
        with torch.no_grad():
            return F.interpolate(x_t, scale_factor=scale, mode=tmode, **kwargs)

    def backward():
        return torch.autograd.grad(out_grad, x_grad, cot_t, retain_graph=True)[0]

    return Contender("torch", "fwd", forward), Contender("torch", "bwd", backward)


def memcpy_contender(out_nbytes):
    src = np.ones(-(-out_nbytes // 4), dtype=np.float32)
    dst = np.empty_like(src)
    return Contender("memcpy", "both", lambda: np.copyto(dst, src))


def fill_contender(out_nbytes):
    dst = torch.empty(-(-out_nbytes // 4), dtype=torch.float32)
    return Contender("fill", "both", lambda: dst.fill_(1.0))


def mlx_eval_overhead_us(calls=200):
    """Median time of evaluating a 32-element MLX add: the fixed cost of one mx.eval."""
    x = mx.ones((32,))
    mx.eval(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        mx.eval(x + 1)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def rss_growth_mb(impl, pass_name, shape, scale, dtype, mode, device):
    """Peak resident-set growth of one call in a fresh process (probe.py), in MB."""
    base, aa = split_mode(mode)
    spec = {"impl": impl, "pass": pass_name, "shape": list(shape), "scale": scale,
            "dtype": np.dtype(dtype).name, "mode": base, "antialias": aa, "device": device}
    try:
        out = subprocess.run([sys.executable, str(PROBE), json.dumps(spec)],
                             check=True, capture_output=True, text=True, timeout=600)
        return json.loads(out.stdout.strip().splitlines()[-1])["growth"] / MB
    except (subprocess.SubprocessError, OSError, ValueError, KeyError, IndexError) as exc:
        print(f"\nRSS probe {impl} {pass_name} failed: {exc}", file=sys.stderr)
        return None


def mlx_peak_mb(contender):
    if contender.run is None or contender.error:
        return None
    mx.synchronize()
    baseline = mx.get_active_memory()
    mx.reset_peak_memory()
    contender.run()
    return (mx.get_peak_memory() - baseline) / MB


def max_abs_diffs(results, pairs, label):
    """Per pass, the largest difference between ours and mlx.nn's warm-up results (None
    where either has none); exits on a shape mismatch."""
    checks = {}
    for pass_name, ours, ref in pairs:
        a, b = results[ours], results[ref]
        if a is None or b is None:
            checks[pass_name] = None
        elif a.shape != b.shape:
            sys.exit(f"shape mismatch ours {a.shape} vs mlx.nn {b.shape} ({label})")
        else:
            checks[pass_name] = mx.abs(a.astype(mx.float32) - b.astype(mx.float32)).max().item()
    return checks


def bandwidth(stats, moved_bytes, out_bytes):
    """GB/s our pass moves (it reads one array and writes the other) and its
    fraction of the bandwidth of the memory copy (which reads and writes the
    output's size): a roofline for a memory-bound op."""
    if stats["ours"]["status"] != "ok" or stats["memcpy"]["status"] != "ok":
        return {"ours_gbps": None, "roofline": None}
    ours = moved_bytes / stats["ours"]["median_ms"] / 1e6
    copy = 2 * out_bytes / stats["memcpy"]["median_ms"] / 1e6
    return {"ours_gbps": ours, "roofline": ours / copy}


def ratio(numerator, denominator):
    if numerator["status"] != "ok" or denominator["status"] != "ok":
        return None
    return numerator["median_ms"] / denominator["median_ms"]


def bench_case(shape, scale, dtype, mode, args, rng):
    """Time all contenders for one (shape, scale, dtype, mode); returns two result rows."""
    out_shape = (shape[0], *(int(scale * n) for n in shape[1:-1]), shape[-1])
    x_np = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
    cot_np = rng.standard_normal(out_shape, dtype=np.float32).astype(dtype)
    x, cot = mx.array(x_np), mx.array(cot_np)
    mx.eval(x, cot)

    base, aa = split_mode(mode)
    ours_fwd, ours_bwd = mlx_contenders(
        "ours", lambda a: mlx_upsample.upsample(a, scale, mode=base, antialias=aa), x, cot)
    mlx_fwd, mlx_bwd = mlx_contenders(
        "mlx", nn.Upsample(scale_factor=scale, mode=base, antialias=aa), x, cot)
    torch_fwd, torch_bwd = torch_contenders(x_np, cot_np, scale, mode)
    memcpy = memcpy_contender(cot_np.nbytes)
    fill = fill_contender(cot_np.nbytes)
    contenders = [ours_fwd, mlx_fwd, torch_fwd, memcpy, fill, ours_bwd, mlx_bwd, torch_bwd]

    results = {c: c.warm_up(args.warmup, args.repeats) for c in contenders}
    checks = max_abs_diffs(results, (("fwd", ours_fwd, mlx_fwd), ("bwd", ours_bwd, mlx_bwd)),
                           f"{shape} x{scale} {mode}")
    del results

    mlx_side = (ours_fwd, mlx_fwd, ours_bwd, mlx_bwd)
    peaks = {c: mlx_peak_mb(c) for c in mlx_side}
    rss = {(c.impl, c.pass_name): rss_growth_mb(c.impl, c.pass_name, shape, scale, dtype, mode,
                                                 args.device)
           for c in mlx_side if c.run is not None and not c.error}

    attempts = time_rounds(contenders, args.repeats)

    rows = []
    for pass_name, ours, ref, tch in (("fwd", ours_fwd, mlx_fwd, torch_fwd),
                                      ("bwd", ours_bwd, mlx_bwd, torch_bwd)):
        stats = {"ours": ours.stats(), "mlx": ref.stats(), "torch": tch.stats(),
                 "memcpy": memcpy.stats(), "fill": fill.stats()}
        rows.append({
            "shape": list(shape), "scale": scale, "mode": mode, "dtype": np.dtype(dtype).name,
            "pass": pass_name, "out_shape": list(out_shape), "out_bytes": cot_np.nbytes,
            "stats": stats,
            "speedup_vs_mlx": ratio(stats["mlx"], stats["ours"]),
            "speedup_vs_torch": ratio(stats["torch"], stats["ours"]),
            "ours_over_memcpy": ratio(stats["ours"], stats["memcpy"]),
            # Only a forward pass has to write an output of the fill's size.
            "torch_over_fill": ratio(stats["torch"], stats["fill"]) if pass_name == "fwd" else None,
            **bandwidth(stats, x_np.nbytes + cot_np.nbytes, cot_np.nbytes),
            "peak_mb": {"ours": peaks[ours], "mlx": peaks[ref]},
            "rss_mb": {"ours": rss.get(("ours", pass_name)), "mlx": rss.get(("mlx", pass_name))},
            "max_abs_diff_vs_mlx": checks[pass_name],
            "attempts": attempts,
        })
    mx.clear_cache()
    return rows
