"""antialias=True and mode="area" against their references, forward and gradient.

References (never mlx_upsample alone):
* ``interpolate(..., antialias=True)``: PyTorch's ``F.interpolate(antialias=True)`` in float64.
  PyTorch only has it in 2-D; for 1-D, 3-D and 4-D the reference is PyTorch's own 2-D antialias
  applied one axis at a time (the filter is separable: each axis has its own size, scale and
  weights), checked against the direct 2-D call below.
* ``interpolate(mode="area")``: ``F.interpolate(mode="area")`` (adaptive average pooling) in
  1-D to 3-D; 4-D composed from PyTorch's 1-D area one axis at a time.
* ``upsample``/``Upsample(antialias=True)``: ``mlx.nn.Upsample(antialias=True)`` (the drop-in),
  gradients through MLX's autograd of its gather implementation.
"""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close, from_torch_nchw, rand, to_f64, to_torch_nchw, tol_for

from mlx_upsample import Upsample, interpolate, upsample

TORCH_AA_MODE = {"linear": "bilinear", "bilinear": "bilinear", "trilinear": "bilinear",
                 "cubic": "bicubic", "bicubic": "bicubic"}  # fmt: skip


def _per_axis(v, nd):
    if v is None:
        return None
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def _along_axes(t, nd, one_axis):
    """Applies ``one_axis(flat, d)`` to each spatial axis d of ``t`` in turn; ``flat`` is
    ``t`` with axis d last and every other axis folded into the channels."""
    out = t
    for d in range(nd):
        moved = out.movedim(2 + d, -1)
        shape = moved.shape
        r = one_axis(moved.reshape(shape[0], -1, shape[-1]), d)
        out = r.reshape(*shape[:-1], r.shape[-1]).movedim(-1, 2 + d)
    return out


def torch_antialias(t, mode, size=None, scale_factor=None, align_corners=None,
                    recompute_scale_factor=None):  # fmt: skip
    """PyTorch's antialiased interpolation of a float64 (N, C, *S) tensor, any rank."""
    nd = t.ndim - 2
    tmode = TORCH_AA_MODE[mode]
    common = dict(mode=tmode, antialias=True, align_corners=align_corners,
                  recompute_scale_factor=recompute_scale_factor)  # fmt: skip
    if nd == 2:
        return F.interpolate(t, size=size, scale_factor=scale_factor, **common)
    sizes, scales = _per_axis(size, nd), _per_axis(scale_factor, nd)

    def one_axis(flat, d):
        # A (1 -> 1) height axis is the identity for every scale rule PyTorch uses here.
        kw = dict(size=(1, sizes[d])) if sizes else dict(scale_factor=(1.0, float(scales[d])))
        return F.interpolate(flat.unsqueeze(2), **common, **kw).squeeze(2)

    return _along_axes(t, nd, one_axis)


def torch_area(t, size=None, scale_factor=None, recompute_scale_factor=None):
    nd = t.ndim - 2
    if nd <= 3:
        return F.interpolate(t, size=size, scale_factor=scale_factor, mode="area",
                             recompute_scale_factor=recompute_scale_factor)  # fmt: skip
    sizes, scales = _per_axis(size, nd), _per_axis(scale_factor, nd)

    def one_axis(flat, d):
        kw = dict(size=sizes[d]) if sizes else dict(scale_factor=float(scales[d]))
        return F.interpolate(flat, mode="area", **kw)

    return _along_axes(t, nd, one_axis)


_ADJOINT_MAX_POSITIONS = 4096


def _forward_adjoint(ref_fn, shape, ct):
    """d/dx sum(ref_fn(x) * ct) from torch's *forward* only (J^T ct, J read off a basis)."""
    n, c, *sp = shape
    p = int(np.prod(sp))
    basis = torch.eye(p, dtype=torch.float64).reshape(1, p, *sp)
    with torch.no_grad():
        jac = ref_fn(basis)[0].reshape(p, -1)
    return torch.einsum("po,bco->bcp", jac, ct.reshape(n, c, -1)).reshape(n, c, *sp)


