"""A cost model of the Metal kernels: instructions per thread and bytes moved.

This is a MODEL, not a GPU timing (no Apple GPU runs here; on a Mac `bench/run.py`
times the real kernels). For every pass it plans the call exactly as eval_gpu does
(csrc/metal/launch_plan.cpp), runs a fixed pseudo-random sample of each launch's threads
through the Metal emulator (kernels/upsample.metal compiled as C++ with g++ -O2, no
auto-vectorisation: a GPU thread is scalar, a float4 is four ALU operations) under
valgrind's callgrind, counting only the kernel functions' x86 instructions, and sets
the count against an M2-class GPU:

    ALU ms    = instructions/thread * threads / 1.8e12 instructions/s
    memory ms = bytes moved / 100 GB/s      (each array read and written once, tables
                                            included; the floor a perfect cache gives)
    ratio     = ALU ms / memory ms          (<= 1: the pass is bound by memory)

A pass the plan splits into two launches through a temporary shows both ("a + b"), the
temporary's bytes counted once written and once read. x86 instructions stand in for GPU
instructions to within about 2x (loads and address arithmetic differ; the emulator's
vectors are unrolled into straight-line scalar operations, as a GPU thread runs them);
Apple scales instruction rate and bandwidth together (~17-25 instructions per DRAM byte
across M2/M3 base, Pro, Max), so the ratio carries over. float16 and bfloat16
conversions cost x86 more than a GPU, which converts as it loads.
callgrind is deterministic: the same build gives the same counts on every run.

    python bench/cost_model.py                 # (8,64,64,64) x2 float32 and x0.25 windows,
                                               # then grid_sample (bench/grid_cost_model.py)
    python bench/cost_model.py --full          # plus the benchmark's shapes (bench/run.py)
    python bench/cost_model.py --layout        # plus the layout cases, view and contiguous
    python bench/cost_model.py --json model.json
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mlx.core as mx

import mlx_upsample

ROOT = Path(__file__).resolve().parents[1]
# Besides the installed packages, this script imports the benchmark's case tables
# (bench/cases.py, bench/layout_cases.py) and the Metal emulator (tests/metal_emulator/).
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]
import cases as bench_cases  # noqa: E402
import layout_cases  # noqa: E402
from metal_emulator import harness  # noqa: E402

INSTRUCTIONS_PER_SECOND = 1.8e12
BYTES_PER_SECOND = 100e9
FLAGS = ["-std=c++17", "-O2", "-fno-tree-vectorize", "-msse4.2", "-mf16c", "-ffp-contract=off"]
DRIVER = ROOT / "bench" / "cost_model_driver.cpp"
# callgrind collects inside the kernel functions (and what they call). Names
# the demangler cannot read (valgrind 3.19 and _Float16) stay mangled.
KERNELS = ["gather", "gather_nd", "gather_run", "copy", "copy_nd", "copy_run", "replicate",
           "strided_copy"]
KERNEL_PATTERNS = [f"void {k}<*" for k in KERNELS] + [f"_Z{len(k)}{k}I*" for k in KERNELS]
HEADLINE_SHAPE = (8, 64, 64, 64)
# Per method: (family, public mode, antialias) and the scale of the headline case.
METHODS = {
    "nearest": ("mlx", "nearest", False, 2.0),
    "linear": ("mlx", "linear", False, 2.0),
    "cubic": ("mlx", "cubic", False, 2.0),
    "antialias-linear": ("mlx", "linear", True, 0.25),
    "antialias-cubic": ("mlx", "cubic", True, 0.25),
    "area": ("pytorch", "area", False, 0.25),
}
# The benchmark's modes (bench/cases.py) as methods here.
BENCH_METHODS = {"nearest": "nearest", "linear": "linear", "cubic": "cubic",
                 "linear+aa": "antialias-linear", "cubic+aa": "antialias-cubic"}


def build_driver(driver=DRIVER, emulator=harness, stem="driver") -> Path:
    """Compiles `driver` with the emulator (`emulator`'s SOURCES) once per
    source content."""
    cxx = shutil.which("g++")
    if cxx is None:
        raise SystemExit("the cost model needs g++")
    digest = hashlib.sha256(" ".join(FLAGS).encode())
    sources = emulator.SOURCES + [driver]
    for path in emulator.DEPENDENCIES + [driver]:
        digest.update(path.read_bytes())
    out_dir = Path(tempfile.gettempdir()) / "mlx_upsample_cost_model"
    out_dir.mkdir(exist_ok=True)
    exe = out_dir / f"{stem}_{digest.hexdigest()[:16]}"
    if not exe.exists():
        emu = harness.HERE
        cmd = [cxx, *FLAGS, f"-I{ROOT / 'kernels'}", f"-I{ROOT / 'csrc'}", f"-I{emu}",
               f"-I{emu / 'shim'}", *map(str, sources), "-o", str(exe)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"building the cost model driver failed:\n{done.stderr}")
    return exe


def output_shape(family, mode, antialias, shape, scale):
    """The forward output's shape, from the op's shape inference (nothing is computed)."""
    x = mx.zeros(shape)
    dims = len(shape) - 2
    if family == "mlx":
        y = mlx_upsample.upsample(x, (scale,) * dims, mode, antialias=antialias)
    else:
        y = mlx_upsample.interpolate(x, scale_factor=(scale,) * dims, mode=mode,
                                     antialias=antialias)
    return tuple(y.shape)


def run_callgrind(patterns, command):
    """Runs a driver `command` under callgrind, collecting inside the functions
    `patterns` names; returns the plan it prints first (JSON) and the
    instructions of each of its launches (one dump per launch, in launch
    order: callgrind.out.1, .2, ...)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               "--collect-atstart=no", *(f"--toggle-collect={p}" for p in patterns), *command]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        plan = json.loads(done.stdout.splitlines()[0])
        counts = []
        for k in range(1, len(plan["launches"]) + 1):
            text = Path(f"{out}.{k}").read_text()
            counts.append(int(next(line.split()[1] for line in text.splitlines()
                                   if line.startswith("summary:"))))
    return plan, counts


