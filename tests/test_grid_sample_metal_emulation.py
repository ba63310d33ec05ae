"""Runs every Metal kernel of kernels/grid_sample.metal through the emulator
(tests/metal_emulator/grid_*) on the launch plan eval_gpu uses, and compares
with PyTorch's CPU grid_sample (float32, its default kernels: the same taps),
for every mode x padding x align_corners x dtype, 2-D and 3-D, forward, jvp
in the grid and both gradients, and with the CPU path bit for bit (also on
NaN, tie and degenerate grids); and checks that the input gradient keeps
its bits whatever order the threads and threadgroups run in.
"""

import itertools

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlx_upsample import grid_sample
from helpers import to_f64
from metal_emulator.harness import EmulatorError
from metal_emulator.grid_harness import grid_emulator

FLOATS = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
# Against PyTorch in float32 on the same (rounded) inputs: the taps are the
# same, the sums' order and the output's rounding differ.
TOLERANCE = {mx.float32: 2e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}
MODES = ["nearest", "bilinear", "bicubic"]
PADDINGS = ["zeros", "border", "reflection"]
SPATIAL = {2: (5, 6), 3: (3, 4, 5)}
OUT = {2: (4, 7), 3: (2, 3, 4)}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    return grid_emulator(tmp_path_factory.getbasetemp())


