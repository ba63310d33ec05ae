"""Forward values against PyTorch (float64) and mlx.nn.Upsample."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from helpers import assert_close, contiguous_copy, rand, rand_int, to_f64, tol_for
from params import INTERP_CASES, SPATIAL, SWEEP_MODES, SWEEP_N, SWEEP_SCALES, UP_CASES, UP_SPATIAL
from references import (
    mlx_cubic_1d_reference,
    mlx_cubic_taps_inconsistent,
    mlx_out_shape,
    torch_forward,
)

from mlx_upsample import Upsample, interpolate, upsample

# ======================================================================================
# interpolate vs torch.nn.functional.interpolate
# ======================================================================================

def _ours(x, kw):
    return interpolate(
        x,
        size=kw.get("size"),
        scale_factor=kw.get("scale_factor"),
        mode=kw["mode"],
        align_corners=kw.get("align_corners"),
        recompute_scale_factor=kw.get("recompute_scale_factor"),
    )


@pytest.mark.parametrize("shape,kw,seed", INTERP_CASES)
def test_interpolate_forward_vs_torch(shape, kw, seed):
    x = rand(shape, seed=seed)
    out = _ours(x, kw)
    ref = torch_forward(x, **kw)
    assert out.dtype == mx.float32
    assert tuple(out.shape) == ref.shape
    if kw["mode"].startswith("nearest"):
        # nearest copies input values: bit-exact
        np.testing.assert_array_equal(to_f64(out), ref)
    else:
        assert_close(out, ref)


@pytest.mark.parametrize(
    "ours_mode,torch_mode,nd",
    [
        ("linear", "bilinear", 2),
        ("trilinear", "linear", 1),
        ("bilinear", "trilinear", 3),
        ("cubic", "bicubic", 2),
        ("bicubic", "cubic", 1),
    ],
)
def test_interpolate_mode_aliases_vs_torch(ours_mode, torch_mode, nd):
    """"linear"/"bilinear"/"trilinear" are all N-d linear and "cubic" == "bicubic" (lenient)."""
    x = rand((2, *SPATIAL[nd], 3), seed=7)
    out = interpolate(x, scale_factor=1.6, mode=ours_mode)
    ref = torch_forward(x, mode=torch_mode, scale_factor=1.6)
    assert_close(out, ref)


def test_interpolate_known_bicubic_reference_values():
    """PyTorch's own test values: arange(8) as NCHW (1, 2, 2, 2), bicubic, scale 2."""
    x_nchw = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    x = mx.array(np.moveaxis(x_nchw, 1, -1))
    out = interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    out = to_f64(out)
    expected0 = np.array(
        [
            [-0.31641, 0.01562, 0.56250, 0.89453],
            [0.34766, 0.67969, 1.22656, 1.55859],
            [1.44141, 1.77344, 2.32031, 2.65234],
            [2.10547, 2.43750, 2.98438, 3.31641],
        ]
    )
    assert out.shape == (1, 4, 4, 2)
    np.testing.assert_allclose(out[0, :, :, 0], expected0, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out[0, :, :, 1], expected0 + 4, atol=1e-5, rtol=0)


def test_interpolate_default_mode_is_nearest():
    x = rand((2, 5, 6, 3), seed=3)
    out = interpolate(x, scale_factor=1.7)
    ref = torch_forward(x, mode="nearest", scale_factor=1.7)
    np.testing.assert_array_equal(to_f64(out), ref)


def test_interpolate_scalar_size_broadcasts_to_all_axes():
    x = rand((1, 5, 6, 4, 2), seed=4)
    out = interpolate(x, size=3, mode="trilinear")
    ref = torch_forward(x, mode="trilinear", size=3)
    assert out.shape == (1, 3, 3, 3, 2)
    assert_close(out, ref)


def test_interpolate_size_list_accepted():
    x = rand((1, 5, 6, 2), seed=5)
    out = interpolate(x, size=[8, 3], mode="bilinear")
    ref = torch_forward(x, mode="bilinear", size=(8, 3))
    assert_close(out, ref)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "bicubic"])
