"""Shared helpers for the mlx_upsample test suite.

Layout conventions
------------------
* MLX / mlx_upsample arrays are channels-last: ``(N, *spatial, C)``.
* PyTorch references are channels-first: ``(N, C, *spatial)``, computed in float64.

Every reference in this suite is either PyTorch (``torch.nn.functional.interpolate``,
float64) or ``mlx.nn.Upsample``; nothing is compared against mlx_upsample alone.

PyTorch runs its default CPU kernels (ATEN_CPU_CAPABILITY=default, below), whatever the CPU.
"""

import os

# PyTorch's AVX2 and AVX-512 CPU kernels fuse multiply-adds such as s * (i + 0.5) - 0.5
# (one rounding), its default kernels round each operation, as mlx-upsample does on every
# backend; which set runs would otherwise depend on the CPU. Torch reads the variable when
# it is first imported, so it is set before that, here; child processes inherit it.
os.environ["ATEN_CPU_CAPABILITY"] = "default"

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
    raise RuntimeError(
        "torch was imported before tests/conftest.py set ATEN_CPU_CAPABILITY=default: it runs "
        f"its {torch.backends.cpu.get_cpu_capability()} kernels"
    )

# --------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------

HALF_TYPES = (mx.float16, mx.bfloat16)


def to_numpy(a):
    """mx.array -> numpy.  bfloat16 (unsupported by numpy) goes through float32."""
    if a.dtype == mx.bfloat16:
        a = a.astype(mx.float32)
    return np.array(a)


def to_f64(a):
    """mx.array -> float64 numpy array (exact for every MLX dtype used here)."""
    return to_numpy(a).astype(np.float64)


def to_torch_nchw(x, requires_grad=False, dtype=torch.float64):
    """Channels-last mx.array (N, *S, C) -> channels-first torch tensor (N, C, *S)."""
    a = np.moveaxis(to_f64(x), -1, 1)
    t = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_torch_nchw(t):
    """Channels-first torch tensor (N, C, *S) -> channels-last float64 numpy (N, *S, C)."""
    return np.moveaxis(t.detach().to(torch.float64).numpy(), 1, -1)


def raises_with(exc, fn, *words):
    """Calls fn, which must raise `exc` itself (a returned array is never
    evaluated: an unchecked absurd size would try to allocate terabytes), with
    every one of `words` in its message (case-insensitive); returns the message."""
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in message {msg!r}"
    return msg


def contiguous_copy(x):
    """A fresh row-contiguous copy of ``x`` (through numpy, no MLX view tricks)."""
    if x.dtype == mx.bfloat16:
        return mx.array(np.array(x.astype(mx.float32))).astype(mx.bfloat16)
    return mx.array(np.array(x))


# --------------------------------------------------------------------------------------
# seeded inputs
# --------------------------------------------------------------------------------------


