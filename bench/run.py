"""Benchmark mlx_upsample.upsample against mlx.nn.Upsample, PyTorch and memory floors.

Run from the repository root (with mlx_upsample installed, e.g. `pip install -e .`):

    python bench/run.py                      # quick: (8,64,64,64) x2, all modes, and
                                             # (8,128,128,64) x0.25 antialiased, float32
    python bench/run.py --full --repeats 5 --json b.json --markdown b.md --plot b.png

For every case and mode it measures, interleaved in one run (the call order rotates
every round), the forward and the backward pass of
  ours    mlx_upsample.upsample(x, scale, mode=..., antialias=...)
  mlx.nn  mlx.nn.Upsample(scale_factor=scale, mode=..., antialias=...)
  torch   F.interpolate on the same data as (N, C, *spatial), channels_last(_3d) memory
          (plain contiguous N,C,L for 1-D), torch threads = number of cores;
          antialias=True for the "+aa" modes (torch has it in 2-D only)
  memcpy  np.copyto between preallocated float32 buffers of the output's byte size
          (the physical floor, reported on both passes; single-threaded, so a
          multi-threaded kernel can beat it)
  fill    torch's fill_ of a float32 buffer of the output's byte size on all cores: the
          cost of writing the output once, which no forward pass can beat (torch/fill
          is how much faster than PyTorch any forward could be)
Backward = the input gradient for a fixed cotangent: mx.vjp for MLX (only the gradient
is evaluated), torch.autograd.grad on a recorded forward graph for torch.  Inputs and
cotangents are materialised before timing; every timed MLX call ends with mx.eval
(which also synchronises the GPU).  Each contender gets --warmup untimed calls, then --repeats
timed calls; the table shows the median and the interquartile range in percent of the
median.  Each timed call ends a burst of calls of the same contender (at least BURST
calls and BURST_SECONDS, the others untimed), so it measures a call in a loop of that
op, not the cost of switching from another library (whose data fills the cache), and
each burst starts once the process is idle (PyTorch's OpenMP workers spin on every core
for milliseconds after each call, which would slow whoever runs next).  A contender
whose first call takes more than SLOW_SECONDS (in practice mlx.nn.Upsample cubic, worst
in 3-D) gets a single warm-up and at most SLOW_REPEATS timed calls; such cells are
marked '*'.  Peak memory (MLX only) is mx.get_peak_memory() after mx.reset_peak_memory()
minus the memory already in use, i.e. what one call allocates on top of its resident
inputs.  MLX's allocator does not see the kernels' own heap memory (the CPU path's gather
tables and buffers), so each MLX contender also runs once in a fresh process (RSS_PROBE,
without the heap reuse below) that reports how much its peak resident set grows over the
call: VmHWM after resetting it through /proc/self/clear_refs on Linux, the growth of
ru_maxrss elsewhere (a lower bound).
On Linux/glibc, large freed blocks are kept in the heap (mallopt) so repeated calls reuse
memory: otherwise every call of every contender page-faults a fresh mmap() for its output,
which costs more than the op itself and depends on allocator history (--system-malloc
keeps the glibc defaults).
On a Mac with Metal both MLX contenders run on the GPU by default (--device cpu|gpu).
After the table, "targets" checks the project's goals against the run's medians: at
(8,64,64,64) x2 float32, ours >= 2x faster than torch, >= 10x faster than mlx.nn for linear
and cubic and not slower for nearest, forward within 2x of memcpy; no case slower than
torch; no call allocating more than its result.
A case in which a fast contender's interquartile range exceeds NOISY_SPREAD of its median
is timed again, all its fast contenders together, up to RETRIES times; the steadiest
attempt is kept and the report lists the cases re-timed (time_rounds).
"""

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import time

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import torch
import torch.nn.functional as F

import mlx_upsample

