"""Parametrisations shared by the test modules: shapes, modes and sizings per rank.

``INTERP_CASES`` (``interpolate`` against PyTorch) and ``UP_CASES`` (``upsample``
against mlx.nn.Upsample) give every case its own seed ``k``, and the 1-D sweeps cover
many sizes and scales.
"""

import pytest

SPATIAL = {1: (11,), 2: (7, 9), 3: (5, 4, 6)}

# (mode name passed to both libraries, align_corners).  "cubic" for ranks 1 and 3 is compared
# with a separable composition of torch's 4-D bicubic (references._cubic_nd).
MODES = {
    1: [
        ("nearest", None),
        ("nearest-exact", None),
        ("linear", False),
        ("linear", True),
        ("linear", None),
        ("cubic", False),
        ("cubic", True),
    ],
    2: [
        ("nearest", None),
        ("nearest-exact", None),
        ("bilinear", False),
        ("bilinear", True),
        ("bicubic", False),
        ("bicubic", True),
        ("bicubic", None),
    ],
    3: [
        ("nearest", None),
        ("nearest-exact", None),
        ("trilinear", False),
        ("trilinear", True),
        ("cubic", False),
        ("cubic", True),
    ],
}

SIZING = {
    1: [
        dict(scale_factor=2.0),
        dict(scale_factor=3),
        dict(scale_factor=1.0),
        dict(scale_factor=1.7),
        dict(scale_factor=0.6),
        dict(scale_factor=0.1),  # output size 1
        dict(scale_factor=(2.5,)),
        dict(size=7),
        dict(size=1),
        dict(size=(23,)),
        dict(scale_factor=1.7, recompute_scale_factor=True),
        dict(scale_factor=0.45, recompute_scale_factor=True),
        dict(scale_factor=2.0, recompute_scale_factor=False),
    ],
    2: [
        dict(scale_factor=2.0),
        dict(scale_factor=(1.5, 0.75)),
        dict(scale_factor=0.5),
        dict(scale_factor=2.3),
        dict(scale_factor=(3, 1)),
        dict(scale_factor=(0.15, 0.12)),  # output (1, 1)
        dict(size=(9, 4)),
        dict(size=1),
        dict(size=(1, 6)),
        dict(scale_factor=(1.7, 0.6), recompute_scale_factor=True),
    ],
    3: [
        dict(scale_factor=2.0),
        dict(scale_factor=(1.5, 0.7, 2.0)),
        dict(size=(3, 5, 2)),
        dict(size=1),
        dict(scale_factor=1.3, recompute_scale_factor=True),
    ],
}

NC = [(1, 1), (2, 3), (1, 4), (3, 2), (2, 1)]


def _fmt(kw):
    return ",".join(f"{k[:5]}={v}" for k, v in kw.items()).replace(" ", "")


def interp_cases():
    cases = []
    k = 0
    for nd in (1, 2, 3):
        for mode, ac in MODES[nd]:
            for sz in SIZING[nd]:
                n, c = NC[k % len(NC)]
                kw = dict(mode=mode, align_corners=ac, **sz)
                cid = f"{nd}d-{mode}-ac{ac}-{_fmt(sz)}-N{n}C{c}"
                cases.append(pytest.param((n, *SPATIAL[nd], c), kw, k, id=cid))
                k += 1
    return cases


INTERP_CASES = interp_cases()


UP_SPATIAL = {1: (10,), 2: (6, 7), 3: (4, 5, 3), 4: (3, 4, 3, 2)}
UP_MODES = [
    ("nearest", False),
    ("linear", False),
    ("linear", True),
    ("cubic", False),
    ("cubic", True),
]
UP_SCALES = {
    1: [2.0, 3, 1.5, 2.5, 0.5, 0.7, 1.0, 0.1, 1.3],
    2: [2, 1.5, 0.6, (2, 1.5), (0.5, 3), (0.2, 0.15), 1.0],
    3: [2, (1.5, 0.8, 2), 0.7],
}


def up_cases():
    cases = []
    k = 0
    for nd in (1, 2, 3):
        for mode, ac in UP_MODES:
            for s in UP_SCALES[nd]:
                n, c = NC[k % len(NC)]
                cid = f"{nd}d-{mode}-ac{ac}-s{s}-N{n}C{c}".replace(" ", "")
                cases.append(pytest.param((n, *UP_SPATIAL[nd], c), mode, ac, s, k, id=cid))
                k += 1
    # 4 spatial dims (MLX supports any number)
    for mode, ac in [("nearest", False), ("linear", False), ("linear", True), ("cubic", False)]:
        for s in (2, 1.5):
            cases.append(
                pytest.param((2, *UP_SPATIAL[4], 2), mode, ac, s, k, id=f"4d-{mode}-ac{ac}-s{s}")
            )
            k += 1
    return cases


UP_CASES = up_cases()

# 1-D sweeps over many sizes and scales
SWEEP_N = (1, 2, 3, 4, 5, 7, 8, 13, 16, 31)
SWEEP_SCALES = (
    0.1, 0.2, 0.25, 0.3, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.7, 0.75, 0.8, 0.9, 0.99, 1.0, 1.01,
    1.1, 1.2, 1.25, 4 / 3, 1.5, 1.6, 5 / 3, 1.7, 1.75, 1.9, 2.0, 2.001, 2.1, 2.5, 2.9, 3.0,
    3.3, 3.5, 4.0, 4.7, 5.0, 7.3, 8.0,
)  # fmt: skip
SWEEP_MODES = [
    ("nearest", None),
    ("nearest-exact", None),
    ("linear", False),
    ("linear", True),
    ("cubic", False),
    ("cubic", True),
]


# grid_sample: (x shape, grid shape) per number of spatial dims (small, odd sizes, the
# grid's spatial shape differing from x's), and every (dims, mode, padding, align_corners)
# PyTorch has: bicubic is 2-D only, "bilinear" is trilinear in 3-D.
GRID_SHAPES = {2: ((2, 5, 7, 3), (2, 4, 6, 2)), 3: ((2, 4, 5, 3, 2), (2, 3, 2, 4, 3))}
GRID_MODES = {2: ("bilinear", "nearest", "bicubic"), 3: ("bilinear", "nearest")}
GRID_PADDINGS = ("zeros", "border", "reflection")


def grid_combos():
    return [
        pytest.param(dims, mode, padding, ac, id=f"{dims}d-{mode}-{padding}-ac{int(ac)}")
        for dims in (2, 3)
        for mode in GRID_MODES[dims]
        for padding in GRID_PADDINGS
        for ac in (False, True)
    ]


GRID_COMBOS = grid_combos()
GRID_DTYPES = ("float32", "float16", "bfloat16")


def grid_kw(mode, padding, align_corners):
    """grid_sample's keyword arguments, the same in both libraries."""
    return dict(mode=mode, padding_mode=padding, align_corners=align_corners)
