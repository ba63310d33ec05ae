"""The references the suite compares against: PyTorch and mlx.nn.Upsample.

Every reference in this suite is PyTorch (``torch.nn.functional.interpolate`` and
``grid_sample``, float64 unless a test needs its float32 kernel), ``mlx.nn.Upsample``,
or, where neither can serve (MLX's own cubic taps here, axes past
float32's reach in test_precision.py), the formula they implement evaluated in numpy;
nothing is compared against mlx_upsample alone. docs/semantics.md holds the rules of
both families.
"""

import numpy as np
import torch
import torch.nn.functional as F

from helpers import from_torch_nchw, to_f64, to_torch_nchw

# --------------------------------------------------------------------------------------
# PyTorch reference
# --------------------------------------------------------------------------------------

TORCH_LINEAR_NAME = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _per_axis(v, nd):
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        assert len(v) == nd
        return tuple(v)
    return (v,) * nd


def _bicubic_4d(t, size, scale, align_corners, recompute):
    return F.interpolate(
        t,
        size=size,
        scale_factor=scale,
        mode="bicubic",
        align_corners=align_corners,
        recompute_scale_factor=recompute,
    )


def _cubic_nd(t, size, scale_factor, align_corners, recompute):
    """N-d cubic built from torch's 4-D bicubic by separability (float64).

    PyTorch treats every spatial axis independently (its own output size and its own scale),
    and the bicubic weights factor per axis, so applying 2-D bicubic on two axes and then a
    (1, W) bicubic on the remaining axis is the tensor-product cubic.  A length-1 axis with
    output size 1 and scale 1 (or align_corners) is the identity (weights [0, 1, 0, 0]).
    """
    nd = t.ndim - 2
    sizes = _per_axis(size, nd)
    scales = _per_axis(scale_factor, nd)

    def pick(i):
        if sizes is not None:
            return dict(size=(1, sizes[i]), scale=None)
        return dict(size=None, scale=(1.0, float(scales[i])))

    if nd == 2:
        return _bicubic_4d(t, size, scale_factor, align_corners, recompute)
    if nd == 1:
        n, c, w = t.shape
        p = pick(0)
        out = _bicubic_4d(t.reshape(n, c, 1, w), p["size"], p["scale"], align_corners, recompute)
        return out.reshape(n, c, out.shape[-1])
    if nd == 3:
        n, c, d, h, w = t.shape
        # pass 1: (D, H) with W folded into channels
        a = t.permute(0, 1, 4, 2, 3).reshape(n, c * w, d, h)
        if sizes is not None:
            a = _bicubic_4d(a, sizes[:2], None, align_corners, recompute)
        else:
            a = _bicubic_4d(a, None, tuple(float(s) for s in scales[:2]), align_corners, recompute)
        d2, h2 = a.shape[-2:]
        a = a.reshape(n, c, w, d2, h2).permute(0, 1, 3, 4, 2).reshape(n, c * d2 * h2, 1, w)
        # pass 2: W
        p = pick(2)
        a = _bicubic_4d(a, p["size"], p["scale"], align_corners, recompute)
        return a.reshape(n, c, d2, h2, a.shape[-1])
    raise ValueError(f"_cubic_nd covers ranks 1 to 3, not {nd}")


def torch_interpolate(
    t,
    mode,
    size=None,
    scale_factor=None,
    align_corners=None,
    recompute_scale_factor=None,
    antialias=False,
):
    """torch.nn.functional.interpolate on an NC* float64 tensor, any rank 1..3.

    ``mode`` is one of "nearest", "nearest-exact", "linear" (mapped to torch's rank-specific
    linear/bilinear/trilinear name) or "cubic" (torch bicubic; for ranks 1 and 3 composed
    separably from 4-D bicubic, see ``_cubic_nd``). ``antialias=True``: torch's own 2-D
    antialiased bilinear/bicubic.
    """
    nd = t.ndim - 2
    if antialias:
        return F.interpolate(
            t, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
            recompute_scale_factor=recompute_scale_factor, antialias=True,
        )
    if mode in ("linear", "bilinear", "trilinear"):
        mode = TORCH_LINEAR_NAME[nd]
    if mode in ("cubic", "bicubic"):
        return _cubic_nd(t, size, scale_factor, align_corners, recompute_scale_factor)
    return F.interpolate(
        t,
        size=size,
        scale_factor=scale_factor,
        mode=mode,
        align_corners=align_corners,
        recompute_scale_factor=recompute_scale_factor,
    )


def torch_adjoint_grad(x_shape_nchw, ct, **kw):
    """d/dx sum(F(x) * ct) computed from torch's *forward* only.

    F is linear in x, so the gradient is J^T ct with J read off by running the forward on a
    basis: channel p of a (1, P, *S) input is the unit vector at spatial position p.
    """
    n, c, *sp = x_shape_nchw
    p = int(np.prod(sp))
    basis = torch.eye(p, dtype=torch.float64).reshape(1, p, *sp)
    with torch.no_grad():
        jac = torch_interpolate(basis, **kw)[0].reshape(p, -1)  # (P, prod(out))
    g = torch.einsum("po,bco->bcp", jac, ct.reshape(n, c, -1))
    return g.reshape(n, c, *sp)