def torch_forward_and_grad(ref_fn, x, cot_seed):
    """float64 torch forward and d/dx sum(out * cot) as channels-last numpy, plus cot.

    PyTorch's antialias forward copies an axis whose size does not change (even with a
    scale_factor != 1, e.g. floor(5 * 1.1) == 5) but its backward still filters it
    (measured, torch 2.13), so there autograd is not the derivative of the forward. Like
    references.torch_forward_and_grad, the reference gradient is the derivative of torch's
    forward: autograd, replaced by the forward-built adjoint where they differ.
    """
    xt = to_torch_nchw(x, requires_grad=True)
    out = ref_fn(xt)
    cot = rand(from_torch_nchw(out).shape, seed=cot_seed)
    ct = to_torch_nchw(cot)
    (out * ct).sum().backward()
    grad = xt.grad
    if int(np.prod(xt.shape[2:])) <= _ADJOINT_MAX_POSITIONS:
        adj = _forward_adjoint(ref_fn, tuple(xt.shape), ct)
        if not torch.allclose(grad, adj, rtol=0, atol=1e-9 * max(1.0, float(adj.abs().max()))):
            grad = adj
    return from_torch_nchw(out), from_torch_nchw(grad), cot


def check_vs_torch(fn, ref_fn, x, seed):
    ref_out, ref_grad, cot = torch_forward_and_grad(ref_fn, x, seed + 10_000)
    (out,), (g,) = mx.vjp(fn, [x], [cot])
    assert out.dtype == x.dtype and g.shape == x.shape
    assert_close(out, ref_out, err_msg="forward")
    assert_close(g, ref_grad, err_msg="gradient")


def _sizing_id(kw):
    return ",".join(f"{k[:5]}={v}" for k, v in kw.items()).replace(" ", "")


# ======================================================================================
# the reference itself: per-axis composition == PyTorch's direct 2-D call
# ======================================================================================


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize(
    "kw",
    [dict(scale_factor=(0.3, 1.7)), dict(size=(5, 19)), dict(scale_factor=0.45, align_corners=True),
     dict(scale_factor=(0.6, 2.5), recompute_scale_factor=True)],
    ids=_sizing_id,
)  # fmt: skip
def test_reference_composition_matches_torch_2d(mode, kw):
    t = to_torch_nchw(rand((2, 11, 9, 3), seed=1))
    direct = F.interpolate(t, mode=mode, antialias=True, **kw)
    common = dict(mode=mode, antialias=True, align_corners=kw.get("align_corners"),
                  recompute_scale_factor=kw.get("recompute_scale_factor"))  # fmt: skip
    sizes, scales = _per_axis(kw.get("size"), 2), _per_axis(kw.get("scale_factor"), 2)

    def one_axis(flat, d):
        k = dict(size=(1, sizes[d])) if sizes else dict(scale_factor=(1.0, float(scales[d])))
        return F.interpolate(flat.unsqueeze(2), **common, **k).squeeze(2)

    composed = _along_axes(t, 2, one_axis)
    torch.testing.assert_close(composed, direct, rtol=1e-12, atol=1e-12)


def test_reference_area_composition_matches_torch_3d():
    t = to_torch_nchw(rand((2, 7, 5, 6, 2), seed=2))
    direct = F.interpolate(t, size=(3, 4, 5), mode="area")
    composed = _along_axes(t, 3, lambda flat, d: F.interpolate(flat, size=(3, 4, 5)[d], mode="area"))
    torch.testing.assert_close(composed, direct, rtol=1e-12, atol=1e-12)


# ======================================================================================
# interpolate(antialias=True) vs PyTorch
# ======================================================================================

