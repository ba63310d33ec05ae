"""The cost model of the grid_sample Metal kernels (a MODEL, not a GPU timing),
as bench/cost_model.py models the upsampling kernels: per launch, the x86
instructions per thread of a fixed pseudo-random sample of its threads in the
Metal emulator under callgrind, against the bytes it moves (each array read
and written once; an array a launch updates in place, twice), on an M2-class
GPU (cost_model.py's rates). The input gradient's launches depend on the data
the earlier ones write, so each sample runs, is undone, and the launch then
runs whole without instrumentation.

The cases are the benchmark's: an STN (8, 64, 64, 32) bilinear with a random
affine grid, a flow warp (4, 256, 256, 3) bilinear, a bicubic border resample
(1, 32, 32, 1024) to (1, 48, 48). Each backward row is set against an
estimate of a float-atomic input gradient (what PyTorch's CUDA and MPS
kernels do, and MLX's metal_kernel example): the forward's threads (their
coordinate math and taps, measured) each adding weight * cotangent into a
zeroed float32 dx with one atomic per tap and channel, counted as 8 bytes
moved (a read-modify-write of 4), plus the zero fill; a float16/bfloat16 dx
adds a conversion pass. It leaves out what atomics cost beyond their bytes
(serialisation on one address: the degenerate grids).

    python bench/grid_cost_model.py            # the three cases, forward and backward
    python bench/cost_model.py                 # both models
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]
from cost_model import (  # noqa: E402
    BYTES_PER_SECOND, INSTRUCTIONS_PER_SECOND, build_driver, fmt, run_callgrind)
from metal_emulator import grid_harness  # noqa: E402

DRIVER = ROOT / "bench" / "grid_cost_model_driver.cpp"
TEMPLATE_KERNELS = ["grid_forward", "grid_tangent", "grid_grid_grad", "grid_count", "grid_fill",
                    "grid_input_grad"]
PLAIN_KERNELS = ["grid_sample_grid_zero", "grid_sample_clear", "grid_sample_scan_reduce",
                 "grid_sample_scan_top", "grid_sample_scan_spread", "grid_sample_sort"]
# Only the kernel functions (a helper matching too would toggle collection
# off inside them); names the demangler cannot read stay mangled.
KERNEL_PATTERNS = ([f"void {k}<*" for k in TEMPLATE_KERNELS]
                   + [f"_Z{len(k)}{k}I*" for k in TEMPLATE_KERNELS]
                   + [f"{k}(*" for k in PLAIN_KERNELS]
                   + [f"_Z{len(k)}{k}P*" for k in PLAIN_KERNELS])
# Launches that update an array in place: it is read and written.
IN_PLACE = {"grid_count": "counts", "grid_fill": "counts",
            "grid_sample_scan_top": "level", "grid_sample_scan_spread": "level"}
INPUT_GRADIENT = {"grid_sample_clear", "grid_count", "grid_sample_scan_reduce",
                  "grid_sample_scan_top", "grid_sample_scan_spread", "grid_fill",
                  "grid_sample_sort", "grid_input_grad"}
TAPS = {"bilinear": 4, "bicubic": 16, "nearest": 1}
# A launch's fixed cost: launch_plan.cpp's LAUNCH_BYTES (512 KB) at the
# model's bandwidth.
LAUNCH_MS = 512 * 1024 / BYTES_PER_SECOND * 1e3


def base_coordinates(n):
    """PyTorch's affine_grid base along an axis of n (align_corners=False)."""
    return (2 * np.arange(n) + 1) / n - 1


def identity_grid(batch, h, w):
    gx, gy = np.meshgrid(base_coordinates(w), base_coordinates(h))
    return np.broadcast_to(np.stack([gx, gy], -1), (batch, h, w, 2)).astype(np.float64)


def stn_grid(rng, batch, h, w):
    """A random affine grid: rotation, scale and shift per batch entry."""
    a = rng.uniform(-0.5, 0.5, batch)
    s = rng.uniform(0.8, 1.2, batch)
    t = rng.uniform(-0.2, 0.2, (batch, 2))
    theta = np.stack([np.stack([s * np.cos(a), -s * np.sin(a), t[:, 0]], -1),
                      np.stack([s * np.sin(a), s * np.cos(a), t[:, 1]], -1)], 1)
    base = identity_grid(batch, h, w)
    homogeneous = np.concatenate([base, np.ones((batch, h, w, 1))], -1)
    return np.einsum("nij,nhwj->nhwi", theta, homogeneous)


def flow_grid(rng, batch, h, w):
    """The identity plus a flow of a few pixels."""
    flow = rng.normal(0, 2.0, (batch, h, w, 2)) * np.array([2 / w, 2 / h])
    return identity_grid(batch, h, w) + flow