def random_x(shape, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return mx.array(x).astype(dtype)


def random_grid(n, out, dims, seed=1, spread=1.3):
    """Grid values in [-spread, spread]: some points outside the input."""
    g = np.random.default_rng(seed).uniform(-spread, spread, (n, *out, dims))
    return mx.array(g.astype(np.float32))


def to_torch(x):
    """(N, *S, C) mx.array -> (N, C, *S) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(to_f64(x), -1, 1))).float()


def from_torch(t):
    return np.moveaxis(t.detach().double().numpy(), 1, -1)


def torch_grid(g):
    return torch.from_numpy(np.array(g)).float()


def torch_sample(xt, gt, mode, padding, align):
    return F.grid_sample(xt, gt, mode=mode, padding_mode=padding, align_corners=align)


def torch_backward(x, grid, cot, mode, padding, align):
    xt = to_torch(x).requires_grad_()
    gt = torch_grid(grid).requires_grad_()
    y = torch_sample(xt, gt, mode, padding, align)
    (y * to_torch(cot)).sum().backward()
    return from_torch(xt.grad), gt.grad.double().numpy()


def torch_tangent(x, grid, tangent, mode, padding, align):
    """d out / d grid . tangent: each point's output depends on its own grid
    value only, so one backward per channel (cotangent e_c) gives every
    point's Jacobian row."""
    xt = to_torch(x)
    gt = torch_grid(grid).requires_grad_()
    y = torch_sample(xt, gt, mode, padding, align)
    t = torch_grid(tangent).double().numpy()
    out = np.zeros(from_torch(y).shape)
    for c in range(y.shape[1]):
        (g,) = torch.autograd.grad(y[:, c].sum(), gt, retain_graph=True)
        out[..., c] = (g.double().numpy() * t).sum(-1)
    return out


def close(got, expected, dtype, scale=1.0, what=""):
    tol = TOLERANCE[dtype] * scale
    np.testing.assert_allclose(to_f64(got), expected, rtol=tol, atol=tol, err_msg=what)


KERNEL_MODES = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic"}


def kernel(base, dtype, dims, mode, v):
    """The launch plan's name of a kernel that computes taps."""
    return f"grid_sample_{base}_{dtype}_{dims}d_{KERNEL_MODES[mode]}_v{v}"


def grid_grad_kernel(dtype, dims, mode, v):
    return "grid_sample_grid_zero" if mode == "nearest" else kernel("grid_grad", dtype, dims, mode, v)


def packet_width(channels, offsets=(0,), elem_size=4):
    """The launch plan's channels per packet (csrc/metal/grid_launch_plan.cpp)."""
    for v in (4, 3, 2):
        if channels % v == 0 and all(v == 3 or o % (v * elem_size) == 0 for o in offsets):
            return v
    return 1


def combos():
    for dims, mode, padding, align in itertools.product((2, 3), MODES, PADDINGS, (False, True)):
        if not (dims == 3 and mode == "bicubic"):
            yield dims, mode, padding, align


def combo_id(c):
    dims, mode, padding, align = c
    return f"{dims}d-{mode}-{padding}-ac{int(align)}"


# ---- every mode x padding x align_corners x dtype, 2-D and 3-D -------------


@pytest.mark.parametrize("dtype", list(FLOATS))
@pytest.mark.parametrize("combo", list(combos()), ids=combo_id)
def test_against_torch(emulator, combo, dtype):
    dims, mode, padding, align = combo
    dt = FLOATS[dtype]
    kw = dict(mode=mode, padding=padding, align_corners=align)
    x = random_x((2, *SPATIAL[dims], 4), dt)
    grid = random_grid(2, OUT[dims], dims)
    out, names = emulator.forward(x, grid, **kw)
    assert out.dtype == dt and names == kernel("forward", dtype, dims, mode, 4)
    ref = from_torch(torch_sample(to_torch(x), torch_grid(grid), mode, padding, align))
    close(out, ref, dt, what="forward")

    tangent = random_grid(2, OUT[dims], dims, seed=2)
    jvp, names = emulator.tangent(x, grid, tangent, **kw)
    assert names == kernel("tangent", dtype, dims, mode, 4)
    close(jvp, torch_tangent(x, grid, tangent, mode, padding, align), dt, 4, "jvp")

    cot = random_x(out.shape, dt, seed=3)
    dx, dgrid, names = emulator.backward(x, grid, cot, **kw)
    assert names.split("+")[0] == grid_grad_kernel(dtype, dims, mode, 4)
    assert names.split("+")[-1] == f"grid_sample_input_grad_{dtype}_v4"
    rdx, rdgrid = torch_backward(x, grid, cot, mode, padding, align)
    close(dx, rdx, dt, what="dx")
    # float32 whatever x's dtype; the sums over channels and taps differ in
    # order from PyTorch's.
    close(dgrid, rdgrid, mx.float32, 8, "dgrid")


VARIANTS = [(2, "nearest"), (2, "bilinear"), (2, "bicubic"), (3, "nearest"), (3, "bilinear")]


@pytest.mark.parametrize("dtype", list(FLOATS))
@pytest.mark.parametrize("channels", [5, 3, 10, 8, 40])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v[0]}d-{v[1]}")
def test_packet_widths(emulator, variant, dtype, channels):
    """Each kernel per (dims, mode), channels per packet (1, 2, 3, 4; chunks
    of 32 channels per thread at 40) and dtype."""
    dims, mode = variant
    dt = FLOATS[dtype]
    kw = dict(mode=mode, padding="border", align_corners=False)
    x = random_x((2, *SPATIAL[dims], channels), dt)
    grid = random_grid(2, OUT[dims], dims)
    v = packet_width(channels)
    out, names = emulator.forward(x, grid, **kw)
    assert names == kernel("forward", dtype, dims, mode, v)
    ref = from_torch(torch_sample(to_torch(x), torch_grid(grid), mode, "border", False))
    close(out, ref, dt)
    tangent = random_grid(2, OUT[dims], dims, seed=4)
    jvp, names = emulator.tangent(x, grid, tangent, **kw)
    assert names == kernel("tangent", dtype, dims, mode, v)
    close(jvp, torch_tangent(x, grid, tangent, mode, "border", False), dt, 4)
    cot = random_x(out.shape, dt, seed=5)
    dx, dgrid, names = emulator.backward(x, grid, cot, **kw)
    launched = names.split("+")
    assert launched[0] == grid_grad_kernel(dtype, dims, mode, 4 if v == 4 else 1)
    assert launched[-1] == f"grid_sample_input_grad_{dtype}_v{v}"
    rdx, rdgrid = torch_backward(x, grid, cot, mode, "border", False)
    close(dx, rdx, dt)
    close(dgrid, rdgrid, mx.float32, 8 * max(1, channels / 8))


# ---- bit for bit the CPU path ----------------------------------------------


def same_bits(a, b):
    """Equal element for element as raw bits (+0.0 is not -0.0), every NaN
    as one: which NaN an operation on NaNs returns (its sign) depends on the
    order of commutative operands, which compilers choose (IEEE 754 leaves
    it open), so the CPU build and the emulator's may differ there."""
    assert a.dtype == b.dtype and a.shape == b.shape
    bits = []
    for v in (a, b):
        nan = np.array(mx.isnan(v))
        raw = np.array(v.view(mx.uint16 if v.dtype.size == 2 else mx.uint32))
        raw[nan] = 0xFFFF if v.dtype.size == 2 else 0xFFFFFFFF
        bits.append(raw)
    np.testing.assert_array_equal(bits[0], bits[1])


