"""Long axes: source coordinates past float32's reach.

Float32 cannot number the outputs of an axis longer than 2**23 (float(i + 0.5) rounds), so
float32 coordinate arithmetic reads the wrong source there. PyTorch computes linear and
cubic coordinates in float32 even for float64 tensors (measured, torch 2.13: a float64
2**24 + 5 axis upsampled by 2 has 12.6M of its 33.6M outputs on the wrong source; its
issue 144643) and nearest indices in float32 for every dtype; mlx.nn builds a float32
grid. So on long axes none of them is a reference: mlx-upsample computes the exact
coordinate of the documented formula (docs/semantics.md, both families; the integer part
in 64-bit integers), and the references here are those formulas evaluated in numpy,
float64 for the coordinates and int64 where a floor or a rounding decides the source.
Axes up to 2**23 keep the references' own float32 arithmetic, each operation rounded (no
fused multiply-add): PyTorch's default CPU kernels, which conftest.py makes torch run (its
AVX2 and AVX-512 kernels fuse s * (i + 0.5) - 0.5 into one rounding); the rest of the suite
compares those bit for bit.

The first test ports PyTorch's test for its issue 88939 (test_interpolate_buffer_overflow):
align_corners maps the last output onto the last input, which a float32 coordinate past
2**24 rounds to one past the end.
"""

import math
import subprocess
import sys
from fractions import Fraction

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close, to_f64
from mlx_upsample import interpolate, upsample

LONG = 2**24 + 5
# Output positions checked on long axes: both ends, around 2**23 and 2**24 (where float32
# coordinates first fail), and a random sample.
_rng = np.random.default_rng(7)


def probe_positions(m):
    fixed = [np.arange(0, 64), np.arange(m - 64, m)]
    for k in (2**23, 2**24, 2**25):
        if k < m:
            fixed.append(np.arange(max(k - 64, 0), min(k + 64, m)))
    fixed.append(_rng.integers(0, m, 20000))
    return np.unique(np.concatenate(fixed))


def random_signal(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


# --------------------------------------------------------------------------------------
# the formulas, in numpy
# --------------------------------------------------------------------------------------


def torch_coordinate(i, n, m, align_corners, scale_factor, cubic=False):
    """PyTorch's source index (docs/semantics.md, the interpolate column) in float64; `i`
    an int64 array."""
    if align_corners:
        s = (n - 1) / (m - 1) if m > 1 else 0.0
        return s * i
    s = 1.0 / scale_factor if scale_factor else n / m
    src = s * (i + 0.5) - 0.5
    return src if cubic else np.maximum(src, 0.0)


def mlx_coordinate(i, n, scale, align_corners):
    """mlx.nn.Upsample's source coordinate (docs/semantics.md, the Upsample column) in float64."""
    m = int(scale * n)
    if align_corners:
        return i * ((n - 1) / max(m - 1, 1))
    step = 1 / scale
    return i * step - ((m - 1) * step - n + 1) / 2


def linear_at(x, src, clip_src):
    n = x.size
    if clip_src:  # mlx.nn clips the coordinate to [0, N - 1]
        src = np.clip(src, 0, n - 1)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    l1 = np.clip(src - i0, 0.0, 1.0)
    return (1 - l1) * x[i0] + l1 * x[i1]


def cubic_at(x, src):
    n, a = x.size, -0.75
    fl = np.floor(src)
    t = src - fl
    c1 = lambda v: ((a + 2) * v - (a + 3)) * v * v + 1  # noqa: E731
    c2 = lambda v: ((a * v - 5 * a) * v + 8 * a) * v - 4 * a  # noqa: E731
    weights = (c2(t + 1), c1(t), c1(1 - t), c2(2 - t))
    out = np.zeros_like(src)
    for k, w in zip((-1, 0, 1, 2), weights):
        out += w * x[np.clip(fl.astype(np.int64) + k, 0, n - 1)]
    return out


def ours_1d(f, x):
    return to_f64(f(mx.array(x.reshape(1, -1, 1)))).reshape(-1)


# --------------------------------------------------------------------------------------
# PyTorch's issue 88939
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode,shape,scale,dtype",
    [
        # float32: past 2**24, where float(n - 1) rounds to n.
        ("linear", (1, 2**24 + 4, 1), (2,), mx.float32),
        ("bilinear", (1, 2, 2**24 + 4, 1), (1, 2), mx.float32),
        ("bicubic", (1, 2, 2**24 + 4, 1), (1, 2), mx.float32),
        ("trilinear", (1, 1, 2, 2**24 + 4, 1), (1, 1, 2), mx.float32),
        # PyTorch's reduced-precision sizes (its bug computed coordinates in the dtype);
        # scale 2 on every axis as in its test.
        ("linear", (1, 2**8 + 4, 10), (2,), mx.bfloat16),
        ("bilinear", (1, 2, 2**8 + 4, 10), (2, 2), mx.bfloat16),
        ("bicubic", (1, 2, 2**8 + 4, 10), (2, 2), mx.bfloat16),
        ("trilinear", (1, 2, 2, 2**11 + 4, 10), (2, 2, 2), mx.float16),
    ],
    ids=lambda v: str(v) if not isinstance(v, tuple) else "x".join(map(str, v)),
)
def test_align_corners_last_output_reads_last_input(mode, shape, scale, dtype):
    """PyTorch's test_interpolate_buffer_overflow: with align_corners the output corner is
    the input corner, so changing that one input changes the output. Here the corner gets a
    value no other input has; float32 coordinates past 2**24 read one element past the end
    instead (a wrong value, or a crash)."""
    x = np.ones(shape, np.float32)
    x[(0,) + (-1,) * (len(shape) - 2)] = 0.5
    out = interpolate(mx.array(x).astype(dtype), scale_factor=scale, mode=mode, align_corners=True)
    last = out.shape[-2]
    np.testing.assert_array_equal(to_f64(out[(0,) + (-1,) * (len(shape) - 2)]), 0.5)
    # Outputs away from the corner along the long axis interpolate ones.
    i = mx.array(probe_positions(last - 8))
    away = to_f64(mx.take(out, i, axis=-2))
    tol = 4e-6 if dtype == mx.float32 else 1e-2
    np.testing.assert_allclose(away, 1.0, rtol=0, atol=tol)