MODES = ("nearest", "linear", "cubic")
# Antialiased modes ("+aa": antialias=True) and their cases: a downscale by 4, where the
# filter widens to 8 (linear) or 16 (cubic) input pixels per output along each axis.
AA_MODES = ("linear+aa", "cubic+aa")
AA_CASES = [((8, 128, 128, 64), 0.25)]
QUICK_CASES = [((8, 64, 64, 64), 2.0)]
FULL_EXTRA_CASES = [
    ((1, 512, 512, 3), 2.0),
    ((4, 32, 32, 32, 16), 2.0),
    ((16, 4096, 64), 2.0),
    ((8, 128, 128, 64), 0.5),
]
SLOW_SECONDS = 1.0
# Each timed call ends a burst of calls of the same contender lasting at least BURST calls
# and BURST_SECONDS, so that it runs the way calls in a loop do: its threads awake, its
# data in cache and the cores up to speed (measured here: a 1 ms op needs 5-10 calls
# after a pause to settle).
BURST = 3
BURST_SECONDS = 0.02
# A burst starts only once the process has been idle for IDLE_STEP_SECONDS (less than
# IDLE_CPU of a core busy), waiting at most IDLE_MAX_SECONDS: PyTorch's OpenMP workers
# busy-wait on every core for several milliseconds after each call (measured: 6-8 ms at
# ~190% CPU on this 2-core box), which would otherwise slow whoever runs next.
IDLE_STEP_SECONDS = 0.002
IDLE_CPU = 0.1
IDLE_MAX_SECONDS = 0.1
SLOW_REPEATS = 3
# A case is timed again (up to RETRIES times) when a fast contender's interquartile range
# exceeds NOISY_SPREAD of its median (time_rounds).
NOISY_SPREAD = 0.5
RETRIES = 2
IMPLS = ("ours", "mlx", "torch", "memcpy", "fill")
IMPL_LABELS = {"ours": "ours", "mlx": "mlx.nn", "torch": "torch", "memcpy": "memcpy",
               "fill": "fill"}
MB = 1024 * 1024


def wait_until_idle():
    """Sleeps until the process used under IDLE_CPU of a core for IDLE_STEP_SECONDS."""
    deadline = time.perf_counter() + IDLE_MAX_SECONDS
    while time.perf_counter() < deadline:
        wall, cpu = time.perf_counter(), time.process_time()
        time.sleep(IDLE_STEP_SECONDS)
        if time.process_time() - cpu < IDLE_CPU * (time.perf_counter() - wall):
            return


class Contender:
    """One timed callable; `run` is None when the implementation has no such mode."""

    def __init__(self, impl, pass_name, run):
        self.impl, self.pass_name, self.run = impl, pass_name, run
        self.times, self.repeats, self.slow, self.error = [], 0, False, None

    def warm_up(self, warmup, repeats):
        """Untimed calls; returns the last result (None on error or n/a)."""
        if self.run is None:
            return None
        try:
            start = time.perf_counter()
            result = self.run()
            self.slow = time.perf_counter() - start > SLOW_SECONDS
            for _ in range(0 if self.slow else warmup - 1):
                result = self.run()
        except Exception as exc:  # report and keep benchmarking the others
            self.error = f"{type(exc).__name__}: {exc}"
            print(f"\n{self.impl} {self.pass_name} failed: {self.error}", file=sys.stderr)
            return None
        self.repeats = min(repeats, SLOW_REPEATS) if self.slow else repeats
        return result

    def time_once(self):
        wait_until_idle()
        if not self.slow:
            start, calls = time.perf_counter(), 0
            while calls < BURST - 1 or time.perf_counter() - start < BURST_SECONDS:
                self.run()
                calls += 1
        start = time.perf_counter()
        self.run()
        self.times.append((time.perf_counter() - start) * 1e3)

    def stats(self):
        if not self.times:
            return {"status": "error" if self.error else "n/a", "error": self.error}
        t = np.array(self.times)
        q1, q3 = np.percentile(t, [25, 75])
        return {"status": "ok", "median_ms": float(np.median(t)), "min_ms": float(t.min()),
                "max_ms": float(t.max()), "q1_ms": float(q1), "q3_ms": float(q3),
                "repeats": len(t), "reduced_repeats": self.slow, "times_ms": self.times}


def split_mode(mode):
    """'cubic+aa' -> ('cubic', True)."""
    base, _, aa = mode.partition("+")
    return base, aa == "aa"


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
    def forward():
        y = fn(x)
        mx.eval(y)
        return y

    def backward():
        grad = mx.vjp(fn, [x], [cot])[1][0]
        mx.eval(grad)
        return grad

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


