"""Argument checking shared by the public functions: the types and shapes
of the arguments, with clear errors that name the argument and the value,
before anything reaches the C++ op, which owns the limits and the dtypes
(csrc/primitives.cpp). Its per-axis limit, _ext.MAX_AXIS_SIZE, is checked
here too: a size beyond it does not fit the op's arguments, and a scale whose
output size has no float (10**400, n * 1e308) cannot be handed to it."""

import math
from fractions import Fraction
from numbers import Integral, Real
from typing import Optional, Sequence, Tuple, Union

import mlx.core as mx

from ._ext import MAX_AXIS_SIZE, Mode

# The op's mode of each mode name of the public functions (each accepts
# those of its Literal type).
OP_MODES = {
    "nearest": Mode.nearest,
    "nearest-exact": Mode.nearest_exact,
    "linear": Mode.linear,
    "bilinear": Mode.linear,
    "trilinear": Mode.linear,
    "cubic": Mode.cubic,
    "bicubic": Mode.cubic,
    "area": Mode.area,
}
# The antialiased form of the modes that have one.
ANTIALIASED = {Mode.linear: Mode.antialias_linear, Mode.cubic: Mode.antialias_cubic}


def check_input(x) -> int:
    """Returns the number of spatial dims of a channels-last input."""
    if not isinstance(x, mx.array):
        raise TypeError(f"x must be an mlx.core.array, got {type(x).__name__}")
    if x.ndim < 3:
        raise ValueError(
            f"x must have at least 3 dims (N, *spatial, C), got shape {tuple(x.shape)}"
        )
    return x.ndim - 2


def short_repr(value) -> str:
    """repr(value), cut short: a scale like 10**400 has hundreds of digits
    (and an int of more than 4300 digits has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:
        return f"an int of {value.bit_length()} bits"
    return text if len(text) <= 60 else text[:40] + "..." + text[-10:]


def check_bool(value, name: str) -> bool:
    """A bool, 0 or 1, or a 0-d array holding one (numpy's bool_ is one),
    which MLX's and PyTorch's own ``if flag:`` accept."""
    item = value
    if getattr(value, "ndim", None) == 0 and hasattr(value, "dtype") and hasattr(value, "item"):
        item = value.item()
    if isinstance(item, bool) or (isinstance(item, Integral) and item in (0, 1)):
        return bool(item)
    raise TypeError(f"{name} must be a bool, got {short_repr(value)}")


def check_stream(stream) -> Optional[Union[mx.Stream, mx.Device]]:
    """None (the default stream), a stream or a device; ``mx.cpu``/``mx.gpu``
    become devices (MLX turns a bare ``mx.gpu`` into a stream before the op
    can say that it has no GPU kernels there)."""
    if isinstance(stream, mx.DeviceType):
        return mx.Device(stream)
    if stream is None or isinstance(stream, (mx.Stream, mx.Device)):
        return stream
    raise TypeError(
        "stream must be None, an mlx.core.Stream or an mlx.core.Device (e.g. mx.cpu), "
        f"got {short_repr(stream)}"
    )


def check_mode(mode, allowed: Sequence[str]) -> Mode:
    """The op's Mode for one of a function's mode names (its Literal hint's)."""
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str, got {mode!r}")
    if mode not in allowed:
        raise ValueError(f"mode must be one of {', '.join(map(repr, allowed))}; got {mode!r}")
    return OP_MODES[mode]


def _per_axis(value, dims: int, name: str) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != dims:
            raise ValueError(
                f"{name}={tuple(value)!r} has {len(value)} entries but the input "
                f"has {dims} spatial dims"
            )
        return tuple(value)
    return (value,) * dims


def check_scales(value, dims: int, name: str = "scale_factor") -> Tuple[float, ...]:
    scales = _per_axis(value, dims, name)
    floats = []
    for s in scales:
        if isinstance(s, bool) or not isinstance(s, Real):
            raise TypeError(f"{name} must be a number or a tuple of numbers, got {short_repr(value)}")
        try:
            f = float(s)
        except OverflowError:
            # An int beyond float range: larger than any output could be.
            raise ValueError(
                f"{name}={short_repr(value)} is too large: every output size must be at most "
                f"{MAX_AXIS_SIZE}"
            ) from None
        if not math.isfinite(f) or f <= 0:
            raise ValueError(f"{name} must be positive and finite, got {short_repr(value)}")
        floats.append(f)
    return tuple(floats)


def check_sizes(value, dims: int, name: str = "size") -> Tuple[int, ...]:
    sizes = _per_axis(value, dims, name)
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, Integral):
            raise TypeError(f"{name} must be an int or a tuple of ints, got {short_repr(value)}")
        if n < 1:
            raise ValueError(f"{name} must be positive, got {short_repr(value)}")
    return tuple(int(n) for n in sizes)


def check_output_shape(x: mx.array, out_sizes: Sequence[int], name: str, value) -> None:
    """Rejects empty spatial axes and output axes of length 0 or beyond
    MAX_AXIS_SIZE (Python ints: exact, whatever their size)."""
    spatial = tuple(x.shape[1:-1])
    if 0 in spatial:
        # An output position would have no input to read (PyTorch: "Input and
        # output sizes should be greater than 0").
        raise ValueError(
            f"x has spatial shape {spatial}: every spatial size of the input must be "
            "at least 1 (only the batch and channel dims may be empty)"
        )
    for n, m in zip(spatial, out_sizes):
        if m < 1:
            raise ValueError(
                f"{name}={short_repr(value)} maps spatial size {n} to an output size of {m}; "
                "every output size must be at least 1"
            )
        if m > MAX_AXIS_SIZE:
            raise ValueError(
                f"{name}={short_repr(value)} maps spatial size {n} to an output size of "
                f"{short_repr(m)}, more than {MAX_AXIS_SIZE}"
            )


def scaled_sizes(x: mx.array, scales: Sequence[float]) -> Tuple[int, ...]:
    """floor(N * scale) per spatial axis, computed in double as both
    references do; where that product overflows to inf, exactly (it is then
    far beyond any output size check_output_shape accepts)."""
    sizes = []
    for n, s in zip(x.shape[1:-1], scales):
        product = n * s
        sizes.append(math.floor(product if math.isfinite(product) else Fraction(n) * Fraction(s)))
    return tuple(sizes)


def check_one_of(scale_factor, size) -> None:
    if (size is None) == (scale_factor is None):
        raise ValueError(
            "exactly one of size and scale_factor must be given, got "
            f"size={short_repr(size)} and scale_factor={short_repr(scale_factor)}"
        )


def check_scale_or_size(x: mx.array, dims: int, scale_factor, size):
    """Exactly one of the two, checked against the per-axis limit. Returns
    the per-axis (scales, sizes), 0 where the other one is given."""
    check_one_of(scale_factor, size)
    if size is not None:
        sizes = check_sizes(size, dims)
        check_output_shape(x, sizes, "size", size)
        return (0.0,) * dims, sizes
    scales = check_scales(scale_factor, dims)
    check_output_shape(x, scaled_sizes(x, scales), "scale_factor", scale_factor)
    return scales, (0,) * dims
