"""``grid_sample``: PyTorch's ``F.grid_sample`` on channels-last input."""

from typing import Literal, Optional, Union, get_args

import mlx.core as mx

from . import _ext
from ._checks import check_bool, check_mode, check_stream
from ._ext import Padding

GridSampleMode = Literal["bilinear", "nearest", "bicubic"]
PaddingMode = Literal["zeros", "border", "reflection"]

_FLOATS = (mx.float32, mx.float16, mx.bfloat16)


def _check_padding(padding_mode) -> Padding:
    if not isinstance(padding_mode, str):
        raise TypeError(f"padding_mode must be a str, got {padding_mode!r}")
    allowed = get_args(PaddingMode)
    if padding_mode not in allowed:
        raise ValueError(
            f"padding_mode must be one of {', '.join(map(repr, allowed))}; got {padding_mode!r}"
        )
    return getattr(Padding, padding_mode)


def _check_arrays(x, grid) -> int:
    """The number of spatial dims, 2 or 3, once x and grid fit each other."""
    for name, a in (("x", x), ("grid", grid)):
        if not isinstance(a, mx.array):
            raise TypeError(f"{name} must be an mlx.core.array, got {type(a).__name__}")
    if x.ndim not in (4, 5):
        raise ValueError(
            "x must be (N, H, W, C) or (N, D, H, W, C), channels-last, "
            f"got shape {tuple(x.shape)}"
        )
    dims = x.ndim - 2
    expected = "(N, Ho, Wo, 2)" if dims == 2 else "(N, Do, Ho, Wo, 3)"
    if grid.ndim != x.ndim or grid.shape[-1] != dims:
        raise ValueError(
            f"grid must be {expected} for x of shape {tuple(x.shape)} (its last axis holds "
            f"the {dims} coordinates), got shape {tuple(grid.shape)}"
        )
    if grid.shape[0] != x.shape[0]:
        raise ValueError(
            f"grid has batch size {grid.shape[0]} but x has {x.shape[0]}: they must match"
        )
    if 0 in x.shape[1:-1]:
        raise ValueError(
            f"x has spatial shape {tuple(x.shape[1:-1])}: every spatial size of the input "
            "must be at least 1"
        )
    for name, a in (("x", x), ("grid", grid)):
        if a.dtype not in _FLOATS:
            raise TypeError(
                f"{name} has dtype {a.dtype}: grid_sample takes float32, float16 or "
                "bfloat16 (it computes in float32)"
            )
    return dims


def grid_sample(
    x: mx.array,
    grid: mx.array,
    mode: GridSampleMode = "bilinear",
    padding_mode: PaddingMode = "zeros",
    align_corners: bool = False,
    *,
    stream: Optional[Union[mx.Stream, mx.Device]] = None,
) -> mx.array:
    """PyTorch's ``torch.nn.functional.grid_sample`` for channels-last MLX
    arrays: ``x`` is ``(N, H, W, C)`` with ``grid`` ``(N, Ho, Wo, 2)``, or
    ``(N, D, H, W, C)`` with ``grid`` ``(N, Do, Ho, Wo, 3)``, and the result
    ``(N, Ho, Wo, C)`` / ``(N, Do, Ho, Wo, C)`` equals ``F.grid_sample`` of
    ``x`` moved to channels-first, moved back.

    The grid's last axis holds normalised coordinates ``(x, y[, z])``: -1 and
    1 are the centres of the corner pixels with ``align_corners=True``, their
    outer edges otherwise. ``mode``: ``"bilinear"`` (trilinear in 3-D),
    ``"nearest"`` (half-way coordinates round to even, as PyTorch) or
    ``"bicubic"`` (2-D, Keys' kernel with ``A = -0.75``). ``padding_mode``: how
    coordinates outside the input sample: ``"zeros"``, ``"border"`` (clipped
    to the edge) or ``"reflection"`` (reflected at the borders, then
    clipped). NaN coordinates sample as PyTorch's CPU kernels do.

    float32, float16 and bfloat16 inputs keep their dtype (float32 inside);
    the grid may be any of the three. Differentiable in ``x`` and ``grid``
    (the grid's gradient is zero for ``"nearest"``); the gradient of ``x`` is
    summed in a fixed order, bitwise the same from run to run and whatever
    the thread count, on the CPU and in Metal (no float atomics).
    """
    dims = _check_arrays(x, grid)
    op_mode = check_mode(mode, get_args(GridSampleMode))
    if dims == 3 and mode == "bicubic":
        raise ValueError(
            "mode='bicubic' needs a 4-D x (N, H, W, C); a 5-D x takes 'bilinear' "
            "(trilinear) or 'nearest', as in PyTorch"
        )
    padding = _check_padding(padding_mode)
    align_corners = check_bool(align_corners, "align_corners")
    return _ext.grid_sample(
        x, grid, op_mode, padding, align_corners=align_corners, stream=check_stream(stream)
    )