def test_interpolate_larger_2d_vs_torch(mode):
    x = rand((2, 17, 13, 6), seed=11)
    out = interpolate(x, scale_factor=(2.35, 0.7), mode=mode)
    ref = torch_forward(x, mode=mode, scale_factor=(2.35, 0.7))
    if mode.startswith("nearest"):
        np.testing.assert_array_equal(to_f64(out), ref)
    else:
        assert_close(out, ref)


@pytest.mark.parametrize("scale", [(1.1, 2.1), (2.1, 1.1)])
def test_interpolate_nearest_2d_torch_fast_paths(scale):
    """PyTorch's 2-D legacy nearest treats output == input size as the identity and output ==
    2 * input as ``i >> 1`` even when scale_factor says otherwise (measured on torch 2.13;
    1-D and 3-D use the plain ``floor(i / scale_factor)`` formula). ``interpolate`` promises
    F.interpolate semantics, so it has to reproduce this too."""
    x = rand((1, 5, 7, 2), seed=12)
    out = interpolate(x, scale_factor=scale, mode="nearest")
    ref = torch_forward(x, mode="nearest", scale_factor=scale)
    assert tuple(out.shape) == ref.shape
    np.testing.assert_array_equal(to_f64(out), ref)


@pytest.mark.parametrize(
    "shape,scale",
    [((1, 5, 2), 1.1), ((2, 7, 3), 2.1), ((1, 5, 2, 3, 2), (1.1, 1.0, 1.0)), ((1, 2, 7, 3, 1), (1.0, 2.1, 1.0))],
    ids=["1d-same-size", "1d-double-size", "3d-same-size", "3d-double-size"],
)
def test_interpolate_nearest_1d_3d_no_fast_paths(shape, scale):
    """Unlike 2-D, PyTorch's 1-D and 3-D legacy nearest have no same-size / double-size
    shortcut (measured on torch 2.13 for float32, float64 and uint8, channels-first and
    channels_last_3d): out == in size with scale_factor 1.1 still reads floor(i / 1.1)."""
    x = rand(shape, seed=13)
    out = interpolate(x, scale_factor=scale, mode="nearest")
    ref = torch_forward(x, mode="nearest", scale_factor=scale)
    assert tuple(out.shape) == ref.shape
    np.testing.assert_array_equal(to_f64(out), ref)


# ======================================================================================
# Upsample / upsample vs mlx.nn.Upsample
# ======================================================================================

@pytest.mark.parametrize("shape,mode,ac,scale,seed", UP_CASES)
def test_upsample_module_forward_vs_mlx(shape, mode, ac, scale, seed):
    x = rand(shape, seed=seed)
    ours = Upsample(scale_factor=scale, mode=mode, align_corners=ac)(x)
    ref = nn.Upsample(scale_factor=scale, mode=mode, align_corners=ac)(x)
    assert tuple(ours.shape) == tuple(ref.shape) == mlx_out_shape(shape, scale)
    assert ours.dtype == mx.float32
    if mode == "nearest":
        np.testing.assert_array_equal(np.array(ours), np.array(ref))
    else:
        assert_close(ours, ref)


@pytest.mark.parametrize("shape,mode,ac,scale,seed", UP_CASES[::4])
def test_upsample_function_forward_vs_mlx(shape, mode, ac, scale, seed):
    x = rand(shape, seed=seed + 1000)
    ours = upsample(x, scale, mode=mode, align_corners=ac)
    ref = nn.Upsample(scale_factor=scale, mode=mode, align_corners=ac)(x)
    assert tuple(ours.shape) == tuple(ref.shape)
    if mode == "nearest":
        np.testing.assert_array_equal(np.array(ours), np.array(ref))
    else:
        assert_close(ours, ref)


@pytest.mark.parametrize(
    "alias,canonical,nd",
    [("bilinear", "linear", 2), ("trilinear", "linear", 3), ("bicubic", "cubic", 2)],
)
@pytest.mark.parametrize("ac", [False, True])
def test_upsample_mode_aliases_vs_mlx(alias, canonical, nd, ac):
    x = rand((2, *UP_SPATIAL[nd], 3), seed=21)
    ours = Upsample(scale_factor=1.5, mode=alias, align_corners=ac)(x)
    ref = nn.Upsample(scale_factor=1.5, mode=canonical, align_corners=ac)(x)
    assert_close(ours, ref)


