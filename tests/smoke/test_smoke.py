"""The smoke suite: what every supported Python must show of an installed
wheel, with nothing but MLX, NumPy and pytest (PyTorch is not needed).

Run alone with ``python -m pytest --noconftest tests/smoke`` (the main
suite's conftest needs PyTorch); the full suite runs it too.
"""

import io
import subprocess
import sys
from typing import get_args

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlx_upsample
from mlx_upsample import _build_config, _selfcheck, affine_grid, grid_sample, interpolate, upsample
from mlx_upsample.interpolate import InterpolateMode
from mlx_upsample.upsample import UpsampleMode

# (mode, align_corners, antialias, scale) of the MLX family, against mlx.nn.Upsample.
MLX_CASES = [
    ("nearest", False, False, 2),
    ("nearest", False, False, 1.5),
    ("linear", False, False, 2),
    ("linear", True, False, 1.5),
    ("cubic", False, False, 2),
    ("cubic", True, False, 0.75),
    ("linear", False, True, 0.5),
    ("cubic", False, True, 0.5),
]


def _x(shape=(2, 6, 5, 3), seed=0):
    return mx.array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _close(a, b, tol=1e-5):
    a, b = np.array(a), np.array(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_self_check_passes():
    run = subprocess.run(
        [sys.executable, "-m", "mlx_upsample"], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"mlx-upsample {mlx_upsample.__version__} ")
    assert f"MLX {mx.__version__}" in lines[1]
    assert "one registry shared with mlx.core" in lines[2]
    for case in _selfcheck.CASES:
        line = next(l for l in lines if f" {case.name} " in l)
        assert "forward/backward ok" in line, line
    assert "FAIL" not in run.stdout
    assert lines[-1].startswith(f"OK: {len(_selfcheck.CASES)} checks")


def test_self_check_fails_on_a_wrong_value(monkeypatch):
    def off_by_a_bit(*args, **kwargs):
        return upsample(*args, **kwargs) * 1.001

    monkeypatch.setattr(_selfcheck, "upsample", off_by_a_bit)
    out = io.StringIO()
    assert _selfcheck.main(out) == 1
    text = out.getvalue()
    assert "upsample linear x2" in text and "FAIL forward: relative error" in text
    assert "interpolate area x0.5                forward/backward ok" in text
    assert text.splitlines()[-1].startswith("FAILED:")


def test_self_check_fails_on_a_separate_nanobind_registry(monkeypatch):
    keys = ["__nb_internals_x_a1_v22_mlx__", "__nb_internals_x_a1_v22_stable_mlx__"]
    monkeypatch.setattr(_selfcheck._ext, "nanobind_registries", lambda: keys)
    out = io.StringIO()
    assert _selfcheck.main(out) == 1
    assert "FAIL nanobind: 2 registries for the mlx domain" in out.getvalue()


def test_import_refuses_another_mlx():
    run = _run("import mlx.core as mx; mx.__version__ = '0.0.1'; import mlx_upsample")
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ")
    assert f"built against MLX {_build_config.MLX_VERSION}" in last
    assert "MLX 0.0.1 is installed" in last
    extra = "mlx[cpu]" if sys.platform == "linux" else "mlx"
    assert f"pip install '{extra}=={_build_config.MLX_VERSION}'" in last


@pytest.mark.parametrize("mode,align_corners,antialias,scale", MLX_CASES)
def test_forward_and_backward_match_mlx(mode, align_corners, antialias, scale):
    x = _x()
    ref = nn.Upsample(scale, mode=mode, align_corners=align_corners, antialias=antialias)
    ours = lambda z: upsample(z, scale, mode, align_corners, antialias)  # noqa: E731
    _close(ours(x), ref(x))
    cot = _x(ref(x).shape, seed=1)
    _close(mx.vjp(ours, [x], [cot])[1][0], mx.vjp(ref, [x], [cot])[1][0])


@pytest.mark.parametrize("mode,align_corners,antialias,scale", MLX_CASES)
def test_compile_and_vmap(mode, align_corners, antialias, scale):
    ours = lambda z: upsample(z, scale, mode, align_corners, antialias)  # noqa: E731
    ref = nn.Upsample(scale, mode=mode, align_corners=align_corners, antialias=antialias)
    loss = lambda z: (ours(z) ** 2).sum()  # noqa: E731
    ref_loss = lambda z: (ref(z) ** 2).sum()  # noqa: E731
    x = _x()
    _close(mx.compile(ours)(x), ref(x))
    _close(mx.compile(mx.grad(loss))(x), mx.grad(ref_loss)(x))
    shapeless = mx.compile(ours, shapeless=True)
    for shape in [(2, 6, 5, 3), (1, 9, 7, 2)]:
        y = _x(shape, seed=2)
        _close(shapeless(y), ref(y))
    stacked = _x((4, 2, 6, 5, 3), seed=3)
    _close(mx.vmap(ours)(stacked), mx.stack([ref(v) for v in stacked]))
    _close(
        mx.vmap(mx.grad(loss))(stacked), mx.stack([mx.grad(ref_loss)(v) for v in stacked])
    )


def test_interpolate_pytorch_rules_on_small_inputs():
    x = _x((2, 6, 8, 3))
    _close(interpolate(x, scale_factor=2, mode="bilinear"), nn.Upsample(2, mode="linear")(x))
    _close(interpolate(x, scale_factor=0.5, mode="nearest-exact"), x[:, 1::2, 1::2, :])
    pooled = x.reshape(2, 3, 2, 4, 2, 3).mean(axis=(2, 4))
    _close(interpolate(x, size=(3, 4), mode="area"), pooled)
    _close(mx.compile(lambda z: interpolate(z, size=(3, 4), mode="area"))(x), pooled)


def test_every_mode_in_the_type_hints_is_accepted():
    """The Literal hints are what a type checker allows: each must work."""
    x = _x((1, 4, 4, 1))
    for mode in get_args(UpsampleMode):
        assert upsample(x, 2, mode).shape == (1, 8, 8, 1)
    for mode in get_args(InterpolateMode):
        assert interpolate(x, size=(8, 8), mode=mode).shape == (1, 8, 8, 1)
    with pytest.raises(ValueError, match="'nearest', 'linear', 'bilinear', 'trilinear', 'cubic', 'bicubic'"):
        upsample(x, 2, "area")
    with pytest.raises(ValueError, match="'nearest-exact'.*'cubic'.*'area'"):
        interpolate(x, size=8, mode="box")


def test_affine_grid_is_pytorchs_formula():
    """theta @ (x, y, 1) at the pixel centres (align_corners=False) or the corner
    pixels' centres at -1 and 1 (True); its gradient in theta, compiled shapelessly."""
    theta = mx.array([[[0.5, -0.25, 0.1], [0.2, 1.5, -0.3]]])
    for ac, xs, ys in [(False, (np.arange(4) * 2 + 1) / 4 - 1, (np.arange(3) * 2 + 1) / 3 - 1),
                       (True, np.linspace(-1, 1, 4), np.linspace(-1, 1, 3))]:
        base = np.stack([*np.meshgrid(xs, ys), np.ones((3, 4))], axis=-1)
        _close(affine_grid(theta, (1, 3, 4, 2), ac)[0], base @ np.array(theta[0]).T)
    loss = lambda t: (affine_grid(t, (1, 3, 4, 2)) ** 2).sum()  # noqa: E731
    _close(mx.compile(mx.grad(loss), shapeless=True)(theta), mx.grad(loss)(theta))


def test_grid_sample_on_small_inputs():
    """The identity grid reproduces x in every mode; half a pixel to the right, bilinear
    averages neighbours (the last column with zeros beyond it); gradients and compile."""
    x = _x((2, 5, 6, 3))
    identity = affine_grid(mx.array(np.tile(np.eye(2, 3, dtype=np.float32), (2, 1, 1))),
                           (2, 5, 6, 3), align_corners=True)
    for mode in ("bilinear", "nearest", "bicubic"):
        _close(grid_sample(x, identity, mode=mode, align_corners=True), x)
    shifted = identity + mx.array([1 / 5, 0.0])  # half a pixel along W (5 steps span 2)
    y = grid_sample(x, shifted, align_corners=True)
    _close(y[:, :, :-1], (x[:, :, :-1] + x[:, :, 1:]) / 2)
    _close(y[:, :, -1], x[:, :, -1] / 2)
    gx = mx.grad(lambda a: grid_sample(a, identity, align_corners=True).sum())(x)
    _close(gx, mx.ones_like(x))
    f = lambda a, g: grid_sample(a, g, mode="bicubic", padding_mode="border")  # noqa: E731
    _close(mx.compile(f, shapeless=True)(x, shifted), f(x, shifted))
