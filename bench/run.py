"""Benchmark mlx_upsample.upsample against mlx.nn.Upsample, PyTorch and memory floors.

Run from the repository root (with mlx_upsample installed, e.g. `pip install -e .`):

    python bench/run.py                      # quick: (8,64,64,64) x2, all modes, and
                                             # (8,128,128,64) x0.25 antialiased, float32
    python bench/run.py --full --repeats 5 --json b.json --markdown b.md --plot b.png

For every case and mode (cases.py) it measures, interleaved in one run, the forward and
the backward pass of
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
With --full (or only them, --layout-only) it also runs the layout cases of
layout_cases.py: channels-first memory viewed channels-last and 1 to 3 channels, ours on
the view and on a contiguous copy against mlx.nn on the view and torch on its contiguous
channels-first tensor (measure_layout.py).
With --full (or only them, --grid) it also runs the grid_sample cases of grid_cases.py:
ours vs the pure-MLX composition of gathers (grid_baseline.py) vs torch's grid_sample on
NCHW, forward and backward (the gradients of x and of the grid) (measure_grid.py).
How a case is measured, its memory included: measure.py, and probe.py for the resident
set of one call in a fresh process. How each call is timed (warm-up, bursts, idle waits,
slow contenders, re-timing a noisy case): timing.py. The table shows the median and the
interquartile range in percent of the median (report.py).
On Linux/glibc, large freed blocks are kept in the heap (mallopt) so repeated calls reuse
memory: otherwise every call of every contender page-faults a fresh mmap() for its output,
which costs more than the op itself and depends on allocator history (--system-malloc
keeps the glibc defaults).
On a Mac with Metal both MLX contenders run on the GPU by default (--device cpu|gpu).
After the table, "targets" checks the project's goals against the run's medians
(targets.py): at (8,64,64,64) x2 float32, ours >= 2x faster than torch, >= 10x faster than
mlx.nn for linear and cubic and not slower for nearest, forward within 2x of memcpy; no
case slower than torch; no call allocating more than its result.
"""

import argparse
import json
import os
import platform
import sys

import mlx.core as mx
import numpy as np
import torch

import mlx_upsample

import cases
import grid_cases
import layout_cases
import report
from measure import bench_case, mlx_eval_overhead_us
from measure_grid import bench_grid_case, grid_target_lines, render_grid
from measure_layout import bench_layout_case, layout_target_lines, render_layout
from targets import target_lines
from timing import keep_freed_memory


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="more shapes (2-D RGB, 3-D, 1-D, downsampling) and float16")
    parser.add_argument("--antialias-only", action="store_true",
                        help="only the antialiased cases (downscale by 4, linear and cubic)")
    parser.add_argument("--layout-only", action="store_true",
                        help="only the layout and few-channel cases (layout_cases.py; "
                             "part of --full)")
    parser.add_argument("--grid", action="store_true",
                        help="only the grid_sample cases (grid_cases.py; part of --full)")
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


def run_meta(args, heap_reuse, cores):
    """What the report's header says about the machine, the versions and the method."""
    ours_threads = getattr(mlx_upsample, "get_num_threads", None)  # optional, not in the contract
    return {"device": str(mx.default_device()), "metal_available": mx.metal.is_available(),
            "cores": cores, "torch_threads": torch.get_num_threads(),
            "ours_threads": ours_threads() if ours_threads else "n/a",
            "mlx": mx.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}",
            "malloc": "glibc heap reuse (mallopt)" if heap_reuse else "system default",
            "repeats": args.repeats, "warmup": args.warmup, "full": args.full,
            "mlx_eval_us": mlx_eval_overhead_us()}


def run_jobs(jobs, args):
    """Measures every job; progress on stderr: one rewritten line on a terminal, one line
    per job otherwise."""
    rng = np.random.default_rng(0)
    rows = []
    end = "" if sys.stderr.isatty() else "\n"
    for k, (shape, scale, dtype, mode) in enumerate(jobs, 1):
        status = f"[{k}/{len(jobs)}] {shape} x{scale:g} {mode} {np.dtype(dtype).name}"
        print(f"\r{status:<60}" if end == "" else status, end=end, file=sys.stderr, flush=True)
        rows += bench_case(shape, scale, dtype, mode, args, rng)
    if end == "":
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
    return rows


def run_named_jobs(label, jobs, bench, args, seed):
    """Measures named cases (a case's first field is its name) with bench(case, args, rng);
    one progress line per case on stderr."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, case in enumerate(jobs, 1):
        print(f"[{label} {k}/{len(jobs)}] {case[0]}", file=sys.stderr, flush=True)
        rows += bench(case, args, rng)
    return rows


def main():
    args = parse_args()
    heap_reuse = not args.system_malloc and keep_freed_memory()
    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(cores)
    meta = run_meta(args, heap_reuse, cores)
    print(report.meta_text(meta))
    print(report.LEGEND, flush=True)

    only = args.layout_only or args.grid
    rows = [] if only else run_jobs(cases.jobs(args.full, args.antialias_only), args)
    layout_rows, grid_rows = [], []
    if args.full or args.layout_only:
        layout_rows = run_named_jobs("layout", layout_cases.layout_jobs(), bench_layout_case,
                                     args, seed=1)
    if args.full or args.grid:
        grid_rows = run_named_jobs("grid", grid_cases.grid_jobs(), bench_grid_case, args, seed=2)

    if rows:
        print(report.render_terminal(rows))
        print("\n" + report.retimed_line(rows))
        print("\ntargets:\n" + "\n".join(target_lines(rows)))
    if layout_rows:
        print("\nlayout cases (ms; ours/mlx.nn on the channels-last view, torch on its "
              "contiguous channels-first tensor):\n" + render_layout(layout_rows))
        print("\nlayout targets:\n" + "\n".join(layout_target_lines(layout_rows)))
    if grid_rows:
        print("\ngrid_sample cases (ms; ours and the MLX gathers channels-last, torch on its "
              "NCHW tensor; check: max |result - torch's|):\n" + render_grid(grid_rows))
        print("\ngrid_sample targets:\n" + "\n".join(grid_target_lines(grid_rows)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": rows, "layout_results": layout_rows,
                       "grid_results": grid_rows}, f, indent=1)
    if args.markdown and rows:
        with open(args.markdown, "w") as f:
            f.write(report.render_markdown(rows, meta))
    if args.plot and rows:
        report.write_plot(rows, args.plot)


if __name__ == "__main__":
    main()
