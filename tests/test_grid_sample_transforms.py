"""grid_sample under MLX's transforms: jvp (against PyTorch's vjp through the adjoint
identity and against PyTorch's own finite differences), vmap (against a loop), compile
and shapeless compile (against eager), and compositions (affine_grid into grid_sample,
a warp of a warp, grad of vmap, vmap of jvp)."""

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close, rand, rand_uniform, to_f64, to_torch_nchw, vjp_outputs
from params import GRID_COMBOS, GRID_MODES, GRID_SHAPES, grid_kw
from references import torch_grid_sample

from mlx_upsample import affine_grid, grid_sample


def inputs(dims, seed):
    xs, gs = GRID_SHAPES[dims]
    x = rand(xs, seed=seed)
    grid = rand_uniform(gs, -1.2, 1.2, seed=seed + 1)
    cot = rand((*gs[:-1], xs[-1]), seed=seed + 2)
    return x, grid, cot


# --------------------------------------------------------------------------------------
# jvp
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_jvp_matches_torch_through_the_adjoint(dims, mode, padding, ac):
    """<J (tx, tg), cot> == <J^T cot, (tx, tg)>, J^T cot from PyTorch's autograd."""
    x, grid, cot = inputs(dims, seed=60)
    tx, tg = rand(x.shape, seed=63), rand(grid.shape, seed=64)
    fn = lambda a, g: grid_sample(a, g, **grid_kw(mode, padding, ac))  # noqa: E731
    (out,), (jv,) = mx.jvp(fn, [x, grid], [tx, tg])
    assert jv.shape == out.shape and jv.dtype == out.dtype
    _, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, **grid_kw(mode, padding, ac))
    lhs = float(np.sum(to_f64(jv) * to_f64(cot)))
    rhs = float(np.sum(ref_gx * to_f64(tx)) + np.sum(ref_gg * to_f64(tg)))
    scale = float(np.sum(np.abs(ref_gx * to_f64(tx))) + np.sum(np.abs(ref_gg * to_f64(tg))))
    assert abs(lhs - rhs) <= 1e-5 * scale


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_jvp_in_x_is_the_sample_of_the_tangent(dims, mode, padding, ac):
    """The op is linear in x."""
    x, grid, _ = inputs(dims, seed=65)
    tx = rand(x.shape, seed=66)
    fn = lambda a: grid_sample(a, grid, **grid_kw(mode, padding, ac))  # noqa: E731
    _, (jv,) = mx.jvp(fn, [x], [tx])
    assert_close(jv, fn(tx), 1e-6, 1e-6)


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_jvp_in_grid_matches_torch_finite_differences(dims, mode, padding, ac):
    """Central differences of PyTorch's float64 forward (step 1e-6, away from the kinks
    of the rounding, floor and clip: random points)."""
    x, grid, _ = inputs(dims, seed=67)
    tg = rand(grid.shape, seed=68)
    fn = lambda g: grid_sample(x, g, **grid_kw(mode, padding, ac))  # noqa: E731
    _, (jv,) = mx.jvp(fn, [grid], [tg])
    xt = to_torch_nchw(x)
    g0, t = torch.from_numpy(to_f64(grid)), torch.from_numpy(to_f64(tg))
    eps = 1e-6
    with torch.no_grad():
        hi = F.grid_sample(xt, g0 + eps * t, **grid_kw(mode, padding, ac))
        lo = F.grid_sample(xt, g0 - eps * t, **grid_kw(mode, padding, ac))
    fd = np.moveaxis(((hi - lo) / (2 * eps)).numpy(), 1, -1)
    assert_close(jv, fd, 1e-4, 1e-4)
    if mode == "nearest":
        assert not np.any(np.array(jv))


@pytest.mark.parametrize("argnum", [0, 1])
def test_float64_tangent_is_named(argnum):
    x, grid, _ = inputs(2, seed=69)
    primals = [x, grid]
    tangent = primals[argnum].astype(mx.float64)
    name = "x's tangent" if argnum == 0 else "grid's tangent"
    with pytest.raises(ValueError, match=name):
        mx.eval(mx.jvp(lambda a, g: grid_sample(a, g), primals,
                       [tangent if k == argnum else mx.zeros_like(p)
                        for k, p in enumerate(primals)])[1])


