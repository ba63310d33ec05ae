"""Bad inputs raise ValueError / TypeError naming the argument; nothing raises
NotImplementedError (antialias and area run and match their references)."""

import math
import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close, from_torch_nchw, raises_with, rand, to_torch_nchw

from mlx_upsample import Upsample, interpolate, upsample

X1 = rand((1, 4, 2), seed=1)  # 1 spatial dim, N = 4
X2 = rand((1, 4, 4, 2), seed=2)  # 2 spatial dims
X3 = rand((1, 4, 3, 5, 1), seed=3)


def _both_upsample_entry_points(x, *args, **kwargs):
    """Yield callables hitting the function and the module (constructor + call)."""
    return [
        lambda: upsample(x, *args, **kwargs),
        lambda: Upsample(*args, **kwargs)(x),
    ]


# ======================================================================================
# upsample / Upsample
# ======================================================================================


@pytest.mark.parametrize("bad", [mx.zeros((4, 2)), mx.zeros((3,)), mx.array(1.0)], ids=["2d", "1d", "0d"])
def test_upsample_x_ndim_too_small(bad):
    for fn in _both_upsample_entry_points(bad, 2.0):
        raises_with(ValueError, fn, "x")


@pytest.mark.parametrize("bad", [None, "abc", 3.0], ids=["None", "str", "float"])
def test_upsample_x_not_array(bad):
    for fn in _both_upsample_entry_points(bad, 2.0):
        raises_with(TypeError, fn, "x")


@pytest.mark.parametrize(
    "x,scale",
    [(X1, (2.0, 2.0)), (X2, (2.0,)), (X2, (2.0, 2.0, 2.0)), (X3, (1.5, 2.0))],
    ids=["1d-2", "2d-1", "2d-3", "3d-2"],
)
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_upsample_scale_tuple_length(x, scale, mode):
    for fn in _both_upsample_entry_points(x, scale, mode=mode):
        raises_with(ValueError, fn, "scale_factor")


@pytest.mark.parametrize(
    "scale",
    [0, 0.0, -1.0, -2, math.nan, math.inf, -math.inf, (2.0, 0.0), (2.0, -1.5), (math.nan, 2.0), (2.0, math.inf)],
    ids=str,
)
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_upsample_bad_scale_values(scale, mode):
    for fn in _both_upsample_entry_points(X2, scale, mode=mode):
        raises_with(ValueError, fn, "scale_factor")


@pytest.mark.parametrize("scale", ["2", "2.0", b"2"], ids=["str", "strf", "bytes"])
def test_upsample_scale_wrong_type(scale):
    for fn in _both_upsample_entry_points(X2, scale):
        raises_with(TypeError, fn, "scale_factor")


def test_upsample_scale_none_without_size():
    """None means "not given", as in interpolate: one of scale_factor and size is needed."""
    for fn in _both_upsample_entry_points(X2, None):
        raises_with(ValueError, fn, "exactly one of size and scale_factor", "scale_factor=None")


@pytest.mark.parametrize("scale", [0.1, (0.1, 2.0), (2.0, 0.2)], ids=str)
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_upsample_output_size_zero(scale, mode):
    """scale 0.1 on size 4 -> int(0.4) == 0 output elements along an axis."""
    for fn in _both_upsample_entry_points(X2, scale, mode=mode):
        raises_with(ValueError, fn, "scale_factor")


@pytest.mark.parametrize(
    "x,scale",
    [
        (X1, 1e10),  # 4e10 > 2**31 - 1 on one axis
        (X2, (1.0, 6e8)),  # 2.4e9 > 2**31 - 1
        (rand((1, 16, 16, 1), seed=4), (1e5, 1e5)),  # 2.56e12 > 2**40 elements in total
        (rand((2, 8, 8, 4), seed=5), (1e5, 1e5)),  # 2 * 4 * (8e5)**2 = 5.1e12 > 2**40
    ],
    ids=["axis-1d", "axis-2d", "total", "total-NC"],
)
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_absurd_output_size(x, scale, mode):
    for fn in _both_upsample_entry_points(x, scale, mode=mode):
        raises_with(ValueError, fn, "scale_factor")


@pytest.mark.parametrize("mode", ["foo", "area", "nearest_exact", "Linear", ""])
def test_upsample_unknown_mode(mode):
    for fn in _both_upsample_entry_points(X2, 2.0, mode=mode):
        msg = raises_with(ValueError, fn, "mode")
        if mode:
            assert mode in msg


