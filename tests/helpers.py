"""Conversions, seeded inputs and assertions shared by the test modules.

Layout conventions
------------------
* MLX / mlx_upsample arrays are channels-last: ``(N, *spatial, C)``.
* PyTorch tensors are channels-first: ``(N, C, *spatial)``; ``to_torch_nchw`` and
  ``from_torch_nchw`` convert between the two, in float64 unless told otherwise.
"""

import os
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_upsample

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


def contiguous_copy(x):
    """A fresh row-contiguous copy of ``x`` (through numpy, no MLX view tricks;
    ``np.array`` alone would keep a view's memory order)."""
    if x.dtype == mx.bfloat16:
        return mx.array(np.ascontiguousarray(np.array(x.astype(mx.float32)))).astype(mx.bfloat16)
    return mx.array(np.ascontiguousarray(np.array(x)))


# --------------------------------------------------------------------------------------
# seeded inputs
# --------------------------------------------------------------------------------------


def rand(shape, dtype=mx.float32, seed=0):
    """Seeded standard-normal input (generated in numpy so it is stable across MLX versions)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(np.float32)
    return mx.array(a).astype(dtype)


def rand_uniform(shape, low, high, dtype=mx.float32, seed=0):
    """Seeded uniform input in [low, high) (numpy, like ``rand``)."""
    rng = np.random.default_rng(seed)
    return mx.array(rng.uniform(low, high, shape).astype(np.float32)).astype(dtype)


def rand_int(shape, dtype=mx.int32, seed=0, low=-50, high=50):
    rng = np.random.default_rng(seed)
    if dtype == mx.bool_:
        return mx.array(rng.integers(0, 2, size=shape).astype(bool))
    if dtype in (mx.uint8, mx.uint16, mx.uint32):
        low = max(low, 0)
    return mx.array(rng.integers(low, high, size=shape)).astype(dtype)


def grid_from_pixels(pixels, size, align_corners):
    """The normalised grid values (float64 numpy) whose source coordinate, in PyTorch's
    rules, is ``pixels`` along an axis of ``size``: exact in float32 where ``size``
    (align_corners=False) or ``size - 1`` (True) is a power of two and the pixels are
    multiples of 1/2."""
    p = np.asarray(pixels, np.float64)
    if align_corners:
        return p * 2 / (size - 1) - 1
    return (2 * p + 1) / size - 1


def vjp_outputs(fn, primals, cot):
    """fn's output and the gradients of sum(fn(*primals) * cot) for every primal."""
    (out,), grads = mx.vjp(fn, list(primals), [cot])
    return (out, *grads)


def grid_sample_vjp(x, grid, cot, **kwargs):
    """grid_sample's output and the gradients of sum(out * cot) for x and grid."""
    return vjp_outputs(lambda a, g: mlx_upsample.grid_sample(a, g, **kwargs), [x, grid], cot)


# --------------------------------------------------------------------------------------
# assertions
# --------------------------------------------------------------------------------------


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


def assert_baseline_isa_bits(script, default, tmp_path):
    """Runs ``script`` (a test module that, run as a script, saves its ISA cases to the
    .npz path it is given) with MLX_UPSAMPLE_CPU_ISA=baseline in a child process and
    asserts that its arrays have the bits of ``default`` (name -> array, this process's
    dispatch)."""
    path = tmp_path / "baseline.npz"
    env = dict(os.environ, MLX_UPSAMPLE_CPU_ISA="baseline")
    subprocess.run([sys.executable, str(script), str(path)], env=env, check=True)
    baseline = np.load(path)
    assert sorted(baseline.files) == sorted(default)
    for key, value in default.items():
        np.testing.assert_array_equal(baseline[key], value, err_msg=key)