@pytest.mark.parametrize("argnum", [0, 1])
def test_integer_tangent_is_the_float_ops_derivative(argnum):
    """As for upsample: an integer tangent is the float op's derivative along it."""
    x, grid, _ = inputs(2, seed=69)
    primals = [x, grid]
    ints = (primals[argnum] * 3).astype(mx.int32)
    f = (lambda a: grid_sample(a, grid)) if argnum == 0 else (lambda g: grid_sample(x, g))
    _, (got,) = mx.jvp(f, [primals[argnum]], [ints])
    _, (want,) = mx.jvp(f, [primals[argnum]], [ints.astype(mx.float32)])
    assert got.dtype == mx.float32
    assert np.array_equal(np.array(got), np.array(want))


def test_jvp_of_half_types_keeps_the_dtype():
    x, grid, _ = inputs(2, seed=69)
    for dtype in (mx.float16, mx.bfloat16):
        xh, gh = x.astype(dtype), grid.astype(dtype)
        _, (jv,) = mx.jvp(lambda a, g: grid_sample(a, g), [xh, gh], [xh, gh])
        assert jv.dtype == dtype
        _, (ref,) = mx.jvp(lambda a, g: grid_sample(a, g),
                           [xh.astype(mx.float32), gh.astype(mx.float32)],
                           [xh.astype(mx.float32), gh.astype(mx.float32)])
        assert_close(jv, ref, 1e-2, 1e-2)


# --------------------------------------------------------------------------------------
# vmap
# --------------------------------------------------------------------------------------

V = 3


def _loop(fn, args, in_axes):
    outs = []
    for i in range(V):
        outs.append(fn(*[a if ax is None else mx.take(a, i, axis=ax) for a, ax in zip(args, in_axes)]))
    return mx.stack(outs)


def _insert(a, axis, seed):
    """A stack of V arrays like `a`, stacked along `axis`."""
    return mx.stack([rand(a.shape, seed=seed + i) * 0.9 for i in range(V)], axis=axis)


@pytest.mark.parametrize("in_axes", [(0, 0), (1, 2), (3, 0), (None, 1), (2, None), (4, 4)],
                         ids=str)
@pytest.mark.parametrize("dims,mode", [(d, m) for d in (2, 3) for m in GRID_MODES[d]],
                         ids=lambda v: str(v))
def test_vmap_matches_a_loop(dims, mode, in_axes):
    x, grid, _ = inputs(dims, seed=70)
    args = [a if ax is None else _insert(a, ax, seed=71 + k) for k, (a, ax) in
            enumerate(zip((x, grid), in_axes))]
    fn = lambda a, g: grid_sample(a, g, mode=mode, padding_mode="reflection")  # noqa: E731
    out = mx.vmap(fn, in_axes=in_axes)(*args)
    assert_close(out, _loop(fn, args, in_axes), 1e-6, 1e-6)


@pytest.mark.parametrize("mode", GRID_MODES[2])
def test_vmap_of_vjp_and_grad_of_vmap(mode):
    x, grid, cot = inputs(2, seed=74)
    xs, gs, cs = _insert(x, 0, 75), mx.clip(_insert(grid, 1, 78), -1.2, 1.2), _insert(cot, 0, 81)
    f = lambda a, g: grid_sample(a, g, mode=mode, padding_mode="border")  # noqa: E731

    def vjp(a, g, c):
        return vjp_outputs(f, [a, g], c)[1:]

    gx, gg = mx.vmap(vjp, in_axes=(0, 1, 0))(xs, gs, cs)
    loops = [vjp(xs[i], gs[:, i], cs[i]) for i in range(V)]
    assert_close(gx, mx.stack([l[0] for l in loops]), 1e-6, 1e-6)
    assert_close(gg, mx.stack([l[1] for l in loops]), 1e-5, 1e-5)

    def loss(a, g):
        return (mx.vmap(f, in_axes=(0, 1))(a, g) * cs).sum()

    vx, vg = mx.grad(loss, argnums=(0, 1))(xs, gs)
    assert_close(vx, gx, 1e-6, 1e-6)
    assert_close(vg, mx.stack([l[1] for l in loops], axis=1), 1e-5, 1e-5)