AA_SIZING_2D = [
    dict(scale_factor=0.25),  # the x4 downscale
    dict(scale_factor=0.5),
    dict(scale_factor=1 / 3),
    dict(scale_factor=0.3),
    dict(scale_factor=0.77),
    dict(scale_factor=1.0),
    dict(scale_factor=1.5),  # antialias=True also changes upscaling (PyTorch's filter)
    dict(scale_factor=2.0),
    dict(scale_factor=3),
    dict(scale_factor=(0.25, 0.6)),
    dict(scale_factor=(0.4, 2.5)),
    dict(size=(3, 4)),
    dict(size=(1, 1)),
    dict(size=(13, 2)),
    dict(size=(40, 5)),
    dict(scale_factor=(0.45, 0.8), recompute_scale_factor=True),
    dict(scale_factor=(1.7, 0.3), recompute_scale_factor=True),
]


@pytest.mark.parametrize("ac", [None, True], ids=["ac-None", "ac-True"])
@pytest.mark.parametrize("kw", AA_SIZING_2D, ids=_sizing_id)
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_antialias_2d_vs_torch(mode, kw, ac):
    x = rand((2, 16, 13, 3), seed=3)
    check_vs_torch(
        lambda a: interpolate(a, mode=mode, align_corners=ac, antialias=True, **kw),
        lambda t: F.interpolate(t, mode=mode, align_corners=ac, antialias=True, **kw),
        x,
        seed=4,
    )


AA_SIZING_ND = {
    1: [dict(scale_factor=0.25), dict(scale_factor=0.3), dict(scale_factor=2.5), dict(size=1),
        dict(size=(7,)), dict(scale_factor=0.45, recompute_scale_factor=True)],
    3: [dict(scale_factor=0.5), dict(scale_factor=(0.25, 1.5, 0.7)), dict(size=(2, 7, 3)),
        dict(scale_factor=(0.6, 0.4, 2.0), recompute_scale_factor=True)],
    4: [dict(scale_factor=(0.5, 1.5, 0.34, 1.0)), dict(size=(1, 5, 2, 3))],
}  # fmt: skip
ND_SHAPES = {1: (2, 29, 3), 3: (2, 9, 6, 8, 2), 4: (1, 6, 4, 7, 3, 2)}


def nd_cases():
    for nd, sizings in AA_SIZING_ND.items():
        for kw in sizings:
            for mode in ("linear", "cubic"):
                yield pytest.param(nd, mode, kw, id=f"{nd}d-{mode}-{_sizing_id(kw)}")


@pytest.mark.parametrize("nd,mode,kw", list(nd_cases()))
def test_interpolate_antialias_nd_vs_torch(nd, mode, kw):
    """Any number of spatial dims (PyTorch stops at 2-D)."""
    x = rand(ND_SHAPES[nd], seed=5 + nd)
    check_vs_torch(
        lambda a: interpolate(a, mode=mode, antialias=True, **kw),
        lambda t: torch_antialias(t, mode, **kw),
        x,
        seed=6,
    )


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_interpolate_antialias_1d_sweep_vs_torch(mode):
    """Many sizes and scales, down and up, integer and fractional (1-D, so cheap)."""
    for n in (1, 2, 3, 5, 8, 13, 31, 64):
        for s in (0.05, 0.1, 0.25, 0.3, 1 / 3, 0.5, 0.6, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0, 2.5, 4.0):
            if int(n * s) < 1:
                continue
            x = rand((2, n, 3), seed=n)
            check_vs_torch(
                lambda a: interpolate(a, scale_factor=s, mode=mode, antialias=True),
                lambda t: torch_antialias(t, mode, scale_factor=s),
                x,
                seed=n,
            )


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_antialias_unchanged_size_is_a_copy(mode):
    """floor(n * 1.1) == n: PyTorch's antialias copies that axis; so do we (and our
    gradient is the derivative of that: the identity on that axis)."""
    x = rand((2, 5, 9, 3), seed=8)
    kw = dict(scale_factor=(1.1, 0.5), mode=mode, antialias=True)
    y = interpolate(x, **kw)
    with torch.no_grad():
        ref = from_torch_nchw(F.interpolate(to_torch_nchw(x), **kw))
    assert_close(y, ref)
    assert_close(y, interpolate(x, scale_factor=(1.0, 0.5), mode=mode, antialias=True))
    assert_close(interpolate(x, scale_factor=(1.1, 1.1), mode=mode, antialias=True), x)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_antialias_long_windows_vs_torch(mode):
    """Downscales with windows far longer than the 4 taps of plain cubic."""
    x = rand((1, 200, 90, 2), seed=9)
    for kw in (dict(size=(1, 1)), dict(size=(3, 2)), dict(scale_factor=(0.05, 0.1))):
        check_vs_torch(
            lambda a: interpolate(a, mode=mode, antialias=True, **kw),
            lambda t: F.interpolate(t, mode=mode, antialias=True, **kw),
            x,
            seed=10,
        )


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16, mx.float32])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "area"])
def test_interpolate_dtypes_vs_torch(mode, dtype):
    """Half types stay half (float32 inside), close to the float64 reference."""
    x = rand((2, 12, 10, 4), dtype=dtype, seed=11)
    kw = dict(scale_factor=(0.25, 0.6), mode=mode)
    if mode != "area":
        kw["antialias"] = True
    y = interpolate(x, **kw)
    assert y.dtype == dtype
    with torch.no_grad():
        ref = from_torch_nchw(F.interpolate(to_torch_nchw(x), **kw))
    rtol, atol = tol_for(dtype)
    assert_close(y, ref, rtol=rtol, atol=atol)
    g = mx.grad(lambda a: (interpolate(a, **kw).astype(mx.float32) ** 2).sum())(x)
    assert g.dtype == dtype