def cpu_results(x, grid, tangent, cot, mode, padding, align):
    """(out, jvp in the grid, dx, dgrid) of the CPU path."""
    def f(x, g):
        return grid_sample(x, g, mode, padding, align, stream=mx.cpu)

    out = f(x, grid)
    _, (jvp,) = mx.jvp(lambda g: f(x, g), [grid], [tangent])
    _, (dx, dgrid) = mx.vjp(f, [x, grid], [cot])
    mx.eval(out, jvp, dx, dgrid)
    return out, jvp, dx, dgrid


def check_bitwise(emulator, x, grid, mode, padding, align, **kw):
    tangent = random_grid(grid.shape[0], grid.shape[1:-1], grid.shape[-1], seed=11)
    cot = random_x((*grid.shape[:-1], x.shape[-1]), x.dtype, seed=12)
    out, jvp, dx, dgrid = cpu_results(x, grid, tangent, cot, mode, padding, align)
    args = dict(mode=mode, padding=padding, align_corners=align, **kw)
    same_bits(emulator.forward(x, grid, **args)[0], out)
    same_bits(emulator.tangent(x, grid, tangent, **args)[0], jvp)
    got_dx, got_dgrid, _ = emulator.backward(x, grid, cot, **args)
    same_bits(got_dx, dx)
    same_bits(got_dgrid, dgrid)


@pytest.mark.parametrize("dtype", list(FLOATS))
@pytest.mark.parametrize("combo", list(combos()), ids=combo_id)
def test_bitwise_equal_to_the_cpu_path(emulator, combo, dtype):
    dims, mode, padding, align = combo
    # 37 channels: the CPU's 8-lane blocks and its scalar tail, the
    # emulator's chunks of 32 and a partial one.
    for channels in (4, 37):
        x = random_x((2, *SPATIAL[dims], channels), FLOATS[dtype])
        grid = random_grid(2, OUT[dims], dims, spread=1.6)
        check_bitwise(emulator, x, grid, mode, padding, align)


GRID_KINDS = {
    # 600 points per batch entry on the same coordinate: segments of 600
    # entries (heapsort), every point of an entry on one pixel per tap.
    "degenerate": lambda dims: mx.full(
        (2, *((24, 25) if dims == 2 else (4, 6, 25)), dims), 0.3, dtype=mx.float32),
    # Exact ties: grid values on pixel centres and half-way between them.
    "ties": lambda dims: mx.array(
        np.resize(np.linspace(-1, 1, 9, dtype=np.float32), (2, *OUT[dims], dims))),
    "nan": lambda dims: mx.where(
        mx.array(np.random.default_rng(7).random((2, *OUT[dims], dims)) < 0.3),
        mx.array(np.nan), random_grid(2, OUT[dims], dims)),
    "huge": lambda dims: random_grid(2, OUT[dims], dims, spread=3e9),
}


@pytest.mark.parametrize("kind", list(GRID_KINDS))
@pytest.mark.parametrize("combo", list(combos()), ids=combo_id)
def test_bitwise_on_special_grids(emulator, combo, kind):
    dims, mode, padding, align = combo
    x = random_x((2, *SPATIAL[dims], 3), mx.float32)
    check_bitwise(emulator, x, GRID_KINDS[kind](dims), mode, padding, align, order_seed=3)


# ---- the input gradient's order: every thread order gives the same bits ----


GRIDS = {"random": lambda dims: random_grid(2, OUT[dims], dims), **GRID_KINDS}


@pytest.mark.parametrize("kind", list(GRIDS))
@pytest.mark.parametrize("combo", [(2, "bilinear", "zeros", False), (2, "bicubic", "border", True),
                                   (2, "nearest", "reflection", False),
                                   (3, "bilinear", "reflection", True),
                                   (3, "nearest", "zeros", False)], ids=combo_id)
def test_input_gradient_is_order_independent(emulator, combo, kind):
    dims, mode, padding, align = combo
    kw = dict(mode=mode, padding=padding, align_corners=align)
    x = random_x((2, *SPATIAL[dims], 3), mx.float32)
    grid = GRIDS[kind](dims)
    cot = random_x((*grid.shape[:-1], 3), mx.float32, seed=3)
    dx, dgrid, _ = emulator.backward(x, grid, cot, **kw)
    for seed, threads in [(1, 1024), (2, 64), (3, 1), (4, 7)]:
        dx2, dgrid2, _ = emulator.backward(
            x, grid, cot, order_seed=seed, max_threads_per_group=threads, **kw)
        same_bits(dx2, dx)
        same_bits(dgrid2, dgrid)
    if kind in ("random", "ties", "degenerate"):
        rdx, rdgrid = torch_backward(x, grid, cot, mode, padding, align)
        # A long segment sums hundreds of products in float32.
        close(dx, rdx, mx.float32, 50 if kind == "degenerate" else 1)