def test_upsample_default_mode_is_nearest():
    x = rand((2, 5, 6, 3), seed=22)
    np.testing.assert_array_equal(
        np.array(Upsample(scale_factor=1.5)(x)), np.array(nn.Upsample(scale_factor=1.5)(x))
    )


@pytest.mark.parametrize("scale", [1.5, 2.5, 0.7, 1.25, 3])
@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.bool_, mx.float16, mx.int16])
def test_upsample_nearest_exact_for_all_dtypes(scale, dtype):
    """nearest is an exact copy and keeps the dtype, bit-identical to mlx.nn.Upsample."""
    shape = (2, 6, 7, 3)
    x = rand(shape, dtype=dtype, seed=23) if dtype == mx.float16 else rand_int(shape, dtype, 23)
    ours = Upsample(scale_factor=scale, mode="nearest")(x)
    ref = nn.Upsample(scale_factor=scale, mode="nearest")(x)
    assert ours.dtype == dtype == ref.dtype
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.array(ours), np.array(ref))


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("ac", [False, True])
@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_upsample_half_keeps_dtype_close_to_mlx(mode, ac, dtype):
    """mlx.nn.Upsample promotes half inputs to float32 in linear/cubic; ours keeps the dtype."""
    x = rand((2, 6, 7, 3), dtype=dtype, seed=24)
    ours = Upsample(scale_factor=1.5, mode=mode, align_corners=ac)(x)
    ref = nn.Upsample(scale_factor=1.5, mode=mode, align_corners=ac)(x)
    assert ours.dtype == dtype
    assert_close(ours.astype(mx.float32), ref.astype(mx.float32), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.bool_])
def test_upsample_int_linear_cubic_gives_float32(mode, dtype):
    x = rand_int((2, 6, 5, 2), dtype, seed=25)
    ours = Upsample(scale_factor=(1.5, 2), mode=mode)(x)
    ref = nn.Upsample(scale_factor=(1.5, 2), mode=mode)(x)
    assert ours.dtype == mx.float32
    assert_close(ours, ref)


# ======================================================================================
# dtypes vs torch float64
# ======================================================================================

DTYPES_FLOAT = [mx.float32, mx.float16, mx.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES_FLOAT)
@pytest.mark.parametrize(
    "mode,ac",
    [
        ("nearest", None),
        ("nearest-exact", None),
        ("bilinear", False),
        ("bilinear", True),
        ("bicubic", False),
        ("bicubic", True),
    ],
)
def test_interpolate_float_dtypes_vs_torch(dtype, mode, ac):
    x = rand((2, 6, 7, 3), dtype=dtype, seed=31)
    out = interpolate(x, scale_factor=(1.7, 0.8), mode=mode, align_corners=ac)
    ref = torch_forward(x, mode=mode, scale_factor=(1.7, 0.8), align_corners=ac)
    assert out.dtype == dtype
    if mode.startswith("nearest"):
        np.testing.assert_array_equal(to_f64(out), ref)
    else:
        rtol, atol = tol_for(dtype)
        assert_close(out, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES_FLOAT)
