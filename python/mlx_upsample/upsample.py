"""``Upsample`` and ``upsample``: a drop-in for ``mlx.nn.Upsample``."""

from typing import Literal, Optional, Tuple, Union, get_args

import mlx.core as mx
from mlx.nn import Module

from . import _ext
from ._checks import (
    ANTIALIASED,
    check_bool,
    check_input,
    check_mode,
    check_one_of,
    check_scale_or_size,
    check_scales,
    check_sizes,
    check_stream,
)
from ._ext import Family, Mode

ScaleFactor = Union[float, Tuple[float, ...]]
Size = Union[int, Tuple[int, ...]]
UpsampleMode = Literal["nearest", "linear", "bilinear", "trilinear", "cubic", "bicubic"]


def _check_options(mode, align_corners, antialias) -> Tuple[Mode, bool]:
    """Returns the op's mode and align_corners; raises the errors
    mlx.nn.Upsample raises (antialias with nearest or with align_corners)."""
    op_mode = check_mode(mode, get_args(UpsampleMode))
    align_corners = check_bool(align_corners, "align_corners")
    if check_bool(antialias, "antialias"):
        if op_mode == Mode.nearest:
            raise ValueError(
                f"antialias=True is not supported with mode={mode!r} (only with the "
                "linear and cubic modes)"
            )
        if align_corners:
            raise ValueError(
                "antialias=True is not supported with align_corners=True (as in "
                "mlx.nn.Upsample)"
            )
        op_mode = ANTIALIASED[op_mode]
    return op_mode, align_corners


def upsample(
    x: mx.array,
    scale_factor: Optional[ScaleFactor] = None,
    mode: UpsampleMode = "nearest",
    align_corners: bool = False,
    antialias: bool = False,
    *,
    size: Optional[Size] = None,
    stream: Optional[Union[mx.Stream, mx.Device]] = None,
) -> mx.array:
    """Upsample channels-last ``x`` of shape ``(N, *spatial, C)`` exactly as
    ``mlx.nn.Upsample`` does, with hand-written kernels.

    Each spatial size ``n`` becomes ``int(scale * n)``, or exactly ``size``
    with ``size=`` (our extension of ``mlx.nn.Upsample``'s API: MLX's
    coordinate rules with the scale ``size / n`` of each axis, where
    ``scale_factor=size / n`` can land one short, ``int(767.99...)``).
    ``nearest`` keeps the
    input dtype (any dtype); ``linear`` and ``cubic`` keep float16/bfloat16
    (accumulating in float32; ``mlx.nn.Upsample`` returns float32 there) and
    turn integer inputs into float32.

    With ``antialias=True`` (linear and cubic) the filter is widened by
    ``1 / scale`` when downscaling, a low-pass filter against aliasing, as in
    ``mlx.nn.Upsample(antialias=True)``: a triangle for linear, Keys' cubic
    with ``a = -0.5`` for cubic (also when upscaling), weights renormalised
    where the filter runs past an edge. Any number of spatial dims, forward
    and backward (a deterministic gather), on the CPU and in Metal.

    Args:
        x: input array ``(N, *spatial, C)`` with at least one spatial dim.
        scale_factor: one positive scale, or one per spatial dim (may be
            fractional and below 1). Exactly one of ``scale_factor`` and
            ``size``.
        size: the output's spatial size, an int or one per spatial dim.
        mode: ``"nearest"``, ``"linear"`` (also ``"bilinear"``,
            ``"trilinear"``) or ``"cubic"`` (also ``"bicubic"``).
        align_corners: for linear and cubic, map the corner pixels of input
            and output onto each other. With ``"nearest"`` it has no effect,
            as in ``mlx.nn.Upsample`` (each function follows its reference:
            :func:`interpolate` raises ``ValueError`` there, as PyTorch does).
            A bool, 0/1, or a 0-d array of one (e.g. ``numpy.bool_``).
        antialias: antialiased linear/cubic (see above); not with
            ``"nearest"`` nor with ``align_corners=True`` (``ValueError``,
            as ``mlx.nn.Upsample``).
        stream: stream or device to run on. The GPU needs a Metal build (on
            Apple silicon); elsewhere ``stream=mx.gpu`` raises ``ValueError``
            when the op is built: pass ``stream=mx.cpu``.

    Example:
        >>> import mlx.core as mx
        >>> from mlx_upsample import upsample
        >>> x = mx.arange(1, 5, dtype=mx.float32).reshape(1, 2, 2, 1)
        >>> upsample(x, 2, mode="linear").squeeze()
        array([[1, 1.25, 1.75, 2],
               [1.5, 1.75, 2.25, 2.5],
               [2.5, 2.75, 3.25, 3.5],
               [3, 3.25, 3.75, 4]], dtype=float32)
        >>> upsample(mx.ones((1, 16, 16, 3)), 0.25, mode="cubic", antialias=True).shape
        (1, 4, 4, 3)
    """
    op_mode, align_corners = _check_options(mode, align_corners, antialias)
    dims = check_input(x)
    scales, sizes = check_scale_or_size(x, dims, scale_factor, size)
    stream = check_stream(stream)
    return _ext.upsample(
        x, Family.mlx, op_mode, scales, sizes, align_corners=align_corners, stream=stream
    )


def _per_axis_or_one(value, check):
    """A tuple checked entry by entry, or one value checked alone; checked
    again against the input's dims on each call."""
    if isinstance(value, (list, tuple)):
        return tuple(check(value, len(value)))
    return check(value, 1)[0]


class Upsample(Module):
    """Drop-in replacement for ``mlx.nn.Upsample`` (same arguments, output
    shapes and values) backed by the mlx_upsample primitives.

    See :func:`upsample` for the arguments.

    Example:
        >>> import mlx.core as mx
        >>> from mlx_upsample import Upsample
        >>> up = Upsample(scale_factor=2, mode="cubic")
        >>> up(mx.zeros((1, 8, 8, 3))).shape
        (1, 16, 16, 3)
    """

    def __init__(
        self,
        scale_factor: Optional[ScaleFactor] = None,
        mode: UpsampleMode = "nearest",
        align_corners: bool = False,
        antialias: bool = False,
        *,
        size: Optional[Size] = None,
    ):
        super().__init__()
        _check_options(mode, align_corners, antialias)
        check_one_of(scale_factor, size)
        if size is not None:
            size = _per_axis_or_one(size, check_sizes)
        else:
            scale_factor = _per_axis_or_one(scale_factor, check_scales)
        self.scale_factor = scale_factor
        self.size = size
        self.mode = mode
        self.align_corners = bool(align_corners)
        self.antialias = bool(antialias)

    def _extra_repr(self) -> str:
        sizing = (
            f"scale_factor={self.scale_factor}" if self.size is None else f"size={self.size}"
        )
        text = f"{sizing}, mode={self.mode!r}, align_corners={self.align_corners}"
        return text + (", antialias=True" if self.antialias else "")

    def __call__(self, x: mx.array) -> mx.array:
        return upsample(
            x, self.scale_factor, self.mode, self.align_corners, self.antialias, size=self.size
        )
