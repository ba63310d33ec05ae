"""grid_sample values against PyTorch's CPU grid_sample (input permuted to NCHW/NCDHW,
float64 unless a test needs its float32 kernel): every mode x padding x align_corners x
dtype in 2-D and 3-D, grids outside [-1, 1], exact ties and integer coordinates, NaN and
infinite grid values, strided and broadcast inputs, empty arrays, and the errors.
Gradients and transforms: test_grid_sample_grad.py."""

import mlx.core as mx
import numpy as np
import pytest
import torch

from helpers import (
    assert_close,
    grid_from_pixels,
    rand,
    rand_uniform,
    raises_with,
    to_numpy,
    tol_for,
    grid_sample_vjp,
)
from params import GRID_COMBOS, GRID_DTYPES, GRID_MODES, GRID_PADDINGS, GRID_SHAPES, grid_kw
from references import torch_grid_sample

from mlx_upsample import grid_sample

DTYPES = [getattr(mx, d) for d in GRID_DTYPES]


# --------------------------------------------------------------------------------------
# values in every combination
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_values_match_torch(dims, mode, padding, ac, dtype):
    xs, gs = GRID_SHAPES[dims]
    x = rand(xs, dtype, seed=dims)
    grid = rand_uniform(gs, -1.25, 1.25, dtype, seed=10 + dims)  # some points outside
    out = grid_sample(x, grid, **grid_kw(mode, padding, ac))
    assert out.dtype == dtype
    assert out.shape == (*gs[:-1], xs[-1])
    assert_close(out, torch_grid_sample(x, grid, **grid_kw(mode, padding, ac)), *tol_for(dtype))


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_grids_far_outside(dims, mode, padding, ac):
    """Several reflections and clips: uniform in [-6, 6], and values whose coordinates are
    exact in float32 at +-1e4 and +-37."""
    xs, gs = GRID_SHAPES[dims]
    x = rand(xs, seed=20)
    g = np.array(rand_uniform(gs, -6, 6, seed=21))
    flat = g.reshape(-1, dims)
    flat[:6, 0] = [1e4, -1e4, 37, -37, 5.5, -5.5]
    flat[6:12, -1] = [-1e4, 1e4, -37, 37, 3.0, -3.0]
    grid = mx.array(g)
    # 1e-4: a coordinate of magnitude 40 carries a float32 rounding of ~4e-6 pixels
    assert_close(grid_sample(x, grid, **grid_kw(mode, padding, ac)),
                 torch_grid_sample(x, grid, **grid_kw(mode, padding, ac)), 1e-4, 1e-4)


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_coordinates_beyond_int32_sample_as_torch(dims, mode, padding, ac):
    """Grid values whose pixel coordinates pass 2**31 (and float32's range, nearly):
    outside every axis for zeros, the edge for border, PyTorch's float32 reflection."""
    xs, gs = GRID_SHAPES[dims]
    x = rand(xs, seed=22)
    g = np.array(rand_uniform(gs, -1, 1, seed=23))
    flat = g.reshape(-1, dims)
    for i, v in enumerate([1e9, -1e9, 1e20, -1e20, 3e38, -3e38, 6e8, 2**31 / 3.5, -(2**31) / 3.5]):
        flat[i, i % dims] = v
    grid = mx.array(g)
    ref = torch_grid_sample(x, grid, dtype=torch.float32, **grid_kw(mode, padding, ac))
    assert_close(grid_sample(x, grid, **grid_kw(mode, padding, ac)), ref, 1e-4, 1e-4)


def test_the_default_arguments_are_bilinear_zeros_unaligned():
    xs, gs = GRID_SHAPES[2]
    x, grid = rand(xs, seed=1), rand_uniform(gs, -1.2, 1.2, seed=2)
    ref = torch_grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert_close(grid_sample(x, grid), ref)


def test_stream_argument():
    xs, gs = GRID_SHAPES[2]
    x, grid = rand(xs, seed=1), rand_uniform(gs, -1, 1, seed=2)
    ref = grid_sample(x, grid)
    for stream in (mx.cpu, mx.Device(mx.cpu), mx.default_stream(mx.cpu)):
        assert_close(grid_sample(x, grid, stream=stream), ref, 0, 0)