@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("nd", [1, 3])
def test_interpolate_float_dtypes_vs_torch_other_ranks(dtype, mode, nd):
    x = rand((2, *SPATIAL[nd], 2), dtype=dtype, seed=32)
    out = interpolate(x, scale_factor=1.4, mode=mode)
    ref = torch_forward(x, mode=mode, scale_factor=1.4)
    assert out.dtype == dtype
    rtol, atol = tol_for(dtype)
    assert_close(out, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES_FLOAT)
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_upsample_float_dtypes_vs_torch_integer_scale(dtype, mode):
    """With an integer scale MLX's centre-aligned grid equals PyTorch's half-pixel grid."""
    x = rand((2, 5, 6, 3), dtype=dtype, seed=33)
    out = Upsample(scale_factor=2, mode=mode)(x)
    tmode = {"nearest": "nearest", "linear": "bilinear", "cubic": "bicubic"}[mode]
    ref = torch_forward(x, mode=tmode, scale_factor=2)
    assert out.dtype == dtype
    if mode == "nearest":
        np.testing.assert_array_equal(to_f64(out), ref)
    else:
        rtol, atol = tol_for(dtype)
        assert_close(out, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.int16, mx.bool_])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_interpolate_nearest_int_bool_keeps_dtype(dtype, mode):
    x = rand_int((2, 5, 6, 3), dtype, seed=34)
    out = interpolate(x, scale_factor=(1.6, 0.7), mode=mode)
    ref = torch_forward(x, mode=mode, scale_factor=(1.6, 0.7))
    assert out.dtype == dtype
    np.testing.assert_array_equal(to_f64(out), ref)


# uint8 keeps its dtype in interpolate, like PyTorch (test_uint8.py).
@pytest.mark.parametrize("dtype", [mx.int32, mx.int16, mx.bool_])
@pytest.mark.parametrize("mode,ac", [("bilinear", False), ("bilinear", True), ("bicubic", False)])
def test_interpolate_int_linear_cubic_gives_float32(dtype, mode, ac):
    x = rand_int((2, 5, 6, 3), dtype, seed=35)
    out = interpolate(x, scale_factor=1.5, mode=mode, align_corners=ac)
    ref = torch_forward(x, mode=mode, scale_factor=1.5, align_corners=ac)
    assert out.dtype == mx.float32
    assert_close(out, ref)


# ======================================================================================
# non-contiguous inputs
# ======================================================================================


def _views():
    """(name, builder) where builder(seed) -> non-contiguous (N, H, W, C) view."""

    def transposed(seed):
        base = rand((2, 9, 7, 3), seed=seed)  # (N, W, H, C)
        return mx.swapaxes(base, 1, 2)

    def transposed_full(seed):
        base = rand((3, 7, 9, 2), seed=seed)  # (C, H, W, N)
        return mx.transpose(base, (3, 1, 2, 0))

    def strided(seed):
        base = rand((2, 14, 27, 4), seed=seed)
        return base[:, ::2, 1::3, :]

    def negative_stride(seed):
        base = rand((2, 7, 9, 3), seed=seed)
        return base[:, ::-1, :, ::-1]

    def channel_slice(seed):
        base = rand((2, 7, 9, 6), seed=seed)
        return base[..., 1:4]

    def broadcast_batch(seed):
        base = rand((1, 7, 9, 3), seed=seed)
        return mx.broadcast_to(base, (3, 7, 9, 3))

    def broadcast_spatial(seed):
        base = rand((2, 7, 1, 3), seed=seed)
        return mx.broadcast_to(base, (2, 7, 9, 3))

    def broadcast_channels(seed):
        base = rand((2, 7, 9, 1), seed=seed)
        return mx.broadcast_to(base, (2, 7, 9, 4))

    def broadcast_scalar(seed):
        return mx.broadcast_to(mx.array(0.5 + seed / 100.0), (2, 7, 9, 3))

    return [
        ("broadcast_scalar", broadcast_scalar),
        ("transposed", transposed),
        ("transposed_full", transposed_full),
        ("strided", strided),
        ("negative_stride", negative_stride),
        ("channel_slice", channel_slice),
        ("broadcast_batch", broadcast_batch),
        ("broadcast_spatial", broadcast_spatial),
        ("broadcast_channels", broadcast_channels),
    ]


VIEWS = _views()


@pytest.mark.parametrize("name,make", VIEWS, ids=[v[0] for v in VIEWS])
@pytest.mark.parametrize(
    "mode,ac", [("nearest", None), ("nearest-exact", None), ("bilinear", True), ("bicubic", False)]
)
def test_interpolate_noncontiguous(name, make, mode, ac):
    x = make(41)
    xc = contiguous_copy(x)
    out = interpolate(x, scale_factor=(1.7, 0.6), mode=mode, align_corners=ac)
    out_c = interpolate(xc, scale_factor=(1.7, 0.6), mode=mode, align_corners=ac)
    np.testing.assert_array_equal(np.array(out), np.array(out_c))
    ref = torch_forward(xc, mode=mode, scale_factor=(1.7, 0.6), align_corners=ac)
    if mode.startswith("nearest"):
        np.testing.assert_array_equal(to_f64(out), ref)
    else:
        assert_close(out, ref)


