"""What grid_sample's deterministic input gradient costs against float atomics.

Builds bench/grid_determinism_driver.cpp (the CPU path's kernels, compiled
with g++ against the installed MLX's headers) and times, per case and thread
count, the fixed-order scatter the CPU path runs against a float-atomic one
(threads split the output points, every tap an atomic float add: the design
of PyTorch's CUDA and MPS backward), best of the repeats, and whether the
atomic one gives the same bits on every repeat.

    python bench/grid_determinism.py [--repeats 15] [--json FILE]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import mlx.core as mx
from mlx_upsample._ext import Mode, Padding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, N, H, W, C, mode, padding): the shapes of bench/grid_cases.py.
CASES = [
    ("STN bilinear", 8, 64, 64, 32, Mode.linear, Padding.zeros),
    ("flow warp bilinear", 4, 256, 256, 3, Mode.linear, Padding.border),
    ("bicubic border C=1024", 1, 48, 48, 1024, Mode.cubic, Padding.border),
]


def build(out_dir: str) -> str:
    cxx = shutil.which("g++")
    if cxx is None:
        raise SystemExit("grid_determinism.py needs g++")
    mlx_dir = os.path.dirname(mx.__file__)
    exe = os.path.join(out_dir, "grid_determinism_driver")
    cmd = [
        cxx, "-std=c++20", "-O3", "-ffp-contract=off", "-Wno-psabi", "-pthread",
        "-I", os.path.join(ROOT, "csrc"), "-I", os.path.join(ROOT, "kernels"),
        "-I", os.path.join(mlx_dir, "include"),
        os.path.join(ROOT, "bench", "grid_determinism_driver.cpp"),
        *(os.path.join(ROOT, "csrc", f) for f in
          ("memory_check.cpp", "memory_limit.cpp", "cpu/allocate.cpp", "cpu/thread_pool.cpp")),
        "-L", os.path.join(mlx_dir, "lib"), "-lmlx", f"-Wl,-rpath,{os.path.join(mlx_dir, 'lib')}",
        "-o", exe,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"building the driver failed:\n{done.stderr}")
    return exe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        print("| case | threads | fixed order ms | float atomic ms | fixed/atomic | atomic repeatable |")
        print("|---|---:|---:|---:|---:|---|")
        for name, n, h, w, c, mode, padding in CASES:
            for threads in (1, 2):
                out = subprocess.run(
                    [exe, *map(str, (n, h, w, c, mode.value, padding.value, threads, args.repeats))],
                    capture_output=True, text=True, check=True).stdout
                row = {"case": name, "threads": threads, **json.loads(out)}
                rows.append(row)
                ratio = row["fixed_order_ms"] / row["float_atomic_ms"]
                print(f"| {name} | {threads} | {row['fixed_order_ms']:.2f} | "
                      f"{row['float_atomic_ms']:.2f} | {ratio:.2f}x | "
                      f"{'yes' if row['float_atomic_bitwise_repeatable'] else 'no'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