# --------------------------------------------------------------------------------------
# long axes against the formulas
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_signal():
    return random_signal(LONG)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(scale_factor=1.5), dict(size=3 * LONG - 7)])
def test_interpolate_nearest_long_axis_exact(mode, kw):
    """floor(i * s) (nearest) and floor((i + 0.5) * s) (nearest-exact), s = 1 / scale_factor
    or N / M, in int64: every output on its source (every output for scale 2, a sample
    otherwise). (PyTorch's float32 index math puts 4.2M of the 33.6M outputs of a 2**24 + 5
    axis upsampled by 2 on the wrong source with "nearest", 12.6M with "nearest-exact".)"""
    x = np.arange(LONG, dtype=np.int32)
    out = np.array(interpolate(mx.array(x.reshape(1, -1, 1)), mode=mode, **kw)).reshape(-1)
    m = out.size
    assert m == kw.get("size", math.floor(LONG * kw.get("scale_factor", 0)))
    s = Fraction(LONG, m) if "size" in kw else 1 / Fraction(kw["scale_factor"])
    i = np.arange(m, dtype=np.int64) if kw.get("scale_factor") == 2 else probe_positions(m)
    out = out[i]
    if mode == "nearest":
        expected = i * s.numerator // s.denominator
    else:
        expected = (2 * i + 1) * s.numerator // (2 * s.denominator)
    np.testing.assert_array_equal(out, np.minimum(expected, LONG - 1))


@pytest.mark.parametrize(
    "mode,ac,kw",
    [
        ("linear", False, dict(scale_factor=2)),
        ("linear", True, dict(scale_factor=2)),
        ("linear", False, dict(scale_factor=1.5)),
        ("linear", False, dict(size=2 * LONG + 3)),
        ("cubic", False, dict(scale_factor=2)),
        ("cubic", True, dict(size=2 * LONG - 1)),
    ],
)
def test_interpolate_linear_cubic_long_axis(long_signal, mode, ac, kw):
    x = long_signal
    out = ours_1d(lambda a: interpolate(a, mode=mode, align_corners=ac, **kw), x)
    m = out.size
    i = probe_positions(m)
    src = torch_coordinate(i, LONG, m, ac, kw.get("scale_factor"), cubic=mode == "cubic")
    x64 = x.astype(np.float64)
    expected = linear_at(x64, src, False) if mode == "linear" else cubic_at(x64, src)
    assert_close(out[i], expected)


@pytest.mark.parametrize(
    "mode,ac,scale",
    [("linear", False, 2), ("linear", True, 2), ("linear", False, 1.5), ("cubic", False, 2), ("cubic", True, 1.5)],
)
def test_upsample_linear_cubic_long_axis(long_signal, mode, ac, scale):
    x = long_signal
    out = ours_1d(lambda a: upsample(a, scale, mode=mode, align_corners=ac), x)
    i = probe_positions(out.size)
    src = mlx_coordinate(i, LONG, scale, ac)
    x64 = x.astype(np.float64)
    expected = linear_at(x64, src, True) if mode == "linear" else cubic_at(x64, src)
    assert_close(out[i], expected)


@pytest.mark.parametrize("scale", [1.5, 0.75])
def test_upsample_nearest_long_axis_exact(scale):
    """mlx.nn's rules in exact arithmetic: round_half_even((i + 0.5) * N/M - 0.5) when
    upsampling, floor(i * N/M) otherwise."""
    n = 2**24 + 4
    x = np.arange(n, dtype=np.int32)
    out = np.array(upsample(mx.array(x.reshape(1, -1, 1)), scale)).reshape(-1)
    m = int(scale * n)
    assert out.size == m
    i = probe_positions(m)
    out = out[i]
    if m > n:
        num, den = (2 * i + 1) * n - m, 2 * m  # the coordinate is num / den
        q, r = np.divmod(num, den)
        expected = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1)))
    else:
        expected = i * n // m
    np.testing.assert_array_equal(out, np.clip(expected, 0, n - 1))