# Torch's backward kernels special-case "output size == input size" (copy) and, for legacy
# nearest, "output == 2 * input" (i >> 1) in every rank, while the forward kernels do so only
# for 2-D nearest (measured, torch 2.13).  Where they disagree, torch's autograd gradient is
# not the derivative of torch's forward (e.g. 1-D nearest, N=5, scale_factor 1.1; 2-D bicubic
# with both sizes unchanged and scale_factor 1.1).  Our reference gradient is the derivative
# of torch's forward: torch autograd, replaced by the forward-built adjoint when they differ.
_ADJOINT_MAX_POSITIONS = 4096


def torch_forward_and_grad(x, cot, **kw):
    """float64 torch forward and d/dx sum(out * cot); returns channels-last float64 numpy."""
    xt = to_torch_nchw(x, requires_grad=True)
    out = torch_interpolate(xt, **kw)
    ct = to_torch_nchw(cot)
    assert out.shape == ct.shape, (out.shape, ct.shape)
    (out * ct).sum().backward()
    grad = xt.grad
    if int(np.prod(xt.shape[2:])) <= _ADJOINT_MAX_POSITIONS:
        adj = torch_adjoint_grad(tuple(xt.shape), ct, **kw)
        scale = max(1.0, float(adj.abs().max()))
        if not torch.allclose(grad, adj, rtol=0, atol=1e-9 * scale):
            grad = adj
    return from_torch_nchw(out), from_torch_nchw(grad)


def torch_forward(x, **kw):
    with torch.no_grad():
        return from_torch_nchw(torch_interpolate(to_torch_nchw(x), **kw))


def torch_out_shape(x, **kw):
    """Channels-last output shape that torch produces for ``x``."""
    return torch_forward(x, **kw).shape


# --------------------------------------------------------------------------------------
# mlx.nn.Upsample helpers
# --------------------------------------------------------------------------------------


def mlx_out_shape(shape, scale_factor):
    """Output shape of mlx.nn.Upsample: int(scale * N) per spatial axis."""
    n, *sp, c = shape
    sc = _per_axis(scale_factor, len(sp))
    return (n, *[int(float(s) * d) for s, d in zip(sc, sp)], c)


# MLX's own cubic has a float32 tap bug; a numpy version of the formula it intends.


def _mlx_src_f32(n, s, ac):
    """MLX 0.32.4's float32 source coordinates (upsample.py: _scaled_indices)."""
    m = int(s * n)
    i = np.arange(m, dtype=np.float32)
    if ac:
        return i * np.float32((n - 1) / max(m - 1, 1))
    step = 1 / s
    start = ((m - 1) * step - n + 1) / 2
    return i * np.float32(step) - np.float32(start)


def mlx_cubic_1d_reference(x, s, ac):
    """The formula mlx.nn.Upsample's cubic implements (docs/semantics.md, the MLX column),
    in float64 numpy: taps floor(src)-1 .. floor(src)+2 clamped to [0, N-1], Keys a=-0.75
    weights from the unclamped float32 src.  Used where MLX itself gets its taps wrong
    (mlx_cubic_taps_inconsistent)."""
    xs = to_f64(x)  # (B, N, C)
    n = xs.shape[1]
    src = _mlx_src_f32(n, s, ac).astype(np.float64)
    fl = np.floor(src)
    a = -0.75
    out = np.zeros((xs.shape[0], src.size, xs.shape[2]))
    for k in (-1, 0, 1, 2):
        d = np.abs(src - (fl + k))
        w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1, (((d - 5) * d + 8) * d - 4) * a)
        idx = np.clip(fl + k, 0, n - 1).astype(int)
        out += w[None, :, None] * xs[:, idx, :]
    return out


def mlx_cubic_taps_inconsistent(n, s, ac):
    """MLX computes the right taps as floor(src + 1) in float32; for src = -tiny that rounds
    to floor(1.0) = 1 instead of 0, so MLX skips the nearest input pixel (an MLX bug)."""
    src = _mlx_src_f32(n, s, ac)
    return bool(np.any(np.floor(src + np.float32(1)) != np.floor(src) + 1))


# --------------------------------------------------------------------------------------
# grid_sample reference
# --------------------------------------------------------------------------------------


def torch_grid_sample(x, grid, cot=None, dtype=torch.float64, **kw):
    """torch.nn.functional.grid_sample on channels-last x (N, *S, C) and grid (N, *So, nd)
    (the same layout in both libraries), computed in ``dtype``. Returns the channels-last
    output as float64 numpy and, given a cotangent ``cot``, the gradients of
    sum(out * cot) for x and grid."""
    xt = to_torch_nchw(x, requires_grad=cot is not None, dtype=dtype)
    gt = torch.from_numpy(to_f64(grid)).to(dtype).requires_grad_(cot is not None)
    out = F.grid_sample(xt, gt, **kw)
    if cot is None:
        return from_torch_nchw(out)
    (out * to_torch_nchw(cot, dtype=dtype)).sum().backward()
    grid_grad = gt.grad.detach().to(torch.float64).numpy()
    return from_torch_nchw(out), from_torch_nchw(xt.grad), grid_grad
