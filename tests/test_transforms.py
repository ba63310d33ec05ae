"""mx.vmap and mx.compile (including shapeless) against eager / python loops / references."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from helpers import assert_close, rand
from references import mlx_out_shape, torch_forward, torch_forward_and_grad

from mlx_upsample import Upsample, interpolate, upsample

# Functions of a 4-D (N, H, W, C) array.
FUNS4 = [
    ("up-nearest-1.5", lambda a: upsample(a, 1.5, mode="nearest")),
    ("up-nearest-2", lambda a: upsample(a, 2, mode="nearest")),
    ("up-linear-(2,0.7)", lambda a: upsample(a, (2, 0.7), mode="linear")),
    ("up-cubic-ac-1.6", lambda a: upsample(a, 1.6, mode="cubic", align_corners=True)),
    ("nearest-1.7", lambda a: interpolate(a, scale_factor=1.7, mode="nearest")),
    ("nearest-exact-size", lambda a: interpolate(a, size=(4, 9), mode="nearest-exact")),
    ("bilinear-ac", lambda a: interpolate(a, scale_factor=(0.6, 2.5), mode="bilinear", align_corners=True)),
    ("bicubic-size", lambda a: interpolate(a, size=(8, 3), mode="bicubic")),
    ("bicubic-rsf", lambda a: interpolate(a, scale_factor=1.4, mode="bicubic", recompute_scale_factor=True)),
]
FUN_IDS = [f[0] for f in FUNS4]

BASE4 = (2, 5, 6, 3)  # (N, H, W, C)
V = 3  # size of the vmapped axis


def _loop(fn, x5, axis):
    return mx.stack([fn(mx.take(x5, i, axis=axis)) for i in range(x5.shape[axis])], axis=0)


def _x5(axis, seed):
    shape = list(BASE4)
    shape.insert(axis, V)
    return rand(tuple(shape), seed=seed)


# ======================================================================================
# vmap
# ======================================================================================


@pytest.mark.parametrize("axis", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("name,fn", FUNS4, ids=FUN_IDS)
def test_vmap_any_axis_vs_loop(name, fn, axis):
    """vmap of a 4-D (N,H,W,C) function over an extra axis of a 5-D array (axis 4 = last)."""
    x5 = _x5(axis, seed=200 + axis)
    out = mx.vmap(fn, in_axes=axis)(x5)
    ref = _loop(fn, x5, axis)
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axis", [0, 1, 3])
@pytest.mark.parametrize(
    "mode,ac,ref_mode", [("nearest", None, "nearest"), ("bicubic", True, "bicubic"), ("bilinear", False, "bilinear")]
)
def test_vmap_vs_torch(axis, mode, ac, ref_mode):
    x5 = _x5(axis, seed=210)
    fn = lambda a: interpolate(a, scale_factor=(1.5, 0.7), mode=mode, align_corners=ac)  # noqa: E731
    out = mx.vmap(fn, in_axes=axis)(x5)
    for i in range(V):
        xi = mx.take(x5, i, axis=axis)
        assert_close(out[i], torch_forward(xi, mode=ref_mode, scale_factor=(1.5, 0.7), align_corners=ac))


@pytest.mark.parametrize("axis", [0, 1, 2, 3])
@pytest.mark.parametrize("nd", [1, 3])
def test_vmap_other_ranks(nd, axis):
    base = {1: (2, 7, 3), 3: (1, 4, 5, 3, 2)}[nd]
    if axis > len(base):
        axis = len(base)
    shape = list(base)
    shape.insert(axis, V)
    x = rand(tuple(shape), seed=220)
    for fn in (
        lambda a: upsample(a, 1.7, mode="cubic"),
        lambda a: interpolate(a, scale_factor=1.3, mode="trilinear" if nd == 3 else "linear"),
        lambda a: interpolate(a, scale_factor=2.2, mode="nearest"),
    ):
        out = mx.vmap(fn, in_axes=axis)(x)
        ref = _loop(fn, x, axis)
        np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "in_axes", [(0, 3), (2, 0), (None, 1), (4, None), (1, 1)], ids=lambda v: str(v).replace(" ", "")
)
def test_vmap_in_axes_on_different_positions(in_axes):
    ups = Upsample(1.5, mode="cubic")

    def f(a, b):
        return ups(a) * 2.0 + interpolate(b, scale_factor=1.5, mode="bicubic")

    ax_a, ax_b = in_axes
    a = _x5(ax_a, seed=230) if ax_a is not None else rand(BASE4, seed=231)
    b = _x5(ax_b, seed=232) if ax_b is not None else rand(BASE4, seed=233)
    out = mx.vmap(f, in_axes=in_axes)(a, b)
    ref = []
    for i in range(V):
        ai = mx.take(a, i, axis=ax_a) if ax_a is not None else a
        bi = mx.take(b, i, axis=ax_b) if ax_b is not None else b
        ref.append(f(ai, bi))
    ref = mx.stack(ref)
    np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("out_axes", [1, 2, 4])
def test_vmap_out_axes(out_axes):
    fn = lambda a: interpolate(a, scale_factor=(1.5, 0.7), mode="bicubic")  # noqa: E731
    x5 = _x5(1, seed=240)
    out = mx.vmap(fn, in_axes=1, out_axes=out_axes)(x5)
    ref = mx.moveaxis(_loop(fn, x5, 1), 0, out_axes)
    np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-6)


def test_nested_vmap():
    fn = lambda a: upsample(a, (1.5, 2.5), mode="linear", align_corners=True)  # noqa: E731
    x6 = rand((2, 3, 2, 5, 4, 3), seed=250)  # vmapped over axes 1 and then 0
    out = mx.vmap(mx.vmap(fn, in_axes=1), in_axes=0)(x6)
    ref = mx.stack([mx.stack([fn(x6[i, :, j]) for j in range(x6.shape[2])]) for i in range(x6.shape[0])])
    np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axis", [0, 2, 4])
@pytest.mark.parametrize("name,fn", [FUNS4[1], FUNS4[3], FUNS4[6], FUNS4[7]], ids=[FUN_IDS[i] for i in (1, 3, 6, 7)])
def test_vmap_of_grad_vs_loop(name, fn, axis):
    """Per-sample gradients: vmap(grad) == loop of grad (exercises vmap of the backward op)."""
    x5 = _x5(axis, seed=260)
    w = rand(fn(rand(BASE4)).shape, seed=261)
    g = mx.grad(lambda a: (fn(a) * w).sum())
    out = mx.vmap(g, in_axes=axis)(x5)
    ref = _loop(g, x5, axis)
    np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("axis", [0, 3])
def test_grad_of_vmap_vs_torch(axis):
    kw = dict(mode="bicubic", scale_factor=(1.5, 0.7), align_corners=False)
    fn = lambda a: interpolate(a, **kw)  # noqa: E731
    x5 = _x5(axis, seed=270)
    out_shape = mx.vmap(fn, in_axes=axis)(x5).shape
    cot = rand(out_shape, seed=271)
    g = mx.grad(lambda a: (mx.vmap(fn, in_axes=axis)(a) * cot).sum())(x5)
    for i in range(V):
        xi = mx.take(x5, i, axis=axis)
        _, ref = torch_forward_and_grad(xi, cot[i], **kw)
        assert_close(mx.take(g, i, axis=axis), ref)


def test_vmap_of_jvp():
    fn = FUNS4[7][1]
    x5 = _x5(2, seed=280)
    t5 = _x5(2, seed=281)
    jv = lambda a, t: mx.jvp(fn, [a], [t])[1][0]  # noqa: E731
    out = mx.vmap(jv, in_axes=(2, 2))(x5, t5)
    ref = mx.stack([jv(mx.take(x5, i, axis=2), mx.take(t5, i, axis=2)) for i in range(V)])
    np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-6)


def test_vmap_int_dtype_nearest():
    x5 = mx.array(np.random.default_rng(290).integers(-9, 9, size=(2, V, 5, 6, 3))).astype(mx.int32)
    fn = lambda a: upsample(a, 1.5, mode="nearest")  # noqa: E731
    out = mx.vmap(fn, in_axes=1)(x5)
    ref = mx.stack([nn.Upsample(1.5)(x5[:, i]) for i in range(V)])
    assert out.dtype == mx.int32
    np.testing.assert_array_equal(np.array(out), np.array(ref))


# ======================================================================================
# compile
# ======================================================================================


@pytest.mark.parametrize("name,fn", FUNS4, ids=FUN_IDS)
def test_compile_vs_eager(name, fn):
    x = rand(BASE4, seed=300)
    eager = fn(x)
    out = mx.compile(fn)(x)
    assert out.shape == eager.shape
    np.testing.assert_array_equal(np.array(out), np.array(eager))


@pytest.mark.parametrize("name,fn", FUNS4, ids=FUN_IDS)
def test_compile_with_surrounding_ops(name, fn):
    """Fusion of elementwise ops around the op must not change the result."""
    x = rand(BASE4, seed=301)

    def g(a):
        return mx.tanh(fn(a * 1.5 + 0.25)) * 2.0 - 1.0

    np.testing.assert_allclose(np.array(mx.compile(g)(x)), np.array(g(x)), rtol=1e-6, atol=1e-6)


def test_compile_distinguishes_parameters():
    """Several calls on the same input whose outputs have the same shape but different
    parameters must not be merged by compile (is_equivalent compares every parameter)."""
    x = rand((2, 6, 6, 3), seed=302)

    def f(a):
        return [
            upsample(a, 2, mode="linear"),
            upsample(a, 2, mode="linear", align_corners=True),
            upsample(a, 2, mode="cubic"),
            upsample(a, 2, mode="cubic", align_corners=True),
            upsample(a, 2, mode="nearest"),
            upsample(a, (2, 2.1), mode="linear"),
            interpolate(a, size=12, mode="bilinear"),
            interpolate(a, scale_factor=2.05, mode="bilinear"),
            interpolate(a, scale_factor=2.05, mode="bilinear", recompute_scale_factor=True),
            interpolate(a, size=12, mode="bicubic"),
            interpolate(a, size=12, mode="nearest"),
            interpolate(a, size=12, mode="nearest-exact"),
            interpolate(a, scale_factor=2.05, mode="nearest"),
        ]

    eager = f(x)
    comp = mx.compile(f)(x)
    for i, (c, e) in enumerate(zip(comp, eager)):
        np.testing.assert_array_equal(np.array(c), np.array(e), err_msg=f"output {i}")
    # and the eager ones are really the references
    ref = nn.Upsample(2, mode="cubic", align_corners=True)(x)
    assert_close(comp[3], ref)
    assert_close(comp[7], torch_forward(x, mode="bilinear", scale_factor=2.05))
    assert_close(comp[8], torch_forward(x, mode="bilinear", scale_factor=2.05, recompute_scale_factor=True))


def test_compile_module():
    x = rand(BASE4, seed=303)
    m = Upsample((1.5, 2), mode="cubic")
    out = mx.compile(m)(x)
    assert_close(out, nn.Upsample((1.5, 2), mode="cubic")(x))


SHAPELESS = [
    ("up-nearest-1.5", lambda a: upsample(a, 1.5, mode="nearest"), "up"),
    ("up-nearest-2", lambda a: upsample(a, 2, mode="nearest"), "up"),
    ("up-linear-0.7", lambda a: upsample(a, (0.7, 1.3), mode="linear"), "up"),
    ("up-linear-ac-2.5", lambda a: upsample(a, 2.5, mode="linear", align_corners=True), "up"),
    ("up-cubic-1.5", lambda a: upsample(a, 1.5, mode="cubic"), "up"),
    ("up-cubic-ac-0.6", lambda a: upsample(a, 0.6, mode="cubic", align_corners=True), "up"),
    ("nearest-1.7", lambda a: interpolate(a, scale_factor=1.7, mode="nearest"), "t"),
    ("nearest-exact-0.6", lambda a: interpolate(a, scale_factor=0.6, mode="nearest-exact"), "t"),
    ("nearest-size", lambda a: interpolate(a, size=(4, 9), mode="nearest"), "t"),
    ("bilinear-1.6", lambda a: interpolate(a, scale_factor=1.6, mode="bilinear"), "t"),
    ("bilinear-ac-size", lambda a: interpolate(a, size=(7, 3), mode="bilinear", align_corners=True), "t"),
    ("bilinear-ac-scale", lambda a: interpolate(a, scale_factor=(2.5, 0.8), mode="bilinear", align_corners=True), "t"),
    ("bicubic-2.2", lambda a: interpolate(a, scale_factor=2.2, mode="bicubic"), "t"),
    ("bicubic-rsf", lambda a: interpolate(a, scale_factor=1.7, mode="bicubic", recompute_scale_factor=True), "t"),
    ("bicubic-size", lambda a: interpolate(a, size=(6, 10), mode="bicubic"), "t"),
    # first traced shape is the identity (same size), the second is not
    ("bilinear-size-same-first", lambda a: interpolate(a, size=(5, 6), mode="bilinear"), "t"),
    ("nearest-size-same-first", lambda a: interpolate(a, size=(5, 6), mode="nearest"), "t"),
]
SHAPES = [(2, 5, 6, 3), (3, 9, 4, 2)]


def _shapeless_ref(name, x):
    """Independent reference (torch / mlx.nn.Upsample) for each SHAPELESS function."""
    fn_kw = {
        "up-nearest-1.5": dict(scale_factor=1.5, mode="nearest"),
        "up-nearest-2": dict(scale_factor=2, mode="nearest"),
        "up-linear-0.7": dict(scale_factor=(0.7, 1.3), mode="linear"),
        "up-linear-ac-2.5": dict(scale_factor=2.5, mode="linear", align_corners=True),
        "up-cubic-1.5": dict(scale_factor=1.5, mode="cubic"),
        "up-cubic-ac-0.6": dict(scale_factor=0.6, mode="cubic", align_corners=True),
    }
    if name in fn_kw:
        return nn.Upsample(**fn_kw[name])(x)
    t_kw = {
        "nearest-1.7": dict(scale_factor=1.7, mode="nearest"),
        "nearest-exact-0.6": dict(scale_factor=0.6, mode="nearest-exact"),
        "nearest-size": dict(size=(4, 9), mode="nearest"),
        "bilinear-1.6": dict(scale_factor=1.6, mode="bilinear"),
        "bilinear-ac-size": dict(size=(7, 3), mode="bilinear", align_corners=True),
        "bilinear-ac-scale": dict(scale_factor=(2.5, 0.8), mode="bilinear", align_corners=True),
        "bicubic-2.2": dict(scale_factor=2.2, mode="bicubic"),
        "bicubic-rsf": dict(scale_factor=1.7, mode="bicubic", recompute_scale_factor=True),
        "bicubic-size": dict(size=(6, 10), mode="bicubic"),
        "bilinear-size-same-first": dict(size=(5, 6), mode="bilinear"),
        "nearest-size-same-first": dict(size=(5, 6), mode="nearest"),
    }[name]
    return mx.array(torch_forward(x, **t_kw).astype(np.float32))


@pytest.mark.parametrize("name,fn,kind", SHAPELESS, ids=[s[0] for s in SHAPELESS])
def test_compile_shapeless_two_shapes(name, fn, kind):
    cfn = mx.compile(fn, shapeless=True)
    for k, shape in enumerate(SHAPES):
        x = rand(shape, seed=310 + k)
        eager = fn(x)
        out = cfn(x)
        assert out.shape == eager.shape, f"shape {shape}: compiled {out.shape} vs eager {eager.shape}"
        np.testing.assert_allclose(np.array(out), np.array(eager), rtol=1e-6, atol=1e-6)
        assert_close(out, _shapeless_ref(name, x))
    # and back to the first shape
    x = rand(SHAPES[0], seed=310)
    np.testing.assert_allclose(np.array(cfn(x)), np.array(fn(x)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,fn,kind", SHAPELESS, ids=[s[0] for s in SHAPELESS])
def test_compile_shapeless_grad_two_shapes(name, fn, kind):
    def loss(a, cot):
        return (fn(a) * cot).sum()

    g = mx.grad(loss)
    cg = mx.compile(g, shapeless=True)
    for k, shape in enumerate(SHAPES):
        x = rand(shape, seed=320 + k)
        cot = rand(fn(x).shape, seed=330 + k)
        eager = g(x, cot)
        out = cg(x, cot)
        assert out.shape == x.shape
        np.testing.assert_allclose(np.array(out), np.array(eager), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("shapeless", [False, True])
def test_compiled_grad_vs_torch(shapeless):
    kw = dict(mode="bicubic", scale_factor=(1.6, 0.7), align_corners=True)

    def loss(a, cot):
        return (interpolate(a, **kw) * cot).sum()

    cg = mx.compile(mx.grad(loss), shapeless=shapeless)
    for k, shape in enumerate(SHAPES):
        x = rand(shape, seed=340 + k)
        cot = rand(torch_forward(x, **kw).shape, seed=350 + k)
        _, ref = torch_forward_and_grad(x, cot, **kw)
        assert_close(cg(x, cot), ref)


def test_compile_shapeless_int_nearest():
    fn = lambda a: upsample(a, 1.5, mode="nearest")  # noqa: E731
    cfn = mx.compile(fn, shapeless=True)
    for k, shape in enumerate(SHAPES):
        x = mx.array(np.random.default_rng(360 + k).integers(-50, 50, size=shape)).astype(mx.int32)
        out = cfn(x)
        ref = nn.Upsample(1.5)(x)
        assert out.dtype == mx.int32
        assert out.shape == ref.shape
        np.testing.assert_array_equal(np.array(out), np.array(ref))


def test_compile_of_vmap():
    fn = FUNS4[3][1]
    x5 = _x5(2, seed=370)
    out = mx.compile(mx.vmap(fn, in_axes=2))(x5)
    ref = _loop(fn, x5, 2)
    np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-6)


def test_compile_shapeless_output_shape_matches_mlx_rule():
    """int(scale * N) per axis for several new shapes under shapeless compile."""
    cfn = mx.compile(lambda a: upsample(a, (0.7, 2.5), mode="linear"), shapeless=True)
    for k, shape in enumerate([(1, 4, 4, 1), (2, 10, 3, 2), (1, 7, 11, 3)]):
        x = rand(shape, seed=380 + k)
        out = cfn(x)
        assert out.shape == mlx_out_shape(shape, (0.7, 2.5))
        assert_close(out, nn.Upsample((0.7, 2.5), mode="linear")(x))


# ======================================================================================
# vmap under shapeless compile: the vmapped axis is a leading batch axis of the op (no
# reshape to replay), so new vmapped sizes, batches and spatial sizes all follow
# ======================================================================================

# (name, function of (N, H, W, C), the mlx.nn.Upsample equivalent or None)
EVERY_MODE = [
    ("up-nearest", lambda a: upsample(a, 1.5, "nearest"), nn.Upsample(1.5, "nearest")),
    ("up-linear", lambda a: upsample(a, (2, 0.7), "linear"), nn.Upsample((2, 0.7), "linear")),
    (
        "up-cubic-ac",
        lambda a: upsample(a, 1.6, "cubic", align_corners=True),
        nn.Upsample(1.6, "cubic", align_corners=True),
    ),
    (
        "up-aa-linear",
        lambda a: upsample(a, 0.6, "linear", antialias=True),
        nn.Upsample(0.6, "linear", antialias=True),
    ),
    (
        "up-aa-cubic",
        lambda a: upsample(a, (0.5, 1.5), "cubic", antialias=True),
        nn.Upsample((0.5, 1.5), "cubic", antialias=True),
    ),
    ("nearest", lambda a: interpolate(a, scale_factor=1.7, mode="nearest"), None),
    ("nearest-exact-size", lambda a: interpolate(a, size=(4, 9), mode="nearest-exact"), None),
    ("bilinear-size", lambda a: interpolate(a, size=(7, 3), mode="bilinear"), None),
    (
        "bicubic-ac",
        lambda a: interpolate(a, scale_factor=(2.5, 0.8), mode="bicubic", align_corners=True),
        None,
    ),
    ("aa-bilinear", lambda a: interpolate(a, scale_factor=0.5, mode="bilinear", antialias=True), None),
    ("aa-bicubic-size", lambda a: interpolate(a, size=(3, 4), mode="bicubic", antialias=True), None),
    ("area-size", lambda a: interpolate(a, size=(3, 2), mode="area"), None),
]
MODE_IDS = [m[0] for m in EVERY_MODE]
# Per-entry shapes (N, H, W, C) and vmapped sizes: the first is traced, then the vmapped
# size changes, then the batch, the spatial sizes and the channels.
ENTRY_SHAPES = [((2, 6, 5, 4), 3), ((2, 6, 5, 4), 5), ((3, 9, 7, 2), 2)]


def _with_axis(shape, size, axis):
    shape = list(shape)
    shape.insert(axis if axis >= 0 else len(shape) + 1 + axis, size)
    return tuple(shape)


def _assert_same(out, ref, exact):
    assert out.shape == ref.shape, (out.shape, ref.shape)
    if exact:
        np.testing.assert_array_equal(np.array(out), np.array(ref))
    else:
        np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [0, 2, -1])
@pytest.mark.parametrize("name,fn,mlx_fn", EVERY_MODE, ids=MODE_IDS)
def test_compile_shapeless_vmap_follows_new_shapes(name, fn, mlx_fn, axis):
    """mx.compile(mx.vmap(f), shapeless=True) on a second and third shape: each result
    equals the eager call per entry (and mlx.nn.Upsample's). It raised 'Cannot reshape
    array of size ...' from the second shape on."""
    cf = mx.compile(mx.vmap(fn, in_axes=axis), shapeless=True)
    for k, (entry, size) in enumerate(ENTRY_SHAPES):
        x = rand(_with_axis(entry, size, axis), seed=400 + k)
        pos = axis % x.ndim
        out = cf(x)
        _assert_same(out, _loop(fn, x, pos), exact="nearest" in name)
        if mlx_fn is not None:
            assert_close(out, _loop(mlx_fn, x, pos))


def test_compile_shapeless_vmap_issue_example():
    cf = mx.compile(mx.vmap(lambda z: upsample(z, 2, "linear")), shapeless=True)
    for shape in [(3, 2, 6, 5, 4), (3, 2, 9, 7, 4), (4, 1, 9, 7, 4)]:
        x = rand(shape, seed=410)
        assert_close(cf(x), mx.vmap(nn.Upsample(2, "linear"))(x))


@pytest.mark.parametrize("name,fn,mlx_fn", EVERY_MODE, ids=MODE_IDS)
def test_compile_shapeless_vmap_of_vjp(name, fn, mlx_fn):
    """Per-entry gradients under shapeless compile, the three ways vmap meets the backward:
    cotangent and x both vmapped, only the cotangent (one x), only x (one cotangent, the
    vmapped size changing). Each equals the vjp of the eager call per entry."""
    vjp = lambda a, c: mx.vjp(fn, [a], [c])[1][0]  # noqa: E731
    both = mx.compile(mx.vmap(vjp), shapeless=True)
    cot_only = mx.compile(mx.vmap(vjp, in_axes=(None, 0)), shapeless=True)
    x_only = mx.compile(mx.vmap(vjp, in_axes=(1, None)), shapeless=True)
    for k, (entry, size) in enumerate(ENTRY_SHAPES):
        x = rand((size, *entry), seed=420 + k)
        out_shape = fn(x[0]).shape
        c = rand((size, *out_shape), seed=430 + k)
        ref = mx.stack([vjp(x[i], c[i]) for i in range(size)])
        _assert_same(both(x, c), ref, exact=False)
        _assert_same(cot_only(x[0], c), mx.stack([vjp(x[0], c[i]) for i in range(size)]), exact=False)
        if k < 2:  # one cotangent: the entry shape stays, the vmapped size changes
            xs = mx.moveaxis(x, 0, 1)
            _assert_same(x_only(xs, c[0]), mx.stack([vjp(x[i], c[0]) for i in range(size)]), exact=False)


@pytest.mark.parametrize("name,fn,mlx_fn", EVERY_MODE, ids=MODE_IDS)
def test_grad_of_compiled_vmap_and_compiled_grad_of_vmap(name, fn, mlx_fn):
    cv = mx.compile(mx.vmap(fn), shapeless=True)
    cg = mx.compile(mx.grad(lambda z, w: (mx.vmap(fn)(z) * w).sum()), shapeless=True)
    for k, (entry, size) in enumerate(ENTRY_SHAPES):
        x = rand((size, *entry), seed=440 + k)
        w = rand(_loop(fn, x, 0).shape, seed=450 + k)
        ref = mx.grad(lambda z: (_loop(fn, z, 0) * w).sum())(x)
        _assert_same(mx.grad(lambda z: (cv(z) * w).sum())(x), ref, exact=False)
        _assert_same(cg(x, w), ref, exact=False)
        if mlx_fn is not None:
            assert_close(ref, mx.grad(lambda z: (_loop(mlx_fn, z, 0) * w).sum())(x))


@pytest.mark.parametrize("name,fn,mlx_fn", EVERY_MODE, ids=MODE_IDS)
def test_compile_shapeless_vmap_of_vmap_and_of_jvp(name, fn, mlx_fn):
    """vmap of vmap (over the last and a middle axis) and vmap of jvp under shapeless
    compile, and jvp of vmap, on every shape: each equals the eager call per entry."""
    vv = mx.compile(mx.vmap(mx.vmap(fn, in_axes=-1), in_axes=2), shapeless=True)
    jv = lambda a, t: mx.jvp(fn, [a], [t])[1][0]  # noqa: E731
    cj = mx.compile(mx.vmap(jv, in_axes=(2, 0)), shapeless=True)
    for k, (entry, size) in enumerate(ENTRY_SHAPES):
        n, h, w, c = entry
        x6 = rand((n, h, size, w, c, 2), seed=460 + k)
        ref = mx.stack([mx.stack([fn(x6[:, :, i, :, :, j]) for j in range(2)]) for i in range(size)])
        _assert_same(vv(x6), ref, exact="nearest" in name)
        x = rand((n, h, size, w, c), seed=470 + k)
        t = rand((size, *entry), seed=480 + k)
        _assert_same(cj(x, t), mx.stack([jv(x[:, :, i], t[i]) for i in range(size)]), exact=False)
        t2 = rand(t.shape, seed=485 + k)
        _assert_same(mx.jvp(mx.vmap(fn), [t], [t2])[1][0],
                     mx.stack([jv(t[i], t2[i]) for i in range(size)]), exact=False)


@pytest.mark.parametrize("shapeless", [False, True])
@pytest.mark.parametrize("name,fn,mlx_fn", EVERY_MODE, ids=MODE_IDS)
def test_per_entry_jacobians(name, fn, mlx_fn, shapeless):
    """Jacobian rows of every entry: vmap over x of a vmap over cotangents of vjp. The
    inner vmap maps only the cotangent and the outer only x, so the backward gets an x
    whose batch axes are not the cotangent's; each result equals the eager vjp."""
    entry = (1, 3, 4, 2)
    out_shape = fn(rand(entry)).shape
    basis = rand((3, *out_shape), seed=490)
    rows = lambda a: mx.vmap(lambda c: mx.vjp(fn, [a], [c])[1][0])(basis)  # noqa: E731
    jac = mx.compile(mx.vmap(rows), shapeless=True) if shapeless else mx.vmap(rows)
    for size in (2, 4):
        x = rand((size, *entry), seed=491 + size)
        ref = mx.stack([mx.stack([mx.vjp(fn, [x[i]], [basis[j]])[1][0] for j in range(3)])
                        for i in range(size)])
        _assert_same(jac(x), ref, exact=False)


@pytest.mark.parametrize("name,fn,mlx_fn", EVERY_MODE[:2] + EVERY_MODE[7:8], ids=MODE_IDS[:2] + MODE_IDS[7:8])
def test_compile_shapeless_vmap_of_grad_is_right_or_says_why(name, fn, mlx_fn):
    """mx.vmap(mx.grad(loss)) under shapeless compile: MLX's vmap of the broadcast in a
    sum's gradient keeps the shape it was traced with (mx.sin gives a result of the wrong
    shape there), so the cotangent reaching the op may not fit. The op then raises a
    ValueError that says so; it never returns a result of the wrong shape."""
    g = mx.grad(lambda z: fn(z).sum())
    cg = mx.compile(mx.vmap(g), shapeless=True)
    for k, (entry, size) in enumerate(ENTRY_SHAPES):
        x = rand((size, *entry), seed=500 + k)
        ref = _loop(g, x, 0)
        try:
            out = cg(x)
        except ValueError as e:
            assert k > 0 and "the cotangent has shape" in str(e), e
            continue
        _assert_same(out, ref, exact=False)