def rand(shape, dtype=mx.float32, seed=0):
    """Seeded standard-normal input (generated in numpy so it is stable across MLX versions)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(np.float32)
    return mx.array(a).astype(dtype)


def rand_int(shape, dtype=mx.int32, seed=0, low=-50, high=50):
    rng = np.random.default_rng(seed)
    if dtype == mx.bool_:
        return mx.array(rng.integers(0, 2, size=shape).astype(bool))
    if dtype in (mx.uint8, mx.uint16, mx.uint32):
        low = max(low, 0)
    return mx.array(rng.integers(low, high, size=shape)).astype(dtype)


# --------------------------------------------------------------------------------------
# assertions
# --------------------------------------------------------------------------------------


def assert_close(actual, desired, rtol=1e-5, atol=1e-5, err_msg=""):
    """allclose with an absolute tolerance relative to the reference magnitude.

    ``atol`` is scaled by ``max(1, max|desired|)`` so that "1e-5" means 1e-5 relative to the
    data range (float32 rounding of a weighted sum scales with the magnitude of its terms).
    """
    a = to_f64(actual) if isinstance(actual, mx.array) else np.asarray(actual, np.float64)
    d = to_f64(desired) if isinstance(desired, mx.array) else np.asarray(desired, np.float64)
    assert a.shape == d.shape, f"shape {a.shape} != reference shape {d.shape} {err_msg}"
    scale = max(1.0, float(np.max(np.abs(d)))) if d.size else 1.0
    np.testing.assert_allclose(a, d, rtol=rtol, atol=atol * scale, err_msg=err_msg)


def tol_for(dtype):
    """(rtol, atol) for comparing an output of ``dtype`` with a float64 reference."""
    if dtype in HALF_TYPES:
        return 1e-2, 1e-2
    return 1e-5, 1e-5


# --------------------------------------------------------------------------------------
# PyTorch reference
# --------------------------------------------------------------------------------------

TORCH_LINEAR_NAME = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _per_axis(v, nd):
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        assert len(v) == nd
        return tuple(v)
    return (v,) * nd


def _bicubic_4d(t, size, scale, align_corners, recompute):
    return F.interpolate(
        t,
        size=size,
        scale_factor=scale,
        mode="bicubic",
        align_corners=align_corners,
        recompute_scale_factor=recompute,
    )


def _cubic_nd(t, size, scale_factor, align_corners, recompute):
    """N-d cubic built from torch's 4-D bicubic by separability (float64).

    PyTorch treats every spatial axis independently (its own output size and its own scale),
    and the bicubic weights factor per axis, so applying 2-D bicubic on two axes and then a
    (1, W) bicubic on the remaining axis is the tensor-product cubic.  A length-1 axis with
    output size 1 and scale 1 (or align_corners) is the identity (weights [0, 1, 0, 0]).
    """
    nd = t.ndim - 2
    sizes = _per_axis(size, nd)
    scales = _per_axis(scale_factor, nd)

    def pick(i):
        if sizes is not None:
            return dict(size=(1, sizes[i]), scale=None)
        return dict(size=None, scale=(1.0, float(scales[i])))

    if nd == 2:
        return _bicubic_4d(t, size, scale_factor, align_corners, recompute)
    if nd == 1:
        n, c, w = t.shape
        p = pick(0)
        out = _bicubic_4d(t.reshape(n, c, 1, w), p["size"], p["scale"], align_corners, recompute)
        return out.reshape(n, c, out.shape[-1])
    if nd == 3:
        n, c, d, h, w = t.shape
        # pass 1: (D, H) with W folded into channels
        a = t.permute(0, 1, 4, 2, 3).reshape(n, c * w, d, h)
        if sizes is not None:
            a = _bicubic_4d(a, sizes[:2], None, align_corners, recompute)
        else:
            a = _bicubic_4d(a, None, tuple(float(s) for s in scales[:2]), align_corners, recompute)
        d2, h2 = a.shape[-2:]
        a = a.reshape(n, c, w, d2, h2).permute(0, 1, 3, 4, 2).reshape(n, c * d2 * h2, 1, w)
        # pass 2: W
        p = pick(2)
        a = _bicubic_4d(a, p["size"], p["scale"], align_corners, recompute)
        return a.reshape(n, c, d2, h2, a.shape[-1])
    raise ValueError(f"_cubic_nd covers ranks 1 to 3, not {nd}")


def torch_interpolate(
    t,
    mode,
    size=None,
    scale_factor=None,
    align_corners=None,
    recompute_scale_factor=None,
    antialias=False,
):
    """torch.nn.functional.interpolate on an NC* float64 tensor, any rank 1..3.

    ``mode`` is one of "nearest", "nearest-exact", "linear" (mapped to torch's rank-specific
    linear/bilinear/trilinear name) or "cubic" (torch bicubic; for ranks 1 and 3 composed
    separably from 4-D bicubic, see ``_cubic_nd``). ``antialias=True``: torch's own 2-D
    antialiased bilinear/bicubic.
    """
    nd = t.ndim - 2
    if antialias:
        return F.interpolate(
            t, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
            recompute_scale_factor=recompute_scale_factor, antialias=True,
        )
    if mode in ("linear", "bilinear", "trilinear"):
        mode = TORCH_LINEAR_NAME[nd]
    if mode in ("cubic", "bicubic"):
        return _cubic_nd(t, size, scale_factor, align_corners, recompute_scale_factor)
    return F.interpolate(
        t,
        size=size,
        scale_factor=scale_factor,
        mode=mode,
        align_corners=align_corners,
        recompute_scale_factor=recompute_scale_factor,
    )


def torch_adjoint_grad(x_shape_nchw, ct, **kw):
    """d/dx sum(F(x) * ct) computed from torch's *forward* only.

    F is linear in x, so the gradient is J^T ct with J read off by running the forward on a
    basis: channel p of a (1, P, *S) input is the unit vector at spatial position p.
    """
    n, c, *sp = x_shape_nchw
    p = int(np.prod(sp))
    basis = torch.eye(p, dtype=torch.float64).reshape(1, p, *sp)
    with torch.no_grad():
        jac = torch_interpolate(basis, **kw)[0].reshape(p, -1)  # (P, prod(out))
    g = torch.einsum("po,bco->bcp", jac, ct.reshape(n, c, -1))
    return g.reshape(n, c, *sp)


# Torch's backward kernels special-case "output size == input size" (copy) and, for legacy
# nearest, "output == 2 * input" (i >> 1) in every rank, while the forward kernels do so only
# for 2-D nearest (measured, torch 2.13).  Where they disagree, torch's autograd gradient is
# not the derivative of torch's forward (e.g. 1-D nearest, N=5, scale_factor 1.1; 2-D bicubic
# with both sizes unchanged and scale_factor 1.1).  Our reference gradient is the derivative
# of torch's forward: torch autograd, replaced by the forward-built adjoint when they differ.
_ADJOINT_MAX_POSITIONS = 4096


def torch_forward_and_grad(x, cot, **kw):
    """float64 torch forward and d/dx sum(out * cot); returns channels-last float64 numpy."""
    xt = to_torch_nchw(x, requires_grad=True)
    out = torch_interpolate(xt, **kw)
    ct = to_torch_nchw(cot)
    assert out.shape == ct.shape, (out.shape, ct.shape)
    (out * ct).sum().backward()
    grad = xt.grad
    if int(np.prod(xt.shape[2:])) <= _ADJOINT_MAX_POSITIONS:
        adj = torch_adjoint_grad(tuple(xt.shape), ct, **kw)
        scale = max(1.0, float(adj.abs().max()))
        if not torch.allclose(grad, adj, rtol=0, atol=1e-9 * scale):
            grad = adj
    return from_torch_nchw(out), from_torch_nchw(grad)


def torch_forward(x, **kw):
    with torch.no_grad():
        return from_torch_nchw(torch_interpolate(to_torch_nchw(x), **kw))


def torch_out_shape(x, **kw):
    """Channels-last output shape that torch produces for ``x``."""
    return torch_forward(x, **kw).shape


# --------------------------------------------------------------------------------------
# mlx.nn.Upsample helpers
# --------------------------------------------------------------------------------------


def mlx_out_shape(shape, scale_factor):
    """Output shape of mlx.nn.Upsample: int(scale * N) per spatial axis."""
    n, *sp, c = shape
    sc = _per_axis(scale_factor, len(sp))
    return (n, *[int(float(s) * d) for s, d in zip(sc, sp)], c)


# MLX's own cubic has a float32 tap bug; a numpy version of the formula it intends.


def _mlx_src_f32(n, s, ac):
    """MLX 0.32.4's float32 source coordinates (upsample.py: _scaled_indices)."""
    m = int(s * n)
    i = np.arange(m, dtype=np.float32)
    if ac:
        return i * np.float32((n - 1) / max(m - 1, 1))
    step = 1 / s
    start = ((m - 1) * step - n + 1) / 2
    return i * np.float32(step) - np.float32(start)


