"""No crash, no hang, no cryptic error: empty vmaps, fork, thread counts, huge sizes, odd
argument types and GPU streams without Metal (issue 15).

Anything that once killed or hung the interpreter runs in a child process with a timeout,
so that a regression fails its test instead of the whole run."""

import functools
import os
import subprocess
import sys
import textwrap
import threading
import time

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from conftest import assert_close, rand, torch_forward  # noqa: E402

import mlx_upsample  # noqa: E402
from mlx_upsample import Upsample, interpolate, upsample  # noqa: E402

X2 = rand((1, 4, 4, 2), seed=1501)


# Every child tests the CPU path (also on a Mac, where the suite's default device may be
# the GPU).
_CHILD_PRELUDE = "import mlx.core as _mx\n_mx.set_default_device(_mx.cpu)\n"


def run_python(code, timeout=120, env=None):
    """Runs `code` (dedented) in a fresh interpreter on the CPU; returns the CompletedProcess.
    A hang fails the test through the timeout."""
    full_env = dict(os.environ)
    full_env.pop("MLX_UPSAMPLE_NUM_THREADS", None)
    full_env.update(env or {})
    try:
        return subprocess.run(
            [sys.executable, "-W", "ignore::DeprecationWarning", "-c", _CHILD_PRELUDE + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"child process hung (killed after {timeout} s); stderr:\n{e.stderr}")


def assert_ran(proc):
    assert proc.returncode == 0, (
        f"child process failed (returncode {proc.returncode})\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def _check(exc, fn, *words):
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in message {msg!r}"
    return msg


# ======================================================================================
# 1. vmap over an empty axis (was SIGFPE: the folded batch was divided by 0)
# ======================================================================================

# name: (function, input shape, vmapped axis, expected shape, mlx.nn.Upsample equivalent)
_VMAP_CASES = {
    "upsample-nearest": (
        "lambda z: upsample(z, 2)", (0, 1, 4, 4, 3), 0, (0, 1, 8, 8, 3), lambda z: nn.Upsample(2)(z)
    ),
    "upsample-linear-axis2": (
        "lambda z: upsample(z, 2, 'linear')",
        (1, 4, 0, 4, 3),
        2,
        (0, 1, 8, 8, 3),
        lambda z: nn.Upsample(2, "linear")(z),
    ),
    "interpolate-bicubic": (
        "lambda z: interpolate(z, scale_factor=2, mode='bicubic')",
        (0, 1, 4, 4, 3),
        0,
        (0, 1, 8, 8, 3),
        lambda z: nn.Upsample(2, "cubic")(z),
    ),
    "interpolate-area-batch0": (
        "lambda z: interpolate(z, size=(2, 3), mode='area')", (3, 0, 4, 4, 3), 0, (3, 0, 2, 3, 3), None
    ),
    "grad-upsample-linear": (
        "mx.grad(lambda z: upsample(z, 2, 'linear').sum())",
        (0, 1, 4, 4, 3),
        0,
        (0, 1, 4, 4, 3),
        mx.grad(lambda z: nn.Upsample(2, "linear")(z).sum()),
    ),
    "grad-interpolate-antialias": (
        "mx.grad(lambda z: interpolate(z, scale_factor=0.5, mode='bilinear', antialias=True).sum())",
        (0, 1, 4, 4, 3),
        0,
        (0, 1, 4, 4, 3),
        None,
    ),
}


@pytest.mark.parametrize("name", list(_VMAP_CASES))
def test_vmap_over_empty_axis(name):
    fn_text, shape, axis, expected, mlx_fn = _VMAP_CASES[name]
    if mlx_fn is not None:
        assert tuple(mx.vmap(mlx_fn, in_axes=axis)(mx.zeros(shape)).shape) == expected
    out = assert_ran(
        run_python(
            f"""
            import mlx.core as mx
            from mlx_upsample import upsample, interpolate
            y = mx.vmap({fn_text}, in_axes={axis})(mx.zeros({shape}))
            mx.eval(y)
            print("SHAPE", tuple(y.shape), y.dtype)
            """
        )
    )
    assert out.strip().splitlines()[-1] == f"SHAPE {expected} mlx.core.float32", out


def test_vmap_over_empty_axis_of_a_jvp():
    out = assert_ran(
        run_python(
            """
            import mlx.core as mx
            from mlx_upsample import upsample
            f = lambda z: mx.jvp(lambda a: upsample(a, 1.5, "cubic"), [z], [z])[1][0]
            y = mx.vmap(f)(mx.zeros((0, 2, 4, 4, 3)))
            mx.eval(y)
            print("SHAPE", tuple(y.shape))
            """
        )
    )
    assert out.strip().endswith("SHAPE (0, 2, 6, 6, 3)")


def test_vmap_values_unchanged_by_the_fold():
    """The fold now keeps the batch length explicitly: a non-empty vmap still matches the
    reference (vmapped axis in the middle, batch 2)."""
    x = rand((2, 5, 3, 4, 2), seed=1502)  # vmapped axis 2 of size 3
    out = mx.vmap(lambda z: upsample(z, 1.5, "linear"), in_axes=2)(x)
    ref = mx.vmap(lambda z: nn.Upsample(1.5, "linear")(z), in_axes=2)(x)
    assert_close(out, ref)