@pytest.mark.parametrize("mode", [3, None, ["linear"]], ids=["int", "None", "list"])
def test_upsample_mode_wrong_type(mode):
    for fn in _both_upsample_entry_points(X2, 2.0, mode=mode):
        raises_with(TypeError, fn, "mode")


def test_upsample_antialias_nearest():
    for fn in _both_upsample_entry_points(X2, 0.5, mode="nearest", antialias=True):
        raises_with(ValueError, fn, "antialias")


@pytest.mark.parametrize("mode", ["linear", "cubic", "bilinear", "bicubic"])
def test_upsample_antialias_with_align_corners(mode):
    for fn in _both_upsample_entry_points(X2, 0.5, mode=mode, align_corners=True, antialias=True):
        raises_with(ValueError, fn, "align_corners")


@pytest.mark.parametrize("mode", ["linear", "cubic", "bilinear", "trilinear", "bicubic"])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_upsample_antialias_runs_like_mlx(mode, scale):
    """Every linear and cubic name, through the function and the module,
    gives mlx.nn.Upsample(antialias=True)'s result."""
    ref_mode = "cubic" if "cubic" in mode else "linear"
    ref = nn.Upsample(scale, ref_mode, antialias=True)(X2)
    for fn in _both_upsample_entry_points(X2, scale, mode=mode, antialias=True):
        assert_close(fn(), ref)


def test_upsample_antialias_repr():
    assert "antialias=True" in repr(Upsample(0.5, "linear", antialias=True))
    assert "antialias" not in repr(Upsample(0.5, "linear"))


# ======================================================================================
# interpolate
# ======================================================================================


@pytest.mark.parametrize("bad", [mx.zeros((4, 2)), mx.zeros((3,))], ids=["2d", "1d"])
def test_interpolate_x_ndim_too_small(bad):
    raises_with(ValueError, lambda: interpolate(bad, scale_factor=2.0), "x")


@pytest.mark.parametrize("bad", [None, "abc", 1], ids=["None", "str", "int"])
def test_interpolate_x_not_array(bad):
    raises_with(TypeError, lambda: interpolate(bad, scale_factor=2.0), "x")


def test_interpolate_both_size_and_scale():
    msg = raises_with(ValueError, lambda: interpolate(X2, size=(8, 8), scale_factor=2.0), "size")
    assert "scale_factor" in msg


def test_interpolate_neither_size_nor_scale():
    msg = raises_with(ValueError, lambda: interpolate(X2), "size")
    assert "scale_factor" in msg


@pytest.mark.parametrize(
    "x,size", [(X1, (4, 4)), (X2, (4,)), (X2, (4, 4, 4)), (X3, (2, 2))], ids=["1d-2", "2d-1", "2d-3", "3d-2"]
)
def test_interpolate_size_tuple_length(x, size):
    raises_with(ValueError, lambda: interpolate(x, size=size), "size")


@pytest.mark.parametrize(
    "x,scale", [(X1, (2.0, 2.0)), (X2, (2.0,)), (X3, (2.0, 2.0))], ids=["1d-2", "2d-1", "3d-2"]
)
def test_interpolate_scale_tuple_length(x, scale):
    raises_with(ValueError, lambda: interpolate(x, scale_factor=scale, mode="bilinear"), "scale_factor")


@pytest.mark.parametrize("size", [0, -3, (4, 0), (-1, 4)], ids=str)
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_interpolate_bad_size_values(size, mode):
    raises_with(ValueError, lambda: interpolate(X2, size=size, mode=mode), "size")


@pytest.mark.parametrize("size", [math.nan, math.inf, (4, math.nan), (math.inf, 4)], ids=str)
def test_interpolate_non_finite_size(size):
    # a non-finite float where an int is expected: ValueError or TypeError, naming "size"
    raises_with((ValueError, TypeError), lambda: interpolate(X2, size=size, mode="bilinear"), "size")


@pytest.mark.parametrize("size", ["8", (8, "8")], ids=["str", "tuple-str"])
def test_interpolate_size_wrong_type(size):
    raises_with(TypeError, lambda: interpolate(X2, size=size, mode="bilinear"), "size")


@pytest.mark.parametrize(
    "scale", [0, -1.0, math.nan, math.inf, -math.inf, (2.0, 0.0), (math.nan, 1.0)], ids=str
)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "bicubic"])
def test_interpolate_bad_scale_values(scale, mode):
    raises_with(ValueError, lambda: interpolate(X2, scale_factor=scale, mode=mode), "scale_factor")