def mlx_cubic_1d_reference(x, s, ac):
    """The formula mlx.nn.Upsample's cubic implements (REFERENCE 2a), in float64 numpy:
    taps floor(src)-1 .. floor(src)+2 clamped to [0, N-1], Keys a=-0.75 weights from the
    unclamped float32 src.  Used where MLX itself gets its taps wrong (see below)."""
    xs = to_f64(x)  # (B, N, C)
    n = xs.shape[1]
    src = _mlx_src_f32(n, s, ac).astype(np.float64)
    fl = np.floor(src)
    a = -0.75
    out = np.zeros((xs.shape[0], src.size, xs.shape[2]))
    for k in (-1, 0, 1, 2):
        d = np.abs(src - (fl + k))
        w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1, (((d - 5) * d + 8) * d - 4) * a)
        idx = np.clip(fl + k, 0, n - 1).astype(int)
        out += w[None, :, None] * xs[:, idx, :]
    return out


def mlx_cubic_taps_inconsistent(n, s, ac):
    """MLX computes the right taps as floor(src + 1) in float32; for src = -tiny that rounds
    to floor(1.0) = 1 instead of 0, so MLX skips the nearest input pixel (an MLX bug)."""
    src = _mlx_src_f32(n, s, ac)
    return bool(np.any(np.floor(src + np.float32(1)) != np.floor(src) + 1))