SHAPES = [
    ((1, 1, 1, 1), (1, 3, 2, 2)),  # one pixel
    ((1, 1, 9, 2), (1, 1, 5, 2)),  # one row
    ((3, 6, 1, 1), (3, 2, 7, 2)),  # one column, one channel
    ((1, 4, 5, 67), (1, 3, 3, 2)),  # more channels than one vector of partial sums
    ((2, 1, 1, 1, 3), (2, 2, 2, 2, 3)),
    ((1, 3, 1, 4, 5), (1, 1, 4, 1, 3)),
]


@pytest.mark.parametrize(
    "xs,gs,mode",
    [(xs, gs, m) for xs, gs in SHAPES for m in GRID_MODES[len(xs) - 2]],
    ids=str,
)
def test_shapes(xs, gs, mode):
    """Values and both gradients; 1-pixel axes with align_corners=True map every grid
    value to the pixel (and reflect onto it)."""
    x, grid = rand(xs, seed=3), rand_uniform(gs, -1.1, 1.1, seed=4)
    cot = rand((*gs[:-1], xs[-1]), seed=5)
    for padding in GRID_PADDINGS:
        for ac in (False, True):
            out, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw(mode, padding, ac))
            ref, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, **grid_kw(mode, padding, ac))
            assert_close(out, ref)
            assert_close(gx, ref_gx)
            assert_close(gg, ref_gg, 1e-4, 1e-4)


def test_gpu_stream_without_metal_is_refused_and_with_metal_agrees():
    xs, gs = GRID_SHAPES[2]
    x, grid = rand(xs, seed=1), rand_uniform(gs, -1.1, 1.1, seed=2)
    if mx.metal.is_available():
        assert_close(grid_sample(x, grid, stream=mx.gpu), grid_sample(x, grid, stream=mx.cpu))
    else:
        raises_with(ValueError, lambda: grid_sample(x, grid, stream=mx.gpu), "stream", "mx.cpu")


def test_memory_limit_is_a_memory_error():
    """A call whose result (forward) or gradients (backward) exceed MLX's memory limit
    raises MemoryError at eval naming the call; under the limit it runs."""
    x = rand((1, 64, 64, 4), seed=24)
    grid = rand_uniform((1, 128, 128, 2), -1, 1, seed=25)
    mx.eval(x, grid)
    old = mx.set_memory_limit(2**16)
    try:
        y = grid_sample(x, grid, stream=mx.cpu)
        raises_with(MemoryError, lambda: mx.eval(y), "grid_sample", "(1, 64, 64, 4)", "memory limit")
        g = mx.grad(lambda a, b: grid_sample(a, b, stream=mx.cpu).sum(), argnums=(0, 1))
        raises_with(MemoryError, lambda: mx.eval(g(x, grid)), "grid_sample", "backward")
    finally:
        mx.set_memory_limit(old)
    assert_close(grid_sample(x, grid), torch_grid_sample(x, grid, align_corners=False))


@pytest.mark.parametrize(
    "xs,gs",
    [
        ((0, 4, 5, 3), (0, 3, 3, 2)),  # empty batch
        ((2, 4, 5, 0), (2, 3, 3, 2)),  # no channels
        ((2, 4, 5, 3), (2, 0, 3, 2)),  # empty grid
        ((2, 3, 4, 5, 2), (2, 2, 0, 3, 3)),
    ],
    ids=str,
)
def test_empty_arrays(xs, gs):
    """As in PyTorch, only the input's spatial axes must not be empty."""
    x, grid = mx.zeros(xs), mx.zeros(gs)
    cot = mx.zeros((*gs[:-1], xs[-1]))
    out, gx, gg = grid_sample_vjp(x, grid, cot)
    assert out.shape == (*gs[:-1], xs[-1])
    assert gx.shape == xs and gg.shape == gs
    assert not np.any(np.array(gx)) and not np.any(np.array(gg))


# --------------------------------------------------------------------------------------
# exact ties, integer coordinates and the edges
# --------------------------------------------------------------------------------------

# Axis sizes whose pixel coordinates k / 2 have exact grid values (helpers.grid_from_pixels).
TIE_SIZE = {False: 4, True: 5}


