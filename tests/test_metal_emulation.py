"""Runs every Metal kernel of kernels/upsample.metal through the emulator
(tests/metal_emulator) on the launch plan eval_gpu uses, and compares with
the CPU path, bit for bit, and with PyTorch (also for the antialias and area
kernels).

The session ends with the line `metal kernels executed: K of N` (conftest.py);
test_every_kernel_executed fails when K < N.
"""

import itertools
import math

import mlx.core as mx
import mlx.nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mlx_upsample
from mlx_upsample import _ext
from metal_emulator.harness import Emulator, EmulatorError, build, variant

FLOATS = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
TOLERANCE = {mx.float32: 2e-5, mx.float16: 1e-2, mx.bfloat16: 6e-2}
# Per rank: spatial shape and a scale per axis mixing up, down, fractional.
SHAPES = {1: (6,), 2: (5, 4), 3: (4, 3, 4), 4: (3, 2, 3, 2)}
SCALES = {1: (1.6,), 2: (2.0, 0.75), 3: (1.5, 2.0, 0.5), 4: (2.0, 1.5, 1.0, 0.7)}
TORCH_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


@pytest.fixture(scope="session")
def emulator(tmp_path_factory, request):
    emu = Emulator(build(tmp_path_factory.getbasetemp()), variant())
    request.config._metal_emulator = emu
    return emu


class Case:
    """One operator call: its public form (our CPU path) and its C++-level
    parameters (for the emulator)."""

    def __init__(self, family, method, align=False, scales=None, sizes=None, recompute=False):
        self.family, self.method, self.align = family, method, align
        self.scales, self.sizes, self.recompute = scales, sizes, recompute

    def __repr__(self):
        return f"{self.family}-{self.method}-ac{int(self.align)}-s{self.scales}-n{self.sizes}"

    @property
    def antialias(self):
        return self.method.startswith("antialias-")

    @property
    def public_mode(self):
        """The mode name of the public API ("antialias-cubic" -> "cubic")."""
        return self.method.split("-", 1)[1] if self.antialias else self.method

    def cpu(self, x):
        if self.family == "mlx":
            return mlx_upsample.upsample(
                x, self.scales, self.public_mode, self.align, antialias=self.antialias
            )
        interpolating = self.public_mode in ("linear", "cubic")
        return mlx_upsample.interpolate(
            x,
            size=self.sizes,
            scale_factor=self.scales,
            mode=self.public_mode,
            align_corners=self.align if interpolating else None,
            recompute_scale_factor=self.recompute or None,
            antialias=self.antialias,
        )

    def emulate(self, emu, src, dst_shape, backward=False, passes=0):
        return emu.run(
            src, dst_shape, family=self.family, method=self.method,
            align_corners=self.align, recompute_scale=self.recompute,
            scales=self.scales, sizes=self.sizes, backward=backward, passes=passes,
        )

    def torch(self, x64, dims):
        """PyTorch's result on a float64 NCHW tensor, or None where PyTorch
        has no such mode (cubic and antialias outside 2-D, anything in 4-D)."""
        if self.family != "pytorch" or dims > 3:
            return None
        mode = {"linear": TORCH_LINEAR[dims], "cubic": "bicubic"}.get(
            self.public_mode, self.public_mode
        )
        if (mode == "bicubic" or self.antialias) and dims != 2:
            return None
        kwargs = {"align_corners": self.align} if self.public_mode in ("linear", "cubic") else {}
        if self.antialias:
            kwargs["antialias"] = True
        return F.interpolate(
            x64, size=self.sizes, scale_factor=self.scales, mode=mode,
            recompute_scale_factor=self.recompute or None, **kwargs,
        )


def to_numpy64(a):
    return np.array(a.astype(mx.float32)).astype(np.float64)


