"""``affine_grid``: PyTorch's ``F.affine_grid`` for channels-last sizes, the
sampling grid of :func:`grid_sample` that an affine map gives."""

from numbers import Integral
from typing import Sequence

import mlx.core as mx

from ._checks import check_bool, short_repr

# theta's shape per number of spatial dims: an affine map of (x, y[, z], 1).
_THETA_SHAPE = {2: (2, 3), 3: (3, 4)}
_SUPPORTED = (mx.float32, mx.float16, mx.bfloat16)


def _check_size(size) -> tuple:
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence):
        raise TypeError(
            f"size must be a tuple of ints (N, H, W, C) or (N, D, H, W, C), got {short_repr(size)}"
        )
    if len(size) not in (4, 5):
        raise ValueError(
            "size must be the channels-last output shape (N, H, W, C) or (N, D, H, W, C), "
            f"got {short_repr(tuple(size))} of length {len(size)}"
        )
    for n in size:
        if isinstance(n, bool) or not isinstance(n, Integral):
            raise TypeError(f"size must hold ints, got {short_repr(tuple(size))}")
        if n < 1:
            # PyTorch: "Expected non-zero, positive output size".
            raise ValueError(f"size must be positive, got {short_repr(tuple(size))}")
    return tuple(int(n) for n in size)


def _check_theta(theta, size: tuple) -> None:
    if not isinstance(theta, mx.array):
        raise TypeError(f"theta must be an mlx.core.array, got {type(theta).__name__}")
    if not mx.issubdtype(theta.dtype, mx.floating):
        raise TypeError(f"theta must have a floating-point dtype, got {theta.dtype}")
    if theta.dtype not in _SUPPORTED:
        raise ValueError(f"theta must be float32, float16 or bfloat16, got {theta.dtype}")
    dims = len(size) - 2
    rows, cols = _THETA_SHAPE[dims]
    expected = (size[0], rows, cols)
    if tuple(theta.shape) != expected:
        raise ValueError(
            f"theta must have shape {expected} (N={size[0]} {rows}x{cols} affine matrices) for "
            f"size={size}, got shape {tuple(theta.shape)}"
        )


def _base_coords(n: int, align_corners: bool) -> list:
    """The normalised coordinates of n pixels: PyTorch's
    ``linspace(-1, 1, n)``, times ``(n - 1) / n`` without align_corners (pixel
    centres), 0 for a single pixel; exact in Python's float (double), rounded
    once to float32 by the caller."""
    if n == 1:
        return [0.0]
    if align_corners:
        return [(2 * i - (n - 1)) / (n - 1) for i in range(n)]
    return [(2 * i + 1 - n) / n for i in range(n)]


def _base_grid(spatial: tuple, align_corners: bool) -> mx.array:
    """(*spatial, dims + 1): each position's (x, y[, z], 1), x along the last axis."""
    dims = len(spatial)
    coords = []
    for k, n in enumerate(spatial):
        shape = [1] * dims
        shape[k] = n
        axis = mx.array(_base_coords(n, align_corners), dtype=mx.float32).reshape(shape)
        coords.append(mx.broadcast_to(axis, spatial))
    return mx.stack([*reversed(coords), mx.ones(spatial, dtype=mx.float32)], axis=-1)


def affine_grid(theta: mx.array, size: Sequence[int], align_corners: bool = False) -> mx.array:
    """The grid ``torch.nn.functional.affine_grid`` gives, for channels-last
    sizes: the normalised source coordinates ``theta @ (x, y[, z], 1)`` of
    every output position, to pass to :func:`grid_sample`.

    Composed of MLX ops (a constant base grid and a matrix product, in float32),
    so it is differentiable in ``theta`` and compiles, also shapelessly. The
    result has ``theta``'s dtype.

    Args:
        theta: ``(N, 2, 3)`` affine matrices for a 2-D grid, ``(N, 3, 4)`` for
            a 3-D one; float32, float16 or bfloat16.
        size: the channels-last output shape, ``(N, H, W, C)`` or
            ``(N, D, H, W, C)`` (PyTorch takes ``(N, C, H, W)``); ``C`` plays no
            part but must be positive, as in PyTorch.
        align_corners: as in PyTorch: with True, -1 and 1 are the centres of
            the corner pixels, with False their outer edges.

    Returns:
        ``(N, H, W, 2)`` or ``(N, D, H, W, 3)``: ``(x, y[, z])`` per position.

    Example:
        >>> import mlx.core as mx
        >>> from mlx_upsample import affine_grid, grid_sample
        >>> theta = mx.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        >>> grid = affine_grid(theta, (1, 8, 8, 3))
        >>> grid.shape
        (1, 8, 8, 2)
    """
    size = _check_size(size)
    _check_theta(theta, size)
    align_corners = check_bool(align_corners, "align_corners")
    base = _base_grid(size[1:-1], align_corners)
    # base (*spatial, k) @ theta^T (N, 1, .., 1, k, dims): one product per position.
    dims = len(size) - 2
    theta_t = mx.swapaxes(theta.astype(mx.float32), -1, -2)
    theta_t = mx.expand_dims(theta_t, tuple(range(1, dims)))
    return mx.matmul(base, theta_t).astype(theta.dtype)