def pixel_grid(pixels, dims, ac):
    """(1, *[len(pixels)] * dims, dims): every combination of the pixel coordinates
    along every axis (x the last spatial axis), as exact grid values."""
    g = grid_from_pixels(pixels, TIE_SIZE[ac], ac)
    mesh = np.meshgrid(*([g] * dims), indexing="ij")
    return mx.array(np.stack(mesh[::-1], axis=-1)[None].astype(np.float32))


def half_way_pixels(size):
    return np.arange(-2, 2 * size + 2) / 2 - 0.5  # -1.5, -1, ..., size + 0.5


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("padding", GRID_PADDINGS)
@pytest.mark.parametrize("ac", [False, True])
def test_nearest_half_way_points_round_to_even(dims, padding, ac):
    """Source coordinates k + 1/2 (and integers) on every axis, the edges -0.5 and
    size - 0.5 included: the same pixels as PyTorch's float32 and float64 kernels."""
    size = TIE_SIZE[ac]
    x = rand((1, *[size] * dims, 2), seed=5)
    grid = pixel_grid(half_way_pixels(size), dims, ac)
    out = to_numpy(grid_sample(x, grid, **grid_kw("nearest", padding, ac)))
    for dtype in (torch.float32, torch.float64):
        ref = torch_grid_sample(x, grid, dtype=dtype, **grid_kw("nearest", padding, ac))
        np.testing.assert_array_equal(out, ref.astype(np.float32))


def test_nearest_rounds_half_to_even_not_away():
    """Source coordinates -0.5, 0.5, 1.5, 2.5 and 3.5 along x (W = 4, align_corners=False)
    read pixels 0, 0, 2, 2 and 4 (outside: 0)."""
    x = (mx.arange(4, dtype=mx.float32) + 10).reshape(1, 1, 4, 1)
    grid = mx.array([[[[-1.0, 0.0], [-0.5, 0.0], [0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]]])
    out = np.array(grid_sample(x, grid, mode="nearest", padding_mode="zeros")).ravel()
    np.testing.assert_array_equal(out, [10, 10, 12, 12, 0])


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_integer_and_edge_coordinates(dims, mode, padding, ac):
    """Whole and half pixel coordinates from -1.5 to size + 0.5 on every axis."""
    size = TIE_SIZE[ac]
    x = rand((1, *[size] * dims, 3), seed=6)
    grid = pixel_grid(half_way_pixels(size), dims, ac)
    assert_close(grid_sample(x, grid, **grid_kw(mode, padding, ac)),
                 torch_grid_sample(x, grid, **grid_kw(mode, padding, ac)))


def test_identity_grid_reproduces_the_input():
    x = rand((2, 4, 8, 3), seed=7)
    for ac in (False, True):
        gx = grid_from_pixels(np.arange(8), 8, ac)
        gy = grid_from_pixels(np.arange(4), 4, ac)
        grid = np.stack(np.meshgrid(gx, gy), axis=-1)[None].repeat(2, axis=0)
        for mode in GRID_MODES[2]:
            out = grid_sample(x, mx.array(grid.astype(np.float32)), mode=mode, align_corners=ac)
            assert_close(out, x, 1e-6, 1e-6)


# --------------------------------------------------------------------------------------
# NaN and infinite grid values: as PyTorch's CPU kernels (its 2-D and 3-D ones differ)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_nonfinite_grid_values_sample_as_torch(dims, mode, padding, ac):
    xs, gs = GRID_SHAPES[dims]
    x = rand(xs, seed=8)
    g = np.array(rand_uniform(gs, -1.1, 1.1, seed=9))
    flat = g.reshape(-1, dims)
    bad = [np.nan, np.inf, -np.inf]
    for k in range(3 * dims):  # each value in each component, one point each
        flat[2 * k, k % dims] = bad[k // dims]
    flat[-1, :] = np.nan  # every component NaN
    grid = mx.array(g)
    out = to_numpy(grid_sample(x, grid, **grid_kw(mode, padding, ac)))
    ref = torch_grid_sample(x, grid, dtype=torch.float32, **grid_kw(mode, padding, ac))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    assert_close(np.nan_to_num(out), np.nan_to_num(ref))


def _same_nonfinite(a, b):
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
    finite = np.isfinite(b)
    assert_close(a[finite], b[finite])


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_nonfinite_input_values_reach_only_the_points_that_read_them(dims, mode, padding, ac,
                                                                      value):
    """NaN or inf on every edge of some channels and at an inside pixel: a tap outside
    the input (zeros padding) reads nothing, so only the points that weigh such a pixel
    are non-finite, as in PyTorch's float32 kernels; the x gradient stays finite, the
    grid's is non-finite where PyTorch's is."""
    xs, gs = GRID_SHAPES[dims]
    x = np.array(rand(xs, seed=10))
    x[(slice(None), 0) + (slice(None),) * (dims - 1) + (0,)] = value  # first plane, channel 0
    x[(slice(None),) * dims + (-1, 1)] = value  # last column, channel 1
    x[(1,) + (2,) * dims] = value  # one inside pixel, every channel
    x = mx.array(x)
    grid = rand_uniform(gs, -1.6, 1.6, seed=11)
    cot = rand((*gs[:-1], xs[-1]), seed=12)
    out, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw(mode, padding, ac))
    ref, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, dtype=torch.float32,
                                            **grid_kw(mode, padding, ac))
    _same_nonfinite(to_numpy(out), ref)
    assert_close(gx, ref_gx)
    _same_nonfinite(to_numpy(gg), ref_gg)