def random_input(shape, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return mx.array(x).astype(dtype)


def assert_same_bits(got, expected):
    """Equal element for element, as raw bits (+0.0 is not -0.0)."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(np.array(got.view(mx.uint8)), np.array(expected.view(mx.uint8)))


def check_forward(emu, case, x, passes=0):
    expected = case.cpu(x)
    got, kernel = case.emulate(emu, x, expected.shape, passes=passes)
    assert_same_bits(got, expected)
    xt = torch.tensor(np.moveaxis(to_numpy64(x), -1, 1)) if x.dtype in TOLERANCE else None
    ref = case.torch(xt, x.ndim - 2) if xt is not None else None
    if ref is not None:
        tol = TOLERANCE[x.dtype]
        np.testing.assert_allclose(
            to_numpy64(got), np.moveaxis(ref.numpy(), 1, -1), rtol=tol, atol=4 * tol
        )
    return kernel


def check_backward(emu, case, x, passes=0):
    out_shape = case.cpu(x).shape
    g = random_input(out_shape, x.dtype, seed=1)
    _, (expected,) = mx.vjp(case.cpu, [x], [g])
    got, kernel = case.emulate(emu, g, x.shape, backward=True, passes=passes)
    assert_same_bits(got, expected)
    tol = TOLERANCE[x.dtype]
    xt = torch.tensor(np.moveaxis(to_numpy64(x), -1, 1), requires_grad=True)
    ref = case.torch(xt, x.ndim - 2)
    if ref is not None:
        (ref * torch.tensor(np.moveaxis(to_numpy64(g), -1, 1))).sum().backward()
        np.testing.assert_allclose(
            to_numpy64(got), np.moveaxis(xt.grad.numpy(), 1, -1), rtol=tol, atol=8 * tol
        )
    return kernel


# ---- every kernel: each mode x dtype x rank x vector width ------------------

RANKS = [1, 2, 3, 4]
# Channels per thread (the kernel's _vV): 5 -> 1, 3 -> 3 (one thread per RGB
# pixel, scalar moves), 10 -> 2 (2-vectors), 12 -> 4 (4-vectors), 8 -> 8 (two
# 4-vectors).
CHANNELS = [5, 3, 10, 12, 8]


def packet_width(channels, offset=0, elem_size=4):
    """The launch plan's channels per thread (csrc/metal/launch_plan.cpp)."""
    for v in (8, 4, 3, 2):
        vector = 4 if v == 8 else v
        if channels % v == 0 and (v == 3 or offset % (vector * elem_size) == 0):
            return v
    return 1


WINDOW_METHODS = ["antialias-linear", "antialias-cubic", "area"]


def case_for(method, rank):
    # Where PyTorch has no reference (cubic and antialias outside 2-D), the
    # MLX family: its CPU path is checked against mlx.nn.Upsample elsewhere.
    if method in ("cubic", "antialias-linear", "antialias-cubic") and rank != 2:
        return Case("mlx", method, scales=SCALES[rank])
    return Case("pytorch", method, scales=SCALES[rank])


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("dtype", [mx.bool_, mx.float16, mx.int32, mx.int64])
def test_nearest_forward_kernels(emulator, dtype, rank, channels):
    x = random_input((2, *SHAPES[rank], channels), mx.float32)
    x = (x > 0) if dtype == mx.bool_ else (x * 100).astype(dtype)
    kernel = check_forward(emulator, case_for("nearest", rank), x)
    vec = f"v{packet_width(channels)}"
    assert kernel.endswith(vec) and kernel.startswith(f"upsample_copy_u{8 * dtype.size}_")


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("dtype", list(FLOATS))
@pytest.mark.parametrize("method", ["linear", "cubic"] + WINDOW_METHODS)
def test_interpolate_forward_kernels(emulator, method, dtype, rank, channels):
    x = random_input((2, *SHAPES[rank], channels), FLOATS[dtype])
    kernel = check_forward(emulator, case_for(method, rank), x, passes=1)
    assert kernel == gather_kernel(dtype, rank, channels)


def gather_kernel(dtype, rank, channels):
    """The kernel of every weighted pass: ranks 1-3 have their own."""
    rank_name = f"{rank}d" if rank <= 3 else "nd"
    return f"upsample_gather_{dtype}_{rank_name}_v{packet_width(channels)}"


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("dtype", list(FLOATS))
@pytest.mark.parametrize("method", ["nearest", "linear", "cubic"] + WINDOW_METHODS)
def test_backward_kernels(emulator, method, dtype, rank, channels):
    x = random_input((2, *SHAPES[rank], channels), FLOATS[dtype])
    kernel = check_backward(emulator, case_for(method, rank), x, passes=1)
    assert kernel == gather_kernel(dtype, rank, channels)


# ---- the index rules, in 2-D float32, against the CPU path and PyTorch ------

SCALE_SETS = [(2.0, 2.0), (3.0, 1.0), (1.7, 2.3), (0.5, 0.75), (0.4, 2.5)]


def semantic_cases():
    for scales in SCALE_SETS:
        yield Case("mlx", "nearest", scales=scales)
        yield Case("pytorch", "nearest", scales=scales)
        yield Case("pytorch", "nearest-exact", scales=scales)
        for method, align in itertools.product(["linear", "cubic"], [False, True]):
            yield Case("mlx", method, align, scales=scales)
            yield Case("pytorch", method, align, scales=scales)
        for method in ["antialias-linear", "antialias-cubic"]:
            yield Case("mlx", method, scales=scales)
            yield Case("pytorch", method, scales=scales)
            yield Case("pytorch", method, True, scales=scales)  # PyTorch allows it
        yield Case("pytorch", "area", scales=scales)
    for method in ["nearest", "nearest-exact", "linear", "cubic"] + WINDOW_METHODS:
        yield Case("pytorch", method, sizes=(1, 9))
        yield Case("pytorch", method, sizes=(13, 3))
        yield Case("pytorch", method, scales=(2.5, 1.3), recompute=True)


@pytest.mark.parametrize("case", list(semantic_cases()), ids=repr)
@pytest.mark.parametrize("channels", [1, 68])
def test_index_rules(emulator, case, channels):
    x = random_input((2, 7, 6, channels), mx.float32)
    check_forward(emulator, case, x)
    if not case.method.startswith("nearest") or case.family == "pytorch":
        check_backward(emulator, case, x)


@pytest.mark.parametrize("method", WINDOW_METHODS)
@pytest.mark.parametrize("sizes", [(1, 1), (3, 2), (40, 5)], ids=str)
def test_window_kernels_long_and_short_windows(emulator, method, sizes):
    """Windows of the whole axis (size 1), long windows (x0.1) and upscaling windows."""
    x = random_input((1, 37, 20, 4), mx.float32)
    case = Case("pytorch", method, sizes=sizes)
    check_forward(emulator, case, x)
    check_backward(emulator, case, x)


def test_launch_plan_grid_not_whole_threadgroups(emulator):
    # 17 channel packets x 4 positions x 5 rows: the threadgroup (16 x 4 x 1)
    # divides neither, so the groups at the grid's edges are partial.
    x = random_input((1, 5, 2, 68), mx.float32)
    check_forward(emulator, Case("pytorch", "linear", scales=(1.0, 2.0)), x)


# ---- what a real GPU would do differently ------------------------------------
#
# The Metal compiler may contract `a * b + c` into one fused multiply-add,
# which rounds once instead of twice: an index that lands exactly on .5 or on
# an integer then moves. upsample_math.h turns contraction off
# (`#pragma clang fp contract(off)`); the `contract` emulator variant
# (clang, -ffp-contract=on -mfma, run by .ci/run) proves that the pragma holds.
# The references below round every float32 operation separately, as numpy
# does and as the CPU path (-ffp-contract=off) does.

f32 = np.float32


def reference_lowest_taps(rule, n, m, scale):
    """Lowest input index of every output, each step rounded to float32."""
    i = np.arange(m, dtype=np.int64)
    if rule == "mlx-nearest":  # RULE_NEAREST_ROUND / RULE_NEAREST_FLOOR
        s = f32(n / m)
        if m > n:
            idx = np.rint((((i + 0.5).astype(f32) * s).astype(f32) - f32(0.5)).astype(f32))
        else:
            idx = np.floor((i.astype(f32) * s).astype(f32))
        return np.clip(idx, 0, n - 1).astype(np.int32)
    if rule in ("pytorch-linear", "pytorch-cubic"):  # RULE_HALF_PIXEL, size given
        s = f32(n) / f32(m)
        src = ((s * (i + 0.5).astype(f32)).astype(f32) - f32(0.5)).astype(f32)
        if rule == "pytorch-linear":
            if n == m:
                return i.astype(np.int32)
            return np.floor(np.clip(src, f32(0), f32(n - 1))).astype(np.int32)
        return np.clip(np.floor(src) - 1, 0, n - 1).astype(np.int32)
    # "mlx-linear": RULE_CENTRED, step and offset in double, the grid in float32
    step = 1.0 / scale
    offset = f32(((m - 1) * step - n + 1) / 2)
    src = ((i.astype(f32) * f32(step)).astype(f32) - offset).astype(f32)
    return np.floor(np.clip(src, f32(0), f32(n - 1))).astype(np.int32)


def test_index_math_rounds_each_operation(emulator):
    """Sweeps 4.6M (N, M, i) (N <= 64, M <= 192): the kernels' index math equals the separately rounded
    reference (e.g. MLX nearest 2 -> 7 reads input 0 at output 3, PyTorch
    linear 17 -> 47 input 8 at output 23, which a fused multiply-add moves)."""
    mismatches = []
    for n in range(1, 65):
        for m in range(1, 193):
            scale = m / n
            if math.floor(n * scale) != m:
                continue
            cases = [
                ("pytorch-linear", dict(family="pytorch", method="linear", size=m)),
                ("pytorch-cubic", dict(family="pytorch", method="cubic", size=m)),
                ("mlx-linear", dict(family="mlx", method="linear", scale=scale)),
            ]
            if scale != math.floor(scale):
                cases.append(("mlx-nearest", dict(family="mlx", method="nearest", scale=scale)))
            for rule, kwargs in cases:
                got = emulator.lowest_taps(in_size=n, out_size=m, **kwargs)
                want = reference_lowest_taps(rule, n, m, scale)
                for i in np.flatnonzero(got != want):
                    mismatches.append((rule, n, m, int(i), int(want[i]), int(got[i])))
    assert not mismatches, f"{len(mismatches)} outputs read another input, e.g. {mismatches[:5]}"


def test_mlx_nearest_2_to_7_on_the_kernel(emulator):
    """The FMA case end to end: the nearest kernel against mlx.nn.Upsample."""
    x = mx.array(np.arange(2 * 4, dtype=np.float32).reshape(1, 2, 4))
    got, _ = emulator.run(
        x, (1, 7, 4), family="mlx", method="nearest", scales=(3.5,)
    )
    expected = mlx.nn.Upsample(scale_factor=3.5, mode="nearest")(x)
    np.testing.assert_array_equal(np.array(got), np.array(expected))


@pytest.mark.parametrize("offset", [0, 4, 8, 12, 16, 32])
@pytest.mark.parametrize("backward", [False, True])
def test_vector_loads_only_from_aligned_views(emulator, offset, backward):
    """A row-contiguous view can start inside its buffer (x.reshape(-1)[1:]):
    4-vectors (packets of 4 or 8) are planned only where every packet is
    16-byte aligned, 2-vectors where it is 8-byte aligned."""
    case = Case("pytorch", "linear", scales=(2.0, 1.5))
    x = random_input((2, 5, 4, 8), mx.float32)
    expected = case.cpu(x)
    src, dst_shape = (x, expected.shape)
    if backward:
        src = random_input(expected.shape, mx.float32, seed=1)
        _, (expected,) = mx.vjp(case.cpu, [x], [src])
        dst_shape = x.shape
    got, kernel = emulator.run(
        src, dst_shape, family="pytorch", method="linear", scales=(2.0, 1.5),
        backward=backward, src_offset=offset,
    )
    assert kernel.endswith(f"_v{packet_width(8, offset)}"), kernel
    assert packet_width(8, offset) == (8 if offset % 16 == 0 else 2 if offset % 8 == 0 else 1)
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("limit", [1, 32, 96, 256, 1024])
def test_threadgroup_fits_the_pipeline_limit(emulator, limit):
    """A heavy pipeline may allow fewer than 256 threads per group; the plan
    must fit it (the emulator rejects a larger group, as Metal does)."""
    case = Case("pytorch", "cubic", scales=(2.0, 1.5))
    x = random_input((2, 5, 4, 12), mx.float32)
    expected = case.cpu(x)
    got, _ = emulator.run(
        x, expected.shape, family="pytorch", method="cubic", scales=(2.0, 1.5),
        max_threads_per_group=limit,
    )
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=2e-6, atol=2e-6)


