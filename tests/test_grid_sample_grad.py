"""grid_sample gradients for x and grid against PyTorch's autograd (float64): every mode x
padding x align_corners x dtype in 2-D and 3-D, integer and edge coordinates, grids far
outside, many points on one pixel, many channels; and the determinism of the x gradient
(repeat runs and thread counts, bit for bit)."""

import sys
import threading

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_upsample
from helpers import (
    HALF_TYPES,
    assert_baseline_isa_bits,
    assert_close,
    grid_from_pixels,
    rand,
    rand_uniform,
    grid_sample_vjp,
)
from params import GRID_COMBOS, GRID_DTYPES, GRID_MODES, GRID_PADDINGS, GRID_SHAPES, grid_kw
from references import torch_grid_sample

from mlx_upsample import grid_sample

DTYPES = [getattr(mx, d) for d in GRID_DTYPES]


def check_against_torch(x, grid, cot, grid_tol=1e-4, **kwargs):
    out, gx, gg = grid_sample_vjp(x, grid, cot, **kwargs)
    ref, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, **kwargs)
    assert gx.dtype == x.dtype and gg.dtype == grid.dtype
    assert gx.shape == x.shape and gg.shape == grid.shape
    half = x.dtype in HALF_TYPES
    assert_close(out, ref, *((1e-2, 1e-2) if half else (1e-5, 1e-5)))
    assert_close(gx, ref_gx, *((1e-2, 1e-2) if half else (1e-5, 1e-5)))
    # the grid's gradient sums C channels of value differences scaled by size / 2
    assert_close(gg, ref_gg, *((2e-2, 2e-2) if half else (grid_tol, grid_tol)))
    if kwargs["mode"] == "nearest":
        assert not np.any(np.array(gg.astype(mx.float32)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_gradients_match_torch(dims, mode, padding, ac, dtype):
    xs, gs = GRID_SHAPES[dims]
    x = rand(xs, dtype, seed=30 + dims)
    grid = rand_uniform(gs, -1.25, 1.25, dtype, seed=31)
    cot = rand((*gs[:-1], xs[-1]), dtype, seed=32)
    check_against_torch(x, grid, cot, **grid_kw(mode, padding, ac))


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_gradients_far_outside(dims, mode, padding, ac):
    xs, gs = GRID_SHAPES[dims]
    x, cot = rand(xs, seed=33), rand((*gs[:-1], xs[-1]), seed=34)
    grid = rand_uniform(gs, -5, 5, seed=35)
    check_against_torch(x, grid, cot, grid_tol=1e-3, **grid_kw(mode, padding, ac))


# Axis sizes whose pixel coordinates k / 2 have exact grid values (helpers.grid_from_pixels).
TIE_SIZE = {False: 4, True: 5}


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_gradients_at_integer_and_edge_coordinates(dims, mode, padding, ac):
    """Whole and half pixel coordinates, on and past the borders, in every component
    (PyTorch's one-sided rules: floor picks the cell, a border is outside for the clip)."""
    size = TIE_SIZE[ac]
    pixels = np.arange(-3, 2 * size + 2) / 2 - 0.5  # -2, -1.5, ..., size + 0.5
    g = grid_from_pixels(pixels, size, ac)
    mesh = np.meshgrid(*([g] * dims), indexing="ij")
    grid = mx.array(np.stack(mesh[::-1], axis=-1)[None].astype(np.float32))
    x = rand((1, *[size] * dims, 3), seed=36)
    cot = rand((*grid.shape[:-1], 3), seed=37)
    check_against_torch(x, grid, cot, **grid_kw(mode, padding, ac))


@pytest.mark.parametrize("mode", GRID_MODES[2])
@pytest.mark.parametrize("padding", GRID_PADDINGS)
def test_many_channels(mode, padding):
    """More channels than the grid gradient's partial sums, not a multiple of them."""
    x = rand((2, 6, 5, 77), seed=38)
    grid = rand_uniform((2, 3, 4, 2), -1.2, 1.2, seed=39)
    cot = rand((2, 3, 4, 77), seed=40)
    check_against_torch(x, grid, cot, **grid_kw(mode, padding, False))


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_many_points_on_few_pixels(dims, mode, padding, ac):
    """A grid squeezed near one corner: every input pixel there sums many outputs."""
    xs, _ = GRID_SHAPES[dims]
    gs = (xs[0], *[9] * dims, dims)
    x = rand(xs, seed=41)
    grid = rand_uniform(gs, -1.05, -0.6, seed=42)
    cot = rand((*gs[:-1], xs[-1]), seed=43)
    check_against_torch(x, grid, cot, **grid_kw(mode, padding, ac))


@pytest.mark.parametrize("channels", [1, 2, 3, 5, 8, 9, 16, 17, 31, 33, 64, 65])
def test_channel_counts_on_a_medium_image(channels):
    """Every channel count up to two vectors and a tail, on an image and grid large
    enough to be split between threads."""
    x = rand((2, 13, 17, channels), seed=channels)
    grid = rand_uniform((2, 11, 19, 2), -1.2, 1.2, seed=channels + 1)
    cot = rand((2, 11, 19, channels), seed=channels + 2)
    for mode in GRID_MODES[2]:
        for padding in GRID_PADDINGS:
            check_against_torch(x, grid, cot, **grid_kw(mode, padding, channels % 2 == 0))


@pytest.mark.parametrize("x_dtype", DTYPES, ids=str)
@pytest.mark.parametrize("grid_dtype", DTYPES, ids=str)
def test_mixed_dtypes(x_dtype, grid_dtype):
    """x and grid of different float dtypes: the result has x's, each gradient its input's."""
    xs, gs = GRID_SHAPES[2]
    x = rand(xs, x_dtype, seed=51)
    grid = rand_uniform(gs, -1.1, 1.1, grid_dtype, seed=52)
    cot = rand((*gs[:-1], xs[-1]), x_dtype, seed=53)
    out, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw("bicubic", "reflection", False))
    assert (out.dtype, gx.dtype, gg.dtype) == (x_dtype, x_dtype, grid_dtype)
    ref, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, **grid_kw("bicubic", "reflection", False))
    half = (1e-2, 1e-2)
    assert_close(out, ref, *(half if x_dtype in HALF_TYPES else (1e-5, 1e-5)))
    assert_close(gx, ref_gx, *(half if x_dtype in HALF_TYPES else (1e-5, 1e-5)))
    assert_close(gg, ref_gg, *((2e-2, 2e-2) if grid_dtype in HALF_TYPES else (1e-4, 1e-4)))