# (name, x shape, grid, mode, padding)
def cases():
    rng = np.random.default_rng(0)
    return [
        ("STN", (8, 64, 64, 32), stn_grid(rng, 8, 64, 64), "bilinear", "zeros"),
        ("flow warp", (4, 256, 256, 3), flow_grid(rng, 4, 256, 256), "bilinear", "zeros"),
        ("bicubic border", (1, 32, 32, 1024), identity_grid(1, 48, 48), "bicubic", "border"),
    ]


def array_bytes(plan, x_shape, grid_shape, elem):
    points = int(np.prod(grid_shape[:-1]))
    x = int(np.prod(x_shape)) * elem
    y = points * x_shape[-1] * elem
    g = points * grid_shape[-1] * 4
    return {"x": x, "grid": g, "tangent": g, "cotangent": y, "out": y, "dx": x, "dgrid": g,
            "counts": plan["levels"][0] * 4, "entries": plan["entries"] * 8}


def long_segment_entries(x_shape, grid, mode, padding):
    """The taps on pixels read by more than GRID_SHORT_SEGMENT (16) taps, the
    entries grid_sample_sort reads and writes: from the taps' indices
    (PyTorch's unnormalisation, align_corners=False; zeros and border
    padding), in numpy."""
    n, h, w = x_shape[0], x_shape[1], x_shape[2]
    reach = {"nearest": (0, 1), "bilinear": (0, 2), "bicubic": (-1, 3)}[mode]
    axes = []
    for d, size in ((0, w), (1, h)):
        src = ((grid[..., d] + 1) * size - 1) / 2
        if padding == "border" and mode != "bicubic":
            src = np.clip(src, 0, size - 1)
        base = np.round(src) if mode == "nearest" else np.floor(src)
        idx = base[..., None] + np.arange(*reach)
        if padding == "border":
            idx = np.clip(idx, 0, size - 1)
        axes.append(idx.reshape(n, -1, idx.shape[-1]))
    ix, iy = axes
    inside = (ix[:, :, None, :] >= 0) & (ix[:, :, None, :] < w) & (iy[:, :, :, None] >= 0) & (
        iy[:, :, :, None] < h)
    first = (np.arange(n) * h * w)[:, None, None, None]
    pixel = iy[:, :, :, None] * w + ix[:, :, None, :] + first
    counts = np.bincount(pixel[inside].astype(np.int64), minlength=n * h * w)
    return int(counts[counts > 16].sum())


def launch_bytes(launch, plan, sizes):
    if launch["function"] == "grid_sample_sort":
        # The counts, and the long segments' entries, read and written.
        return sizes["counts"] + 16 * sizes["long_entries"]
    moved = 0
    for name, _ in launch["buffers"]:
        if name == "params":
            continue
        if name in ("level", "upper_level"):
            level = launch["level"] + (name == "upper_level")
            size = plan["levels"][level] * 4
        else:
            size = sizes[name]
        moved += size * (2 if IN_PLACE.get(launch["function"]) == name else 1)
    return moved