@pytest.mark.parametrize("name,make", VIEWS, ids=[v[0] for v in VIEWS])
@pytest.mark.parametrize("mode,ac,scale", [("nearest", False, 1.5), ("linear", False, 2), ("cubic", True, 1.5)])
def test_upsample_noncontiguous(name, make, mode, ac, scale):
    x = make(42)
    xc = contiguous_copy(x)
    out = Upsample(scale_factor=scale, mode=mode, align_corners=ac)(x)
    out_c = Upsample(scale_factor=scale, mode=mode, align_corners=ac)(xc)
    np.testing.assert_array_equal(np.array(out), np.array(out_c))
    ref = nn.Upsample(scale_factor=scale, mode=mode, align_corners=ac)(xc)
    if mode == "nearest":
        np.testing.assert_array_equal(np.array(out), np.array(ref))
    else:
        assert_close(out, ref)


# ======================================================================================
# misc API behaviour
# ======================================================================================


def test_upsample_module_has_no_parameters():
    from mlx.utils import tree_flatten

    m = Upsample(scale_factor=(2, 1.5), mode="linear")
    assert tree_flatten(m.trainable_parameters()) == []
    assert isinstance(m, nn.Module)


@pytest.mark.parametrize("stream", [None, "default_device", "default_stream"])
def test_stream_argument(stream):
    if stream == "default_device":
        stream = mx.default_device()
    elif stream == "default_stream":
        stream = mx.default_stream(mx.default_device())
    x = rand((2, 5, 6, 3), seed=51)
    a = upsample(x, 1.5, mode="linear", stream=stream)
    b = interpolate(x, scale_factor=1.5, mode="bilinear", stream=stream)
    assert_close(a, nn.Upsample(1.5, mode="linear")(x))
    assert_close(b, torch_forward(x, mode="bilinear", scale_factor=1.5))


def test_output_is_lazy_and_evaluates():
    x = rand((1, 4, 4, 1), seed=52)
    y = upsample(x, 2, mode="cubic")
    mx.eval(y)
    assert_close(y, nn.Upsample(2, mode="cubic")(x))


# ======================================================================================
# 1-D sweeps over many sizes and scales (index math edge cases: ties, exact products,
# clamping at the borders, single-pixel inputs/outputs)
# ======================================================================================

def _sweep_check(out, ref, mode, msg):
    assert tuple(out.shape) == ref.shape, msg
    if mode.startswith("nearest"):
        np.testing.assert_array_equal(to_f64(out), ref, err_msg=msg)
    else:
        assert_close(out, ref, err_msg=msg)


@pytest.mark.parametrize("mode,ac", SWEEP_MODES)
@pytest.mark.parametrize("recompute", [None, True])
def test_interpolate_1d_scale_sweep_vs_torch(mode, ac, recompute):
    for n in SWEEP_N:
        x = rand((1, n, 2), seed=n)
        for s in SWEEP_SCALES:
            if int(n * s) < 1:
                continue
            kw = dict(mode=mode, scale_factor=s, align_corners=ac, recompute_scale_factor=recompute)
            out = interpolate(x, **kw)
            _sweep_check(out, torch_forward(x, **kw), mode, f"N={n} {kw}")


@pytest.mark.parametrize("mode,ac", SWEEP_MODES)
def test_interpolate_1d_size_sweep_vs_torch(mode, ac):
    for n in SWEEP_N:
        x = rand((1, n, 2), seed=100 + n)
        for m in sorted(set(range(1, 2 * n + 3)) | {3 * n, 4 * n + 1}):
            kw = dict(mode=mode, size=m, align_corners=ac)
            out = interpolate(x, **kw)
            _sweep_check(out, torch_forward(x, **kw), mode, f"N={n} {kw}")


