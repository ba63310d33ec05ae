"""interpolate on uint8: uint8 out, the same bytes as PyTorch's CPU kernels.

PyTorch resamples uint8 one axis at a time (the last first, unchanged axes skipped),
with int16 fixed-point weights, rounding and clamping to [0, 255] after every axis. The
suite runs torch's default CPU kernels (conftest.py), i.e. its generic uint8 path (its
AVX2 path, which x86 machines run otherwise for up to 4 channels, gives the same bytes),
which these tests compare with ours for channels_last and contiguous tensors. One
exception, a PyTorch bug: a width-1 tensor in the contiguous layout, (N, C, H, 1) or
one channel in any layout, repeats the first output row (the generic path mishandles the
width-1 stride; torch 2.13), where the same pass along the width, a channels_last tensor
of more channels, and the float64 result rounded, agree with us.

PyTorch has uint8 kernels for 2-D bilinear and bicubic only; other ranks are compared
with PyTorch's 2-D kernels applied to 1-D rows (height 1) and composed for 3-D (first the
two last axes, then the first), which is the same sequence of rounded passes.
``Upsample``/``upsample`` keep mlx.nn's rule (integers interpolate to float32).
"""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close
from mlx_upsample import interpolate, upsample

_rng = np.random.default_rng(11)


def random_uint8(shape):
    return _rng.integers(0, 256, size=shape).astype(np.uint8)


def torch_uint8(x, channels_last=True, **kw):
    """PyTorch's uint8 F.interpolate of channels-last numpy (N, H, W, C)."""
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    return np.moveaxis(F.interpolate(t, **kw).numpy(), 1, -1)


def ours(x, **kw):
    out = interpolate(mx.array(x), **kw)
    assert out.dtype == mx.uint8
    return np.array(out)


def torch_uint8_along_width(x, **kw):
    """torch_uint8 of a width-1 ``x`` through its transpose (N, W, H, C): the same single
    pass, along the width, away from PyTorch's width-one bug (test_pytorch_width_one_bug)."""
    kw = {k: tuple(v)[::-1] if isinstance(v, tuple) else v for k, v in kw.items()}
    return torch_uint8(np.swapaxes(x, 1, 2), **kw).swapaxes(1, 2)


@pytest.fixture(autouse=True)
def _cpu_only(device):
    if device != "cpu":
        pytest.skip("uint8 linear/cubic run on the CPU only (GPU: test_gpu_stream_raises)")


def test_bicubic_known_values():
    x = np.array([0, 255, 0, 255], np.uint8).reshape(1, 1, 4, 1)
    expected = [0, 67, 224, 215, 40, 31, 188, 255]
    np.testing.assert_array_equal(ours(x, size=(1, 8), mode="bicubic").ravel(), expected)
    np.testing.assert_array_equal(torch_uint8(x, size=(1, 8), mode="bicubic").ravel(), expected)


SIZES = [
    ((11, 10), dict(size=(7, 9))),
    ((11, 10), dict(size=(20, 13))),
    ((5, 6), dict(size=(3, 17))),
    ((9, 9), dict(size=(9, 4))),  # height kept: PyTorch skips that axis
    ((1, 8), dict(size=(1, 3))),
    ((8, 1), dict(size=(3, 1))),
    ((13, 17), dict(scale_factor=1.7)),
    ((13, 17), dict(scale_factor=(0.6, 2.3))),
    ((13, 17), dict(scale_factor=0.45, recompute_scale_factor=True)),
    ((64, 60), dict(scale_factor=0.13)),
]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("channels", [1, 3, 4, 5, 8])
def test_2d_vs_torch_channels_last(mode, antialias, align_corners, channels):
    for (h, w), kw in SIZES:
        x = random_uint8((2, h, w, channels))
        args = dict(mode=mode, antialias=antialias, align_corners=align_corners, **kw)
        # One channel is PyTorch's contiguous layout even as channels_last.
        reference = torch_uint8_along_width if w == 1 and channels == 1 else torch_uint8
        np.testing.assert_array_equal(ours(x, **args), reference(x, **args), err_msg=str(args))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("channels", [2, 3, 16, 64])
def test_2d_larger_vs_torch_both_layouts(mode, antialias, channels):
    """Wide antialias windows (x0.05: 20 inputs per output and more), many channels,
    contiguous and channels_last PyTorch tensors (its generic and AVX2 paths)."""
    for (h, w), kw in [((64, 48), dict(size=(130, 97))), ((200, 150), dict(size=(7, 13))),
                       ((300, 256), dict(scale_factor=0.05)), ((40, 50), dict(scale_factor=(3.3, 0.7)))]:
        x = random_uint8((1, h, w, channels))
        args = dict(mode=mode, antialias=antialias, **kw)
        expected = ours(x, **args)
        for channels_last in (True, False):
            np.testing.assert_array_equal(
                expected, torch_uint8(x, channels_last, **args), err_msg=f"{args} cl={channels_last}"
            )


