"""Gradients (vjp / grad / jvp) against PyTorch float64 autograd and mlx.nn.Upsample."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from helpers import assert_close, rand, tol_for
from params import INTERP_CASES, SPATIAL, SWEEP_MODES, SWEEP_N, SWEEP_SCALES, UP_CASES
from references import (
    mlx_cubic_1d_reference,
    mlx_cubic_taps_inconsistent,
    mlx_out_shape,
    torch_forward,
    torch_forward_and_grad,
    torch_out_shape,
)

from mlx_upsample import Upsample, interpolate, upsample


def _interp_fn(kw):
    def f(a):
        return interpolate(
            a,
            size=kw.get("size"),
            scale_factor=kw.get("scale_factor"),
            mode=kw["mode"],
            align_corners=kw.get("align_corners"),
            recompute_scale_factor=kw.get("recompute_scale_factor"),
        )

    return f


# ======================================================================================
# interpolate: vjp vs torch float64 autograd
# ======================================================================================


@pytest.mark.parametrize("shape,kw,seed", INTERP_CASES)
def test_interpolate_vjp_vs_torch(shape, kw, seed):
    x = rand(shape, seed=seed)
    cot = rand(torch_out_shape(x, **kw), seed=seed + 10_000)
    ref_out, ref_grad = torch_forward_and_grad(x, cot, **kw)
    (out,), (g,) = mx.vjp(lambda a: _interp_fn(kw)(a), [x], [cot])
    assert g.shape == x.shape
    assert g.dtype == mx.float32
    assert_close(out, ref_out)
    assert_close(g, ref_grad)


@pytest.mark.parametrize("shape,kw,seed", INTERP_CASES[::3])
def test_interpolate_grad_vs_torch(shape, kw, seed):
    """Same through mx.grad of sum(out * cot) (a different autograd entry point)."""
    x = rand(shape, seed=seed + 1)
    cot = rand(torch_out_shape(x, **kw), seed=seed + 20_000)
    _, ref_grad = torch_forward_and_grad(x, cot, **kw)
    f = _interp_fn(kw)
    g = mx.grad(lambda a: (f(a) * cot).sum())(x)
    assert_close(g, ref_grad)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16, mx.float32])
@pytest.mark.parametrize(
    "mode,ac", [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bicubic", True)]
)
def test_interpolate_grad_dtypes_vs_torch(dtype, mode, ac):
    x = rand((2, 6, 7, 3), dtype=dtype, seed=61)
    kw = dict(mode=mode, scale_factor=(1.7, 0.8), align_corners=ac)
    cot = rand(torch_out_shape(x, **kw), dtype=dtype, seed=62)
    _, ref_grad = torch_forward_and_grad(x, cot, **kw)
    (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
    assert g.dtype == dtype
    rtol, atol = tol_for(dtype)
    assert_close(g, ref_grad, rtol=rtol, atol=atol)


def test_interpolate_grad_larger_2d_vs_torch():
    x = rand((2, 17, 13, 6), seed=63)
    for kw in (
        dict(mode="bilinear", scale_factor=(2.35, 0.7)),
        dict(mode="bicubic", scale_factor=(0.45, 3.2), align_corners=True),
        dict(mode="nearest", size=(5, 29)),
        dict(mode="nearest-exact", size=(40, 4)),
    ):
        cot = rand(torch_out_shape(x, **kw), seed=64)
        _, ref_grad = torch_forward_and_grad(x, cot, **kw)
        (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
        assert_close(g, ref_grad, err_msg=str(kw))


# ======================================================================================
# Upsample: grad vs mlx.nn.Upsample
# ======================================================================================


@pytest.mark.parametrize("shape,mode,ac,scale,seed", UP_CASES)
def test_upsample_grad_vs_mlx(shape, mode, ac, scale, seed):
    x = rand(shape, seed=seed)
    cot = rand(mlx_out_shape(shape, scale), seed=seed + 30_000)
    ours = Upsample(scale_factor=scale, mode=mode, align_corners=ac)
    ref = nn.Upsample(scale_factor=scale, mode=mode, align_corners=ac)
    g = mx.grad(lambda a: (ours(a) * cot).sum())(x)
    g_ref = mx.grad(lambda a: (ref(a) * cot).sum())(x)
    assert g.shape == x.shape
    assert_close(g, g_ref)


@pytest.mark.parametrize("mode,ac", [("nearest", False), ("linear", True), ("cubic", False)])
@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_upsample_grad_half_dtypes_vs_mlx(mode, ac, dtype):
    x = rand((2, 6, 7, 3), dtype=dtype, seed=65)
    cot = rand(mlx_out_shape(x.shape, 1.5), dtype=dtype, seed=66)
    (_,), (g,) = mx.vjp(lambda a: upsample(a, 1.5, mode=mode, align_corners=ac), [x], [cot])
    # reference: mlx.nn.Upsample in float32 on the same (half-representable) values
    ref = nn.Upsample(scale_factor=1.5, mode=mode, align_corners=ac)
    (_,), (g_ref,) = mx.vjp(ref, [x.astype(mx.float32)], [cot.astype(mx.float32)])
    assert g.dtype == dtype
    assert_close(g.astype(mx.float32), g_ref, rtol=1e-2, atol=1e-2)


# ======================================================================================
# determinism
# ======================================================================================


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: upsample(a, 2.3, mode="linear"),
        lambda a: upsample(a, (0.45, 3.1), mode="cubic", align_corners=True),
        lambda a: upsample(a, (1.5, 0.6), mode="nearest"),
        lambda a: interpolate(a, scale_factor=(2.7, 0.55), mode="bilinear"),
        lambda a: interpolate(a, size=(40, 5), mode="bicubic"),
        lambda a: interpolate(a, scale_factor=(0.4, 1.9), mode="nearest-exact"),
        lambda a: interpolate(a, size=(31, 3), mode="nearest"),
    ],
    ids=["up-linear", "up-cubic-ac", "up-nearest", "bilinear", "bicubic", "nearest-exact", "nearest"],
)
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16])
def test_gradient_bitwise_deterministic(fn, dtype):
    x = rand((3, 17, 15, 6), dtype=dtype, seed=71)
    out_shape = fn(x).shape
    cot = rand(out_shape, dtype=dtype, seed=72)
    grad = mx.grad(lambda a: (fn(a) * cot).astype(mx.float32).sum())
    runs = []
    for _ in range(3):
        g = grad(x)
        mx.eval(g)
        runs.append(np.array(g.astype(mx.float32)))
    assert np.all(np.isfinite(runs[0]))
    assert np.abs(runs[0]).max() > 0
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_forward_bitwise_deterministic():
    x = rand((3, 17, 15, 6), seed=73)
    outs = [np.array(interpolate(x, scale_factor=2.3, mode="bicubic")) for _ in range(3)]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


# ======================================================================================
# jvp
# ======================================================================================

JVP_FUNS = [
    ("up-nearest-1.5", lambda a: upsample(a, 1.5, mode="nearest")),
    ("up-linear-2", lambda a: upsample(a, 2, mode="linear")),
    ("up-linear-ac-0.6", lambda a: upsample(a, 0.6, mode="linear", align_corners=True)),
    ("up-cubic-(1.5,0.7)", lambda a: upsample(a, (1.5, 0.7), mode="cubic")),
    ("up-cubic-ac-2.5", lambda a: upsample(a, 2.5, mode="cubic", align_corners=True)),
    ("nearest", lambda a: interpolate(a, scale_factor=1.7, mode="nearest")),
    ("nearest-exact", lambda a: interpolate(a, size=(4, 11), mode="nearest-exact")),
    ("bilinear", lambda a: interpolate(a, scale_factor=(1.3, 0.6), mode="bilinear")),
    ("bilinear-ac", lambda a: interpolate(a, size=(9, 1), mode="bilinear", align_corners=True)),
    ("bicubic", lambda a: interpolate(a, scale_factor=2.2, mode="bicubic")),
    ("bicubic-rsf", lambda a: interpolate(a, scale_factor=1.7, mode="bicubic", recompute_scale_factor=True)),
]


@pytest.mark.parametrize("name,fn", JVP_FUNS, ids=[f[0] for f in JVP_FUNS])
def test_jvp_vjp_adjoint(name, fn):
    """<jvp(t), c> == <t, vjp(c)> for random tangent t and cotangent c."""
    x = rand((2, 7, 6, 3), seed=81)
    t = rand(x.shape, seed=82)
    out_shape = fn(x).shape
    c = rand(out_shape, seed=83)
    (_,), (jt,) = mx.jvp(fn, [x], [t])
    (_,), (vc,) = mx.vjp(fn, [x], [c])
    assert jt.shape == out_shape
    assert vc.shape == x.shape
    lhs = float(np.sum(np.array(jt, np.float64) * np.array(c, np.float64)))
    rhs = float(np.sum(np.array(t, np.float64) * np.array(vc, np.float64)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "kw",
    [
        dict(mode="nearest", scale_factor=(1.7, 0.6)),
        dict(mode="nearest-exact", scale_factor=2.5),
        dict(mode="bilinear", scale_factor=(1.3, 0.6)),
        dict(mode="bilinear", size=(9, 4), align_corners=True),
        dict(mode="bicubic", scale_factor=2.2),
        dict(mode="bicubic", size=(3, 11), align_corners=True),
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()).replace(" ", ""),
)
def test_interpolate_jvp_vs_torch(kw):
    """The op is linear in x, so jvp(x; t) == F(t); checked against torch and the primal."""
    x = rand((2, 7, 6, 3), seed=84)
    t = rand(x.shape, seed=85)
    f = _interp_fn(kw)
    (out,), (jt,) = mx.jvp(f, [x], [t])
    assert_close(out, torch_forward(x, **kw))
    assert_close(jt, torch_forward(t, **kw))


@pytest.mark.parametrize("mode,ac,scale", [("nearest", False, 1.5), ("linear", False, 0.7), ("cubic", True, (2, 1.5))])
def test_upsample_jvp_vs_mlx(mode, ac, scale):
    x = rand((2, 6, 5, 3), seed=86)
    t = rand(x.shape, seed=87)
    (o,), (jt,) = mx.jvp(Upsample(scale, mode=mode, align_corners=ac), [x], [t])
    (o_ref,), (jt_ref,) = mx.jvp(nn.Upsample(scale, mode=mode, align_corners=ac), [x], [t])
    assert_close(o, o_ref)
    assert_close(jt, jt_ref)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_jvp_half_dtype(dtype):
    x = rand((1, 5, 6, 2), dtype=dtype, seed=88)
    t = rand(x.shape, dtype=dtype, seed=89)
    f = lambda a: interpolate(a, scale_factor=1.5, mode="bicubic")  # noqa: E731
    (_,), (jt,) = mx.jvp(f, [x], [t])
    assert jt.dtype == dtype
    assert_close(jt, torch_forward(t, mode="bicubic", scale_factor=1.5), rtol=1e-2, atol=1e-2)


# ======================================================================================
# higher order and gradients through views
# ======================================================================================


@pytest.mark.parametrize("mode,ac,scale", [("nearest", False, 1.5), ("linear", False, 2.5), ("cubic", True, (0.7, 1.6))])
def test_second_order_vs_mlx(mode, ac, scale):
    """Hessian-vector product of sum(w * up(x)**2): exercises the backward op's own vjp."""
    x = rand((2, 6, 5, 2), seed=91)
    v = rand(x.shape, seed=92)
    w = rand(mlx_out_shape(x.shape, scale), seed=93)

    def hvp(up):
        g = mx.grad(lambda a: (w * up(a) ** 2).sum())
        return mx.grad(lambda a: (g(a) * v).sum())(x)

    ours = hvp(Upsample(scale, mode=mode, align_corners=ac))
    ref = hvp(nn.Upsample(scale, mode=mode, align_corners=ac))
    assert_close(ours, ref)