@pytest.mark.parametrize("mode,ac", [("nearest", False), ("linear", False), ("linear", True), ("cubic", False), ("cubic", True)])
def test_upsample_1d_scale_sweep_vs_mlx(mode, ac):
    for n in SWEEP_N:
        x = rand((1, n, 2), seed=200 + n)
        for s in SWEEP_SCALES:
            if int(n * s) < 1:
                continue
            out = upsample(x, s, mode=mode, align_corners=ac)
            ref = nn.Upsample(scale_factor=s, mode=mode, align_corners=ac)(x)
            msg = f"N={n} scale={s} mode={mode} ac={ac}"
            assert out.shape == ref.shape, msg
            if mode == "nearest":
                np.testing.assert_array_equal(np.array(out), np.array(ref), err_msg=msg)
            elif mode == "cubic" and mlx_cubic_taps_inconsistent(n, s, ac):
                assert_close(out, mlx_cubic_1d_reference(x, s, ac), err_msg=msg + " (numpy ref)")
            else:
                assert_close(out, ref, err_msg=msg)
                if mode == "cubic":
                    assert_close(out, mlx_cubic_1d_reference(x, s, ac), err_msg=msg + " (numpy ref)")


def test_upsample_cubic_where_mlx_skips_a_tap():
    """N=1, scale 7.3: MLX's float32 src for output 3 is -tiny, MLX's floor(src + 1) == 1, so
    mlx.nn.Upsample returns 0 there.  A 1-pixel input must upsample to a constant."""
    assert mlx_cubic_taps_inconsistent(1, 7.3, False)
    x = rand((2, 1, 3), seed=210)
    out = upsample(x, 7.3, mode="cubic")
    assert out.shape == (2, 7, 3)
    assert_close(out, np.broadcast_to(to_f64(x), (2, 7, 3)))
    assert_close(out, mlx_cubic_1d_reference(x, 7.3, False))


# ======================================================================================
# bigger inputs: several threads, channel blocks, long rows
# ======================================================================================


@pytest.mark.parametrize(
    "mode,ac", [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True), ("bicubic", False)]
)
@pytest.mark.parametrize(
    "shape,kw",
    [
        ((2, 40, 36, 20), dict(scale_factor=(2.3, 0.7))),
        ((1, 64, 48, 16), dict(scale_factor=2)),
        ((3, 12, 10, 300), dict(size=(17, 6))),  # channels > one 256-float block
    ],
    ids=["2x40x36x20", "1x64x48x16", "C300"],
)
def test_interpolate_large_vs_torch(shape, kw, mode, ac):
    x = rand(shape, seed=300)
    out = interpolate(x, mode=mode, align_corners=ac, **kw)
    ref = torch_forward(x, mode=mode, align_corners=ac, **kw)
    if mode.startswith("nearest"):
        np.testing.assert_array_equal(to_f64(out), ref)
    else:
        assert_close(out, ref)


@pytest.mark.parametrize(
    "mode,ac", [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True), ("bicubic", False)]
)
def test_interpolate_long_rows_vs_torch(mode, ac):
    """Output index ~900 along one axis.  Source coordinates are float32 (as in PyTorch's own
    float32 kernels): |src error| ~ 900 * 6e-8 ~ 5e-5 pixel, so values may differ from the
    float64 reference by ~5e-5 * |x[j+1] - x[j]|; torch float32 itself is off by 2.5e-4 here.
    The tolerance allows that rounding and nothing close to a wrong tap or weight."""
    x = rand((1, 9, 700, 3), seed=303)
    kw = dict(mode=mode, align_corners=ac, scale_factor=(1.5, 1.3))
    out = interpolate(x, **kw)
    ref = torch_forward(x, **kw)
    if mode.startswith("nearest"):
        np.testing.assert_array_equal(to_f64(out), ref)
    else:
        assert_close(out, ref, rtol=1e-4, atol=2e-4)