def measure(driver, name, x_shape, grid, mode, padding, backward, dtype, samples):
    elem = {"float32": 4, "float16": 2, "bfloat16": 2}[dtype]
    grid = np.ascontiguousarray(grid, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        grid_file = Path(tmp) / "grid.f32"
        grid.tofile(grid_file)
        plan, counts = run_callgrind(KERNEL_PATTERNS, [
            str(driver), str(2 if backward else 0), str(grid_harness.MODES[mode]),
            str(grid_harness.PADDINGS[padding]), "0", dtype, str(elem),
            ",".join(map(str, x_shape)), ",".join(map(str, grid.shape)), str(grid_file),
            str(samples),
        ])
    sizes = array_bytes(plan, x_shape, grid.shape, elem)
    sizes["long_entries"] = long_segment_entries(x_shape, grid, mode, padding)
    launches = []
    for launch, count in zip(plan["launches"], counts):
        threads = launch["grid"][0] * launch["grid"][1] * launch["grid"][2]
        per_thread = count / samples  # drawn with replacement: `samples` runs
        moved = launch_bytes(launch, plan, sizes)
        alu = per_thread * threads / INSTRUCTIONS_PER_SECOND * 1e3
        memory = moved / BYTES_PER_SECOND * 1e3
        launches.append({"kernel": launch["kernel"], "function": launch["function"],
                         "threads": threads, "instructions_per_thread": per_thread,
                         "bytes_moved": moved, "alu_ms": alu, "memory_ms": memory})
    return {"case": name, "shape": list(x_shape), "grid": list(grid.shape), "mode": mode,
            "padding": padding, "dtype": dtype, "pass": "bwd" if backward else "fwd",
            "launches": launches, "sizes": sizes}


def input_gradient_costs(forward, backward, elem):
    """The input gradient's model ms, deterministic (this plan) and float-atomic
    (an estimate), each with atomics counted two ways: as 8 bytes of memory
    traffic each (a read-modify-write of 4) and as nothing beyond the array
    they update (absorbed by the cache); each launch costs at least
    LAUNCH_MS (launch_plan.cpp's LAUNCH_BYTES at the model's bandwidth)."""
    (fwd,) = forward["launches"]
    sizes = backward["sizes"]
    taps = sizes["entries"] // 8  # an entry per tap (an upper bound: taps outside have none)
    ours = [l for l in backward["launches"] if l["function"] in INPUT_GRADIENT]

    def launch_ms(alu, moved):
        return max(alu, moved / BYTES_PER_SECOND * 1e3) + LAUNCH_MS

    # count and fill: an integer atomic per tap.
    det = {
        "traffic": sum(launch_ms(l["alu_ms"], l["bytes_moved"] + 8 * taps * (
            l["function"] in ("grid_count", "grid_fill"))) for l in ours),
        "cached": sum(launch_ms(l["alu_ms"], l["bytes_moved"]) for l in ours),
        "launches": len(ours),
    }
    channels = forward["shape"][-1]
    points = int(np.prod(forward["grid"][:-1]))
    dx32 = sizes["dx"] // elem * 4
    atomics = points * TAPS[forward["mode"]] * channels
    # A zero fill of a float32 dx, the forward's threads adding into it (and
    # a conversion pass for a half dx).
    fill = launch_ms(0.0, dx32)
    scatter = sizes["grid"] + sizes["cotangent"] + 2 * dx32
    convert = launch_ms(0.0, dx32 + sizes["dx"]) if elem != 4 else 0.0
    atomic = {
        "traffic": fill + launch_ms(fwd["alu_ms"], scatter + 8 * atomics) + convert,
        "cached": fill + launch_ms(fwd["alu_ms"], scatter) + convert,
        "launches": 2 + (elem != 4),
        "atomics": atomics,
    }
    return det, atomic


def rows(samples=2048, dtype="float32"):
    if shutil.which("valgrind") is None:
        raise SystemExit("the cost model needs valgrind (callgrind)")
    driver = build_driver(DRIVER, grid_harness, "grid_driver")
    out = []
    for name, x_shape, grid, mode, padding in cases():
        fwd = measure(driver, name, x_shape, grid, mode, padding, False, dtype, samples)
        bwd = measure(driver, name, x_shape, grid, mode, padding, True, dtype, samples)
        bwd["deterministic"], bwd["atomic"] = input_gradient_costs(
            fwd, bwd, {"float32": 4}.get(dtype, 2))
        out += [fwd, bwd]
        print(f"  grid_sample {name} {dtype}: done", file=sys.stderr)
    return out


def markdown(rows_):
    lines = [
        "| case | pass | launch | instructions/thread | threads | bytes moved (MB) "
        "| ALU ms | memory ms |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows_:
        shape = "x".join(map(str, r["shape"]))
        case = f"{r['case']} {shape} {r['mode']} {r['padding']} {r['dtype']}"
        for l in r["launches"]:
            lines.append(
                f"| {case} | {r['pass']} | {l['kernel']} | {l['instructions_per_thread']:.0f} "
                f"| {l['threads']} | {l['bytes_moved'] / 1e6:.2f} | {fmt(l['alu_ms'])} "
                f"| {fmt(l['memory_ms'])} |")
    lines += ["", "Input gradient (model ms, each launch max(ALU, memory) + "
              f"{LAUNCH_MS * 1e3:.1f} us): deterministic (clear, count, scan, fill, sort, sum) "
              "vs a float-atomic estimate, atomics as 8 bytes of traffic each / as cached:", "",
              "| case | deterministic ms | float-atomic ms | launches | float atomics "
              "| deterministic / float-atomic |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in rows_:
        if r["pass"] != "bwd":
            continue
        d, a = r["deterministic"], r["atomic"]
        lines.append(
            f"| {r['case']} | {fmt(d['traffic'])} / {fmt(d['cached'])} "
            f"| {fmt(a['traffic'])} / {fmt(a['cached'])} | {d['launches']} vs {a['launches']} "
            f"| {a['atomics']} | {d['traffic'] / a['traffic']:.2f} / "
            f"{d['cached'] / a['cached']:.2f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2048,
                    help="threads run per launch (a fixed pseudo-random sample)")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args()
    result = rows(args.samples)
    print("grid_sample cost model (a model, not a GPU timing): x86 instructions per emulated "
          f"thread under callgrind, {INSTRUCTIONS_PER_SECOND:.1e} instructions/s, "
          f"{BYTES_PER_SECOND / 1e9:.0f} GB/s.\n")
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