# One call of an MLX contender in a fresh process: how much its peak resident set grows
# (inputs and cotangent are made first, and the same call on a small input warms up
# code paths and thread pools). Prints {"growth": bytes}.
RSS_PROBE = r'''
import json, resource, sys
import mlx.core as mx
import mlx.nn as nn
import mlx_upsample

spec = json.loads(sys.argv[1])
mx.set_default_device(mx.gpu if spec["device"] == "gpu" else mx.cpu)
base, aa = spec["mode"], spec["antialias"]
if spec["impl"] == "ours":
    fn = lambda a: mlx_upsample.upsample(a, spec["scale"], mode=base, antialias=aa)
else:
    fn = nn.Upsample(scale_factor=spec["scale"], mode=base, antialias=aa)
dtype = getattr(mx, spec["dtype"])

def prepare(shape):
    x = mx.random.normal(shape).astype(dtype)
    cot = mx.random.normal(fn(x).shape).astype(dtype)
    mx.eval(x, cot)
    if spec["pass"] == "fwd":
        return lambda: fn(x)
    return lambda: mx.vjp(fn, [x], [cot])[1][0]

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

def peak():
    if sys.platform.startswith("linux"):
        return status("VmHWM:")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS

small = [spec["shape"][0]] + [8] * (len(spec["shape"]) - 2) + [spec["shape"][-1]]
mx.eval(prepare(small)())
run = prepare(spec["shape"])
# Free memory goes back to the system first, so that what the call allocates shows.
mx.clear_cache()
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = status("VmRSS:")
else:
    before = peak()
mx.eval(run())
print(json.dumps({"growth": peak() - before}))
'''


def rss_growth_mb(impl, pass_name, shape, scale, dtype, mode, device):
    """Peak resident-set growth of one call in a fresh process (RSS_PROBE), in MB."""
    base, aa = split_mode(mode)
    spec = {"impl": impl, "pass": pass_name, "shape": list(shape), "scale": scale,
            "dtype": np.dtype(dtype).name, "mode": base, "antialias": aa, "device": device}
    try:
        out = subprocess.run([sys.executable, "-c", RSS_PROBE, json.dumps(spec)],
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
    checks = {}
    for pass_name, ours, ref in (("fwd", ours_fwd, mlx_fwd), ("bwd", ours_bwd, mlx_bwd)):
        a, b = results[ours], results[ref]
        if a is None or b is None:
            checks[pass_name] = None
        elif a.shape != b.shape:
            sys.exit(f"shape mismatch ours {a.shape} vs mlx.nn {b.shape} ({shape} x{scale} {mode})")
        else:
            checks[pass_name] = mx.abs(a.astype(mx.float32) - b.astype(mx.float32)).max().item()
    del results

    peaks = {c: mlx_peak_mb(c) for c in (ours_fwd, mlx_fwd, ours_bwd, mlx_bwd)}
    rss = {(c.impl, c.pass_name): rss_growth_mb(c.impl, c.pass_name, shape, scale, dtype, mode,
                                                 args.device)
           for c in (ours_fwd, mlx_fwd, ours_bwd, mlx_bwd) if c.run is not None and not c.error}

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


def spread(stats):
    """Interquartile range over the median, of a Contender.stats() (the table's ±%)."""
    return (stats["q3_ms"] - stats["q1_ms"]) / stats["median_ms"]


def time_rounds(contenders, repeats):
    """Times the contenders in interleaved rounds (the order rotates every round).

    On shared machines something outside the process sometimes stalls a whole stretch of
    a run (seen here: 4 of 7 runs of a 0.4 ms torch call at exactly 8.0 ms, the others
    normal). So when a fast contender's spread exceeds NOISY_SPREAD, all fast contenders
    are timed again together, up to RETRIES times, and the attempt with the smallest
    worst spread is kept: every contender of a case comes from the same attempt. Slow
    contenders (seconds per call) keep their first attempt. Returns the attempts made.
    """
    fast = [c for c in contenders if c.run is not None and not c.error and not c.slow]
    kept, kept_spread = None, np.inf
    for attempt in range(1 + RETRIES):
        if attempt > 0:
            for c in fast:
                c.times = []
        for round_index in range(repeats):
            shift = round_index % len(contenders)
            for c in contenders[shift:] + contenders[:shift]:
                if c.run is None or c.error or round_index >= c.repeats:
                    continue
                if attempt == 0 or c in fast:
                    c.time_once()
        worst = max((spread(c.stats()) for c in fast), default=0.0)
        if worst < kept_spread:
            kept, kept_spread = {c: c.times for c in fast}, worst
        if worst <= NOISY_SPREAD:
            break
    for c, times in kept.items():
        c.times = times
    return attempt + 1


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


def fmt_ms(ms):
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def cell_terminal(s):
    if s["status"] != "ok":
        return s["status"]
    return f"{fmt_ms(s['median_ms'])} ±{100 * spread(s):.0f}%" + ("*" if s["reduced_repeats"] else "")


def cell_markdown(s):
    if s["status"] != "ok":
        return s["status"]
    return (f"{fmt_ms(s['median_ms'])} ({fmt_ms(s['min_ms'])}–{fmt_ms(s['max_ms'])})"
            + ("\\*" if s["reduced_repeats"] else ""))


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def fmt_mb(mb):
    return "-" if mb is None else f"{mb:.1f}"


def case_label(row):
    return f"{'x'.join(map(str, row['shape']))} x{row['scale']:g}"


def table_rows(rows, cell):
    header = ["case", "mode", "dtype", "pass", *(f"{IMPL_LABELS[i]} ms" for i in IMPLS),
              "mlx/ours", "torch/ours", "ours/memcpy", "torch/fill", "ours GB/s", "of memcpy BW",
              "ours MB", "mlx.nn MB", "ours RSS MB", "mlx.nn RSS MB"]
    body = [[case_label(r), r["mode"], r["dtype"], r["pass"],
             *(cell(r["stats"][i]) for i in IMPLS),
             fmt_ratio(r["speedup_vs_mlx"]), fmt_ratio(r["speedup_vs_torch"]),
             fmt_ratio(r["ours_over_memcpy"]),
             fmt_ratio(r["torch_over_fill"]),
             "-" if r["ours_gbps"] is None else f"{r['ours_gbps']:.1f}",
             "-" if r["roofline"] is None else f"{100 * r['roofline']:.0f}%",
             fmt_mb(r["peak_mb"]["ours"]), fmt_mb(r["peak_mb"]["mlx"]),
             fmt_mb(r["rss_mb"]["ours"]), fmt_mb(r["rss_mb"]["mlx"])] for r in rows]
    return header, body


def render_terminal(rows):
    header, body = table_rows(rows, cell_terminal)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) if i >= 4 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(line, widths))) for line in body]
    return "\n".join(lines)