@pytest.mark.parametrize("mode", ["bilinear", "area"])
def test_interpolate_integer_input_becomes_float32(mode):
    x = mx.arange(2 * 8 * 8 * 3).reshape(2, 8, 8, 3)
    kw = dict(scale_factor=0.5, mode=mode, **({"antialias": True} if mode != "area" else {}))
    y = interpolate(x, **kw)
    assert y.dtype == mx.float32
    with torch.no_grad():
        ref = from_torch_nchw(F.interpolate(to_torch_nchw(x), **kw))
    assert_close(y, ref)


# ======================================================================================
# interpolate(mode="area") vs PyTorch
# ======================================================================================

AREA_SIZING = {
    1: [dict(scale_factor=0.25), dict(scale_factor=0.5), dict(scale_factor=0.3), dict(scale_factor=0.77),
        dict(scale_factor=1.0), dict(scale_factor=1.6), dict(scale_factor=3), dict(size=1),
        dict(size=(7,)), dict(size=40), dict(scale_factor=0.45, recompute_scale_factor=True)],
    2: [dict(scale_factor=0.25), dict(scale_factor=0.5), dict(scale_factor=1 / 3), dict(scale_factor=0.7),
        dict(scale_factor=2.0), dict(scale_factor=1.5), dict(scale_factor=(0.25, 0.6)),
        dict(scale_factor=(0.4, 2.5)), dict(size=(3, 4)), dict(size=(1, 1)), dict(size=(20, 2))],
    3: [dict(scale_factor=0.5), dict(scale_factor=(0.25, 1.5, 0.7)), dict(size=(2, 7, 3)),
        dict(size=1), dict(scale_factor=(2, 0.34, 1))],
    4: [dict(scale_factor=(0.5, 1.5, 0.34, 1.0)), dict(size=(1, 5, 2, 3))],
}  # fmt: skip
AREA_SHAPES = {1: (2, 29, 3), 2: (2, 16, 13, 3), 3: (2, 9, 6, 8, 2), 4: (1, 6, 4, 7, 3, 2)}


def area_cases():
    for nd, sizings in AREA_SIZING.items():
        for kw in sizings:
            yield pytest.param(nd, kw, id=f"{nd}d-{_sizing_id(kw)}")


@pytest.mark.parametrize("nd,kw", list(area_cases()))
def test_interpolate_area_vs_torch(nd, kw):
    x = rand(AREA_SHAPES[nd], seed=12 + nd)
    check_vs_torch(
        lambda a: interpolate(a, mode="area", **kw),
        lambda t: torch_area(t, **kw),
        x,
        seed=13,
    )