# --------------------------------------------------------------------------------------
# strided and broadcast x and grid (values and both gradients)
# --------------------------------------------------------------------------------------


def _views(dims):
    """(name, x, grid) with x or grid a view: channels-first memory, steps, negative
    steps, a channel slice, broadcasts; 2-D or 3-D."""
    xs, gs = GRID_SHAPES[dims]
    n, *sp, c = xs
    x = rand(xs, seed=12)
    grid = rand_uniform(gs, -1.2, 1.2, seed=13)
    axes_last = (0, *range(2, dims + 2), 1)
    cf = rand((n, c, *sp), seed=14).transpose(axes_last)
    big = rand((n + 1, *[2 * s + 1 for s in sp], c + 2), seed=15)
    stepped = big[(slice(None, n),) + (slice(1, None, 2),) * dims + (slice(1, c + 1),)]
    bcast = mx.broadcast_to(rand((1, *sp, c), seed=16), xs)
    chan_bcast = mx.broadcast_to(rand((n, *sp, 1), seed=17), xs)
    spatial_t = rand_uniform(gs[:1] + gs[1:-1][::-1] + gs[-1:], -1.2, 1.2, seed=18)
    g_t = spatial_t.transpose(0, *range(dims, 0, -1), dims + 1)
    gbig = rand_uniform((n, *[2 * s for s in gs[1:-1]], dims + 1), -1.2, 1.2, seed=19)
    g_step = gbig[(slice(None),) + (slice(None, None, -2),) * dims + (slice(1, None),)]
    g_rev = grid[..., ::-1]
    g_bcast = mx.broadcast_to(rand_uniform((1, *gs[1:]), -1.2, 1.2, seed=20), gs)
    return [
        ("x channels-first", cf, grid),
        ("x stepped", stepped, grid),
        ("x broadcast batch", bcast, grid),
        ("x broadcast channels", chan_bcast, grid),
        ("grid transposed", x, g_t),
        ("grid stepped", x, g_step),
        ("grid reversed components", x, g_rev),
        ("grid broadcast batch", x, g_bcast),
        ("both", cf, g_step),
    ]


@pytest.mark.parametrize("case", range(9))
@pytest.mark.parametrize(
    "dims,mode", [(d, m) for d in (2, 3) for m in GRID_MODES[d]], ids=lambda v: str(v)
)
def test_views_match_torch(dims, mode, case):
    name, x, grid = _views(dims)[case]
    cot = rand((*grid.shape[:-1], x.shape[-1]), seed=21)
    for padding in ("zeros", "reflection"):
        out, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw(mode, padding, True))
        ref, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, **grid_kw(mode, padding, True))
        assert_close(out, ref, err_msg=name)
        assert_close(gx, ref_gx, err_msg=name)
        assert_close(gg, ref_gg, 1e-4, 1e-4, err_msg=name)


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------

X2, G2 = mx.zeros((2, 5, 7, 3)), mx.zeros((2, 4, 6, 2))
X3, G3 = mx.zeros((2, 4, 5, 3, 2)), mx.zeros((2, 3, 2, 4, 3))


