"""``interpolate``: PyTorch's ``F.interpolate`` on channels-last input."""

from typing import Literal, Optional, Tuple, Union, get_args

import mlx.core as mx

from . import _ext
from ._checks import (
    ANTIALIASED,
    check_bool,
    check_input,
    check_mode,
    check_scale_or_size,
    check_stream,
)
from ._ext import Family, Mode

InterpolateMode = Literal[
    "nearest", "nearest-exact", "linear", "bilinear", "trilinear", "cubic", "bicubic", "area"
]


def interpolate(
    x: mx.array,
    size: Optional[Union[int, Tuple[int, ...]]] = None,
    scale_factor: Optional[Union[float, Tuple[float, ...]]] = None,
    mode: InterpolateMode = "nearest",
    align_corners: Optional[bool] = None,
    recompute_scale_factor: Optional[bool] = None,
    antialias: bool = False,
    *,
    stream: Optional[Union[mx.Stream, mx.Device]] = None,
) -> mx.array:
    """PyTorch's ``torch.nn.functional.interpolate`` for channels-last MLX
    arrays: ``interpolate(x)`` equals ``F.interpolate`` applied to
    ``x`` moved to ``(N, C, *spatial)``, moved back.

    Exactly one of ``size`` and ``scale_factor``. The modes follow PyTorch:
    ``"nearest"`` is PyTorch's legacy rule ``floor(i * scale)``,
    ``"nearest-exact"`` the pixel-centre rule; ``"linear"``, ``"bilinear"``
    and ``"trilinear"`` are one N-d linear mode and ``"bicubic"`` (or
    ``"cubic"``) the N-d cubic mode (Keys, a = -0.75), for any number of
    spatial dims. ``"area"`` is adaptive average pooling: output ``i`` averages
    the inputs ``floor(i * n / m) .. ceil((i + 1) * n / m) - 1``.
    ``antialias=True`` (linear and cubic) is PyTorch's antialiased resampling
    (Pillow's filters): a triangle or Keys' cubic with ``a = -0.5`` whose
    support widens with the downscale factor, renormalised at the edges; unlike
    PyTorch (2-D only) for any number of spatial dims; like PyTorch's forward,
    it copies an axis whose size does not change. Float16/bfloat16 stay in
    their dtype (float32 inside). uint8 stays uint8 in the linear and cubic
    modes, with PyTorch's uint8 arithmetic (fixed-point weights, rounded and
    clamped after each axis: the same bytes as its CPU kernels); it runs on
    the CPU only (``NotImplementedError`` on a GPU stream) and has no
    gradient (``ValueError``). Other integer and bool inputs of weighted modes
    interpolate in float32. Every float mode has a deterministic gather
    backward, on the CPU and in Metal.

    Coordinates (axes up to ``2**23``) are PyTorch's float32 formulas, e.g.
    ``s * (i + 0.5) - 0.5``, rounded after every operation, with no fused
    multiply-add: what PyTorch's default CPU kernels compute
    (``ATEN_CPU_CAPABILITY=default``) and what every backend here reproduces.
    PyTorch's AVX2 and AVX-512 kernels, which x86 CPUs run unless told
    otherwise, round that multiply-add once and can differ in the last bits:
    on a ``2**20 + 7 -> 3 * 2**20 + 5`` linear axis 16 outputs of a ramp, by
    up to 0.0625. Longer axes take the exact coordinate.

    Args:
        x: input ``(N, *spatial, C)``.
        size: output spatial size, an int or one per spatial dim.
        scale_factor: multiplier, a float or one per spatial dim; the output
            size is ``floor(n * scale_factor)``.
        mode: see above.
        align_corners: for linear and cubic modes only (default False); with
            ``antialias`` it only changes the scale, as in PyTorch. Setting it
            (even to False) with ``"nearest"``, ``"nearest-exact"`` or
            ``"area"`` raises ``ValueError``, as PyTorch does (:func:`upsample`
            ignores it there, as ``mlx.nn.Upsample`` does). A bool, 0/1, or a
            0-d array of one (e.g. ``numpy.bool_``).
        recompute_scale_factor: with ``scale_factor``, derive the kernels'
            scale from the sizes instead of ``1 / scale_factor``.
        antialias: antialiased linear/cubic (see above); ``ValueError`` with
            the other modes, as in PyTorch.
        stream: stream or device to run on. The GPU needs a Metal build (on
            Apple silicon); elsewhere ``stream=mx.gpu`` raises ``ValueError``
            when the op is built: pass ``stream=mx.cpu``.

    Example:
        >>> import mlx.core as mx
        >>> from mlx_upsample import interpolate
        >>> x = mx.random.normal((1, 32, 32, 3))
        >>> interpolate(x, size=(48, 40), mode="bilinear").shape
        (1, 48, 40, 3)
        >>> interpolate(x, scale_factor=0.25, mode="bicubic", antialias=True).shape
        (1, 8, 8, 3)
        >>> interpolate(x, size=(5, 7), mode="area").shape
        (1, 5, 7, 3)
    """
    op_mode = check_mode(mode, get_args(InterpolateMode))
    dims = check_input(x)
    if align_corners is not None:
        align_corners = check_bool(align_corners, "align_corners")
        if op_mode not in (Mode.linear, Mode.cubic):
            raise ValueError(
                f"align_corners can only be set with the linear and cubic modes, "
                f"got mode={mode!r} with align_corners={align_corners!r}"
            )
    align_corners = bool(align_corners)
    if check_bool(antialias, "antialias"):
        if op_mode not in (Mode.linear, Mode.cubic):
            raise ValueError(
                f"antialias=True is only supported with the linear and cubic modes, "
                f"got mode={mode!r}"
            )
        # PyTorch accepts align_corners here: it only changes the scale.
        op_mode = ANTIALIASED[op_mode]
    recompute = False
    if recompute_scale_factor is not None:
        recompute = check_bool(recompute_scale_factor, "recompute_scale_factor")
    if recompute and size is not None and scale_factor is None:
        raise ValueError(
            "recompute_scale_factor=True is not meaningful with an explicit size "
            f"(size={size!r})"
        )
    scales, sizes = check_scale_or_size(x, dims, scale_factor, size)
    stream = check_stream(stream)
    return _ext.upsample(
        x,
        Family.pytorch,
        op_mode,
        scales,
        sizes,
        align_corners=align_corners,
        recompute_scale=recompute,
        stream=stream,
    )