@pytest.mark.parametrize("mode", GRID_MODES[2])
def test_strided_and_broadcast_cotangents(mode):
    xs, gs = GRID_SHAPES[2]
    x, grid = rand(xs, seed=54), rand_uniform(gs, -1.2, 1.2, seed=55)
    channels_first = rand((gs[0], xs[-1], *gs[1:-1]), seed=56).transpose(0, 2, 3, 1)
    broadcast = mx.broadcast_to(rand((1, *gs[1:-1], 1), seed=57), (*gs[:-1], xs[-1]))
    stepped = rand((gs[0], 2 * gs[1], gs[2], 2 * xs[-1]), seed=58)[:, ::2, :, ::-2]
    for cot in (channels_first, broadcast, stepped):
        check_against_torch(x, grid, cot, **grid_kw(mode, "border", False))


@pytest.mark.parametrize("dims,mode,padding,ac", GRID_COMBOS)
def test_gradients_at_nonfinite_coordinates(dims, mode, padding, ac):
    """Where the forward is finite (its values are PyTorch's: test_grid_sample.py), the x
    gradient is its adjoint, <J^T cot, t> = <J t, cot>, and finite; the grid gradient
    of a NaN component is 0 under border and reflection (the clip's derivative) and the
    grid gradient of the finite points is unchanged. PyTorch's backward reads outside
    its input at such points, so it is not run here."""
    xs, gs = GRID_SHAPES[dims]
    x, tx = rand(xs, seed=59), rand(xs, seed=60)
    g = np.array(rand_uniform(gs, -1.1, 1.1, seed=61))
    flat = g.reshape(-1, dims)
    bad_points = [0, 3, 5, 7]
    flat[0, 0], flat[3, dims - 1], flat[5, 0], flat[7, :] = np.nan, np.inf, -np.inf, np.nan
    grid = mx.array(g)
    cot = rand((*gs[:-1], xs[-1]), seed=62)
    f = lambda a, b: grid_sample(a, b, **grid_kw(mode, padding, ac))  # noqa: E731
    out, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw(mode, padding, ac))
    forward = np.array(f(tx, grid)).astype(np.float64)
    if np.all(np.isfinite(forward)):
        lhs = float(np.sum(forward * np.array(cot)))
        rhs = float(np.sum(np.array(gx).astype(np.float64) * np.array(tx)))
        assert abs(lhs - rhs) <= 1e-5 * float(np.sum(np.abs(forward * np.array(cot))))
        assert np.all(np.isfinite(np.array(gx)))
    ggn = np.array(gg).reshape(-1, dims)
    if padding != "zeros" and mode != "bicubic":
        nan_components = np.isnan(flat)
        assert not np.any(ggn[nan_components])
    # the other points' grid gradient: that of the same grid with finite values there
    finite = np.delete(np.arange(flat.shape[0]), bad_points)
    clean = flat.copy()
    clean[bad_points] = 0.0
    _, _, gg_clean = grid_sample_vjp(x, mx.array(clean.reshape(g.shape)), cot, **grid_kw(mode, padding, ac))
    assert_close(ggn[finite], np.array(gg_clean).reshape(-1, dims)[finite], 0, 0)