@pytest.mark.parametrize("repeats", [16, 17])
def test_short_and_long_segments(emulator, repeats):
    """A pixel read by 16 taps (sorted in the summing thread's registers) or
    17 (sorted in place by grid_sample_sort), among short segments."""
    x = random_x((1, 4, 5, 2), mx.float32)
    grid = np.random.default_rng(5).uniform(-1, 1, (1, 3, 20, 2)).astype(np.float32)
    grid.reshape(-1, 2)[:repeats] = (0.1, -0.3)  # nearest: one tap each
    grid = mx.array(grid)
    for mode in ("nearest", "bilinear"):
        check_bitwise(emulator, x, grid, mode, "zeros", False, order_seed=repeats)


def test_every_point_on_one_pixel(emulator):
    """4096 points of a batch entry at one coordinate: four segments of 4096
    entries (heapsort in place; one thread sums each), in every order."""
    x = random_x((2, 4, 5, 8), mx.float32)
    grid = mx.broadcast_to(mx.array([0.13, -0.41]), (2, 64, 64, 2))
    check_bitwise(emulator, x, grid, "bilinear", "border", True, order_seed=1)
    check_bitwise(emulator, x, grid, "bilinear", "border", True, order_seed=2)


def test_multi_level_scan(emulator):
    """6400 input pixels of a batch entry, 12800 counts: two levels above the
    counts (sums of 64, then of those), spread back down."""
    kw = dict(mode="bilinear", padding="zeros", align_corners=True)
    x = random_x((2, 80, 80, 1), mx.float32)
    grid = random_grid(2, (30, 30), 2, spread=1.0)
    cot = random_x((2, 30, 30, 1), mx.float32, seed=3)
    launches, _ = emulator.plan("backward", x.shape, grid.shape, mode="bilinear")
    names = [name for name, _, _ in launches]
    assert names.count("grid_sample_scan_reduce") == 2
    assert names.count("grid_sample_scan_spread") == 2
    dx, _, _ = emulator.backward(x, grid, cot, **kw)
    dx2, _, _ = emulator.backward(x, grid, cot, order_seed=9, **kw)
    same_bits(dx2, dx)
    rdx, _ = torch_backward(x, grid, cot, "bilinear", "zeros", True)
    close(dx, rdx, mx.float32)


# ---- the launch plan -------------------------------------------------------


def test_leading_axes_are_one_batch(emulator):
    kw = dict(mode="bilinear", padding="zeros", align_corners=False)
    x = random_x((2, 3, 5, 6, 4), mx.float32)
    grid = random_grid(6, (4, 3), 2).reshape(2, 3, 4, 3, 2)
    flat_x, flat_grid = x.reshape(6, 5, 6, 4), grid.reshape(6, 4, 3, 2)
    out, _ = emulator.forward(x, grid, **kw)
    flat, _ = emulator.forward(flat_x, flat_grid, **kw)
    same_bits(out.reshape(flat.shape), flat)
    cot = random_x(out.shape, mx.float32, seed=3)
    dx, dgrid, _ = emulator.backward(x, grid, cot, **kw)
    fdx, fdgrid, _ = emulator.backward(flat_x, flat_grid, cot.reshape(6, 4, 3, 4), **kw)
    same_bits(dx.reshape(fdx.shape), fdx)
    same_bits(dgrid.reshape(fdgrid.shape), fdgrid)


@pytest.mark.parametrize("offset", [0, 4, 8, 12])
def test_vector_loads_only_from_aligned_views(emulator, offset):
    """x and the cotangent starting `offset` bytes into their buffers: the
    plan takes narrower packets (the asan emulator stops on a misaligned
    vector load)."""
    kw = dict(mode="bilinear", padding="zeros", align_corners=False)
    x = random_x((1, 5, 6, 8), mx.float32)
    grid = random_grid(1, (3, 4), 2)
    out, names = emulator.forward(x, grid, x_offset=offset, **kw)
    assert names.endswith(f"_v{packet_width(8, (offset,))}")
    ref, _ = emulator.forward(x, grid, **kw)
    same_bits(out, ref)
    cot = random_x(out.shape, mx.float32, seed=3)
    dx, dgrid, names = emulator.backward(
        x, grid, cot, x_offset=offset, cotangent_offset=offset, **kw)
    assert names.endswith(f"_v{packet_width(8, (offset,))}")
    rdx, rdgrid, _ = emulator.backward(x, grid, cot, **kw)
    same_bits(dx, rdx)
    same_bits(dgrid, rdgrid)