# --------------------------------------------------------------------------------------
# shared parametrisations
# --------------------------------------------------------------------------------------

SPATIAL = {1: (11,), 2: (7, 9), 3: (5, 4, 6)}

# (mode name passed to both libraries, align_corners).  "cubic" for ranks 1 and 3 is compared
# with a separable composition of torch's 4-D bicubic (see conftest._cubic_nd).
MODES = {
    1: [
        ("nearest", None),
        ("nearest-exact", None),
        ("linear", False),
        ("linear", True),
        ("linear", None),
        ("cubic", False),
        ("cubic", True),
    ],
    2: [
        ("nearest", None),
        ("nearest-exact", None),
        ("bilinear", False),
        ("bilinear", True),
        ("bicubic", False),
        ("bicubic", True),
        ("bicubic", None),
    ],
    3: [
        ("nearest", None),
        ("nearest-exact", None),
        ("trilinear", False),
        ("trilinear", True),
        ("cubic", False),
        ("cubic", True),
    ],
}

SIZING = {
    1: [
        dict(scale_factor=2.0),
        dict(scale_factor=3),
        dict(scale_factor=1.0),
        dict(scale_factor=1.7),
        dict(scale_factor=0.6),
        dict(scale_factor=0.1),  # output size 1
        dict(scale_factor=(2.5,)),
        dict(size=7),
        dict(size=1),
        dict(size=(23,)),
        dict(scale_factor=1.7, recompute_scale_factor=True),
        dict(scale_factor=0.45, recompute_scale_factor=True),
        dict(scale_factor=2.0, recompute_scale_factor=False),
    ],
    2: [
        dict(scale_factor=2.0),
        dict(scale_factor=(1.5, 0.75)),
        dict(scale_factor=0.5),
        dict(scale_factor=2.3),
        dict(scale_factor=(3, 1)),
        dict(scale_factor=(0.15, 0.12)),  # output (1, 1)
        dict(size=(9, 4)),
        dict(size=1),
        dict(size=(1, 6)),
        dict(scale_factor=(1.7, 0.6), recompute_scale_factor=True),
    ],
    3: [
        dict(scale_factor=2.0),
        dict(scale_factor=(1.5, 0.7, 2.0)),
        dict(size=(3, 5, 2)),
        dict(size=1),
        dict(scale_factor=1.3, recompute_scale_factor=True),
    ],
}

NC = [(1, 1), (2, 3), (1, 4), (3, 2), (2, 1)]


def _fmt(kw):
    return ",".join(f"{k[:5]}={v}" for k, v in kw.items()).replace(" ", "")


def interp_cases():
    cases = []
    k = 0
    for nd in (1, 2, 3):
        for mode, ac in MODES[nd]:
            for sz in SIZING[nd]:
                n, c = NC[k % len(NC)]
                kw = dict(mode=mode, align_corners=ac, **sz)
                cid = f"{nd}d-{mode}-ac{ac}-{_fmt(sz)}-N{n}C{c}"
                cases.append(pytest.param((n, *SPATIAL[nd], c), kw, k, id=cid))
                k += 1
    return cases


INTERP_CASES = interp_cases()