def test_vmap_of_jvp_and_nested_vmap():
    x, grid, _ = inputs(2, seed=84)
    xs, gs = _insert(x, 0, 85), mx.clip(_insert(grid, 0, 88), -1.2, 1.2)
    f = lambda a, g: grid_sample(a, g, mode="bicubic")  # noqa: E731
    jvp = lambda a, g: mx.jvp(f, [a, g], [a, g])[1][0]  # noqa: E731
    assert_close(mx.vmap(jvp)(xs, gs), mx.stack([jvp(xs[i], gs[i]) for i in range(V)]), 1e-5, 1e-5)
    xss = mx.stack([xs, xs * 2])
    nested = mx.vmap(mx.vmap(f, in_axes=(0, 0)), in_axes=(0, None))(xss, gs)
    assert_close(nested[1], 2 * mx.vmap(f)(xs, gs), 1e-6, 1e-6)


# --------------------------------------------------------------------------------------
# compile
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_compile_matches_eager(dims, mode, padding, ac):
    x, grid, cot = inputs(dims, seed=90)
    f = lambda a, g: grid_sample(a, g, **grid_kw(mode, padding, ac))  # noqa: E731
    loss = lambda a, g: (f(a, g) * cot).sum()  # noqa: E731
    assert_close(mx.compile(f)(x, grid), f(x, grid), 0, 0)
    eager = mx.grad(loss, argnums=(0, 1))(x, grid)
    compiled = mx.compile(mx.grad(loss, argnums=(0, 1)))(x, grid)
    for a, b in zip(compiled, eager):
        assert_close(a, b, 1e-6, 1e-6)


@pytest.mark.parametrize("dims,mode", [(d, m) for d in (2, 3) for m in GRID_MODES[d]],
                         ids=lambda v: str(v))
def test_shapeless_compile_follows_new_shapes(dims, mode):
    """New batch, input sizes, grid sizes and channels through one compiled graph,
    forward and both gradients."""
    def f(a, g):
        return grid_sample(a, g, mode=mode, padding_mode="border", align_corners=True)

    def vjp(a, g, c):
        return vjp_outputs(f, [a, g], c)

    compiled_f = mx.compile(f, shapeless=True)
    compiled_vjp = mx.compile(vjp, shapeless=True)
    shapes = {2: [((2, 5, 7, 3), (2, 4, 6)), ((1, 9, 4, 2), (1, 3, 8)), ((3, 2, 3, 5), (3, 1, 1))],
              3: [((2, 4, 5, 3, 2), (2, 3, 2, 4)), ((1, 2, 6, 3, 1), (1, 4, 1, 2))]}[dims]
    for k, (xs, go) in enumerate(shapes):
        x = rand(xs, seed=100 + k)
        grid = rand_uniform((*go, dims), -1.2, 1.2, seed=110 + k)
        cot = rand((*go, xs[-1]), seed=120 + k)
        out = compiled_f(x, grid)
        assert out.shape == (*go, xs[-1])
        assert_close(out, f(x, grid), 0, 0)
        for a, b in zip(compiled_vjp(x, grid, cot), vjp(x, grid, cot)):
            assert_close(a, b, 1e-6, 1e-6)


def test_shapeless_compile_of_vmap_follows_new_sizes():
    f = lambda a, g: grid_sample(a, g, mode="bicubic", padding_mode="reflection")  # noqa: E731
    compiled = mx.compile(mx.vmap(f), shapeless=True)
    for k, (v, n, h, w, ho, wo) in enumerate([(3, 2, 5, 7, 4, 5), (2, 1, 9, 3, 6, 2)]):
        x = rand((v, n, h, w, 3), seed=125 + k)
        grid = rand_uniform((v, n, ho, wo, 2), -1.2, 1.2, seed=127 + k)
        assert_close(compiled(x, grid), mx.vmap(f)(x, grid), 0, 0)


# --------------------------------------------------------------------------------------
# compositions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("ac", [False, True])
def test_spatial_transformer_gradient_wrt_theta_matches_torch(dims, ac):
    """grid_sample(x, affine_grid(theta)): the gradient of theta through the grid."""
    xs, gs = GRID_SHAPES[dims]
    size = (*gs[:-1], xs[-1])
    x = rand(xs, seed=130)
    theta = rand((xs[0], dims, dims + 1), seed=131) * 0.5 + mx.eye(dims, dims + 1)
    cot = rand(size, seed=132)
    def loss(a, t):
        return (grid_sample(a, affine_grid(t, size, ac), align_corners=ac) * cot).sum()
    gx, gt = mx.grad(loss, argnums=(0, 1))(x, theta)
    xt = to_torch_nchw(x, requires_grad=True)
    tt = torch.from_numpy(to_f64(theta)).requires_grad_(True)
    nchw = (size[0], size[-1], *size[1:-1])
    out = F.grid_sample(xt, F.affine_grid(tt, nchw, align_corners=ac), align_corners=ac)
    (out * to_torch_nchw(cot)).sum().backward()
    assert_close(gx, np.moveaxis(xt.grad.numpy(), 1, -1))
    assert_close(gt, tt.grad.numpy(), 1e-4, 1e-4)
    fast = mx.compile(mx.grad(loss, argnums=1), shapeless=True)
    assert_close(fast(x, theta), gt, 1e-6, 1e-6)