@pytest.mark.parametrize("mode", GRID_MODES[2])
def test_every_point_on_one_spot(mode):
    """128 x 128 points on the same spot: four (or one, or sixteen) pixels each sum
    16384 products per image (float32 sums: 1e-4 of the largest)."""
    x = rand((2, 6, 5, 4), seed=63)
    grid = mx.zeros((2, 128, 128, 2)) + mx.array([0.1, -0.3])
    cot = rand((2, 128, 128, 4), seed=64)
    for padding in GRID_PADDINGS:
        out, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw(mode, padding, False))
        ref, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, **grid_kw(mode, padding, False))
        assert_close(gx, ref_gx, 1e-4, 1e-4)
        assert_close(gg, ref_gg, 1e-5, 1e-5)


def test_grad_equals_vjp_and_value_and_grad():
    xs, gs = GRID_SHAPES[2]
    x, grid = rand(xs, seed=44), rand_uniform(gs, -1.1, 1.1, seed=45)
    cot = rand((*gs[:-1], xs[-1]), seed=46)

    def loss(a, g):
        return (grid_sample(a, g, mode="bicubic", padding_mode="border") * cot).sum()

    _, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw("bicubic", "border", False))
    (value, (vx, vg)) = mx.value_and_grad(loss, argnums=(0, 1))(x, grid)
    assert_close(vx, gx, 0, 0)
    assert_close(vg, gg, 0, 0)
    assert_close(mx.grad(loss, argnums=1)(x, grid), gg, 0, 0)


# --------------------------------------------------------------------------------------
# determinism: no float atomics, a fixed summation order
# --------------------------------------------------------------------------------------


@pytest.fixture
def restore_threads():
    old = mlx_upsample.get_num_threads()
    yield
    mlx_upsample.set_num_threads(old)


def _bits(a):
    return np.array(a.astype(mx.float32)).view(np.uint32)


@pytest.mark.parametrize(
    "dims,mode", [(d, m) for d in (2, 3) for m in GRID_MODES[d]], ids=lambda v: str(v)
)
@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16], ids=str)
def test_x_gradient_is_bitwise_deterministic(dims, mode, dtype, restore_threads):
    """Many outputs per input pixel (a zoom into a corner plus random points), summed
    in the same order on every run and with 1 or 2 threads."""
    sp = (12, 10) if dims == 2 else (6, 5, 4)
    x = rand((2, *sp, 5), dtype, seed=47)
    zoom = rand_uniform((2, *[24] * dims, dims), -1.0, -0.5, dtype, seed=48)
    spread_out = rand_uniform((2, *[24] * dims, dims), -1.1, 1.1, dtype, seed=49)
    grid = mx.concatenate([zoom, spread_out], axis=1)
    cot = rand((*grid.shape[:-1], 5), dtype, seed=50)
    runs = []
    for threads in (2, 1, 3, 8, 2, 1):
        mlx_upsample.set_num_threads(threads)
        _, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw(mode, "zeros", False))
        runs.append((_bits(gx), _bits(gg)))
    for gx, gg in runs[1:]:
        np.testing.assert_array_equal(gx, runs[0][0])
        np.testing.assert_array_equal(gg, runs[0][1])