def test_interpolate_area_1d_sweep_vs_torch():
    for n in (1, 2, 3, 5, 8, 13, 31, 64):
        for m in sorted({1, 2, 3, max(1, n // 4), max(1, n // 3), max(1, n - 1), n, n + 1, 2 * n, 3 * n + 1}):
            x = rand((2, n, 3), seed=n)
            check_vs_torch(
                lambda a: interpolate(a, size=m, mode="area"),
                lambda t: F.interpolate(t, size=m, mode="area"),
                x,
                seed=m,
            )


def test_interpolate_area_integer_downscale_is_block_mean():
    """Area by an integer factor is the mean of each block, exactly what it means."""
    x = rand((2, 12, 8, 3), seed=14)
    y = interpolate(x, scale_factor=0.25, mode="area")
    blocks = to_f64(x).reshape(2, 3, 4, 2, 4, 3).mean(axis=(2, 4))
    assert_close(y, blocks)


# ======================================================================================
# upsample / Upsample(antialias=True) vs mlx.nn.Upsample(antialias=True): the drop-in
# ======================================================================================

MLX_AA_SCALES = {
    1: [0.25, 0.5, 0.3, 0.77, 1.0, 1.5, 2.0, 3.3, 0.1],
    2: [0.25, 0.5, 1 / 3, 0.6, 1.0, 1.5, 2.0, (0.25, 0.6), (0.4, 2.5), (0.15, 0.12)],
    3: [0.5, (0.25, 1.5, 0.7), 2.0],
    4: [(0.5, 1.5, 0.34, 1.0)],
}
MLX_SHAPES = {1: (2, 29, 3), 2: (2, 16, 13, 3), 3: (2, 9, 6, 8, 2), 4: (1, 6, 4, 7, 3, 2)}


def mlx_cases():
    for nd, scales in MLX_AA_SCALES.items():
        for s in scales:
            for mode in ("linear", "cubic"):
                yield pytest.param(nd, mode, s, id=f"{nd}d-{mode}-s{s}".replace(" ", ""))


def check_vs_mlx(fn, ref_fn, x, seed):
    ref = ref_fn(x)
    cot = rand(ref.shape, seed=seed)
    (out,), (g,) = mx.vjp(fn, [x], [cot])
    (_,), (ref_g,) = mx.vjp(ref_fn, [x], [cot])
    assert out.shape == ref.shape and g.shape == x.shape
    assert_close(out, ref, err_msg="forward")
    assert_close(g, ref_g, err_msg="gradient")


@pytest.mark.parametrize("nd,mode,s", list(mlx_cases()))
def test_upsample_antialias_vs_mlx(nd, mode, s):
    x = rand(MLX_SHAPES[nd], seed=20 + nd)
    check_vs_mlx(
        lambda a: upsample(a, s, mode, antialias=True),
        nn.Upsample(s, mode, antialias=True),
        x,
        seed=21,
    )


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_upsample_antialias_1d_sweep_vs_mlx(mode):
    for n in (1, 2, 3, 5, 8, 13, 31, 64):
        for s in (0.05, 0.1, 0.25, 0.3, 1 / 3, 0.5, 0.6, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0, 2.5, 4.0):
            if int(n * s) < 1:
                continue
            check_vs_mlx(
                lambda a: upsample(a, s, mode, antialias=True),
                nn.Upsample(s, mode, antialias=True),
                rand((2, n, 3), seed=n),
                seed=n + 1,
            )


@pytest.mark.parametrize("mode", ["linear", "cubic", "bilinear", "bicubic"])
def test_upsample_module_is_a_drop_in(mode):
    """The module in a model where mlx.nn.Upsample was: same outputs, same parameter grads."""
    ref_mode = "cubic" if "cubic" in mode else "linear"

    def model(up):
        m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), up, nn.Conv2d(4, 2, 1))
        m.update(tree_like(m))
        return m

    def tree_like(m):
        from mlx.utils import tree_map

        counter = iter(range(100))
        return tree_map(lambda p: rand(p.shape, seed=100 + next(counter)) * 0.3, m.parameters())

    ours = model(Upsample(0.25, mode, antialias=True))
    ref = model(nn.Upsample(0.25, ref_mode, antialias=True))
    x = rand((2, 24, 20, 3), seed=30)
    assert_close(ours(x), ref(x))
    loss = lambda m, a: (m(a) ** 2).mean()  # noqa: E731
    g_ours = nn.value_and_grad(ours, loss)(ours, x)[1]
    g_ref = nn.value_and_grad(ref, loss)(ref, x)[1]
    from mlx.utils import tree_flatten

    for (k1, a), (k2, b) in zip(tree_flatten(g_ours), tree_flatten(g_ref)):
        assert k1 == k2
        assert_close(a, b, rtol=1e-4, atol=1e-5, err_msg=k1)


def test_upsample_antialias_keeps_half_dtypes():
    """mlx.nn.Upsample returns float32 for half inputs; we keep the dtype (documented)."""
    x = rand((2, 16, 12, 4), dtype=mx.bfloat16, seed=31)
    y = upsample(x, 0.25, "cubic", antialias=True)
    assert y.dtype == mx.bfloat16
    ref = nn.Upsample(0.25, "cubic", antialias=True)(x.astype(mx.float32))
    rtol, atol = tol_for(mx.bfloat16)
    assert_close(y, ref, rtol=rtol, atol=atol)


# ======================================================================================
# the operator: deterministic gather backward, transforms, distinct from plain modes
# ======================================================================================


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: upsample(a, 0.25, "cubic", antialias=True),
        lambda a: interpolate(a, scale_factor=(0.3, 1.4), mode="bilinear", antialias=True),
        lambda a: interpolate(a, size=(5, 3), mode="area"),
    ],
    ids=["mlx-aa-cubic", "torch-aa-linear", "area"],
)
def test_backward_is_deterministic_and_linear(fn):
    x = rand((2, 20, 12, 5), seed=40)
    cot = rand(fn(x).shape, seed=41)
    g1 = mx.vjp(fn, [x], [cot])[1][0]
    g2 = mx.vjp(fn, [x], [cot])[1][0]
    assert np.array_equal(np.array(g1), np.array(g2))
    # <f(x), cot> == <x, f^T(cot)>: the backward is the adjoint of the forward.
    lhs = float((fn(x).astype(mx.float32) * cot).sum())
    rhs = float((x * g1).sum())
    assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs))


