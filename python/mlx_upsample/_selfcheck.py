"""``python -m mlx_upsample``: what is installed, and whether it computes
right here, on every device this MLX has.

Each mode runs forward and backward on a small input and is compared with an
independent MLX reference: ``mlx.nn.Upsample`` for :func:`upsample`, and for
:func:`interpolate` the cases where PyTorch's rules reduce to plain MLX ops
(integer scales, pooling, strided picks). Prints a line per fact and per
check; the exit status is 1 when anything is wrong.
"""

import platform
import sys
from typing import Callable, List, NamedTuple, Tuple

import mlx.core as mx
import mlx.nn as nn

from . import __version__, _build_config, _ext
from .interpolate import interpolate
from .upsample import upsample

# float32 sums of at most 16 taps, against a reference that orders them
# differently: a few ulps of the largest value.
TOLERANCE = 1e-5


class Case(NamedTuple):
    name: str
    ours: Callable[[mx.array, mx.Stream], mx.array]
    reference: Callable[[mx.array], mx.array]


def _mlx_case(name, scale, mode, align_corners=False, antialias=False) -> Case:
    reference = nn.Upsample(
        scale_factor=scale, mode=mode, align_corners=align_corners, antialias=antialias
    )
    return Case(
        name,
        lambda x, s: upsample(x, scale, mode, align_corners, antialias, stream=s),
        reference,
    )


def _mean_pool(x: mx.array) -> mx.array:
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


CASES: List[Case] = [
    _mlx_case("upsample nearest x2", 2, "nearest"),
    _mlx_case("upsample nearest x1.5", 1.5, "nearest"),
    _mlx_case("upsample linear x2", 2, "linear"),
    _mlx_case("upsample linear x1.5 align_corners", 1.5, "linear", align_corners=True),
    _mlx_case("upsample cubic x2", 2, "cubic"),
    _mlx_case("upsample cubic x1.5 align_corners", 1.5, "cubic", align_corners=True),
    _mlx_case("upsample linear x0.5 antialias", 0.5, "linear", antialias=True),
    _mlx_case("upsample cubic x0.5 antialias", 0.5, "cubic", antialias=True),
    # PyTorch's rules equal MLX's where every output size is an integer
    # multiple of the input's.
    Case(
        "interpolate bilinear x2",
        lambda x, s: interpolate(x, scale_factor=2, mode="bilinear", stream=s),
        nn.Upsample(scale_factor=2, mode="linear"),
    ),
    Case(
        "interpolate bicubic x2",
        lambda x, s: interpolate(x, scale_factor=2, mode="bicubic", stream=s),
        nn.Upsample(scale_factor=2, mode="cubic"),
    ),
    # Halving: nearest-exact reads input 2i + 1, area averages 2x2 blocks.
    Case(
        "interpolate nearest-exact x0.5",
        lambda x, s: interpolate(x, scale_factor=0.5, mode="nearest-exact", stream=s),
        lambda x: x[:, 1::2, 1::2, :],
    ),
    Case(
        "interpolate area x0.5",
        lambda x, s: interpolate(x, size=(x.shape[1] // 2, x.shape[2] // 2), mode="area", stream=s),
        _mean_pool,
    ),
]


def _max_error(a: mx.array, b: mx.array) -> float:
    if a.shape != b.shape:
        raise AssertionError(f"shape {a.shape}, expected {b.shape}")
    if a.dtype != b.dtype:
        raise AssertionError(f"dtype {a.dtype}, expected {b.dtype}")
    scale = 1.0 + mx.abs(b).max().item()
    return mx.abs(a - b).max().item() / scale


def check_case(case: Case, device: mx.Device) -> Tuple[List[float], List[str]]:
    """Forward and backward of one case on `device`: their relative errors,
    and the problems found."""
    x = mx.random.normal((2, 6, 8, 3), key=mx.random.key(7))
    stream = mx.default_stream(device)
    with mx.stream(stream):
        expected = case.reference(x)
        cotangent = mx.random.normal(expected.shape, key=mx.random.key(8))
        (_,), (expected_grad,) = mx.vjp(lambda z: [case.reference(z)], [x], [cotangent])
        (out,), (grad,) = mx.vjp(lambda z: [case.ours(z, stream)], [x], [cotangent])
    errors, problems = [], []
    for what, ours, reference in (("forward", out, expected), ("backward", grad, expected_grad)):
        try:
            error = _max_error(ours, reference)
        except AssertionError as e:
            problems.append(f"{what}: {e}")
            continue
        errors.append(error)
        if not error <= TOLERANCE:  # also catches nan
            problems.append(f"{what}: relative error {error:.2g} > {TOLERANCE:g}")
    return errors, problems


def _devices() -> List[mx.Device]:
    devices = [mx.cpu]
    if mx.metal.is_available() and _build_config.METAL:
        devices.append(mx.gpu)
    return [mx.Device(d) for d in devices]


def main(out=sys.stdout) -> int:
    """Prints the report; returns the exit status (0: everything holds)."""
    failures = 0

    def say(text=""):
        print(text, file=out)

    say(f"mlx-upsample {__version__} (built against MLX {_build_config.MLX_VERSION}, "
        f"nanobind {_build_config.NANOBIND_VERSION}, Metal kernels: "
        f"{'yes' if _build_config.METAL else 'no'})")
    say(f"MLX {mx.__version__}; {platform.python_implementation()} {platform.python_version()} "
        f"on {sys.platform} {platform.machine()}")
    registries = [k for k in _ext.nanobind_registries() if k.endswith("_mlx__")]
    if len(registries) == 1:
        say(f"nanobind: one registry shared with mlx.core ({registries[0]})")
    else:
        failures += 1
        say(f"FAIL nanobind: {len(registries)} registries for the mlx domain "
            f"({', '.join(registries) or 'none'}): mlx.core's arrays cannot reach "
            "this extension; reinstall a wheel built for this Python")
    gpu = "Metal GPU available" if mx.metal.is_available() else "no Metal GPU"
    if mx.metal.is_available() and not _build_config.METAL:
        failures += 1
        gpu += ", but this build has no Metal kernels (FAIL)"
    devices = _devices()
    say(f"devices: cpu; {gpu}; checking on {', '.join(d.type.name for d in devices)}")
    for device in devices:
        for case in CASES:
            try:
                errors, problems = check_case(case, device)
            except Exception as e:  # a failing op is a finding, not a crash
                first_line = (str(e).splitlines() or [""])[0]
                errors, problems = [], [f"{type(e).__name__}: {first_line}"]
            if problems:
                failures += 1
                status = "FAIL " + "; ".join(problems)
            else:
                status = "ok (relative error {:.1e} / {:.1e})".format(*errors)
            say(f"{device.type.name:<4} {case.name:<36} forward/backward {status}")
    checks = len(devices) * len(CASES)
    say(f"{'OK' if failures == 0 else 'FAILED'}: {checks} checks against MLX references, "
        f"{failures} problem(s)")
    return 0 if failures == 0 else 1
