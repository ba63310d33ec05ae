"""upsample(size=...) and Upsample(size=...): MLX's coordinate rules with the
scale size / n per axis, and an output of exactly `size`."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from helpers import assert_close, raises_with, rand, to_f64

from mlx_upsample import Upsample, upsample

# (mode, align_corners, antialias)
MODES = [
    ("nearest", False, False),
    ("linear", False, False),
    ("linear", True, False),
    ("cubic", False, False),
    ("cubic", True, False),
    ("linear", False, True),
    ("cubic", False, True),
]
# (input spatial, size): up, down, mixed, multiples (nearest replicates) and not.
SIZES = [((6, 5), (12, 10)), ((6, 5), (9, 7)), ((6, 5), (4, 3)), ((6, 5), (12, 7)), ((8,), (20,))]


def _mode_id(m):
    return "-".join([m[0]] + (["ac"] if m[1] else []) + (["aa"] if m[2] else []))


@pytest.mark.parametrize("mode,ac,aa", MODES, ids=map(_mode_id, MODES))
@pytest.mark.parametrize("spatial,size", SIZES, ids=lambda v: "x".join(map(str, v)))
def test_size_is_scale_size_over_n(mode, ac, aa, spatial, size):
    """Where scale_factor = size / n reaches `size` too, both give the same bits,
    forward and backward."""
    x = rand((2, *spatial, 3))
    scales = tuple(m / n for m, n in zip(size, spatial))
    assert all(int(n * s) == m for n, s, m in zip(spatial, scales, size))
    by_size = lambda z: upsample(z, mode=mode, align_corners=ac, antialias=aa, size=size)  # noqa: E731
    by_scale = lambda z: upsample(z, scales, mode, ac, aa)  # noqa: E731
    y = by_size(x)
    assert y.shape == (2, *size, 3)
    assert mx.array_equal(y, by_scale(x))
    cot = rand(y.shape, seed=1)
    assert mx.array_equal(mx.vjp(by_size, [x], [cot])[1][0], mx.vjp(by_scale, [x], [cot])[1][0])


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_size_matches_mlx_nn(mode):
    x = rand((1, 6, 5, 2))
    ref = nn.Upsample(scale_factor=(9 / 6, 7 / 5), mode=mode)(x)
    assert_close(upsample(x, mode=mode, size=(9, 7)), ref)
    assert_close(Upsample(mode=mode, size=(9, 7))(x), ref)


def _mlx_linear_1d(x, m):
    """MLX's linear rule (float32 coordinates, clipped, floor/ceil taps) for an
    output of m on an axis of n, the scale m / n; float64 numpy."""
    xs = to_f64(x)
    n = xs.shape[1]
    step = 1 / (m / n)
    start = ((m - 1) * step - n + 1) / 2
    src = np.arange(m, dtype=np.float32) * np.float32(step) - np.float32(start)
    src = np.clip(src, 0, n - 1).astype(np.float64)
    lo, hi = np.floor(src).astype(int), np.ceil(src).astype(int)
    w = (src - lo)[None, :, None]
    return xs[:, lo, :] * (1 - w) + xs[:, hi, :] * w


def test_size_where_scale_factor_lands_short():
    """768 / 47 * 47 == 767.99...: mlx.nn.Upsample(scale_factor=768 / 47) gives
    767 outputs; size=768 gives 768 with the same rule."""
    x = rand((1, 47, 4))
    assert nn.Upsample(scale_factor=768 / 47, mode="linear")(x).shape == (1, 767, 4)
    y = upsample(x, mode="linear", size=768)
    assert y.shape == (1, 768, 4)
    assert_close(y, _mlx_linear_1d(x, 768))
    assert Upsample(size=768, mode="nearest")(x).shape == (1, 768, 4)


def test_size_under_shapeless_compile():
    f = mx.compile(lambda z: upsample(z, mode="cubic", size=(10, 9)), shapeless=True)
    for spatial in [(6, 5), (3, 12), (10, 9)]:
        x = rand((2, *spatial, 3))
        y = f(x)
        assert y.shape == (2, 10, 9, 3)
        assert mx.array_equal(y, upsample(x, mode="cubic", size=(10, 9)))


def test_size_repr_and_errors():
    assert "size=(3, 4)" in repr(Upsample(size=(3, 4), mode="linear"))
    assert "scale_factor=2.0" in repr(Upsample(2.0))
    x = rand((1, 4, 4, 1))
    for fn in (
        lambda: upsample(x, 2, size=8),
        lambda: upsample(x),
        lambda: Upsample(2, size=8),
        lambda: Upsample(),
    ):
        raises_with(ValueError, fn, "exactly one of size and scale_factor")
    raises_with(ValueError, lambda: upsample(x, size=0), "size", "positive")
    raises_with(ValueError, lambda: Upsample(size=(3, 0)), "size", "positive")
    raises_with(ValueError, lambda: upsample(x, size=(3, 4, 5)), "size=(3, 4, 5)", "2 spatial dims")
    raises_with(TypeError, lambda: upsample(x, size=2.5), "size", "int")
    raises_with(TypeError, lambda: Upsample(size="8"), "size", "int")
    raises_with(ValueError, lambda: upsample(x, size=2**31), "size", "2147483647")
