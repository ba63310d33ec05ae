"""The grid_sample cases (issue 23): what each samples, and with which grid.

Each case is channels-last x (N, H, W, C) and an output size (Ho, Wo); its grid is one
of three kinds, built by measure_grid.py from a seeded generator:
  affine    a spatial-transformer grid: affine_grid of theta = identity + 0.1 * normal
            (rotation, scale, shear and shift, some points outside the input)
  flow      an optical-flow warp: the identity grid plus a smooth random flow (a few
            sinusoids per component, up to FLOW_PIXELS pixels)
  identity  a plain resize: the identity grid of the output size (pixel centres)

Imports no library under test (like cases.py).
"""

# name, x shape (N, H, W, C), output size (Ho, Wo), mode, padding_mode, align_corners,
# grid kind.
GRID_CASES = [
    ("STN affine", (8, 64, 64, 32), (64, 64), "bilinear", "zeros", False, "affine"),
    ("flow warp", (4, 256, 256, 3), (256, 256), "bilinear", "zeros", True, "flow"),
    ("pos-embed resize", (1, 32, 32, 1024), (48, 48), "bicubic", "border", False, "identity"),
]
FLOW_PIXELS = 4.0
# The contenders, in the table's order: ours, the pure-MLX composition of gathers
# (grid_baseline.py), PyTorch on its native NCHW layout.
GRID_IMPLS = ("ours", "mlx gathers", "torch")


def grid_jobs():
    return list(GRID_CASES)