TARGET_CASE = ([8, 64, 64, 64], 2.0, "float32")
# Resident growth allowed on top of a call's result: thread stacks, per-thread buffers.
RSS_SLACK_MB = 4


def result_mb(row):
    """MB of the array a pass returns: the output (forward) or the input gradient."""
    shape = row["out_shape"] if row["pass"] == "fwd" else row["shape"]
    return np.prod(shape) * np.dtype(row["dtype"]).itemsize / MB


def target_lines(rows):
    """The performance targets of the project, checked against this run's medians."""
    def verdict(ok):
        return "ok  " if ok else "MISS"

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


def retimed_line(rows):
    """Which cases were timed more than once (time_rounds), from their forward rows."""
    retimed = [r for r in rows if r["pass"] == "fwd" and r["attempts"] > 1]
    return (f"re-timed for a spread over {NOISY_SPREAD:.0%}: {len(retimed)} of "
            f"{sum(r['pass'] == 'fwd' for r in rows)} cases"
            + "".join(f"\n  {case_label(r)} {r['mode']} {r['dtype']}: {r['attempts']} attempts"
                      for r in retimed))


def render_markdown(rows, meta):
    header, body = table_rows(rows, cell_markdown)
    lines = [f"# mlx_upsample benchmark\n\n{meta_text(meta)}\n",
             "Cells: median ms (min–max). Ratios > 1 in mlx/ours and torch/ours mean ours is "
             "faster; ours/memcpy is the distance from the memory-copy floor; torch/fill (forward) "
             "bounds how much faster than PyTorch any forward pass can be, since it must "
             "write the output at least once. GB/s counts the "
             "bytes our pass reads and writes; 'of memcpy BW' compares it with the copy's "
             "bandwidth. MB: MLX memory "
             "one call allocates on top of its inputs; RSS MB: how much one call, alone in a "
             "fresh process, grows the peak resident set (all memory, not only MLX's). "
             "\\* = reduced repeats (slow contender).\n",
             "| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < 4 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(line) + " |" for line in body]
    lines += ["", "```", retimed_line(rows), "```"]
    lines += ["", "## Targets", "", "```", *target_lines(rows), "```"]
    return "\n".join(lines) + "\n"


def write_plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{case_label(r)} {r['mode']} {r['dtype']} {r['pass']}" for r in rows]
    positions = np.arange(len(rows))
    bar = 0.8 / len(IMPLS)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(rows)))
    for k, impl in enumerate(IMPLS):
        values = [r["stats"][impl].get("median_ms", np.nan) for r in rows]
        ax.barh(positions + (k - (len(IMPLS) - 1) / 2) * bar, values, height=bar,
                label=IMPL_LABELS[impl])
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first case on top
    ax.set_xscale("log")
    ax.set_xlabel("median time per call [ms] (log scale, lower is better)")
    ax.set_title("upsampling: mlx_upsample vs mlx.nn.Upsample vs torch vs memory floors")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def meta_text(meta):
    return (f"device: {meta['device']} (ours and mlx.nn.Upsample; torch, memcpy and fill on CPU)"
            f"{' [Metal available]' if meta['metal_available'] else ''}\n"
            f"threads: {meta['cores']} cores, ours (CPU kernels) {meta['ours_threads']}, "
            f"torch intra-op {meta['torch_threads']} (also fill), memcpy single-threaded numpy\n"
            f"fixed cost of one mx.eval (a 32-element add): {meta['mlx_eval_us']:.0f} us\n"
            f"versions: mlx {meta['mlx']}, torch {meta['torch']}, numpy {meta['numpy']}, "
            f"python {meta['python']} on {meta['platform']}; malloc: {meta['malloc']}\n"
            f"method: {meta['warmup']} warm-up + {meta['repeats']} interleaved timed runs, "
            f"each ending a burst of >= {BURST} calls and >= {BURST_SECONDS * 1e3:g} ms "
            f"started on an idle process, median; slow contenders (first call "
            f"> {SLOW_SECONDS:g} s): 1 warm-up, <= {SLOW_REPEATS} single runs; a case "
            f"whose spread exceeds {NOISY_SPREAD:.0%} is timed again (<= {RETRIES} times), "
            f"keeping the steadiest attempt")


