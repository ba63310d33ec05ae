"""affine_grid against torch.nn.functional.affine_grid (float64): values, the gradient
with respect to theta, dtypes, transforms and errors."""

import warnings

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import HALF_TYPES, assert_close, rand, raises_with, to_f64, tol_for

from mlx_upsample import affine_grid

# channels-last sizes; 1-pixel axes take PyTorch's special case (coordinate 0)
SIZES = [
    (2, 5, 7, 3),
    (1, 1, 6, 2),
    (3, 4, 1, 1),
    (1, 1, 1, 1),
    (2, 3, 4, 5, 2),
    (1, 1, 3, 2, 1),
    (2, 4, 1, 6, 3),
]
DTYPES = [mx.float32, mx.float16, mx.bfloat16]


def _theta(size, dtype=mx.float32, seed=0):
    dims = len(size) - 2
    return rand((size[0], dims, dims + 1), dtype, seed)


def _nchw(size):
    """channels-last (N, *S, C) -> torch's (N, C, *S)."""
    return (size[0], size[-1], *size[1:-1])


def torch_affine_grid(theta, size, align_corners, requires_grad=False):
    t = torch.from_numpy(to_f64(theta)).requires_grad_(requires_grad)
    with warnings.catch_warnings():
        # PyTorch warns about 1-pixel axes with align_corners=True, which are tested on purpose.
        warnings.filterwarnings("ignore", "Since version 1.3.0, affine_grid", UserWarning)
        return t, F.affine_grid(t, _nchw(size), align_corners=align_corners)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_values_match_torch(size, align_corners, dtype):
    theta = _theta(size, dtype, seed=len(size))
    out = affine_grid(theta, size, align_corners=align_corners)
    assert out.dtype == dtype
    assert out.shape == (*size[:-1], len(size) - 2)
    _, ref = torch_affine_grid(theta, size, align_corners)
    assert_close(out, ref.numpy(), *tol_for(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_gradient_wrt_theta_matches_torch(size, align_corners, dtype):
    theta = _theta(size, dtype, seed=7)
    cot = rand((*size[:-1], len(size) - 2), dtype, seed=8)
    grad = mx.vjp(lambda t: affine_grid(t, size, align_corners), [theta], [cot])[1][0]
    assert grad.dtype == dtype and grad.shape == theta.shape
    t, ref = torch_affine_grid(theta, size, align_corners, requires_grad=True)
    (ref * torch.from_numpy(to_f64(cot))).sum().backward()
    # the gradient sums H*W products: a half-type result is rounded once at the end
    rtol, atol = (2e-2, 2e-2) if dtype in HALF_TYPES else (1e-5, 1e-5)
    assert_close(grad, t.grad.numpy(), rtol, atol)


def test_identity_theta_gives_the_pixel_centres():
    theta = mx.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    grid = np.array(affine_grid(theta, (1, 2, 4, 1)))
    np.testing.assert_array_equal(grid[0, 0, :, 0], [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_array_equal(grid[0, :, 0, 1], [-0.5, 0.5])
    grid = np.array(affine_grid(theta, (1, 2, 4, 1), align_corners=True))
    np.testing.assert_array_equal(grid[0, 0, :, 0], np.float32([-1, -1 / 3, 1 / 3, 1]))
    np.testing.assert_array_equal(grid[0, :, 0, 1], [-1, 1])


def test_theta_from_a_strided_view():
    size = (3, 4, 5, 2)
    big = rand((3, 3, 6), seed=3)
    theta = big[:, ::-2, 1::2]  # (3, 2, 3), negative and positive steps
    _, ref = torch_affine_grid(theta, size, False)
    assert_close(affine_grid(theta, size), ref.numpy())


def test_broadcast_theta():
    size = (4, 3, 5, 1)
    theta = mx.broadcast_to(rand((1, 2, 3), seed=4), (4, 2, 3))
    _, ref = torch_affine_grid(theta, size, True)
    assert_close(affine_grid(theta, size, True), ref.numpy())


@pytest.mark.parametrize("size", [(2, 5, 7, 3), (2, 3, 4, 5, 2)], ids=str)
def test_compile_and_shapeless_compile(size):
    fn = lambda t: affine_grid(t, size, align_corners=True)  # noqa: E731
    theta = _theta(size, seed=1)
    assert_close(mx.compile(fn)(theta), fn(theta), 0, 0)
    shapeless = mx.compile(fn, shapeless=True)
    assert_close(shapeless(theta), fn(theta), 0, 0)
    other = _theta(size, seed=2)
    assert_close(shapeless(other), fn(other), 0, 0)
    loss = lambda t: (fn(t) ** 2).sum()  # noqa: E731
    assert_close(mx.compile(mx.grad(loss), shapeless=True)(other), mx.grad(loss)(other), 1e-6, 1e-6)


def test_vmap_over_a_stack_of_thetas():
    size = (2, 3, 4, 1)
    thetas = rand((5, 2, 2, 3), seed=5)
    out = mx.vmap(lambda t: affine_grid(t, size))(thetas)
    assert_close(out, mx.stack([affine_grid(t, size) for t in thetas]), 1e-6, 1e-6)


def test_jvp_is_the_grid_of_the_tangent_without_translation():
    """affine_grid is linear in theta: its jvp is the grid of the tangent."""
    size = (2, 3, 4, 1)
    theta, tangent = _theta(size, seed=1), _theta(size, seed=2)
    _, (jv,) = mx.jvp(lambda t: affine_grid(t, size), [theta], [tangent])
    assert_close(jv, affine_grid(tangent, size), 1e-6, 1e-6)


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,size",
    [
        ((2, 3, 4), (2, 5, 7, 3)),  # a 3-D matrix for a 2-D size
        ((2, 2, 3), (2, 3, 4, 5, 1)),  # a 2-D matrix for a 3-D size
        ((3, 2, 3), (2, 5, 7, 3)),  # batch mismatch
        ((2, 3), (1, 5, 7, 3)),  # no batch axis
        ((1, 2, 2, 3), (1, 5, 7, 3)),
    ],
    ids=str,
)
def test_theta_shape_must_fit_size(shape, size):
    raises_with(ValueError, lambda: affine_grid(mx.zeros(shape), size), "theta", "size", str(shape))


@pytest.mark.parametrize("size", [(2, 5, 7), (1, 2), (1, 2, 3, 4, 5, 6), ()], ids=str)
def test_size_length(size):
    raises_with(ValueError, lambda: affine_grid(mx.zeros((1, 2, 3)), size), "size", "length")


@pytest.mark.parametrize("size", [(1, 0, 4, 3), (1, 4, 4, 0), (1, -2, 4, 1)], ids=str)
def test_size_must_be_positive(size):
    raises_with(ValueError, lambda: affine_grid(mx.zeros((1, 2, 3)), size), "size", "positive")


@pytest.mark.parametrize("size", [(1, 4.0, 4, 3), (1, True, 4, 3), 4, "1443", None], ids=repr)
def test_size_must_hold_ints(size):
    raises_with(TypeError, lambda: affine_grid(mx.zeros((1, 2, 3)), size), "size")


@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.bool_, mx.complex64], ids=str)
def test_theta_must_be_float(dtype):
    theta = mx.zeros((1, 2, 3)).astype(dtype)
    raises_with(TypeError, lambda: affine_grid(theta, (1, 2, 2, 1)), "theta", "floating", str(dtype))


def test_float64_theta_is_named():
    theta = mx.zeros((1, 2, 3)).astype(mx.float64)
    raises_with(ValueError, lambda: affine_grid(theta, (1, 2, 2, 1)), "theta", "float64")


def test_theta_must_be_an_array():
    raises_with(TypeError, lambda: affine_grid(np.zeros((1, 2, 3)), (1, 2, 2, 1)), "theta", "ndarray")


@pytest.mark.parametrize("flag", [2, "yes", None], ids=repr)
def test_align_corners_must_be_a_bool(flag):
    raises_with(TypeError, lambda: affine_grid(mx.zeros((1, 2, 3)), (1, 2, 2, 1), flag), "align_corners")