# ---- two launches through a float32 temporary --------------------------------
#
# A separable pass may run as the leading axes into a float32 temporary, then
# the last axis (launch_plan.cpp picks it when it saves more arithmetic than
# the temporary costs in memory). The first launch sees a row of the last
# axis times the channels as its channels: with a last axis of 5 the channel
# counts give it 1, 3, 2, 4 and 8 channels per thread, and the second launch
# (always rank 1) the widths of CHANNELS.
TWO_PASS_SHAPES = {2: (4, 5), 3: (3, 2, 5), 4: (2, 3, 2, 5), 5: (2, 2, 2, 2, 5)}
TWO_PASS_SCALES = {2: (0.5, 2.0), 3: (1.5, 2.0, 0.6), 4: (2.0, 1.5, 1.0, 0.8),
                   5: (1.5, 1.0, 2.0, 1.0, 0.6)}


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dims", sorted(TWO_PASS_SHAPES))
@pytest.mark.parametrize("dtype", list(FLOATS))
@pytest.mark.parametrize("method", ["linear", "antialias-cubic", "area"])
def test_two_launch_kernels(emulator, method, dtype, dims, channels):
    family = "pytorch" if method == "area" or dims == 2 else "mlx"
    case = Case(family, method, scales=TWO_PASS_SCALES[dims])
    x = random_input((2, *TWO_PASS_SHAPES[dims], channels), FLOATS[dtype])
    for check in (check_forward, check_backward):
        kernel = check(emulator, case, x, passes=2)
        lead, rest = kernel.split("+")
        into = "float32" if dtype == "float32" else f"{dtype}_float32"
        out_of = "float32" if dtype == "float32" else f"float32_{dtype}"
        rank = f"{dims - 1}d" if dims <= 4 else "nd"
        assert lead.startswith(f"upsample_gather_{into}_{rank}_v"), kernel
        assert rest == f"upsample_gather_{out_of}_1d_v{packet_width(channels)}", kernel