def test_pytorch_width_one_bug():
    """Where PyTorch's contiguous uint8 path is wrong, we agree with its channels_last path,
    with the same pass along the width and with the float64 result rounded."""
    x = random_uint8((1, 8, 1, 5))
    args = dict(size=(3, 1), mode="bilinear")
    out = ours(x, **args)
    np.testing.assert_array_equal(out, torch_uint8(x, True, **args))
    np.testing.assert_array_equal(out, torch_uint8_along_width(x, **args))
    # Contiguous, and one channel even as channels_last: PyTorch repeats the first row.
    for wrong in (torch_uint8(x, False, **args), torch_uint8(x[..., :1], True, **args)):
        assert (wrong[0] == wrong[0, :1]).all()
    t64 = torch.from_numpy(np.moveaxis(x, -1, 1).astype(np.float64))
    rounded = np.moveaxis(F.interpolate(t64, **args).numpy(), 1, -1)
    # Half-way values: float64 lands within an ulp of .5, either side.
    assert np.abs(out - rounded).max() <= 0.5 + 1e-9


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("antialias", [False, True])
def test_1d_is_pytorchs_2d_with_height_one(mode, antialias):
    x = random_uint8((3, 37, 4))
    for kw in (dict(size=80), dict(size=9), dict(scale_factor=0.31)):
        got = ours(x, mode=mode, antialias=antialias, **kw)
        tkw = {k: ((1, v) if k == "size" else (1.0, v)) for k, v in kw.items()}
        expected = torch_uint8(x[:, None], mode="bi" + mode, antialias=antialias, **tkw)[:, 0]
        np.testing.assert_array_equal(got, expected, err_msg=str(kw))


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_3d_is_pytorchs_passes_composed(mode):
    x = random_uint8((2, 5, 9, 8, 3))
    size = (7, 4, 13)
    got = ours(x, size=size, mode=mode)
    n, d, h, w, c = x.shape
    tmode = "bi" + mode
    # the last two axes (width, then height) ...
    planes = torch_uint8(x.reshape(n * d, h, w, c), size=size[1:], mode=tmode)
    planes = planes.reshape(n, d, size[1] * size[2], c)
    # ... then depth, the second axis kept (PyTorch skips it)
    expected = torch_uint8(planes, size=(size[0], size[1] * size[2]), mode=tmode)
    np.testing.assert_array_equal(got, expected.reshape(n, *size, c))


def test_identity_and_other_modes():
    x = random_uint8((2, 5, 6, 3))
    same = interpolate(mx.array(x), size=(5, 6), mode="bilinear")
    assert same.dtype == mx.uint8
    np.testing.assert_array_equal(np.array(same), x)
    # area has no uint8 kernel in PyTorch: float32, like the other integer types
    area = interpolate(mx.array(x), size=(2, 3), mode="area")
    assert area.dtype == mx.float32
    t = torch.from_numpy(np.moveaxis(x, -1, 1).astype(np.float64))
    assert_close(area, np.moveaxis(F.interpolate(t, size=(2, 3), mode="area").numpy(), 1, -1))


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_upsample_keeps_mlx_float32_rule(mode):
    x = mx.array(random_uint8((2, 5, 6, 3)))
    out = upsample(x, 1.5, mode=mode)
    assert out.dtype == mx.float32
    assert_close(out, nn.Upsample(1.5, mode=mode)(x))


def test_vmap_and_compile():
    x = random_uint8((4, 2, 6, 7, 3))
    fn = lambda a: interpolate(a, size=(9, 5), mode="bicubic", antialias=True)  # noqa: E731
    expected = np.stack([ours(x[k], size=(9, 5), mode="bicubic", antialias=True) for k in range(4)])
    np.testing.assert_array_equal(np.array(mx.vmap(fn)(mx.array(x))), expected)
    np.testing.assert_array_equal(np.array(mx.compile(fn)(mx.array(x[0]))), expected[0])


@pytest.mark.parametrize(
    "transform",
    [
        lambda f, x: mx.grad(lambda a: f(a).astype(mx.float32).sum())(x),
        lambda f, x: mx.vjp(f, [x], [mx.ones(f(x).shape, mx.uint8)])[1],
        lambda f, x: mx.jvp(f, [x], [mx.ones_like(x)])[1],
        lambda f, x: mx.grad(lambda a: f(a.astype(mx.uint8)).astype(mx.float32).sum())(
            x.astype(mx.float32)
        ),
    ],
    ids=["grad", "vjp", "jvp", "grad-through-astype"],
)
def test_no_gradient(transform):
    x = mx.array(random_uint8((1, 4, 4, 2)))
    fn = lambda a: interpolate(a, scale_factor=2, mode="bilinear")  # noqa: E731
    with pytest.raises(ValueError, match="uint8 output .* has no gradient"):
        mx.eval(transform(fn, x))


@pytest.mark.skipif(not mx.metal.is_available(), reason="needs a GPU stream")
def test_gpu_stream_raises():
    x = mx.array(random_uint8((1, 4, 4, 3)))
    with pytest.raises(NotImplementedError, match="CPU only"):
        interpolate(x, scale_factor=2, mode="bilinear", stream=mx.gpu)
    for mode in ("nearest", "nearest-exact"):  # copies: every device
        assert interpolate(x, scale_factor=2, mode=mode, stream=mx.gpu).dtype == mx.uint8