@pytest.mark.parametrize("limit", [1024, 256, 33, 1])
def test_threadgroup_fits_the_pipeline_limit(emulator, limit):
    launches, _ = emulator.plan("backward", (2, 9, 70, 4), (2, 5, 40, 2), mode="bicubic",
                                max_threads_per_group=limit)
    for name, grid, group in launches:
        threads = group[0] * group[1] * group[2]
        assert 1 <= threads <= limit, name
        assert all(1 <= g <= max(n, 1) for g, n in zip(group, grid)), name
    x = random_x((1, 5, 6, 4), mx.float32)
    grid = random_grid(1, (3, 4), 2)
    cot = random_x((1, 3, 4, 4), mx.float32, seed=3)
    kw = dict(mode="bilinear", padding="zeros", align_corners=False)
    dx, _, _ = emulator.backward(x, grid, cot, max_threads_per_group=limit, **kw)
    ref, _, _ = emulator.backward(x, grid, cot, **kw)
    same_bits(dx, ref)


def test_empty_calls_launch_nothing_or_zeros(emulator):
    kw = dict(mode="bilinear", padding="zeros", align_corners=False)
    launches, temporary = emulator.plan("forward", (2, 5, 6, 4), (2, 0, 3, 2), mode="bilinear")
    assert launches == [] and temporary == 0
    # No channels: dx is empty, dgrid still written (zeros, from no channel).
    launches, _ = emulator.plan("backward", (2, 5, 6, 0), (2, 3, 3, 2), mode="bilinear")
    assert [name for name, _, _ in launches] == [kernel("grid_grad", "float32", 2, "bilinear", 4)]
    # No points: dx is all zeros (clear, scan, sort and sum still run).
    x = random_x((1, 5, 6, 4), mx.float32)
    dx, _, names = emulator.backward(x, mx.zeros((1, 0, 3, 2)), mx.zeros((1, 0, 3, 4)), **kw)
    assert "grid_sample_count" not in names and "grid_sample_fill" not in names
    assert np.all(np.array(dx) == 0)


def test_index_limits_are_errors(emulator):
    big = 1 << 16
    with pytest.raises(EmulatorError, match=r"grid points, more than the 2\*\*31 - 1"):
        emulator.plan("forward", (2, 4, 4, 1), (2, big, big // 2, 2), mode="bilinear")
    with pytest.raises(EmulatorError, match=r"input pixels .* more than the 2\*\*32 - 1"):
        emulator.plan("forward", (2, big, big // 2, 1), (2, 4, 4, 2), mode="bilinear")
    with pytest.raises(EmulatorError, match=r"more than the 2\*\*32 - 1 taps"):
        emulator.plan("backward", (1, 4, 4, 1), (1, big, big // 8, 2), mode="bicubic")
    with pytest.raises(EmulatorError, match="bicubic"):
        emulator.plan("forward", (1, 4, 4, 4, 1), (1, 2, 2, 2, 3), mode="bicubic")
    with pytest.raises(EmulatorError, match="float32, float16 and bfloat16, not int32"):
        emulator.plan("forward", (1, 4, 4, 1), (1, 2, 2, 2), mode="bilinear", dtype="int32")


def test_memory_limit_counts_the_temporaries(emulator):
    shape, grid_shape = (2, 64, 64, 8), (2, 64, 64, 2)
    _, temporary = emulator.plan("backward", shape, grid_shape, mode="bilinear")
    # counts (4 bytes a pixel), levels, entries (8 bytes per tap).
    pixels, taps = 2 * 64 * 64, 2 * 64 * 64 * 4
    assert temporary == 4 * (pixels + 128 + 2) + 8 * taps
    outputs = pixels * 8 * 4 + 2 * 64 * 64 * 2 * 4
    emulator.set_memory_limit(outputs + temporary)
    try:
        emulator.plan("backward", shape, grid_shape, mode="bilinear")
        emulator.set_memory_limit(outputs + temporary - 1)
        with pytest.raises(EmulatorError, match="needs up to .* counts and entries"):
            emulator.plan("backward", shape, grid_shape, mode="bilinear")
    finally:
        emulator.set_memory_limit(float("inf"))


def test_every_kernel_executed(emulator):
    """Runs last: every kernel of kernels/grid_sample.metal ran above."""
    missing = sorted(set(emulator.kernels()) - set(emulator.executed()))
    assert not missing, f"never executed: {missing}"