def test_vjp_of_vjp_is_forward():
    """The backward of the backward is the forward again (op is linear): vs torch."""
    kw = dict(mode="bicubic", scale_factor=(1.6, 0.7))
    x = rand((2, 7, 6, 3), seed=94)
    c = rand(torch_out_shape(x, **kw), seed=95)
    t = rand(x.shape, seed=96)
    f = _interp_fn(kw)

    def back(cot):
        return mx.vjp(f, [x], [cot])[1][0]

    (_,), (again,) = mx.vjp(back, [c], [t])
    assert_close(again, torch_forward(t, **kw))


@pytest.mark.parametrize("mode,ac", [("nearest", None), ("bilinear", True), ("bicubic", False)])
def test_grad_through_noncontiguous_views_vs_torch(mode, ac):
    base = rand((2, 9, 7, 3), seed=97)  # (N, W, H, C)
    kw = dict(mode=mode, scale_factor=(1.7, 0.6), align_corners=ac)
    xt = mx.swapaxes(base, 1, 2)
    cot = rand(torch_out_shape(xt, **kw), seed=98)
    f = _interp_fn(kw)
    g = mx.grad(lambda b: (f(mx.swapaxes(b, 1, 2)) * cot).sum())(base)
    _, ref = torch_forward_and_grad(xt, cot, **kw)
    assert_close(g, np.swapaxes(ref, 1, 2))

    # strided slice of a bigger array: gradient lands in the selected positions only
    big = rand((2, 14, 21, 3), seed=99)
    xs = big[:, ::2, 1::3, :]
    cot2 = rand(torch_out_shape(xs, **kw), seed=100)
    g2 = mx.grad(lambda b: (f(b[:, ::2, 1::3, :]) * cot2).sum())(big)
    _, ref2 = torch_forward_and_grad(xs, cot2, **kw)
    expected = np.zeros(big.shape)
    expected[:, ::2, 1::3, :] = ref2
    assert_close(g2, expected)

    # broadcast view: gradient of the broadcast source sums over the broadcast axis
    src = rand((1, 7, 9, 3), seed=101)
    xb = mx.broadcast_to(src, (3, 7, 9, 3))
    cot3 = rand(torch_out_shape(xb, **kw), seed=102)
    g3 = mx.grad(lambda s: (f(mx.broadcast_to(s, (3, 7, 9, 3))) * cot3).sum())(src)
    _, ref3 = torch_forward_and_grad(xb, cot3, **kw)
    assert_close(g3, ref3.sum(axis=0, keepdims=True))


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("mode", ["nearest-exact", "linear", "cubic"])
def test_grad_other_ranks_larger_channels(nd, mode):
    x = rand((2, *SPATIAL[nd], 6), seed=103)
    kw = dict(mode=mode, scale_factor=1.45)
    cot = rand(torch_out_shape(x, **kw), seed=104)
    _, ref = torch_forward_and_grad(x, cot, **kw)
    (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
    assert_close(g, ref)


# ======================================================================================
# 1-D sweeps: the gather-form backward inverts the forward index map; check it for many
# sizes and scales (ties, exact products, borders, single-pixel inputs and outputs)
# ======================================================================================


@pytest.mark.parametrize("mode,ac", SWEEP_MODES)
@pytest.mark.parametrize("recompute", [None, True])
def test_interpolate_1d_grad_sweep_vs_torch(mode, ac, recompute):
    for n in SWEEP_N:
        x = rand((1, n, 2), seed=400 + n)
        for s in SWEEP_SCALES:
            if int(n * s) < 1:
                continue
            kw = dict(mode=mode, scale_factor=s, align_corners=ac, recompute_scale_factor=recompute)
            cot = rand(torch_out_shape(x, **kw), seed=500 + n)
            _, ref = torch_forward_and_grad(x, cot, **kw)
            (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
            assert_close(g, ref, err_msg=f"N={n} {kw}")


@pytest.mark.parametrize("mode,ac", SWEEP_MODES)
def test_interpolate_1d_grad_size_sweep_vs_torch(mode, ac):
    for n in SWEEP_N:
        x = rand((1, n, 2), seed=600 + n)
        for m in sorted(set(range(1, 2 * n + 3)) | {3 * n, 4 * n + 1}):
            kw = dict(mode=mode, size=m, align_corners=ac)
            cot = rand(torch_out_shape(x, **kw), seed=700 + m)
            _, ref = torch_forward_and_grad(x, cot, **kw)
            (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
            assert_close(g, ref, err_msg=f"N={n} {kw}")


def _mlx_cubic_grad_reference(n, s, ac, cot):
    """W^T cot with W the (M, N) matrix of the intended MLX cubic (numpy, float64)."""
    eye = mx.array(np.eye(n, dtype=np.float32)[None])  # (1, N, C=N)
    w = mlx_cubic_1d_reference(eye, s, ac)[0]  # (M, N)
    c = np.array(cot, np.float64)  # (B, M, C)
    return np.einsum("mn,bmc->bnc", w, c)


@pytest.mark.parametrize("mode,ac", [("nearest", False), ("linear", False), ("linear", True), ("cubic", False), ("cubic", True)])
def test_upsample_1d_grad_sweep_vs_mlx(mode, ac):
    for n in SWEEP_N:
        x = rand((1, n, 2), seed=800 + n)
        for s in SWEEP_SCALES:
            if int(n * s) < 1:
                continue
            cot = rand(mlx_out_shape(x.shape, s), seed=900 + n)
            (_,), (g,) = mx.vjp(lambda a: upsample(a, s, mode=mode, align_corners=ac), [x], [cot])
            msg = f"N={n} scale={s} mode={mode} ac={ac}"
            if mode == "cubic" and mlx_cubic_taps_inconsistent(n, s, ac):
                assert_close(g, _mlx_cubic_grad_reference(n, s, ac, cot), err_msg=msg + " (numpy ref)")
                continue
            (_,), (g_ref,) = mx.vjp(nn.Upsample(s, mode=mode, align_corners=ac), [x], [cot])
            assert_close(g, g_ref, err_msg=msg)


@pytest.mark.parametrize(
    "kw",
    [
        dict(mode="nearest", scale_factor=(0.13, 7.3)),
        dict(mode="nearest-exact", scale_factor=(7.3, 0.13)),
        dict(mode="bilinear", scale_factor=(0.13, 7.3)),
        dict(mode="bicubic", scale_factor=(7.3, 0.13), align_corners=True),
        dict(mode="bicubic", size=(3, 200)),
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()).replace(" ", ""),
)
def test_interpolate_grad_extreme_ratios_vs_torch(kw):
    """Large up- and down-scaling: many outputs per input and many inputs per output."""
    x = rand((2, 31, 23, 5), seed=1000)
    cot = rand(torch_out_shape(x, **kw), seed=1001)
    _, ref = torch_forward_and_grad(x, cot, **kw)
    (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
    assert_close(g, ref)


@pytest.mark.parametrize("mode,ac", [("nearest", False), ("linear", True), ("cubic", False)])
@pytest.mark.parametrize(
    "shape,scale",
    [((2, 40, 36, 20), (2.3, 0.7)), ((3, 12, 10, 300), (1.5, 0.6)), ((2, 10, 12, 9, 5), (2, 1.5, 0.8))],
    ids=["2d", "C300", "3d"],
)
def test_upsample_grad_large_vs_mlx(shape, scale, mode, ac):
    x = rand(shape, seed=1002)
    cot = rand(mlx_out_shape(shape, scale), seed=1003)
    (_,), (g,) = mx.vjp(lambda a: upsample(a, scale, mode=mode, align_corners=ac), [x], [cot])
    (_,), (g_ref,) = mx.vjp(nn.Upsample(scale, mode=mode, align_corners=ac), [x], [cot])
    assert_close(g, g_ref)


@pytest.mark.parametrize("mode,ac", [("nearest", None), ("bilinear", False), ("bicubic", True)])
def test_interpolate_grad_large_vs_torch(mode, ac):
    x = rand((2, 40, 36, 20), seed=1004)
    kw = dict(mode=mode, scale_factor=(2.3, 0.7), align_corners=ac)
    cot = rand(torch_out_shape(x, **kw), seed=1005)
    _, ref = torch_forward_and_grad(x, cot, **kw)
    (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
    assert_close(g, ref)


# ======================================================================================
# where torch's autograd is not the derivative of torch's forward
# ======================================================================================


@pytest.mark.parametrize("scale", [1.01, 1.1, 1.15])
def test_bicubic_same_size_grad_is_derivative_of_forward(scale):
    """torch 2-D bicubic with both output sizes == input sizes: forward interpolates with
    1/scale_factor, backward copies (identity).  Our gradient must be the derivative of the
    forward (the adjoint), which torch autograd is not here."""
    from helpers import to_torch_nchw
    from references import torch_adjoint_grad

    kw = dict(mode="bicubic", scale_factor=scale)
    x = rand((2, 5, 6, 3), seed=1100)
    out = interpolate(x, **kw)
    assert out.shape == x.shape
    cot = rand(out.shape, seed=1101)
    adj = np.moveaxis(torch_adjoint_grad((2, 3, 5, 6), to_torch_nchw(cot), **kw).numpy(), 1, -1)
    (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
    assert_close(out, torch_forward(x, **kw))
    assert_close(g, adj)
    assert not np.allclose(np.array(g), np.array(cot), atol=1e-3), "gradient must not be the identity"


@pytest.mark.parametrize(
    "shape,scale",
    [((1, 5, 2), 1.1), ((2, 7, 3), 2.1), ((1, 5, 2, 3, 2), (1.1, 1.0, 1.0)), ((1, 2, 7, 3, 1), (1.0, 2.1, 1.0))],
    ids=["1d-same-size", "1d-double-size", "3d-same-size", "3d-double-size"],
)
def test_nearest_1d_3d_same_or_double_size_grad(shape, scale):
    """1-D/3-D legacy nearest: torch's forward uses floor(i / scale_factor) even when the output
    size equals (or doubles) the input size; the gradient is the adjoint of that forward."""
    kw = dict(mode="nearest", scale_factor=scale)
    x = rand(shape, seed=1102)
    cot = rand(torch_out_shape(x, **kw), seed=1103)
    _, ref = torch_forward_and_grad(x, cot, **kw)  # adjoint of torch's forward (references.py)
    (_,), (g,) = mx.vjp(_interp_fn(kw), [x], [cot])
    assert_close(g, ref)