@pytest.mark.parametrize("mode,ac", [("nearest", False), ("linear", False), ("cubic", True)])
@pytest.mark.parametrize(
    "shape,scale",
    [((2, 40, 36, 20), (2.3, 0.7)), ((3, 12, 10, 300), (1.5, 0.6)), ((2, 10, 12, 9, 5), (2, 1.5, 0.8))],
    ids=["2d", "C300", "3d"],
)
def test_upsample_large_vs_mlx(shape, scale, mode, ac):
    x = rand(shape, seed=301)
    out = upsample(x, scale, mode=mode, align_corners=ac)
    ref = nn.Upsample(scale_factor=scale, mode=mode, align_corners=ac)(x)
    if mode == "nearest":
        np.testing.assert_array_equal(np.array(out), np.array(ref))
    else:
        assert_close(out, ref)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_large_half_vs_torch(dtype, mode):
    x = rand((2, 33, 29, 37), dtype=dtype, seed=302)
    out = interpolate(x, scale_factor=(1.9, 0.55), mode=mode)
    assert out.dtype == dtype
    rtol, atol = tol_for(dtype)
    assert_close(out, torch_forward(x, mode=mode, scale_factor=(1.9, 0.55)), rtol=rtol, atol=atol)


def test_results_independent_of_thread_count():
    import mlx_upsample

    x = rand((2, 40, 36, 24), seed=303)
    cot = rand((2, 92, 25, 24), seed=304)
    f = lambda a: interpolate(a, scale_factor=(2.3, 0.7), mode="bicubic")  # noqa: E731
    old = mlx_upsample.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3, 5):
            mlx_upsample.set_num_threads(n)
            assert mlx_upsample.get_num_threads() == n
            (o,), (g,) = mx.vjp(f, [x], [cot])
            mx.eval(o, g)
            results.append((np.array(o), np.array(g)))
    finally:
        mlx_upsample.set_num_threads(old)
    assert mlx_upsample.get_num_threads() == old
    for o, g in results[1:]:
        np.testing.assert_array_equal(o, results[0][0])
        np.testing.assert_array_equal(g, results[0][1])
    assert_close(results[0][0], torch_forward(x, mode="bicubic", scale_factor=(2.3, 0.7)))


# ======================================================================================
# identity sizes, dtype promotion on the identity path, lazy graphs, streams
# ======================================================================================


@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.bool_, mx.float16, mx.bfloat16, mx.float32])
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_upsample_identity_scale(dtype, mode):
    x = (rand((2, 5, 6, 3), dtype=dtype, seed=310) if dtype in (mx.float16, mx.bfloat16, mx.float32)
         else rand_int((2, 5, 6, 3), dtype, seed=310))  # fmt: skip
    out = upsample(x, 1.0, mode=mode)
    ref = nn.Upsample(scale_factor=1.0, mode=mode)(x)
    expected_dtype = dtype if (mode == "nearest" or dtype in (mx.float16, mx.bfloat16, mx.float32)) else mx.float32
    assert out.dtype == expected_dtype
    assert out.shape == x.shape
    np.testing.assert_allclose(to_f64(out), to_f64(ref), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.bool_, mx.float16])
@pytest.mark.parametrize("mode,ac", [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True), ("bicubic", False)])
def test_interpolate_identity_size(dtype, mode, ac):
    x = rand((2, 5, 6, 3), dtype=dtype, seed=311) if dtype == mx.float16 else rand_int((2, 5, 6, 3), dtype, seed=311)
    out = interpolate(x, size=(5, 6), mode=mode, align_corners=ac)
    keeps = mode.startswith("nearest") or dtype in (mx.float16, mx.uint8)
    expected_dtype = dtype if keeps else mx.float32
    assert out.dtype == expected_dtype
    np.testing.assert_array_equal(to_f64(out), torch_forward(x, mode=mode, size=(5, 6), align_corners=ac))