def test_compile_vmap_jvp_antialias_and_area():
    x = rand((3, 2, 16, 12, 4), seed=42)
    fns = [
        lambda a: upsample(a, 0.25, "linear", antialias=True),
        lambda a: interpolate(a, scale_factor=0.5, mode="bicubic", antialias=True),
        lambda a: interpolate(a, size=(5, 5), mode="area"),
    ]
    for fn in fns:
        loop = mx.stack([fn(x[k]) for k in range(3)])
        assert_close(mx.vmap(fn)(x), loop)
        assert_close(mx.compile(fn)(x[0]), fn(x[0]))
        assert_close(mx.compile(fn, shapeless=True)(x[1]), fn(x[1]))
        t = rand(x[0].shape, seed=43)
        (_,), (jt,) = mx.jvp(fn, [x[0]], [t])
        assert_close(jt, fn(t))  # a linear operator is its own derivative


def test_compile_keeps_antialias_and_plain_apart():
    """is_equivalent compares the method: compile must not merge antialias with plain
    linear, nor area with anything else."""
    x = rand((1, 16, 16, 2), seed=44)

    def f(a):
        return (
            upsample(a, 0.5, "linear"),
            upsample(a, 0.5, "linear", antialias=True),
            interpolate(a, scale_factor=0.5, mode="bilinear"),
            interpolate(a, scale_factor=0.5, mode="bilinear", antialias=True),
            interpolate(a, scale_factor=0.5, mode="area"),
        )

    eager = f(x)
    compiled = mx.compile(f)(x)
    for e, c in zip(eager, compiled):
        assert np.array_equal(np.array(e), np.array(c))
    assert not np.allclose(np.array(eager[0]), np.array(eager[1]))
    assert not np.allclose(np.array(eager[2]), np.array(eager[3]))
