"""Runs every Metal kernel of kernels/upsample.metal through the emulator
(tests/metal_emulator) on the launch plan eval_gpu uses, and compares with
the CPU path and PyTorch (also for the antialias and area kernels).

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
from metal_emulator.harness import Emulator, build, variant

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

    def emulate(self, emu, src, dst_shape, backward=False):
        return emu.run(
            src, dst_shape, family=self.family, method=self.method,
            align_corners=self.align, recompute_scale=self.recompute,
            scales=self.scales, sizes=self.sizes, backward=backward,
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


def check_forward(emu, case, x):
    expected = case.cpu(x)
    got, kernel = case.emulate(emu, x, expected.shape)
    assert got.dtype == x.dtype
    if case.method.startswith("nearest"):
        np.testing.assert_array_equal(np.array(got.view(mx.uint8)), np.array(expected.view(mx.uint8)))
    else:
        tol = TOLERANCE[x.dtype]
        np.testing.assert_allclose(to_numpy64(got), to_numpy64(expected), rtol=tol, atol=tol)
    xt = torch.tensor(np.moveaxis(to_numpy64(x), -1, 1)) if x.dtype in TOLERANCE else None
    ref = case.torch(xt, x.ndim - 2) if xt is not None else None
    if ref is not None:
        tol = TOLERANCE[x.dtype]
        np.testing.assert_allclose(
            to_numpy64(got), np.moveaxis(ref.numpy(), 1, -1), rtol=tol, atol=4 * tol
        )
    return kernel


def check_backward(emu, case, x):
    out_shape = case.cpu(x).shape
    g = random_input(out_shape, x.dtype, seed=1)
    _, (expected,) = mx.vjp(case.cpu, [x], [g])
    got, kernel = case.emulate(emu, g, x.shape, backward=True)
    assert got.dtype == g.dtype
    tol = TOLERANCE[x.dtype]
    np.testing.assert_allclose(to_numpy64(got), to_numpy64(expected), rtol=tol, atol=4 * tol)
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
# pixel, scalar moves), 10 -> 2 (2-vectors), 8 -> 4 (4-vectors).
CHANNELS = [5, 3, 10, 8]


def packet_width(channels, offset=0, elem_size=4):
    """The launch plan's channels per thread (csrc/metal/launch_plan.cpp)."""
    for v in (4, 3, 2):
        if channels % v == 0 and (v == 3 or offset % (v * elem_size) == 0):
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
    kernel = check_forward(emulator, case_for(method, rank), x)
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
    kernel = check_backward(emulator, case_for(method, rank), x)
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
    4-wide packets are planned only where every packet is 16-byte aligned,
    2-wide ones where it is 8-byte aligned."""
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
    assert packet_width(8, offset) == (4 if offset % 16 == 0 else 2 if offset % 8 == 0 else 1)
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


def test_every_kernel_executed(emulator):
    """Runs last in this module: every instantiated kernel ran at least once."""
    missing = sorted(set(emulator.kernels()) - set(emulator.executed()))
    assert not missing, f"kernels never executed: {missing}"