def test_concurrent_calls_from_python_threads_give_the_same_bits():
    """Four Python threads, each on its own CPU stream, sharing the op's thread pool."""
    x = rand((4, 24, 24, 8), seed=65)
    grid = rand_uniform((4, 30, 30, 2), -1.1, 1.1, seed=66)
    cot = rand((4, 30, 30, 8), seed=67)
    expected = [_bits(a) for a in grid_sample_vjp(x, grid, cot, **grid_kw("bicubic", "zeros", False))]
    mismatches = []

    def work():
        with mx.stream(mx.new_stream(mx.cpu)):
            for _ in range(10):
                got = grid_sample_vjp(x, grid, cot, **grid_kw("bicubic", "zeros", False))
                if not all(np.array_equal(_bits(a), b) for a, b in zip(got, expected)):
                    mismatches.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not mismatches


@pytest.mark.parametrize("seed", range(48))
def test_random_cases_match_torch_float32(seed):
    """Random dims, mode, padding, align_corners, sizes (1 to 7, any, so the pixel
    coordinates of grid values are rounded) and channels; a fifth of the grid values on
    whole or half pixels, where rounding decides the tap. PyTorch's float32 kernels round
    the same float32 operations: the same taps, values and gradients to float32 sums."""
    rng = np.random.default_rng(1000 + seed)
    dims = 2 + seed % 2
    mode = GRID_MODES[dims][(seed // 2) % len(GRID_MODES[dims])]
    padding = GRID_PADDINGS[(seed // 6) % 3]
    ac = bool(rng.integers(0, 2))
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 12))
    sp = tuple(int(v) for v in rng.integers(1, 8, dims))
    so = tuple(int(v) for v in rng.integers(1, 7, dims))
    lim = float(rng.choice([1.0, 1.5, 3.0]))
    g = rng.uniform(-lim, lim, (n, *so, dims))
    on_pixels = rng.random(g.shape) < 0.2
    for d, size in enumerate(sp[::-1]):  # grid component d is spatial axis -1 - d
        pix = rng.integers(-2, 2 * size + 2, g.shape[:-1]) / 2 - 0.5
        g[..., d] = np.where(on_pixels[..., d], grid_from_pixels(pix, size, ac and size > 1),
                             g[..., d])
    x = mx.array(rng.standard_normal((n, *sp, c)).astype(np.float32))
    grid = mx.array(g.astype(np.float32))
    cot = mx.array(rng.standard_normal((n, *so, c)).astype(np.float32))
    out, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw(mode, padding, ac))
    ref, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, dtype=torch.float32,
                                            **grid_kw(mode, padding, ac))
    assert_close(out, ref)
    assert_close(gx, ref_gx)
    assert_close(gg, ref_gg, 1e-4, 1e-4)


def isa_case_results():
    """Forward, both gradients and the jvp of every dims and mode, for channel counts
    around the vector widths and a float16 input: their float32 bits by name."""
    results = {}
    for dims in (2, 3):
        spatial = (9, 11) if dims == 2 else (5, 6, 7)
        for mode in GRID_MODES[dims]:
            for channels in (1, 3, 8, 13, 40):
                dtype = mx.float16 if channels == 13 else mx.float32
                x = rand((2, *spatial, channels), dtype, seed=70 + channels)
                grid = rand_uniform((2, *[6] * dims, dims), -1.2, 1.2, seed=71)
                cot = rand((2, *[6] * dims, channels), dtype, seed=72)
                out, gx, gg = grid_sample_vjp(x, grid, cot, **grid_kw(mode, "reflection", False))
                _, (jv,) = mx.jvp(lambda a, g: grid_sample(a, g, mode=mode), [x, grid], [x, grid])
                for name, a in (("out", out), ("gx", gx), ("gg", gg), ("jvp", jv)):
                    results[f"{dims}d-{mode}-{channels}-{name}"] = _bits(a)
    return results


def test_baseline_isa_is_bitwise_equal_to_default(tmp_path):
    """The kernels compiled for the baseline x86-64 ISA (MLX_UPSAMPLE_CPU_ISA=baseline, in
    a child process running this file) give the bits of the default dispatch."""
    assert_baseline_isa_bits(__file__, isa_case_results(), tmp_path)


if __name__ == "__main__":
    # python tests/test_grid_sample_grad.py OUT.npz: isa_case_results() of the
    # instruction set this process dispatches to.
    np.savez(sys.argv[1], **isa_case_results())