UP_SPATIAL = {1: (10,), 2: (6, 7), 3: (4, 5, 3), 4: (3, 4, 3, 2)}
UP_MODES = [
    ("nearest", False),
    ("linear", False),
    ("linear", True),
    ("cubic", False),
    ("cubic", True),
]
UP_SCALES = {
    1: [2.0, 3, 1.5, 2.5, 0.5, 0.7, 1.0, 0.1, 1.3],
    2: [2, 1.5, 0.6, (2, 1.5), (0.5, 3), (0.2, 0.15), 1.0],
    3: [2, (1.5, 0.8, 2), 0.7],
}


def up_cases():
    cases = []
    k = 0
    for nd in (1, 2, 3):
        for mode, ac in UP_MODES:
            for s in UP_SCALES[nd]:
                n, c = NC[k % len(NC)]
                cid = f"{nd}d-{mode}-ac{ac}-s{s}-N{n}C{c}".replace(" ", "")
                cases.append(pytest.param((n, *UP_SPATIAL[nd], c), mode, ac, s, k, id=cid))
                k += 1
    # 4 spatial dims (MLX supports any number)
    for mode, ac in [("nearest", False), ("linear", False), ("linear", True), ("cubic", False)]:
        for s in (2, 1.5):
            cases.append(
                pytest.param((2, *UP_SPATIAL[4], 2), mode, ac, s, k, id=f"4d-{mode}-ac{ac}-s{s}")
            )
            k += 1
    return cases


UP_CASES = up_cases()

# 1-D sweeps over many sizes and scales
SWEEP_N = (1, 2, 3, 4, 5, 7, 8, 13, 16, 31)
SWEEP_SCALES = (
    0.1, 0.2, 0.25, 0.3, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.7, 0.75, 0.8, 0.9, 0.99, 1.0, 1.01,
    1.1, 1.2, 1.25, 4 / 3, 1.5, 1.6, 5 / 3, 1.7, 1.75, 1.9, 2.0, 2.001, 2.1, 2.5, 2.9, 3.0,
    3.3, 3.5, 4.0, 4.7, 5.0, 7.3, 8.0,
)  # fmt: skip
SWEEP_MODES = [
    ("nearest", None),
    ("nearest-exact", None),
    ("linear", False),
    ("linear", True),
    ("cubic", False),
    ("cubic", True),
]





@pytest.fixture(autouse=True)
def _seed_mlx():
    mx.random.seed(0)
    yield


# --------------------------------------------------------------------------------------
# devices: the whole suite runs on every device MLX has here (CPU; CPU and GPU on a Mac)
# --------------------------------------------------------------------------------------

DEVICES = ["cpu"] + (["gpu"] if mx.metal.is_available() else [])


@pytest.fixture(autouse=True, params=DEVICES)
def device(request):
    previous = mx.default_device()
    mx.set_default_device(mx.gpu if request.param == "gpu" else mx.cpu)
    yield request.param
    mx.set_default_device(previous)


_GPU_TESTS_PASSED = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Counts the tests that passed on the GPU (`device` parameter "gpu")."""
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    if report.when == "call" and report.passed and callspec is not None:
        if callspec.params.get("device") == "gpu":
            _GPU_TESTS_PASSED.append(item.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """Says whether the GPU was tested: where MLX has Metal, a run in which no
    GPU test passed fails (a broken GPU path must not pass as a CPU-only run);
    elsewhere the run says that it tested the CPU only."""
    if not mx.metal.is_available():
        message = "GPU tests: none, Metal is not available here (the CPU path was tested)"
    else:
        message = f"GPU tests: {len(_GPU_TESTS_PASSED)} passed on the Metal GPU"
        if not _GPU_TESTS_PASSED and session.testscollected and exitstatus == 0:
            message += ": none passed, failing the run"
            session.exitstatus = 1
    session.config._gpu_tests_message = message


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    message = getattr(config, "_gpu_tests_message", None)
    if message:
        terminalreporter.write_line(message)


def pytest_unconfigure(config):
    """Ends the run with the Metal emulation coverage line (tests/test_metal_emulation.py)."""
    emulator = getattr(config, "_metal_emulator", None)
    if emulator is not None:
        print(
            f"metal kernels executed: {len(emulator.executed())} of "
            f"{len(emulator.kernels())} (emulator: {emulator.name})"
        )
