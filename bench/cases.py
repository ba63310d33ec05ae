"""What the benchmark runs: its cases (shapes and scales), modes, dtypes and contenders.

Imports no library under test, so that bench/cost_model.py models the same cases.
"""

import numpy as np

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
IMPLS = ("ours", "mlx", "torch", "memcpy", "fill")
IMPL_LABELS = {"ours": "ours", "mlx": "mlx.nn", "torch": "torch", "memcpy": "memcpy",
               "fill": "fill"}
MB = 1024 * 1024


def jobs(full, antialias_only):
    """(shape, scale, dtype, mode) of every case a run measures, in the order it runs them."""
    cases = QUICK_CASES + (FULL_EXTRA_CASES if full else [])
    dtypes = (np.float32, np.float16) if full else (np.float32,)
    out = [] if antialias_only else [
        (shape, scale, dtype, mode) for dtype in dtypes for shape, scale in cases
        for mode in MODES]
    out += [(shape, scale, dtype, mode) for dtype in dtypes for shape, scale in AA_CASES
            for mode in AA_MODES]
    return out


def split_mode(mode):
    """'cubic+aa' -> ('cubic', True)."""
    base, _, aa = mode.partition("+")
    return base, aa == "aa"


def case_label(row):
    return f"{'x'.join(map(str, row['shape']))} x{row['scale']:g}"
