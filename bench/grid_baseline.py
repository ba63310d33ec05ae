"""The pure-MLX grid_sample baseline: the 2-D operation as MLX users write it today.

Channels-last x (N, H, W, C), grid (N, Ho, Wo, 2) of normalised (x, y), PyTorch's rules
(torch.nn.functional.grid_sample): modes "bilinear", "nearest" (round half to even),
"bicubic" (A = -0.75); padding "zeros", "border", "reflection"; align_corners. Each tap
is a gather (mx.take_along_axis over the flattened image), weighted and summed; the
backward is MLX's autodiff of that composition, so the gradient of x is its scatter-add.
Coordinates and weights are float32, the sum float32, the result in x's dtype. Finite
grids only (NaN coordinates follow whatever MLX's clip and floor make of them).

Imports no library under test: it is the benchmark's third contender and, in
tests/test_grid_baseline.py, a second reference checked against PyTorch.
"""

import mlx.core as mx

MODES = ("bilinear", "nearest", "bicubic")
PADDINGS = ("zeros", "border", "reflection")
CUBIC_A = -0.75


def unnormalize(coord, size, align_corners):
    """[-1, 1] -> pixel coordinates (PyTorch's grid_sampler_unnormalize)."""
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def reflect(coord, twice_low, twice_high):
    """Reflects coord into [twice_low / 2, twice_high / 2] (PyTorch's reflect_coordinates)."""
    if twice_low == twice_high:
        return mx.zeros_like(coord)
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = mx.abs(coord - low)
    extra = mx.remainder(c, span)
    flips = mx.floor(c / span)
    return mx.where(mx.remainder(flips, 2) == 0, extra + low, span - extra + low)


def pad_coordinate(coord, size, padding_mode, align_corners):
    """border: clip into the image; reflection: reflect at the edges (or the pixel
    centres with align_corners), then clip; zeros: unchanged."""
    if padding_mode == "border":
        return mx.clip(coord, 0, size - 1)
    if padding_mode == "reflection":
        if align_corners:
            coord = reflect(coord, 0, 2 * (size - 1))
        else:
            coord = reflect(coord, -1, 2 * size - 1)
        return mx.clip(coord, 0, size - 1)
    return coord


def gather(flat, xi, yi, width, height):
    """flat (N, H*W, C) at integer-valued float coordinates (N, P): the values, 0 outside."""
    inside = (xi >= 0) & (xi <= width - 1) & (yi >= 0) & (yi <= height - 1)
    index = (mx.clip(yi, 0, height - 1) * width + mx.clip(xi, 0, width - 1)).astype(mx.int32)
    # MLX has no gradient for gather indices: the grid's gradient flows through the weights.
    values = mx.take_along_axis(flat, mx.stop_gradient(index)[..., None], axis=1)
    return mx.where(inside[..., None], values, mx.zeros_like(values))


def cubic_weights(t):
    """The four Keys weights of taps floor - 1 .. floor + 2 at fraction t."""
    a = CUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def grid_sample_baseline(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    """torch.nn.functional.grid_sample on channels-last x (N, H, W, C), grid (N, Ho, Wo, 2)."""
    if mode not in MODES or padding_mode not in PADDINGS:
        raise ValueError(f"mode must be in {MODES} and padding_mode in {PADDINGS}, "
                         f"got {mode!r}, {padding_mode!r}")
    n, height, width, channels = x.shape
    out_h, out_w = grid.shape[1:3]
    flat = x.reshape(n, height * width, channels)
    grid = grid.astype(mx.float32).reshape(n, out_h * out_w, 2)
    ix = unnormalize(grid[..., 0], width, align_corners)
    iy = unnormalize(grid[..., 1], height, align_corners)

    if mode == "bicubic":
        # The weights come from the unpadded coordinate; padding applies to each tap.
        x0, y0 = mx.floor(ix), mx.floor(iy)
        wx, wy = cubic_weights(ix - x0), cubic_weights(iy - y0)
        out = 0
        for j in range(4):
            yj = pad_coordinate(y0 + (j - 1), height, padding_mode, align_corners)
            row = 0
            for i in range(4):
                xi = pad_coordinate(x0 + (i - 1), width, padding_mode, align_corners)
                row = row + gather(flat, xi, yj, width, height) * wx[i][..., None]
            out = out + row * wy[j][..., None]
    else:
        ix = pad_coordinate(ix, width, padding_mode, align_corners)
        iy = pad_coordinate(iy, height, padding_mode, align_corners)
        if mode == "nearest":
            out = gather(flat, mx.round(ix), mx.round(iy), width, height).astype(mx.float32)
        else:
            x0, y0 = mx.floor(ix), mx.floor(iy)
            tx, ty = (ix - x0)[..., None], (iy - y0)[..., None]
            out = (gather(flat, x0, y0, width, height) * (1 - tx) * (1 - ty)
                   + gather(flat, x0 + 1, y0, width, height) * tx * (1 - ty)
                   + gather(flat, x0, y0 + 1, width, height) * (1 - tx) * ty
                   + gather(flat, x0 + 1, y0 + 1, width, height) * tx * ty)
    return out.reshape(n, out_h, out_w, channels).astype(x.dtype)