@pytest.mark.parametrize("scale", ["2", b"2"], ids=["str", "bytes"])
def test_interpolate_scale_wrong_type(scale):
    raises_with(TypeError, lambda: interpolate(X2, scale_factor=scale), "scale_factor")


@pytest.mark.parametrize("scale", [0.1, (2.0, 0.2)], ids=str)
@pytest.mark.parametrize("rsf", [None, True])
def test_interpolate_output_size_zero(scale, rsf):
    raises_with(
        ValueError,
        lambda: interpolate(X2, scale_factor=scale, mode="bilinear", recompute_scale_factor=rsf),
        "scale_factor",
    )


@pytest.mark.parametrize(
    "x,kw,word",
    [
        (X1, dict(size=2**31), "size"),
        (X2, dict(size=(4, 2**31)), "size"),
        (X2, dict(size=(2**21, 2**21)), "size"),  # 2**42 * 2 channels > 2**40
        (X1, dict(scale_factor=1e10), "scale_factor"),
        (rand((1, 16, 16, 1), seed=6), dict(scale_factor=(1e5, 1e5)), "scale_factor"),
    ],
    ids=["size-axis-1d", "size-axis-2d", "size-total", "scale-axis", "scale-total"],
)
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_absurd_output_size(x, kw, word, mode):
    raises_with(ValueError, lambda: interpolate(x, mode=mode, **kw), word)


@pytest.mark.parametrize("mode", ["foo", "Bilinear", "nearest_exact", "", "lanczos"])
def test_interpolate_unknown_mode(mode):
    msg = raises_with(ValueError, lambda: interpolate(X2, scale_factor=2.0, mode=mode), "mode")
    if mode:
        assert mode in msg


@pytest.mark.parametrize("mode", [3, None, ("bilinear",)], ids=["int", "None", "tuple"])
def test_interpolate_mode_wrong_type(mode):
    raises_with(TypeError, lambda: interpolate(X2, scale_factor=2.0, mode=mode), "mode")


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "area"])
@pytest.mark.parametrize("ac", [True, False])
def test_interpolate_align_corners_with_nearest_or_area(mode, ac):
    raises_with(ValueError, lambda: interpolate(X2, scale_factor=2.0, mode=mode, align_corners=ac), "align_corners")


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_interpolate_recompute_with_size(mode):
    raises_with(
        ValueError,
        lambda: interpolate(X2, size=(8, 8), mode=mode, recompute_scale_factor=True),
        "recompute_scale_factor",
    )


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "area"])
def test_interpolate_antialias_with_nearest_or_area(mode):
    # PyTorch: "Anti-alias option is restricted to bilinear, bicubic, ..."
    raises_with(ValueError, lambda: interpolate(X2, scale_factor=0.5, mode=mode, antialias=True), "antialias")


def _torch_2d(x, **kw):
    with torch.no_grad():
        return from_torch_nchw(F.interpolate(to_torch_nchw(x), **kw))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_antialias_with_align_corners_like_torch(mode):
    """PyTorch (measured, 2.13) accepts align_corners=True with antialias: it only changes
    the scale to (n - 1) / (m - 1). Not an error, unlike mlx.nn.Upsample (see
    test_upsample_antialias_with_align_corners)."""
    kw = dict(scale_factor=0.5, mode=mode, align_corners=True, antialias=True)
    assert_close(interpolate(X2, **kw), _torch_2d(X2, **kw))


@pytest.mark.parametrize("mode", ["linear", "bilinear", "trilinear", "bicubic", "cubic"])
@pytest.mark.parametrize("kw", [dict(scale_factor=0.5), dict(size=(8, 3))], ids=["scale", "size"])
def test_interpolate_antialias_runs_like_torch(mode, kw):
    """Every linear and cubic name takes antialias=True, as torch's bilinear/bicubic."""
    tmode = "bicubic" if "cubic" in mode else "bilinear"
    assert_close(
        interpolate(X2, mode=mode, antialias=True, **kw),
        _torch_2d(X2, mode=tmode, antialias=True, **kw),
    )


# ======================================================================================
# errors leave the library usable
# ======================================================================================


def test_library_usable_after_errors():
    for bad in (
        lambda: upsample(X2, -1.0),
        lambda: upsample(X2, 1e12),
        lambda: interpolate(X2, size=0),
        lambda: interpolate(X2, scale_factor=math.nan, mode="bicubic"),
    ):
        with pytest.raises(ValueError):
            bad()
    y = upsample(X2, 2.0, mode="linear")
    mx.eval(y)
    assert y.shape == (1, 8, 8, 2)
    assert np.all(np.isfinite(np.array(y)))