def measure(driver, method, shape, scale, backward, dtype, samples):
    """Runs one pass on a row-contiguous (N, *spatial, C) `shape` under
    callgrind; returns its launches with their counts."""
    family, mode, antialias, _ = METHODS[method]
    out_shape = output_shape(family, mode, antialias, shape, scale)
    src, dst = (out_shape, shape) if backward else (shape, out_shape)
    dims = len(shape) - 2
    row = measure_plan(driver, method, src, dst, [scale] * dims, backward, dtype, samples)
    elem = row.pop("elem")
    return {"method": method, "shape": list(shape), "scale": scale,
            "floor_bytes": (prod(shape) + prod(out_shape)) * elem, **row}


def measure_plan(driver, method, src, dst, scales, backward, dtype, samples, src_strides=None):
    """Runs the kernels of one pass, as eval_gpu plans them for a source of
    shape `src` (with `src_strides`, elements, or row-contiguous) and a
    destination `dst`, under callgrind; returns its launches with their counts."""
    family, mode, antialias, _ = METHODS[method]
    dims = len(scales)
    elem = {"float32": 4, "float16": 2, "bfloat16": 2}[dtype]
    strides = [",".join(map(str, src_strides))] if src_strides is not None else []
    plan, counts = run_callgrind(KERNEL_PATTERNS, [
        str(driver), *map(str, harness.enum_values(family, method)), "0", "0",
        str(int(backward)), dtype, str(elem), ",".join(map(str, src)),
        ",".join(map(str, dst)), ",".join(map(str, scales)), ",".join(["0"] * dims),
        str(samples), *strides,
    ])
    launches = []
    for launch, count in zip(plan["launches"], counts):
        threads = launch["grid"][0] * launch["grid"][1] * launch["grid"][2]
        per_thread = count / min(samples, threads)
        moved = launch["src_bytes"] + launch["dst_bytes"] + launch["table_bytes"]
        launches.append({**launch, "threads": threads, "instructions_per_thread": per_thread,
                         "bytes_moved": moved})
    return {"dtype": dtype, "pass": "bwd" if backward else "fwd", "launches": launches,
            "elem": elem, **totals(launches)}


def layout_rows(driver, samples):
    """The layout cases (bench/layout_cases.py), float32: each pass on the
    channels-last view of channels-first memory as eval_gpu hands it to the
    kernels (_ext._strided_operand: channel images, one channel each, whose
    result is channels-first memory; the cotangent laid out the same way), and
    on a row-contiguous copy of the view ("contig"), which the view should not
    fall far behind."""
    from mlx_upsample import _ext

    rows = []
    for name, cf_shape, mode, scale, passes in layout_cases.layout_jobs():
        n, c, spatial = cf_shape[0], cf_shape[1], cf_shape[2:]
        out = layout_cases.out_spatial(cf_shape, scale)
        dims = len(spatial)
        x = mx.moveaxis(mx.zeros(cf_shape), 1, -1)
        g = mx.moveaxis(mx.zeros((n, c, *out)), 1, -1)
        label = f"{name} {'x'.join(map(str, cf_shape))} {mode}"
        for backward in (False, True):
            if ("bwd" if backward else "fwd") not in passes:
                continue
            for layout in ("view", "contig"):
                src_shape, dst_shape = ((n, *out, c), (n, *spatial, c)) if backward else (
                    (n, *spatial, c), (n, *out, c))
                strides = None
                if layout == "view":
                    images, shape, strides, _ = _ext._strided_operand(
                        g if backward else x, x, dims)
                    src_shape = shape
                    if images:
                        dst_shape = (n, c, *dst_shape[1:-1], 1)
                row = measure_plan(driver, mode, src_shape, dst_shape, list(scale), backward,
                                   "float32", samples, strides)
                row.pop("elem")
                rows.append({"method": mode, "label": f"{label} ({layout})",
                             "shape": list(cf_shape), "scale": list(scale), **row})
                print(f"  {label} {layout} {row['pass']}: ratio {row['ratio']:.2f}",
                      file=sys.stderr)
    return rows


def prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def totals(launches):
    instructions = sum(l["instructions_per_thread"] * l["threads"] for l in launches)
    moved = sum(l["bytes_moved"] for l in launches)
    alu_ms = instructions / INSTRUCTIONS_PER_SECOND * 1e3
    memory_ms = moved / BYTES_PER_SECOND * 1e3
    return {"alu_ms": alu_ms, "memory_ms": memory_ms, "ratio": alu_ms / memory_ms}


def cases(full):
    """(method, shape, scale, dtype): the headline cases, and with `full` the
    benchmark's shapes, modes and dtypes (bench/cases.py)."""
    out = [(m, HEADLINE_SHAPE, METHODS[m][3], "float32") for m in METHODS]
    if full:
        for shape, scale in bench_cases.QUICK_CASES + bench_cases.FULL_EXTRA_CASES:
            for mode in bench_cases.MODES:
                for dtype in ("float32", "float16"):
                    out.append((BENCH_METHODS[mode], shape, scale, dtype))
        for shape, scale in bench_cases.AA_CASES:
            for mode in bench_cases.AA_MODES:
                out.append((BENCH_METHODS[mode], shape, scale, "float32"))
    seen, unique = set(), []
    for c in out:
        if c not in seen:
            seen.add(c)
            unique.append(c)
    return unique


def fmt(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def markdown(rows):
    lines = [
        "| case | pass | kernel | instructions/thread | threads | bytes moved (MB) "
        "| ALU ms | memory ms | ratio |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ls = r["launches"]
        case = r.get("label") or (
            f"{'x'.join(map(str, r['shape']))} x{r['scale']:g} {r['method']} {r['dtype']}")
        lines.append(
            f"| {case} | {r['pass']} | {' + '.join(l['kernel'] for l in ls)} "
            f"| {' + '.join('%.0f' % l['instructions_per_thread'] for l in ls)} "
            f"| {' + '.join(str(l['threads']) for l in ls)} "
            f"| {sum(l['bytes_moved'] for l in ls) / 1e6:.1f} "
            f"| {fmt(r['alu_ms'])} | {fmt(r['memory_ms'])} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)


def target_lines(rows):
    """The issue's targets at (8,64,64,64) float32: ALU <= the op's memory floor
    (input and output once) for nearest/linear/cubic forward and nearest/linear
    backward, <= 2x for cubic backward and the x0.25 window passes."""
    out = []
    for r in rows:
        if tuple(r["shape"]) != HEADLINE_SHAPE or r["dtype"] != "float32":
            continue
        floor_ms = r["floor_bytes"] / BYTES_PER_SECOND * 1e3
        strict = r["method"] in ("nearest", "linear") or (
            r["method"] == "cubic" and r["pass"] == "fwd")
        limit = 1.0 if strict else 2.0
        ok = r["alu_ms"] <= limit * floor_ms
        out.append(f"- {r['method']} {r['pass']}: ALU {fmt(r['alu_ms'])} ms vs "
                   f"{limit:g}x floor {fmt(limit * floor_ms)} ms: {'met' if ok else 'NOT met'}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="add the benchmark's shapes")
    ap.add_argument("--layout", action="store_true",
                    help="add the layout cases (bench/layout_cases.py), view and contiguous")
    ap.add_argument("--samples", type=int, default=4096,
                    help="threads run per launch (a fixed pseudo-random sample)")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("the cost model needs valgrind (callgrind)")
    driver = build_driver()
    rows = []
    for method, shape, scale, dtype in cases(args.full):
        for backward in (False, True):
            rows.append(measure(driver, method, shape, scale, backward, dtype, args.samples))
            print(f"  {method} {shape} x{scale} {dtype} {rows[-1]['pass']}: "
                  f"ratio {rows[-1]['ratio']:.2f}", file=sys.stderr)
    if args.layout:
        rows += layout_rows(driver, args.samples)
    print("Cost model (a model, not a GPU timing): x86 instructions per emulated thread "
          f"under callgrind, {INSTRUCTIONS_PER_SECOND:.1e} instructions/s, "
          f"{BYTES_PER_SECOND / 1e9:.0f} GB/s.\n")
    print(markdown(rows))
    print("\nTargets (a model):")
    print("\n".join(target_lines(rows)))
    # grid_sample's kernels, modelled the same way (bench/grid_cost_model.py).
    import grid_cost_model

    grid_rows = grid_cost_model.rows(args.samples)
    print("\n" + grid_cost_model.markdown(grid_rows))
    if args.json:
        meta = {"model": "instructions per thread: x86 under callgrind (emulator, g++ "
                + " ".join(FLAGS) + ")", "instructions_per_second": INSTRUCTIONS_PER_SECOND,
                "bytes_per_second": BYTES_PER_SECOND, "samples": args.samples}
        Path(args.json).write_text(
            json.dumps({"meta": meta, "rows": rows, "grid_sample_rows": grid_rows}, indent=1))


if __name__ == "__main__":
    main()