@pytest.mark.parametrize(
    "x,grid,words",
    [
        (mx.zeros((2, 5, 3)), mx.zeros((2, 4, 2)), ["x", "(2, 5, 3)"]),  # 1-D: torch has none
        (mx.zeros((1, 2, 2, 2, 2, 1)), mx.zeros((1, 2, 2, 2, 2, 4)), ["x", "(1, 2, 2, 2, 2, 1)"]),
        (X2, G3, ["grid", "(2, 3, 2, 4, 3)"]),  # rank of grid vs x
        (X3, G2, ["grid", "(2, 4, 6, 2)"]),
        (X2, mx.zeros((2, 4, 6, 3)), ["grid", "last"]),  # last axis 3 for a 2-D x
        (X3, mx.zeros((2, 3, 2, 4, 2)), ["grid", "last"]),
        (X2, mx.zeros((3, 4, 6, 2)), ["batch", "3", "2"]),
        (X3, mx.zeros((1, 3, 2, 4, 3)), ["batch", "1", "2"]),
        (mx.zeros((2, 0, 7, 3)), G2, ["x", "spatial"]),  # torch: non-empty spatial dims
        (mx.zeros((2, 4, 5, 0, 2)), G3, ["x", "spatial"]),
    ],
    ids=lambda v: str(v.shape) if isinstance(v, mx.array) else None,
)
def test_shape_errors(x, grid, words):
    raises_with(ValueError, lambda: grid_sample(x, grid), *words)


def test_bicubic_in_3d():
    raises_with(ValueError, lambda: grid_sample(X3, G3, mode="bicubic"), "mode", "bicubic")


@pytest.mark.parametrize("mode", ["linear", "trilinear", "cubic", "area", "Bilinear", ""])
def test_unknown_mode(mode):
    raises_with(ValueError, lambda: grid_sample(X2, G2, mode=mode), "mode", repr(mode))


@pytest.mark.parametrize("padding", ["zero", "constant", "reflect", "circular", "Border"])
def test_unknown_padding_mode(padding):
    raises_with(ValueError, lambda: grid_sample(X2, G2, padding_mode=padding), "padding_mode",
                repr(padding))


@pytest.mark.parametrize("name,value", [("mode", 1), ("mode", None), ("padding_mode", 0),
                                        ("padding_mode", None)])
def test_mode_names_must_be_strings(name, value):
    raises_with(TypeError, lambda: grid_sample(X2, G2, **{name: value}), name)


@pytest.mark.parametrize("flag", [2, "yes", 0.5, mx.array([True, False])], ids=repr)
def test_align_corners_must_be_a_bool(flag):
    raises_with(TypeError, lambda: grid_sample(X2, G2, align_corners=flag), "align_corners")


def test_inputs_must_be_arrays():
    raises_with(TypeError, lambda: grid_sample(np.zeros((2, 5, 7, 3)), G2), "x")
    raises_with(TypeError, lambda: grid_sample(X2, np.zeros((2, 4, 6, 2))), "grid")
    raises_with(TypeError, lambda: grid_sample(X2, [[[[0.0, 0.0]]]]), "grid")


@pytest.mark.parametrize("dtype", [mx.int32, mx.int64, mx.uint8, mx.bool_], ids=str)
def test_integer_grid(dtype):
    raises_with((TypeError, ValueError), lambda: grid_sample(X2, G2.astype(dtype)), "grid",
                str(dtype).split(".")[-1])


@pytest.mark.parametrize("dtype", [mx.float64, mx.complex64], ids=str)
@pytest.mark.parametrize("arg", ["x", "grid"])
def test_unsupported_float_dtypes_are_named(arg, dtype):
    x, grid = (X2.astype(dtype), G2) if arg == "x" else (X2, G2.astype(dtype))
    raises_with((TypeError, ValueError), lambda: grid_sample(x, grid), arg,
                str(dtype).split(".")[-1])


@pytest.mark.parametrize("stream", ["cpu", 0, mx.float32], ids=repr)
def test_bad_stream_is_a_type_error(stream):
    raises_with(TypeError, lambda: grid_sample(X2, G2, stream=stream), "stream")