def keep_freed_memory():
    """Make glibc serve large blocks from the heap and never trim it; True if applied."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 2**30) and libc.mallopt(m_trim_threshold, 2**31 - 1))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="more shapes (2-D RGB, 3-D, 1-D, downsampling) and float16")
    parser.add_argument("--antialias-only", action="store_true",
                        help="only the antialiased cases (downscale by 4, linear and cubic)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per contender")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per contender")
    parser.add_argument("--device", choices=("cpu", "gpu"),
                        default="gpu" if mx.metal.is_available() else "cpu",
                        help="device for the MLX contenders (default: gpu if Metal is available)")
    parser.add_argument("--system-malloc", action="store_true",
                        help="keep glibc's default mmap/trim thresholds (timings then include "
                             "page faults for fresh output buffers)")
    parser.add_argument("--json", metavar="PATH", help="write all results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write a Markdown table")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG bar chart")
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 1:
        parser.error("--repeats and --warmup must be >= 1")
    if args.device == "gpu" and not mx.metal.is_available():
        parser.error("--device gpu needs Metal, which is not available here")
    return args


def main():
    args = parse_args()
    heap_reuse = not args.system_malloc and keep_freed_memory()
    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(cores)
    ours_threads = getattr(mlx_upsample, "get_num_threads", None)  # optional, not in the contract
    meta = {"device": str(mx.default_device()), "metal_available": mx.metal.is_available(),
            "cores": cores, "torch_threads": torch.get_num_threads(),
            "ours_threads": ours_threads() if ours_threads else "n/a",
            "mlx": mx.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}",
            "malloc": "glibc heap reuse (mallopt)" if heap_reuse else "system default",
            "repeats": args.repeats, "warmup": args.warmup, "full": args.full,
            "mlx_eval_us": mlx_eval_overhead_us()}
    print(meta_text(meta))
    print("cells: median ms ±IQR in % of the median (* = reduced repeats); "
          "mlx/ours, torch/ours > 1: ours faster; MB: MLX memory allocated per call; "
          "RSS MB: peak resident growth of one call in a fresh process\n",
          flush=True)

    cases = QUICK_CASES + (FULL_EXTRA_CASES if args.full else [])
    dtypes = (np.float32, np.float16) if args.full else (np.float32,)
    jobs = [] if args.antialias_only else [
        (shape, scale, dtype, mode) for dtype in dtypes for shape, scale in cases
        for mode in MODES]
    jobs += [(shape, scale, dtype, mode) for dtype in dtypes for shape, scale in AA_CASES
             for mode in AA_MODES]
    rng = np.random.default_rng(0)
    rows = []
    # Progress on stderr: one rewritten line on a terminal, one line per job otherwise.
    end = "" if sys.stderr.isatty() else "\n"
    for k, (shape, scale, dtype, mode) in enumerate(jobs, 1):
        status = f"[{k}/{len(jobs)}] {shape} x{scale:g} {mode} {np.dtype(dtype).name}"
        print(f"\r{status:<60}" if end == "" else status, end=end, file=sys.stderr, flush=True)
        rows += bench_case(shape, scale, dtype, mode, args, rng)
    if end == "":
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)

    print(render_terminal(rows))
    print("\n" + retimed_line(rows))
    print("\ntargets:\n" + "\n".join(target_lines(rows)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(render_markdown(rows, meta))
    if args.plot:
        write_plot(rows, args.plot)


if __name__ == "__main__":
    main()