def torch_aa_at(x, i, n, m, scale_factor, radius):
    """PyTorch's antialias window and weights (docs/semantics.md, the interpolate column),
    triangle filter, float64."""
    s = 1.0 / scale_factor if scale_factor else n / m
    support = radius * s if s >= 1 else radius
    width = max(s, 1.0)
    center = s * (i + 0.5)
    lo = np.maximum((center - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((center + support + 0.5).astype(np.int64), n)
    taps = int(np.max(hi - lo))
    total = np.zeros(i.size)
    acc = np.zeros(i.size)
    for k in range(taps):
        j = lo + k
        inside = j < hi
        w = np.where(inside, np.maximum(1 - np.abs((j - center + 0.5) / width), 0), 0)
        total += w
        acc += w * x[np.minimum(j, n - 1)]
    return acc / total


def mlx_aa_at(x, i, n, scale, radius):
    """mlx.nn's antialias taps and weights (docs/semantics.md, the Upsample column),
    triangle filter, float64."""
    src = mlx_coordinate(i, n, scale, False)
    inv = 1 / scale if scale < 1 else 1.0
    reach = math.ceil(radius * inv)
    base = np.floor(src).astype(np.int64)
    total = np.zeros(i.size)
    acc = np.zeros(i.size)
    for k in range(-reach, reach + 1):
        j = base + k
        inside = (j >= 0) & (j < n)
        w = np.where(inside, np.maximum(1 - np.abs(src - j) / inv, 0), 0)
        total += w
        acc += w * x[np.clip(j, 0, n - 1)]
    return acc / np.where(total > 0, total, 1)


@pytest.mark.parametrize("scale", [0.5, 0.3])
def test_antialias_long_axis(scale):
    """Antialiased downscales of a long input: window bounds from the exact centre."""
    n = 2**25 + 11
    x = random_signal(n, seed=3)
    x64 = x.astype(np.float64)
    ours = ours_1d(lambda a: interpolate(a, scale_factor=scale, mode="linear", antialias=True), x)
    m = ours.size
    i = probe_positions(m)
    assert_close(ours[i], torch_aa_at(x64, i, n, m, scale, 1.0))
    ours = ours_1d(lambda a: upsample(a, scale, mode="linear", antialias=True), x)
    i = probe_positions(ours.size)
    assert_close(ours[i], mlx_aa_at(x64, i, n, scale, 1.0))


def test_long_axis_gradient(long_signal):
    """The gather backward on a long axis: input j collects cot[i] * w(i, j) over the
    outputs i whose taps read it (here i in 2j - 2 .. 2j + 2, linear x2)."""
    x = mx.array(long_signal.reshape(1, -1, 1))
    m = 2 * LONG
    cot = np.random.default_rng(5).standard_normal(m).astype(np.float32)
    _, (grad,) = mx.vjp(
        lambda a: interpolate(a, scale_factor=2, mode="linear"), [x], [mx.array(cot.reshape(1, -1, 1))]
    )
    grad = to_f64(grad).reshape(-1)
    j = probe_positions(LONG)
    expected = np.zeros(j.size)
    for d in range(-3, 4):
        i = np.clip(2 * j + d, 0, m - 1)
        valid = (2 * j + d >= 0) & (2 * j + d < m)
        src = torch_coordinate(i, LONG, m, False, 2)
        i0 = np.minimum(np.floor(src).astype(np.int64), LONG - 1)
        i1 = np.minimum(i0 + 1, LONG - 1)
        l1 = src - i0
        w = np.where(i0 == j, 1 - l1, 0) + np.where(i1 == j, l1, 0)
        expected += np.where(valid, w * cot[i], 0)
    assert_close(grad[j], expected)


# --------------------------------------------------------------------------------------
# below 2**23: float32 coordinates, rounded after every operation
# --------------------------------------------------------------------------------------


def test_torch_runs_its_default_kernels_here_and_in_children():
    """conftest.py pins ATEN_CPU_CAPABILITY=default before torch is imported, in this
    process and, through the environment, in every child process."""
    assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
    child = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert child.stdout.strip() == "DEFAULT"


def test_long_float32_axis_bit_for_bit_with_torch():
    """2**20 + 7 -> 3 * 2**20 + 5, linear: coordinates s * (i + 0.5) - 0.5 near 2**20, where
    float32 steps by 1/8, so that one rounding or two tell apart (PyTorch's AVX2 and AVX-512
    kernels, with one, change 16 outputs of the ramp, by up to 0.0625, and 593324 of the
    random signal). Ours round twice, as torch's default kernels: the same float32 bits."""
    n, m = 2**20 + 7, 3 * 2**20 + 5
    for x in (np.arange(n, dtype=np.float32), random_signal(n, seed=3)):
        expected = F.interpolate(torch.from_numpy(x).reshape(1, 1, n), size=m, mode="linear")
        got = interpolate(mx.array(x).reshape(1, n, 1), size=m, mode="linear")
        np.testing.assert_array_equal(
            np.array(got).reshape(-1).view(np.uint32), expected.numpy().reshape(-1).view(np.uint32)
        )