def test_many_ops_in_one_lazy_graph():
    """Build many ops whose inputs go out of scope before evaluation, then eval once."""
    outs, refs = [], []
    for k in range(24):
        x = rand((2, 5 + k % 4, 6 + k % 3, 1 + k % 5), seed=320 + k) * (1 + k)
        mode = ("nearest", "nearest-exact", "bilinear", "bicubic")[k % 4]
        s = (1.3 + 0.1 * k, 0.9)
        outs.append(interpolate(x * 2.0 - 1.0, scale_factor=s, mode=mode))
        refs.append(torch_forward(contiguous_copy(x * 2.0 - 1.0), mode=mode, scale_factor=s))
        del x
    mx.eval(outs)
    for o, r in zip(outs, refs):
        assert_close(o, r)


def test_async_eval():
    x = rand((2, 30, 20, 8), seed=330)
    y = interpolate(x, scale_factor=1.7, mode="bicubic")
    z = upsample(y, 0.5, mode="linear")
    mx.async_eval(z)
    ref = nn.Upsample(0.5, mode="linear")(mx.array(torch_forward(x, mode="bicubic", scale_factor=1.7).astype(np.float32)))
    assert_close(z, ref)


def test_new_stream_on_default_device():
    s = mx.new_stream(mx.default_device())
    x = rand((2, 7, 6, 3), seed=331)
    a = interpolate(x, scale_factor=1.6, mode="bicubic", stream=s)
    b = upsample(x, 1.6, mode="cubic", stream=s)
    with mx.stream(s):
        c = interpolate(x, scale_factor=1.6, mode="bilinear")
    assert_close(a, torch_forward(x, mode="bicubic", scale_factor=1.6))
    assert_close(b, nn.Upsample(1.6, mode="cubic")(x))
    assert_close(c, torch_forward(x, mode="bilinear", scale_factor=1.6))


@pytest.mark.parametrize(
    "make",
    [
        lambda x: interpolate(x, size=x.shape[1:-1], mode="nearest"),
        lambda x: interpolate(x, size=x.shape[1:-1], mode="bilinear"),
        lambda x: upsample(x, 1.0, mode="nearest"),
        lambda x: upsample(x, 1.0, mode="cubic"),
    ],
    ids=["nearest-same-size", "bilinear-same-size", "up-nearest-1", "up-cubic-1"],
)
def test_identity_output_is_safe_to_overwrite(make):
    """A same-size result may share the input's buffer; later (donating) ops on the result
    must not modify the input."""
    x = rand((2, 5, 6, 3), seed=340)
    mx.eval(x)
    x_before = np.array(x)
    y = make(x)
    z = y * 2.0 + 1.0
    mx.eval(z)
    np.testing.assert_array_equal(np.array(x), x_before)
    np.testing.assert_allclose(np.array(z), x_before * 2.0 + 1.0, rtol=1e-6, atol=1e-6)
    # the gradient of a same-size op is the identity and must not alias the cotangent either
    cot = rand(x.shape, seed=341)
    mx.eval(cot)
    cot_before = np.array(cot)
    (_,), (g,) = mx.vjp(make, [x], [cot])
    h = g * 3.0
    mx.eval(h)
    np.testing.assert_array_equal(np.array(cot), cot_before)
    np.testing.assert_allclose(np.array(h), cot_before * 3.0, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 1.5, 0.6])
def test_upsample_nearest_ignores_align_corners_like_mlx(scale):
    x = rand((2, 5, 6, 3), seed=350)
    out = Upsample(scale_factor=scale, mode="nearest", align_corners=True)(x)
    ref = nn.Upsample(scale_factor=scale, mode="nearest", align_corners=True)(x)
    np.testing.assert_array_equal(np.array(out), np.array(ref))


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_interpolate_recompute_false_with_size_is_allowed(mode):
    x = rand((2, 5, 6, 3), seed=351)
    out = interpolate(x, size=(8, 4), mode=mode, recompute_scale_factor=False)
    ref = torch_forward(x, size=(8, 4), mode=mode, recompute_scale_factor=False)
    assert_close(out, ref)


def test_interpolate_scale_factor_list_accepted():
    x = rand((2, 5, 6, 3), seed=352)
    out = interpolate(x, scale_factor=[1.5, 0.7], mode="bicubic")
    assert_close(out, torch_forward(x, scale_factor=(1.5, 0.7), mode="bicubic"))
