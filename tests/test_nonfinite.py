"""inf and nan inputs: which outputs become inf or nan, as in each reference.

A tap of weight 0 on an inf makes 0 * inf = nan, so where each reference reads a
zero-weight tap decides the result. mlx.nn's linear reads floor(src) and ceil(src) of a
coordinate clipped to [0, N-1]: at whole coordinates both taps are the same input, so a
neighbouring inf does not leak (``Upsample`` matches). PyTorch's linear reads x[i0 + 1]
whatever the weight, keeps the fraction past the last input (on the last input twice) and
copies an axis that keeps its size (``interpolate`` matches). Cubic reads its four taps in
both. The patterns are compared exactly (nan, +inf, -inf, finite), the finite values to
the usual tolerance.

One difference is left: mlx.nn's antialias also multiplies the taps that fall outside
the input (weight 0) by the edge pixel, so an infinite edge pixel turns the outputs next
to that edge into nan where ours stay infinite (ours leave those taps out).
"""

import itertools

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close, to_f64
from mlx_upsample import interpolate, upsample

INF, NAN = float("inf"), float("nan")


def pattern(a):
    a = np.asarray(a, np.float64)
    return np.select([np.isnan(a), np.isposinf(a), np.isneginf(a)], [1, 2, 3], 0)


def assert_same_nonfinite(ours, ref, msg=""):
    ours, ref = to_f64(ours) if isinstance(ours, mx.array) else ours, np.asarray(ref, np.float64)
    np.testing.assert_array_equal(pattern(ours), pattern(ref), err_msg=msg)
    finite = np.isfinite(ref)
    assert_close(np.where(finite, ours, 0), np.where(finite, ref, 0), err_msg=msg)


def test_upsample_linear_inf_like_mlx():
    x = mx.array([1, INF, 3, 4], dtype=mx.float32).reshape(1, 4, 1)
    out = upsample(x, 2, mode="linear")
    np.testing.assert_array_equal(
        np.array(out).ravel(), [1, INF, INF, INF, INF, 3.25, 3.75, 4]
    )
    assert_same_nonfinite(out, np.array(nn.Upsample(2, mode="linear")(x)))


def image_with(value, pos, shape=(1, 5, 6, 1)):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    x[(0, *pos, 0)] = value
    return x


POSITIONS = [(0, 0), (0, 5), (2, 3), (4, 5), (3, 0), (1, 1)]
VALUES = [INF, -INF, NAN]


@pytest.mark.parametrize(
    "mode,ac,aa",
    [("linear", False, False), ("linear", True, False), ("cubic", False, False),
     ("cubic", True, False), ("linear", False, True), ("cubic", False, True)],
)
@pytest.mark.parametrize("scale", [2, 0.5, 1.5, (1, 2), (0.6, 1)])
def test_upsample_nonfinite_like_mlx(mode, ac, aa, scale):
    for value, pos in itertools.product(VALUES, POSITIONS):
        edge = pos[0] in (0, 4) or pos[1] in (0, 5)
        if aa and edge and value != NAN:
            continue  # the difference described in the module docstring
        x = mx.array(image_with(value, pos))
        ours = upsample(x, scale, mode=mode, align_corners=ac, antialias=aa)
        ref = nn.Upsample(scale, mode=mode, align_corners=ac, antialias=aa)(x)
        assert_same_nonfinite(ours, np.array(ref), f"{value} at {pos}")


def torch_reference(x, dtype, channels_last, **kw):
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))).to(dtype)
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    return np.moveaxis(F.interpolate(t, **kw).to(torch.float64).numpy(), 1, -1)


@pytest.mark.parametrize(
    "mode,ac,aa",
    [("bilinear", False, False), ("bilinear", True, False), ("bicubic", False, False),
     ("bicubic", True, False), ("bilinear", False, True), ("bicubic", False, True)],
)
@pytest.mark.parametrize(
    "kw",
    [dict(scale_factor=2), dict(scale_factor=0.5), dict(scale_factor=1.5),
     dict(size=(5, 9)), dict(size=(7, 6))],  # the last two keep one axis's size
    ids=["x2", "x0.5", "x1.5", "keep-rows", "keep-columns"],
)
def test_interpolate_nonfinite_like_torch(mode, ac, aa, kw):
    """Against PyTorch's float64 contiguous kernels and its float32 channels_last ones,
    which agree with each other on where inf and nan go."""
    for value, pos in itertools.product(VALUES, POSITIONS):
        x = image_with(value, pos)
        args = dict(mode=mode, align_corners=ac, antialias=aa, **kw)
        ours = interpolate(mx.array(x), **args)
        for dtype, channels_last in ((torch.float64, False), (torch.float32, True)):
            ref = torch_reference(x, dtype, channels_last, **args)
            assert_same_nonfinite(ours, ref, f"{value} at {pos}, torch {dtype}")


@pytest.mark.parametrize("ac", [False, True])
def test_interpolate_1d_linear_edges_like_torch(ac):
    for value, pos in itertools.product(VALUES, range(4)):
        x = np.array([1, 2, 3, 4], np.float32)
        x[pos] = value
        for kw in (dict(scale_factor=2), dict(size=7), dict(size=3), dict(size=4)):
            ours = interpolate(mx.array(x.reshape(1, 4, 1)), mode="linear", align_corners=ac, **kw)
            ref = F.interpolate(torch.from_numpy(x.astype(np.float64)).view(1, 1, 4), mode="linear",
                                align_corners=ac, **kw)
            assert_same_nonfinite(ours, ref.numpy().reshape(1, -1, 1), f"{value} at {pos} {kw}")