def test_warp_of_a_warp():
    """A grid that is itself sampled (the grid as a 2-channel image, read at grid + flow)
    then samples x: the gradients of x and of the flow, through both grid_samples,
    against PyTorch."""
    x, grid, cot = inputs(2, seed=140)
    flow = rand_uniform(grid.shape[:-1] + (2,), -0.2, 0.2, seed=143)

    def f(a, g, fl):
        warped_grid = grid_sample(g, g + fl, padding_mode="border")  # grid as a 2-channel image
        return grid_sample(a, warped_grid, mode="bicubic", padding_mode="reflection")

    _, gx, gfl = vjp_outputs(lambda a, fl: f(a, grid, fl), [x, flow], cot)
    xt = to_torch_nchw(x, requires_grad=True)
    gt = torch.from_numpy(to_f64(grid))
    ft = torch.from_numpy(to_f64(flow)).requires_grad_(True)
    warped = F.grid_sample(gt.permute(0, 3, 1, 2), gt + ft, padding_mode="border",
                           align_corners=False).permute(0, 2, 3, 1)
    out = F.grid_sample(xt, warped, mode="bicubic", padding_mode="reflection", align_corners=False)
    (out * to_torch_nchw(cot)).sum().backward()
    assert_close(gx, np.moveaxis(xt.grad.numpy(), 1, -1))
    assert_close(gfl, ft.grad.numpy(), 1e-4, 1e-4)


# --------------------------------------------------------------------------------------
# second derivatives: those through the cotangent and in x exist, those in the grid raise
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims,mode", [(d, m) for d in (2, 3) for m in GRID_MODES[d]],
                         ids=lambda v: str(v))
def test_hessian_vector_product_in_x(dims, mode):
    """loss = sum(f(x)**2) with f linear in x: H v = 2 J^T J v = the vjp of 2 f(v)."""
    x, grid, _ = inputs(dims, seed=150)
    v = rand(x.shape, seed=151)
    f = lambda a: grid_sample(a, grid, mode=mode, padding_mode="reflection")  # noqa: E731
    loss = lambda a: (f(a) ** 2).sum()  # noqa: E731
    hv = mx.grad(lambda a: (mx.grad(loss)(a) * v).sum())(x)
    assert_close(hv, mx.vjp(f, [x], [2 * f(v)])[1][0], 1e-5, 1e-5)
    _, (fwd_over_rev,) = mx.jvp(mx.grad(loss), [x], [v])
    assert_close(fwd_over_rev, hv, 1e-5, 1e-5)


def test_gradient_of_the_x_gradient_in_the_cotangent_is_the_forward():
    x, grid, cot = inputs(2, seed=152)
    w = rand(x.shape, seed=153)
    f = lambda a: grid_sample(a, grid, mode="bicubic")  # noqa: E731
    g = mx.grad(lambda c: (mx.vjp(f, [x], [c])[1][0] * w).sum())(cot)
    assert_close(g, f(w), 1e-5, 1e-5)


@pytest.mark.parametrize(
    "name,call",
    [
        ("grad of the grid gradient", lambda x, g, c: mx.grad(
            lambda b: mx.grad(lambda b2: (grid_sample(x, b2) * c).sum())(b).sum())(g)),
        ("grad in the grid of the x gradient", lambda x, g, c: mx.grad(
            lambda b: mx.grad(lambda a: (grid_sample(a, b) * c).sum())(x).sum())(g)),
        ("jvp in the grid of the grid jvp", lambda x, g, c: mx.jvp(
            lambda b: mx.jvp(lambda b2: grid_sample(x, b2), [b], [b])[1][0], [g], [g])[1][0]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_second_derivatives_in_the_grid_raise_not_implemented(name, call):
    x, grid, cot = inputs(2, seed=154)
    with pytest.raises(NotImplementedError, match="grid_sample"):
        mx.eval(call(x, grid, cot))