@pytest.mark.parametrize("backward", [False, True])
def test_plan_splits_where_it_saves(emulator, backward):
    """A 3-D antialiased x0.25 reads 17^3 taps per output in one launch, 17^2
    and 17 in two: the plan splits it; the 2-D one and a 2x upscale it keeps
    whole (the memory traffic bounds them)."""
    def launches(shape, scale, method):
        dims = len(shape) - 2
        out = (shape[0], *[int(n * scale) for n in shape[1:-1]], shape[-1])
        src, dst = (out, shape) if backward else (shape, out)
        return len(emulator.plan(src, dst, family="mlx", method=method, scales=(scale,) * dims,
                                 backward=backward))

    assert launches((1, 64, 64, 64, 8), 0.25, "antialias-cubic") == 2
    assert launches((8, 128, 128, 64), 0.25, "antialias-cubic") == 1
    assert launches((8, 64, 64, 64), 2.0, "linear") == 1
    assert launches((1, 8, 8, 8), 0.25, "antialias-cubic") == 1  # too small to pay a launch


def test_two_launches_agree_with_one(emulator):
    """The same bits either way: the temporary holds the inner sums of the
    one-launch kernel."""
    case = Case("mlx", "antialias-cubic", scales=(0.25, 0.25, 0.5))
    x = random_input((1, 24, 20, 12, 8), mx.float32)
    one, k1 = case.emulate(emulator, x, case.cpu(x).shape, passes=1)
    two, k2 = case.emulate(emulator, x, case.cpu(x).shape, passes=2)
    assert "+" not in k1 and "+" in k2
    assert_same_bits(two, one)


# ---- the grid, the lanes and the offsets ---------------------------------------