# ======================================================================================
# empty batch / zero channels: a valid empty result (or a ValueError), never a crash
# ======================================================================================

_EMPTY_SNIPPET = """
import mlx.core as mx
from mlx_upsample import upsample, interpolate
x = mx.zeros({shape})
try:
    y = {call}
    mx.eval(y)
    print("SHAPE", tuple(y.shape), y.dtype)
except ValueError as e:
    print("VALUEERROR", e)
"""


def _run_isolated(shape, call):
    """Run in a child process: a crash there (SIGSEGV/SIGFPE) fails this test, not the run."""
    import subprocess

    code = _EMPTY_SNIPPET.format(shape=shape, call=call)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        f"process crashed (returncode {proc.returncode}) running {call} on shape {shape}\n"
        f"{proc.stderr[-2000:]}"
    )
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "shape,call,expected_shape",
    [
        ((2, 4, 4, 0), "upsample(x, 1.5, mode='nearest')", (2, 6, 6, 0)),
        ((2, 4, 4, 0), "upsample(x, 1.5, mode='cubic')", (2, 6, 6, 0)),
        ((2, 4, 0), "upsample(x, 2.0, mode='linear')", (2, 8, 0)),
        ((2, 4, 4, 0), "interpolate(x, scale_factor=1.5, mode='bilinear')", (2, 6, 6, 0)),
        ((2, 4, 4, 0), "interpolate(x, size=(3, 5), mode='nearest-exact')", (2, 3, 5, 0)),
        (
            (2, 4, 4, 0),
            "mx.grad(lambda a: upsample(a, 1.5, mode='linear').sum())(x)",
            (2, 4, 4, 0),
        ),
        ((0, 4, 4, 2), "upsample(x, 1.5, mode='cubic')", (0, 6, 6, 2)),
        ((0, 4, 4, 2), "interpolate(x, size=(3, 5), mode='bicubic')", (0, 3, 5, 2)),
        ((0, 4, 4, 2), "mx.grad(lambda a: interpolate(a, scale_factor=1.5, mode='bilinear').sum())(x)", (0, 4, 4, 2)),
    ],
    ids=[
        "C0-up-nearest",
        "C0-up-cubic",
        "C0-1d-up-linear",
        "C0-bilinear",
        "C0-nearest-exact",
        "C0-grad",
        "N0-up-cubic",
        "N0-bicubic",
        "N0-grad",
    ],
)
def test_empty_batch_or_channels_never_crash(shape, call, expected_shape):
    """mlx.nn.Upsample returns an empty array for zero channels / empty batch (PyTorch also for
    an empty batch; it raises for zero channels).  We accept the empty result of the right
    shape or a ValueError, but never a crash."""
    last = _run_isolated(shape, call)
    if last.startswith("SHAPE"):
        assert last.startswith(f"SHAPE {expected_shape}"), last
    else:
        assert last.startswith("VALUEERROR"), last


@pytest.mark.parametrize(
    "shape,call",
    [
        ((1, 0, 4, 2), "interpolate(x, size=3, mode='bilinear')"),
        ((1, 4, 0, 2), "interpolate(x, size=3, mode='bilinear')"),
        ((1, 0, 2), "interpolate(x, size=5, mode='nearest')"),
        ((1, 0, 4, 2), "interpolate(x, size=(2, 2), mode='area')"),
        ((1, 3, 0, 2), "interpolate(x, size=(4, 4), mode='bicubic', antialias=True)"),
        ((1, 0, 4, 2), "upsample(x, 2.0, mode='cubic')"),
        # The C++ op itself, below the Python checks (what a Metal kernel would
        # otherwise read: a null buffer).
        ((1, 0, 4, 2), "(lambda ext: ext.upsample(x, ext.Family.pytorch, ext.Mode.linear, "
                       "[0.0, 0.0], [3, 3]))(__import__('mlx_upsample')._ext)"),
    ],
)
def test_empty_spatial_input_is_rejected(shape, call):
    """PyTorch: "Input and output sizes should be greater than 0". An output
    position with an empty axis has nothing to read: a ValueError, never
    garbage or a crash."""
    last = _run_isolated(shape, call)
    assert last.startswith("VALUEERROR"), last
    assert "spatial" in last and ("at least 1" in last), last