def test_magic_division_is_exact(emulator):
    """Grid coordinates are split without an integer divider (Apple GPUs have
    none): mulhi(2n, magic) >> shift == n // d for every n < 2^31."""
    rng = np.random.default_rng(0)
    top = 2**31 - 1
    divisors = list(range(1, 1030)) + [3**k for k in range(7, 20)] + [
        2**k + e for k in range(10, 31) for e in (-1, 0, 1)] + [top, 2**31 - 2]
    for d in divisors:
        k = np.arange(0, 40)
        near = np.concatenate([k * d, k * d + d - 1, top - k, (top // d - k) * d, (top // d - k) * d - 1])
        n = np.concatenate([rng.integers(0, 2**31, 200), near])
        n = n[(n >= 0) & (n <= top)].astype(np.int64)
        np.testing.assert_array_equal(emulator.divide(n, d), n // d, err_msg=f"divisor {d}")


@pytest.mark.parametrize("channels,packets_per_position", [(3, 1), (36, 9), (130, 65), (64, 8)])
def test_lanes_are_dense(emulator, channels, packets_per_position):
    """Channel counts that are not powers of two leave no idle lanes between
    positions: a row of the grid is positions x packets, tiled by whole SIMD
    groups (C = 3 is one thread per pixel)."""
    (kernel, grid, group), = emulator.plan(
        (2, 16, 16, channels), (2, 32, 32, channels), family="pytorch", method="linear",
        scales=(2.0, 2.0))
    assert grid == (32 * packets_per_position, 2 * 32, 1)
    row = min(grid[0], 256)
    assert group == (row, 256 // row, 1) and row % 32 == 0, (kernel, group)


def test_wide_batch_entries_take_the_64_bit_kernel(emulator):
    """A batch entry of 2^32 elements or more does not fit the 32-bit
    offsets of the rank 1-3 kernels: the plan takes the rank-generic one."""
    (narrow, _, _), = emulator.plan((1, 32768, 32768, 2), (1, 65536, 32768, 2), family="pytorch",
                                    method="nearest", scales=(2.0, 1.0))
    (wide, _, _), = emulator.plan((1, 65536, 32768, 2), (1, 131072, 32768, 2), family="pytorch",
                                  method="nearest", scales=(2.0, 1.0))
    assert narrow == "upsample_copy_u32_2d_v2" and wide == "upsample_copy_u32_nd_v2"


def test_grid_limits_are_errors(emulator):
    with pytest.raises(Exception, match="too large for one Metal grid"):
        emulator.plan((2**16, 2**15, 1, 1), (2**16, 2**16, 1, 1), family="pytorch",
                      method="nearest", scales=(2.0, 1.0))


@pytest.mark.parametrize("backward", [False, True])
def test_tap_table_limit_is_an_error(emulator, backward):
    """eval_gpu hands a table's words to an mx::array, whose shape is an int:
    a 1-D cubic between 2**20 and 2**28 positions needs more than 2**31 - 1
    words (a row pair per position written and a word pair per tap), and is
    refused before any is built."""
    small, large = (1, 2**20, 1), (1, 2**28, 1)
    src, dst = (large, small) if backward else (small, large)
    words = 2 * (2**20 + 4 * 2**28) if backward else 2 * (2**28 + 4 * 2**28)
    with pytest.raises(EmulatorError) as error:
        emulator.plan(src, dst, family="pytorch", method="cubic", scales=(256.0,),
                      backward=backward)
    message = str(error.value)
    assert "spatial axes 1048576 -> 268435456" in message, message
    assert f"up to {words} 32-bit words" in message and "2**31 - 1" in message, message


def test_memory_limit_is_an_error(emulator):
    """Tap tables, temporary and output beyond MLX's memory limit are refused
    before any is built (a MemoryError in the extension); under the limit the
    call runs and matches PyTorch."""
    previous = emulator.set_memory_limit(1e6)
    try:
        with pytest.raises(EmulatorError, match=r"\(1, 1000, 4\) to \(1, 100000, 4\) .*"
                           r"on the GPU needs up to [\d.]+ MB for its tap tables.*memory limit of 1\.0 MB"):
            emulator.plan((1, 1000, 4), (1, 100000, 4), family="pytorch", method="linear",
                          scales=(100.0,))
        x = random_input((1, 100, 4), mx.float32)
        got, _ = emulator.run(x, (1, 1000, 4), family="pytorch", method="linear",
                              scales=(10.0,))
    finally:
        emulator.set_memory_limit(previous)
    t = torch.from_numpy(np.array(x, dtype=np.float64)).permute(0, 2, 1)
    expected = F.interpolate(t, scale_factor=10.0, mode="linear").permute(0, 2, 1).numpy()
    tol = TOLERANCE[mx.float32]
    np.testing.assert_allclose(np.array(got), expected, rtol=tol, atol=4 * tol)


# ---- bit for bit with the CPU path ---------------------------------------------
#
# The kernels sum in the CPU path's order (the head of upsample.metal): axis 0
# innermost, each sum from its first product on. So every pass gives the CPU
# path's bits, in one launch or two. The inputs show any other order: values
# that cancel (1 - 1 + 2**-24 is not 1 + 2**-24 - 1 in float32) and signed
# zeros, whose sign a sum keeps only from its first product on (+0.0 + -0.0 is
# +0.0). Each is exact in float16 and bfloat16 too.
CANCELLING = np.array(
    [1.0, -1.0, 2.0**-12, -(2.0**-12), 2.0**-24, -(2.0**-24), 0.0, -0.0, 3.0, -3.0, 256.0, -256.0],
    dtype=np.float32,
)
BITWISE_METHODS = ["nearest", "nearest-exact", "linear", "cubic"] + WINDOW_METHODS
BITWISE_SHAPES = {1: (7,), 2: (6, 5), 3: (5, 4, 5), 4: (3, 4, 2, 3)}
# An upscale and a downscale of every axis: in one of the two, every axis has
# positions of several taps, forward and backward (an upscale's backward sums
# the outputs that read an input; a downscale's windows overlap).
BITWISE_SCALES = {
    1: [(1.75,), (0.6,)],
    2: [(1.75, 2.5), (0.6, 0.45)],
    3: [(1.75, 2.5, 1.5), (0.6, 0.45, 0.7)],
    4: [(1.75, 1.5, 2.5, 1.5), (0.7, 0.6, 0.5, 0.7)],
}


def cancelling_input(shape, dtype, seed):
    """CANCELLING values, a third of them signed zeros (whose sums show the
    sign a sum starts from)."""
    rng = np.random.default_rng(seed)
    p = np.where(CANCELLING == 0.0, 1 / 6, 2 / 30)
    return mx.array(rng.choice(CANCELLING, size=shape, p=p)).astype(dtype)


def bitwise_cases(method, rank):
    """Both families where the method has one; each scale set with 3 and with
    8 channels (the CPU path's fixed-channel and lane kernels, the kernels'
    3- and 8-channel packets); align_corners with the MLX family."""
    up, down = BITWISE_SCALES[rank]
    yield Case("pytorch", method, scales=up), 8
    yield Case("pytorch", method, scales=down), 3
    if method not in ("nearest-exact", "area"):
        align = method in ("linear", "cubic")
        yield Case("mlx", method, align, scales=up), 3
        yield Case("mlx", method, scales=down), 8


def same_bits_as_cpu(emu, case, x, backward, passes):
    expected = case.cpu(x)
    src, dst_shape = x, expected.shape
    if backward:
        src = cancelling_input(expected.shape, x.dtype, seed=2)
        _, (expected,) = mx.vjp(case.cpu, [x], [src])
        dst_shape = x.shape
    got, kernel = case.emulate(emu, src, dst_shape, backward=backward, passes=passes)
    assert_same_bits(got, expected)
    return kernel


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("dtype", list(FLOATS))
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("method", BITWISE_METHODS)
def test_bitwise_equal_to_the_cpu_path(emulator, method, rank, dtype, backward):
    """Every mode, forward and backward, ranks 1-4 (4: the rank-generic
    kernel), every float dtype, one launch and two: the CPU path's bits."""
    one_launch = rank == 1 or (method.startswith("nearest") and not backward)
    kernels = set()
    for case, channels in bitwise_cases(method, rank):
        x = cancelling_input((2, *BITWISE_SHAPES[rank], channels), FLOATS[dtype], seed=rank)
        for passes in (1,) if one_launch else (1, 2):
            kernels.add(same_bits_as_cpu(emulator, case, x, backward, passes))
    launches = {kernel.count("+") + 1 for kernel in kernels}
    assert launches == ({1} if one_launch else {1, 2}), kernels


def test_bitwise_reported_sums(emulator):
    """A 2-D nearest backward 1x1 -> 2x2, where summing axis 0 outermost
    gives ((1 + 1e-8) - 1) + 1e-8 = 1e-8 in float32 and the CPU path
    (1 - 1) + (1e-8 + 1e-8) = 2e-8; and a 1-D cubic backward 3 -> 1 whose
    zero weights make -0.0 of a cotangent of -0.5, which a sum from +0.0
    would turn into +0.0."""
    v = mx.array(np.array([[1, 1e-8], [-1, 1e-8]], np.float32).reshape(1, 2, 2, 1))
    case = Case("pytorch", "nearest", sizes=(2, 2))
    _, (cpu,) = mx.vjp(case.cpu, [mx.zeros((1, 1, 1, 1))], [v])
    got, _ = case.emulate(emulator, v, (1, 1, 1, 1), backward=True)
    assert np.array(cpu).item() == np.float32(1e-8) + np.float32(1e-8)
    assert_same_bits(got, cpu)

    g = mx.full((1, 1, 1), -0.5)
    case = Case("pytorch", "cubic", sizes=(1,))
    _, (cpu,) = mx.vjp(case.cpu, [mx.zeros((1, 3, 1))], [g])
    got, _ = case.emulate(emulator, g, (1, 3, 1), backward=True)
    assert np.signbit(np.array(cpu)).all()
    assert_same_bits(got, cpu)


@pytest.mark.parametrize(
    "case,backward",
    [
        (Case("mlx", "antialias-linear", scales=(1.0, 1.0)), False),
        (Case("mlx", "antialias-cubic", scales=(1.0, 1.0)), True),
        (Case("pytorch", "area", sizes=(4, 5)), False),
        (Case("pytorch", "area", sizes=(4, 5)), True),
        (Case("pytorch", "nearest", scales=(1.0, 1.0)), True),
    ],
    ids=repr,
)
def test_identity_returns_the_input(emulator, case, backward):
    """A call whose every axis maps each position onto itself with weight 1
    returns its input on both backends, though MLX's antialias rows also
    read the neighbours with weight 0 (whose sum would turn -0.0 into +0.0
    and 0 * inf into NaN)."""
    x = cancelling_input((2, 4, 5, 3), mx.float32, seed=5)
    x = mx.where(mx.arange(3) == 1, mx.array(np.inf), x)
    got, kernel = case.emulate(emulator, x, x.shape, backward=backward)
    assert kernel == ""  # no launch
    assert_same_bits(got, x)
    if backward:
        _, (cpu,) = mx.vjp(case.cpu, [mx.zeros_like(x)], [x])
    else:
        cpu = case.cpu(x)
    assert_same_bits(cpu, x)


def random_case(rng):
    """A call drawn at random: family, mode, rank 1-5, sizes 1-7, scales or sizes,
    align_corners, recompute_scale_factor, channels (the CPU path's 1-4 channel, 8-lane
    and 32-lane kernels), batch."""
    family = str(rng.choice(["mlx", "pytorch"]))
    methods = ["nearest", "linear", "cubic", "antialias-linear", "antialias-cubic"]
    method = str(rng.choice(methods + (["nearest-exact", "area"] if family == "pytorch" else [])))
    shape = [int(n) for n in rng.integers(1, 8, size=int(rng.integers(1, 6)))]
    channels = int(rng.choice([1, 2, 3, 4, 5, 8, 9, 12] + ([40] if len(shape) <= 2 else [])))
    align = method in ("linear", "cubic") and bool(rng.random() < 0.3)
    sizes = scales = None
    recompute = False
    if family == "pytorch" and rng.random() < 0.5:
        sizes = [int(m) for m in rng.integers(1, 10, size=len(shape))]
    else:
        pool = [0.25, 0.4, 0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0]
        scales = [float(rng.choice(pool)) for _ in shape]
        scales = [s if math.floor(s * n) > 0 else 1.0 for s, n in zip(scales, shape)]
        recompute = family == "pytorch" and bool(rng.random() < 0.3)
    case = Case(family, method, align, scales=scales, sizes=sizes, recompute=recompute)
    return case, (int(rng.integers(1, 3)), *shape, channels)


def test_bitwise_random_calls(emulator):
    """150 random calls, forward and backward, every float dtype, one launch and two:
    the CPU path's bits. The asan emulator (-O0, sanitized: 60x slower) runs the first 15."""
    rng = np.random.default_rng(2024)
    for k in range(15 if emulator.name == "asan" else 150):
        case, shape = random_case(rng)
        dtype = FLOATS[str(rng.choice(list(FLOATS)))]
        backward = bool(rng.random() < 0.5)
        x = cancelling_input(shape, dtype, seed=k)
        split = len(shape) > 3 and (backward or not case.method.startswith("nearest"))
        for passes in (1, 2) if split else (1,):
            try:
                same_bits_as_cpu(emulator, case, x, backward, passes)
            except AssertionError as e:
                raise AssertionError(f"{case} {shape} {dtype} backward={backward} passes={passes}") from e


@pytest.mark.parametrize("passes", [1, 2])
@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("method", ["nearest", "linear", "cubic", "antialias-cubic", "area"])
def test_leading_axes_are_one_batch(emulator, method, backward, passes):
    """vmap hands the primitives (*batch, *spatial, C) with its axis in front:
    the plan takes the product of the leading axes as the batch, so the kernels
    write what they write for the folded (N, *spatial, C) array, bit for bit,
    and what the CPU path computes under mx.vmap."""
    case = case_for(method, 2)
    x = random_input((2, 3, *SHAPES[2], 4), mx.float32)
    expected = mx.vmap(case.cpu)(x)
    if backward:
        g = random_input(expected.shape, mx.float32, seed=1)
        _, (expected,) = mx.vjp(mx.vmap(case.cpu), [x], [g])
        src, dst_shape = g, x.shape
    else:
        src, dst_shape = x, expected.shape
    got, kernel = case.emulate(emulator, src, dst_shape, backward=backward, passes=passes)
    folded, folded_kernel = case.emulate(
        emulator, src.reshape(6, *src.shape[2:]), (6, *dst_shape[2:]), backward=backward,
        passes=passes)
    assert got.shape == tuple(dst_shape) and kernel == folded_kernel
    np.testing.assert_array_equal(np.array(got.view(mx.uint32)).reshape(folded.shape),
                                  np.array(folded.view(mx.uint32)))
    tol = TOLERANCE[mx.float32]
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=tol, atol=tol)


def test_batch_of_2_31_entries_is_an_error(emulator):
    """Leading axes whose product reaches 2**31 (vmap over 65536 entries of a
    (32769, 2, 1) signal) cannot be grid rows: a clear error naming the sizes,
    not an overflowed int."""
    with pytest.raises(EmulatorError) as error:
        emulator.plan((65536, 32769, 2, 1), (65536, 32769, 4, 1), family="pytorch",
                      method="linear", scales=(2.0,))
    message = str(error.value)
    assert "too large for one Metal grid" in message, message
    assert "(65536, 32769, 2, 1) has 2147549184 batch entries" in message, message


# ---- strided sources, channels-first memory, one channel ---------------------
#
# eval_gpu hands the kernels the source as it lies (layout.h, Reads::Strided):
# channels-first memory as channel images (*batch, C, *spatial, 1), viewed on
# it with its strides, whose row-contiguous result is channels-first memory;
# any other layout with its own strides. _ext._strided_operand says what the
# kernels are handed; the emulator reads that view of the memory and must
# write the CPU path's bits, in the CPU path's memory order.
_BITS = {1: mx.uint8, 2: mx.uint16, 4: mx.uint32, 8: mx.uint64}


def _layout_shapes(rank):
    return {1: (9,), 2: (6, 5), 3: (4, 3, 5)}[rank]


def channels_first(base):
    """The channels-last view of channels-first memory (N, C, *S)."""
    return mx.moveaxis(base, 1, -1)


def strided_layouts(rank, channels, dtype, seed):
    """(name, memory, view of it) for a (2, *S, C) problem: the memory an
    array's buffer holds, packed, and a function making the view of it that
    the op is called on."""
    s = _layout_shapes(rank)
    n = 2
    make = lambda shape, k=0: cancelling_input(shape, dtype, seed + k)  # noqa: E731
    yield "channels-first", make((n, channels, *s)), channels_first
    yield ("channels-first stepped", make((n, channels, 2 * s[0], *s[1:]), 1),
           lambda m: channels_first(m)[:, 1::2])
    yield ("channels-last stepped", make((n, 2 * s[0], *s[1:], channels + 1), 2),
           lambda m: m[:, ::2][..., 1:])
    yield "channel step", make((n, *s, 2 * channels), 3), lambda m: m[..., ::2]
    yield ("broadcast batch", make((1, *s, channels), 4),
           lambda m: mx.broadcast_to(m, (3, *s, channels)))
    yield ("broadcast spatial", make((n, 1, *s[1:], channels), 5),
           lambda m: mx.broadcast_to(m, (n, *s, channels)))
    if rank >= 2:
        yield ("spatial axes swapped", make((n, s[1], s[0], *s[2:], channels), 6),
               lambda m: mx.swapaxes(m, 1, 2))


def images_of(a, dims):
    """a (*batch, *S, C) in channels-first memory order, as the row-contiguous
    channel images (*batch, C, *S, 1) that the kernels write (as raw bits)."""
    bits = np.array(a.view(_BITS[a.dtype.size]))
    lead = a.ndim - dims - 1
    return np.moveaxis(bits, -1, lead)[..., None]


def emulate_strided(emu, case, src, memory, x, dst_shape, dims, backward):
    """Runs `case` on the emulator as eval_gpu would on `src` (a view of
    `memory`), `x` the primitive's input; returns (raw bits of the result,
    as the CPU path's result would be laid out, kernel, channel images?)."""
    images, shape, strides, start = _ext._strided_operand(src, x, dims)
    out_shape = list(dst_shape)
    if images:
        lead = len(out_shape) - dims - 1
        out_shape = out_shape[:lead] + [out_shape[-1]] + out_shape[lead:-1] + [1]
    got, kernel = emu.run(
        src, out_shape, family=case.family, method=case.method, align_corners=case.align,
        recompute_scale=case.recompute, scales=case.scales, sizes=case.sizes,
        backward=backward, view=(memory, shape, strides, start))
    return np.array(got.view(_BITS[src.dtype.size])), kernel, images


def cpu_bits(a, images, dims):
    return images_of(a, dims) if images else np.array(a.view(_BITS[a.dtype.size]))


STRIDED_METHODS = ["nearest", "linear", "cubic", "antialias-cubic", "area"]


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("method", STRIDED_METHODS)
def test_strided_sources_bitwise(emulator, method, rank, backward):
    """Every layout the kernels read in place, every float dtype, up- and
    downscaling: the CPU path's bits, laid out as the CPU path lays them out
    (channels-first memory for channels-first input, also for the gradient,
    whose cotangent comes channels-first or packed)."""
    family = "pytorch" if method == "area" else "mlx"
    if method == "nearest" and backward:
        family = "pytorch"
    for scales in BITWISE_SCALES[rank]:
        case = Case(family, method, scales=scales)
        for dtype in FLOATS.values():
            for name, memory, view in strided_layouts(rank, 3, dtype, seed=rank):
                x = view(memory)
                expected = case.cpu(x)
                if backward:
                    out = expected.shape
                    if name.startswith("channels-first") and scales == BITWISE_SCALES[rank][0]:
                        g_memory = cancelling_input((out[0], out[-1], *out[1:-1]), dtype, 7)
                        g = channels_first(g_memory)
                    else:
                        g_memory = g = cancelling_input(out, dtype, 7)
                    _, (expected,) = mx.vjp(case.cpu, [x], [g])
                    src, src_memory, dst_shape = g, g_memory, x.shape
                else:
                    src, src_memory, dst_shape = x, memory, expected.shape
                got, kernel, images = emulate_strided(
                    emulator, case, src, src_memory, x, dst_shape, rank, backward)
                # The CPU path's memory order: channels-first for channels-first
                # memory (and for what layout.h counts as channels-major).
                assert images == (not _ext._strides(expected)[1]), name
                assert images or not name.startswith("channels-first"), name
                try:
                    np.testing.assert_array_equal(got, cpu_bits(expected, images, rank))
                except AssertionError as e:
                    raise AssertionError(f"{name} {case} {dtype} {kernel}") from e


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_strided_nearest_copies_every_dtype(emulator, rank):
    """Nearest forward copies raw bits of any width from every layout."""
    case = Case("pytorch", "nearest", scales=BITWISE_SCALES[rank][0])
    for dtype in (mx.bool_, mx.uint8, mx.int16, mx.int32, mx.int64, mx.float32):
        for name, memory, view in strided_layouts(rank, 3, mx.float32, seed=rank):
            memory = (memory > 0) if dtype == mx.bool_ else (memory * 50).astype(dtype)
            x = view(memory)
            expected = case.cpu(x)
            got, _, images = emulate_strided(
                emulator, case, x, memory, x, expected.shape, rank, False)
            np.testing.assert_array_equal(got, cpu_bits(expected, images, rank), err_msg=name)


def test_packets_only_from_neighbouring_aligned_channels(emulator):
    """Vector packets across channels need channels one element apart and
    every stride and the start a multiple of the vector."""
    def kernel(strides, offset=0, shape=(2, 6, 5, 8)):
        x = mx.zeros((4096,))
        got, name = emulator.run(
            x, (2, 12, 10, 8), family="pytorch", method="linear", scales=(2.0, 2.0),
            view=(x, shape, strides, offset))
        return name
    assert kernel([240, 40, 8, 1]).endswith("_v8")  # packed
    assert kernel([480, 80, 8, 1]).endswith("_v8")  # every other row
    assert kernel([240, 40, 8, 1], offset=2).endswith("_v2")  # 8-byte aligned start
    assert kernel([241, 40, 8, 1]).endswith("_v1")  # batch stride not a multiple
    assert kernel([480, 80, 16, 2]).endswith("_v1")  # channels apart


def staged_layouts(rank, channels, dtype, seed):
    """(name, memory, view maker, vmapped?) for the layouts the passes do not
    read in place: negative strides, and leading axes of three strides (a
    vmapped, batch-sliced channels-first view: vmapped, the op sees
    (V, N, *S, C) channel images of (V, N, C) three strides apart)."""
    s = _layout_shapes(rank)
    make = lambda shape, k=0: cancelling_input(shape, dtype, seed + k)  # noqa: E731
    yield "reversed", make((2, *s, channels)), lambda m: m[:, ::-1], False
    yield "channels reversed", make((2, *s, channels), 1), lambda m: m[..., ::-1], False
    yield ("channels-first reversed", make((2, channels, *s), 2),
           lambda m: channels_first(m)[:, ::-1], False)
    yield ("vmapped batch slice", make((4, 4, channels, *s), 3),
           lambda m: mx.moveaxis(m[::2, ::2], 2, -1), True)


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_staged_sources_bitwise(emulator, rank, backward):
    """What the passes cannot read in place is copied row-contiguous by a
    first launch (Note [staging]): the CPU path's bits and memory order."""
    for method in ("nearest", "linear", "cubic"):
        case = Case("pytorch" if backward and method == "nearest" else "mlx", method,
                    scales=BITWISE_SCALES[rank][0])
        for dtype in FLOATS.values():
            for name, memory, view, vmapped in staged_layouts(rank, 3, dtype, seed=rank):
                x = view(memory)
                fn = mx.vmap(case.cpu) if vmapped else case.cpu
                expected = fn(x)
                src, src_memory, dst_shape = x, memory, expected.shape
                if backward:  # a reversed cotangent
                    g_memory = cancelling_input(expected.shape, dtype, 8)
                    src, src_memory, dst_shape = g_memory[:, ::-1], g_memory, x.shape
                    _, (expected,) = mx.vjp(fn, [x], [src])
                got, kernel, images = emulate_strided(
                    emulator, case, src, src_memory, x, dst_shape, rank, backward)
                assert kernel.startswith(f"upsample_strided_copy_u{8 * dtype.size}+"), kernel
                assert images == (not _ext._strides(expected)[1]), name
                try:
                    np.testing.assert_array_equal(got, cpu_bits(expected, images, rank))
                except AssertionError as e:
                    raise AssertionError(f"{name} {case} {dtype} {kernel}") from e


def test_staged_copies_every_width(emulator):
    """The staging copy moves raw bits of 1, 2, 4 and 8 bytes."""
    case = Case("pytorch", "nearest", scales=(2.0, 1.5))
    for dtype in (mx.bool_, mx.int16, mx.int32, mx.int64):
        memory = random_input((2, 5, 4, 3), mx.float32)
        memory = (memory > 0) if dtype == mx.bool_ else (memory * 50).astype(dtype)
        x = memory[:, ::-1, ::-2]
        expected = case.cpu(x)
        got, kernel, images = emulate_strided(
            emulator, case, x, memory, x, expected.shape, 2, False)
        assert kernel.startswith(f"upsample_strided_copy_u{8 * dtype.size}+") and not images
        np.testing.assert_array_equal(got, cpu_bits(expected, images, 2))


# ---- one channel: runs of positions (Note [runs] in upsample.metal) -----------

RUN_SHAPES = {1: (10,), 2: (3, 8), 3: (2, 3, 6)}


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", [mx.bool_, mx.float16, mx.int32, mx.int64])
def test_nearest_runs(emulator, dtype, rank):
    """One channel: a run of 4 positions per thread; where every aligned run
    reads one element (x4, x8 along the last axis) one load replicated, else
    a load per position; rows of a multiple of 4 and with a tail."""
    x = random_input((2, *RUN_SHAPES[rank], 1), mx.float32)
    x = (x > 0) if dtype == mx.bool_ else (x * 100).astype(dtype)
    bits = 8 * dtype.size
    for last, kind in [(4.0, "replicate"), (8.0, "replicate"), (1.5, "copy"), (2.0, "copy"),
                       (0.5, "copy")]:
        case = Case("pytorch", "nearest", scales=(*SCALES[rank][:-1], last))
        if last == 0.5 and RUN_SHAPES[rank][-1] == 10:
            case = Case("pytorch", "nearest", sizes=(7,))  # 10 -> 7: a tail of 3
        kernel = check_forward(emulator, case, x)
        assert kernel == f"upsample_{kind}_u{bits}_{rank}d_r4", (case, kernel)


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", list(FLOATS))
def test_gather_runs(emulator, dtype, rank, backward):
    """One channel, weighted passes: a run per thread, the CPU path's bits,
    in one launch and in two (whose first launch sees one channel only where
    the last axis has one position)."""
    for method in ("linear", "cubic", "antialias-linear"):
        case = Case("mlx", method, scales=BITWISE_SCALES[rank][0])
        x = cancelling_input((2, *RUN_SHAPES[rank], 1), FLOATS[dtype], seed=3)
        kernel = same_bits_as_cpu(emulator, case, x, backward, passes=1)
        assert kernel == f"upsample_gather_{dtype}_{rank}d_r4", kernel
    if rank == 1:
        return
    # The array read has a last axis of 1 position: forward x of (..., 1, 1)
    # upscaled, backward the cotangent of (..., 3, 1) downscaled to 1.
    one = (1, 3.0) if not backward else (3, 1 / 3)
    for last, scale in [(RUN_SHAPES[rank][-1], 3.0), one]:
        shape = (*RUN_SHAPES[rank][:-1], last, 1)
        case = Case("mlx", "linear", scales=(*BITWISE_SCALES[rank][0][:-1], scale))
        x = cancelling_input((2, *shape), FLOATS[dtype], seed=4)
        kernel = same_bits_as_cpu(emulator, case, x, backward, passes=2)
        lead, rest = kernel.split("+")
        into = "float32" if dtype == "float32" else f"{dtype}_float32"
        out_of = "float32" if dtype == "float32" else f"float32_{dtype}"
        assert lead.startswith(f"upsample_gather_{into}_{rank - 1}d_"), kernel
        assert lead.endswith("_r4") == ((last, scale) == one), kernel
        assert rest == f"upsample_gather_{out_of}_1d_r4", kernel


@pytest.mark.parametrize("dtype", list(FLOATS))
def test_gather_runs_into_the_temporary_at_rank_3(emulator, dtype):
    """Rank 4 in two launches whose first sees one channel (x's last axis of
    1 position): a rank-3 run into the float32 temporary."""
    case = Case("mlx", "linear", scales=(1.5, 2.0, 1.5, 3.0))
    x = cancelling_input((2, 3, 2, 3, 1, 1), FLOATS[dtype], seed=6)
    kernel = same_bits_as_cpu(emulator, case, x, False, passes=2)
    into = "float32" if dtype == "float32" else f"{dtype}_float32"
    assert kernel.split("+")[0] == f"upsample_gather_{into}_3d_r4", kernel


def test_run_plan_grid(emulator):
    """A run kernel's grid: ceil(positions / 4) threads per row."""
    (kernel, grid, group), = emulator.plan(
        (1, 9, 250, 1), (1, 9, 75000, 1), family="mlx", method="linear", scales=(300.0,))
    assert kernel == "upsample_gather_float32_1d_r4" and grid == (18750, 9, 1)
    (kernel, grid, _), = emulator.plan(
        (16, 250, 1), (16, 75000, 1), family="mlx", method="nearest", scales=(300.0,))
    assert kernel == "upsample_replicate_u32_1d_r4" and grid == (18750, 16, 1)


def test_every_kernel_executed(emulator):
    """Runs last in this module: every instantiated kernel ran at least once."""
    missing = sorted(set(emulator.kernels()) - set(emulator.executed()))
    assert not missing, f"kernels never executed: {missing}"
