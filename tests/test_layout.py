"""Strided inputs on the CPU: every layout gives the bits of the contiguous
input, and channels-first memory stays channels-first.

An (N, *S, C) array whose memory is (N, C, *S) (``x_nchw.transpose(0, 2, 3,
1)`` and its 1-D/3-D equivalents) is read in place and the result is the
(N, *out, C) view of (N, C, *out) memory, so that moving C back in front is a
free row-contiguous view, as PyTorch keeps memory_format; the cotangent of
such an x comes back in its layout too. Other layouts (sliced with steps,
broadcast, permuted otherwise) are copied first and give row-contiguous
results. ``_ext._strides`` is the test hook that reads an array's strides.
"""

import mlx.core as mx
import numpy as np
import pytest

from helpers import contiguous_copy, rand, to_numpy

from mlx_upsample import _ext, interpolate, upsample

DTYPES = [mx.float32, mx.float16, mx.bfloat16]

# (name, fn(x)) for any number of spatial dims: every mode of both functions,
# scale and size=.
CALLS = [
    ("up-nearest-2", lambda a: upsample(a, 2, mode="nearest")),
    ("up-nearest-1.7", lambda a: upsample(a, 1.7, mode="nearest")),
    ("up-linear-0.6", lambda a: upsample(a, 0.6, mode="linear")),
    ("up-linear-ac-2", lambda a: upsample(a, 2, mode="linear", align_corners=True)),
    ("up-cubic-1.5", lambda a: upsample(a, 1.5, mode="cubic")),
    ("up-aa-linear-0.5", lambda a: upsample(a, 0.5, mode="linear", antialias=True)),
    ("up-aa-cubic-0.4", lambda a: upsample(a, 0.4, mode="cubic", antialias=True)),
    ("up-size-5", lambda a: upsample(a, size=5, mode="linear")),
    ("nearest-3", lambda a: interpolate(a, scale_factor=3, mode="nearest")),
    ("nearest-exact-size", lambda a: interpolate(a, size=4, mode="nearest-exact")),
    ("linear-size", lambda a: interpolate(a, size=9, mode="linear")),
    ("linear-ac-0.7", lambda a: interpolate(a, scale_factor=0.7, mode="linear", align_corners=True)),
    ("cubic-2", lambda a: interpolate(a, scale_factor=2, mode="bicubic")),
    ("cubic-rsf-1.3", lambda a: interpolate(a, scale_factor=1.3, mode="bicubic", recompute_scale_factor=True)),
    ("aa-linear-0.5", lambda a: interpolate(a, scale_factor=0.5, mode="linear", antialias=True)),
    ("aa-cubic-size", lambda a: interpolate(a, size=3, mode="bicubic", antialias=True)),
    ("area-size", lambda a: interpolate(a, size=3, mode="area")),
]
CALL_IDS = [c[0] for c in CALLS]
GRAD_CALLS = [c for c in CALLS if c[0] in ("up-nearest-1.7", "up-linear-ac-2", "up-cubic-1.5", "up-aa-cubic-0.4", "nearest-exact-size", "cubic-rsf-1.3", "aa-linear-0.5", "area-size")]
GRAD_IDS = [c[0] for c in GRAD_CALLS]

# Channels-first shapes (N, C, *S), 1-D to 3-D.
CF_SHAPES = {1: (2, 3, 11), 2: (2, 3, 7, 6), 3: (2, 3, 5, 4, 6)}


def to_channels_last(x_cf):
    """(N, C, *S) -> the (N, *S, C) view of the same memory."""
    nd = x_cf.ndim - 2
    return x_cf.transpose(0, *range(2, 2 + nd), 1)


def to_channels_first(y):
    """(N, *S, C) -> (N, C, *S)."""
    nd = y.ndim - 2
    return y.transpose(0, nd + 1, *range(1, nd + 1))


def bits(a):
    return to_numpy(a).tobytes(), a.shape, a.dtype


def row_contiguous(a):
    return _ext._strides(a)[1]


def assert_channels_first(a):
    """a is (N, *S, C) over (N, C, *S) row-contiguous memory, and is not
    row-contiguous itself (C > 1 and some S > 1)."""
    assert not row_contiguous(a), _ext._strides(a)
    assert row_contiguous(to_channels_first(a)), _ext._strides(a)


def test_strides_hook():
    x = mx.zeros((2, 3, 4))
    assert _ext._strides(x) == ([12, 4, 1], True)
    assert _ext._strides(x.transpose(0, 2, 1)) == ([12, 1, 4], False)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name,fn", CALLS, ids=CALL_IDS)
def test_channels_first_forward(name, fn, nd, dtype):
    x_cf = rand(CF_SHAPES[nd], dtype, seed=nd)
    view = to_channels_last(x_cf)
    want = fn(contiguous_copy(view))
    got = fn(view)
    assert bits(got) == bits(want)
    assert_channels_first(got)
    # Evaluated first (its strides known before the op is built): the same.
    mx.eval(view)
    assert bits(fn(view)) == bits(want)


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("name,fn", CALLS, ids=CALL_IDS)
def test_channels_last_stays_row_contiguous(name, fn, nd):
    x = rand((2, *CF_SHAPES[nd][2:], 3), seed=5)
    assert row_contiguous(fn(x))


@pytest.mark.parametrize("dtype", [mx.uint8, mx.int32, mx.bool_], ids=str)
def test_channels_first_integer_inputs(dtype):
    x_cf = (rand((2, 3, 7, 6), mx.float32, seed=9) * 40 + 60).astype(dtype)
    view = to_channels_last(x_cf)
    calls = [
        lambda a: upsample(a, 2, mode="nearest"),
        lambda a: interpolate(a, scale_factor=1.5, mode="nearest-exact"),
        lambda a: upsample(a, 1.5, mode="linear"),  # in float32
        lambda a: interpolate(a, size=(9, 4), mode="bilinear"),  # uint8 stays uint8
        lambda a: interpolate(a, scale_factor=0.5, mode="bicubic", antialias=True),
    ]
    for fn in calls:
        got = fn(view)
        assert bits(got) == bits(fn(contiguous_copy(view)))
        assert_channels_first(got)


# Layouts that are copied first: (name, fn(x (N, *S, C) contiguous) -> view).
OTHER_LAYOUTS = [
    ("sliced-steps", lambda x: x[::2, ::2]),
    ("sliced-reversed", lambda x: x[:, ::-1]),
    ("channel-slice", lambda x: x[..., 1:]),
    ("broadcast-batch", lambda x: mx.broadcast_to(x[:1], x.shape)),
    ("broadcast-channel", lambda x: mx.broadcast_to(x[..., :1], x.shape)),
    ("batch-after-spatial", lambda x: x.swapaxes(0, 1)),
    ("spatial-swapped", lambda x: x.swapaxes(1, 2)),
    ("cf-then-sliced", lambda x: to_channels_last(to_channels_first(mx.contiguous(x.swapaxes(0, 0)))[:, :, ::2])),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout,make", OTHER_LAYOUTS, ids=[l[0] for l in OTHER_LAYOUTS])
@pytest.mark.parametrize("name,fn", CALLS[::3], ids=CALL_IDS[::3])
def test_other_layouts(name, fn, layout, make, dtype):
    view = make(rand((4, 6, 5, 3), dtype, seed=3))
    got = fn(view)
    assert bits(got) == bits(fn(contiguous_copy(view)))


def test_channels_first_memory_in_channels_first_memory_out_2d():
    # The PyTorch client: NCHW memory viewed as NHWC, back to NCHW for free.
    x_nchw = rand((2, 4, 6, 5), seed=1)
    y = upsample(x_nchw.transpose(0, 2, 3, 1), 2, mode="linear")
    assert y.shape == (2, 12, 10, 4)
    strides, rc = _ext._strides(y.transpose(0, 3, 1, 2))
    assert rc and strides == [4 * 12 * 10, 12 * 10, 10, 1]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name,fn", GRAD_CALLS, ids=GRAD_IDS)
def test_channels_first_vjp(name, fn, nd, dtype):
    x_cf = rand(CF_SHAPES[nd], dtype, seed=nd + 10)
    view = to_channels_last(x_cf)
    xc = contiguous_copy(view)
    y = fn(xc)
    cot = rand(y.shape, dtype, seed=7)
    for cot_layout in (cot, to_channels_last(contiguous_copy(to_channels_first(cot)))):
        (got,) = mx.vjp(fn, [view], [cot_layout])[1]
        (want,) = mx.vjp(fn, [xc], [cot])[1]
        assert bits(got) == bits(want)
        # The cotangent of x is laid out as x is.
        assert_channels_first(got)
    # A channels-last x gets a row-contiguous cotangent, whatever the layout of y's.
    (got,) = mx.vjp(fn, [xc], [to_channels_last(contiguous_copy(to_channels_first(cot)))])[1]
    assert bits(got) == bits(want)
    assert row_contiguous(got)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name,fn", GRAD_CALLS, ids=GRAD_IDS)
def test_channels_first_grad_and_jvp(name, fn, nd):
    view = to_channels_last(rand(CF_SHAPES[nd], seed=nd + 20))
    xc = contiguous_copy(view)

    def loss(a):
        y = fn(a)
        return (y * mx.arange(y.size, dtype=mx.float32).reshape(y.shape)).sum()

    got = mx.grad(loss)(view)
    assert bits(got) == bits(mx.grad(loss)(xc))
    assert_channels_first(got)
    tan = to_channels_last(rand(CF_SHAPES[nd], seed=3))
    (jy,) = mx.jvp(fn, [view], [tan])[1]
    (want,) = mx.jvp(fn, [xc], [contiguous_copy(tan)])[1]
    assert bits(jy) == bits(want)
    assert_channels_first(jy)


@pytest.mark.parametrize("name,fn", GRAD_CALLS, ids=GRAD_IDS)
def test_channels_first_second_order(name, fn):
    view = to_channels_last(rand((2, 3, 6, 5), seed=4))
    xc = contiguous_copy(view)
    y = fn(xc)
    cot = rand(y.shape, seed=5)

    def backward(c):
        return mx.vjp(fn, [view], [c])[1][0]

    def backward_c(c):
        return mx.vjp(fn, [xc], [c])[1][0]

    t = rand(xc.shape, seed=6)
    got = mx.vjp(backward, [cot], [t])[1][0]
    assert bits(got) == bits(mx.vjp(backward_c, [cot], [t])[1][0])
    got = mx.jvp(backward, [cot], [cot])[1][0]
    assert bits(got) == bits(mx.jvp(backward_c, [cot], [cot])[1][0])


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name,fn", CALLS[::2], ids=CALL_IDS[::2])
def test_channels_first_vmap(name, fn, nd):
    # (V, N, C, *S) memory: the vmapped views are channels-first with two
    # leading batch axes.
    stack = rand((3, *CF_SHAPES[nd]), seed=nd + 30)
    views = stack.transpose(0, 1, *range(3, 3 + nd), 2)
    got = mx.vmap(fn)(views)
    want = mx.stack([fn(contiguous_copy(views[i])) for i in range(3)])
    assert bits(got) == bits(want)
    # And over an inner axis: moved in front, copied.
    got = mx.vmap(fn, in_axes=1)(views.swapaxes(0, 1))
    assert bits(got) == bits(want)


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("name,fn", GRAD_CALLS, ids=GRAD_IDS)
def test_channels_first_vmap_grad(name, fn, nd):
    stack = rand((3, *CF_SHAPES[nd]), seed=nd + 40)
    views = stack.transpose(0, 1, *range(3, 3 + nd), 2)
    grad = mx.vmap(mx.grad(lambda a: (fn(a) ** 2).sum()))
    got = grad(views)
    assert bits(got) == bits(grad(contiguous_copy(views)))


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name,fn", CALLS, ids=CALL_IDS)
def test_channels_first_compile(name, fn, nd):
    view = to_channels_last(rand(CF_SHAPES[nd], seed=nd + 50))
    want = fn(contiguous_copy(view))
    got = mx.compile(fn)(view)
    assert bits(got) == bits(want)
    assert_channels_first(got)
    # The compiled graph is the same for every layout: a channels-last input
    # through the function compiled on a view.
    compiled = mx.compile(fn)
    assert bits(compiled(view)) == bits(want)
    assert bits(compiled(contiguous_copy(view))) == bits(want)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name,fn", [c for c in CALLS if "size" not in c[0]], ids=[c[0] for c in CALLS if "size" not in c[0]])
def test_channels_first_shapeless_compile(name, fn, nd):
    compiled = mx.compile(lambda x_cf: to_channels_first(fn(to_channels_last(x_cf))), shapeless=True)
    for shape in (CF_SHAPES[nd], (3, 2, *[n + 3 for n in CF_SHAPES[nd][2:]])):
        x_cf = rand(shape, seed=nd + 60)
        got = compiled(x_cf)
        want = to_channels_first(fn(contiguous_copy(to_channels_last(x_cf))))
        assert bits(got) == bits(want)
        assert row_contiguous(got)


def test_channels_first_shapeless_compile_grad():
    fn = lambda a: upsample(a, 1.5, mode="cubic")
    grad = mx.compile(mx.grad(lambda x_cf: fn(to_channels_last(x_cf)).sum()), shapeless=True)
    for shape in ((2, 3, 6, 5), (1, 4, 9, 7)):
        x_cf = rand(shape, seed=70)
        got = grad(x_cf)
        want = mx.grad(lambda a: fn(a).sum())(contiguous_copy(to_channels_last(x_cf)))
        assert bits(got) == bits(to_channels_first(want))
        assert row_contiguous(got)


def test_single_channel_and_unit_axes():
    # C == 1, or spatial sizes 1: channels-first memory is row-contiguous too.
    for shape in ((2, 1, 7, 6), (2, 3, 1, 1), (1, 3, 1, 5)):
        view = to_channels_last(rand(shape, seed=80))
        for fn in (CALLS[0][1], CALLS[4][1]):
            got = fn(view)
            assert bits(got) == bits(fn(contiguous_copy(view)))


def test_empty_channel_first():
    view = to_channels_last(mx.zeros((2, 0, 4, 5)))
    assert upsample(view, 2, mode="linear").shape == (2, 8, 10, 0)
    view = to_channels_last(mx.zeros((0, 3, 4, 5)))
    assert upsample(view, 2, mode="cubic").shape == (0, 8, 10, 3)


def test_numpy_sees_the_values():
    # A strided result reads as its logical values everywhere.
    x_cf = rand((1, 2, 3, 4), seed=90)
    y = upsample(to_channels_last(x_cf), 1, mode="nearest")
    np.testing.assert_array_equal(np.array(y), np.moveaxis(np.array(x_cf), 1, -1))


# ---- few channels: the CPU kernels vectorised along the last axis -------------

# Per call: every channel's values do not depend on the others, so 1 to 3
# channels give the bits of the same channels inside a wide call (whose
# kernels vectorise across channels). Long axes cover whole blocks of 8
# outputs and a tail; 1-D axes long enough are gathered in pieces.
NARROW_CALLS = CALLS + [
    ("up-nearest-300", lambda a: upsample(a, 300, mode="nearest")),
    ("up-nearest-3", lambda a: upsample(a, 3, mode="nearest")),
    ("up-nearest-(..,2,4)", lambda a: upsample(a, (1, 2, 4)[3 - (a.ndim - 2):], mode="nearest")),
    ("nearest-2", lambda a: interpolate(a, scale_factor=2, mode="nearest")),
    ("linear-300", lambda a: interpolate(a, scale_factor=300, mode="linear")),
    ("linear-1/300", lambda a: interpolate(a, scale_factor=1 / 300, mode="linear")),
    ("bilinear-2", lambda a: upsample(a, 2, mode="linear")),
    ("bicubic-2", lambda a: upsample(a, 2, mode="cubic")),
]


def bits_any_nan(a):
    """bits(a) with every NaN one NaN: which NaN payload a sum of NaNs keeps
    depends on the operand order the compiler picked, not on the values."""
    v = to_numpy(a).astype(np.float32)
    v[np.isnan(v)] = np.nan
    return v.tobytes(), a.shape, a.dtype


def _narrow_case(shape, channels, dtype, seed):
    wide = rand((*shape, 7), dtype, seed=seed)
    # Non-finite values and signed zeros: a lane's select must keep them.
    flat = np.array(wide.astype(mx.float32)).reshape(-1)
    flat[::97] = np.inf
    flat[5::101] = -0.0
    flat[7::193] = np.nan
    wide = mx.array(flat.reshape(wide.shape)).astype(dtype)
    # mx.contiguous copies the bits (a trip through float32 could requiet NaNs).
    return wide, mx.contiguous(wide[..., :channels])


NARROW_SHAPES = {"1d": (2, 1500), "2d": (2, 19, 37), "3d": (1, 5, 6, 21)}
# x300 on every axis of a 2-D or 3-D input would be too large for a test.
NARROW_CASES = [
    pytest.param(name, fn, shape, id=f"{name}-{key}")
    for name, fn in NARROW_CALLS
    for key, shape in NARROW_SHAPES.items()
    if "300" not in name or key == "1d"
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("name,fn,shape", NARROW_CASES)
def test_few_channels_match_wide(name, fn, shape, channels, dtype):
    wide, narrow = _narrow_case(shape, channels, dtype, seed=channels)
    want = fn(wide)[..., :channels]
    assert row_contiguous(narrow)
    assert bits_any_nan(fn(narrow)) == bits_any_nan(want)


NARROW_GRAD_CASES = [
    pytest.param(name, fn, shape, id=f"{name}-{key}")
    for name, fn in GRAD_CALLS + NARROW_CALLS[-3:]
    for key, shape in NARROW_SHAPES.items()
    if "300" not in name or key == "1d"
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name,fn,shape", NARROW_GRAD_CASES)
def test_few_channels_backward_match_wide(name, fn, shape, channels, dtype):
    wide = rand((*shape, 7), dtype, seed=channels + 1)
    narrow = mx.contiguous(wide[..., :channels])
    cot = rand(fn(wide).shape, dtype, seed=2)
    (want,) = mx.vjp(fn, [wide], [cot])[1]
    (got,) = mx.vjp(fn, [narrow], [mx.contiguous(cot[..., :channels])])[1]
    assert row_contiguous(narrow) and bits(got) == bits(want[..., :channels])


def test_nearest_replicate_in_pieces():
    # A 1-D table too large to build whole: pieces of 4096 outputs that start
    # inside a run of 3 (or 300) copies.
    for shape, k in (((2, 150001, 1), 3), ((1, 2001, 2), 300), ((3, 70001, 1), 4)):
        for dtype in (mx.float32, mx.float16, mx.uint8, mx.int64):
            x = (rand(shape, mx.float32, seed=k) * 50).astype(dtype)
            got = upsample(x, k, mode="nearest")
            want = np.repeat(np.array(x), k, axis=1)
            np.testing.assert_array_equal(np.array(got), want)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name,fn", GRAD_CALLS, ids=GRAD_IDS)
def test_many_small_images(name, fn, dtype):
    # Many channels of small images (a ViT position embedding): their channel
    # images are resampled 32 at a time as the channels of one image (tiles
    # transposed in cache; 40 and 36 images end in a partial tile, 6 x 5 and
    # 30 elements in a part of a transposed block); values and layouts are
    # the same as everywhere, forward and backward.
    for shape in ((1, 40, 6, 5), (2, 16, 3, 4, 9), (3, 12, 30), (1, 8, 6, 5)):
        view = to_channels_last(rand(shape, dtype, seed=95))
        xc = contiguous_copy(view)
        y = fn(xc)
        assert bits(fn(view)) == bits(y)
        assert_channels_first(fn(view))
        cot = rand(y.shape, dtype, seed=96)
        (want,) = mx.vjp(fn, [xc], [cot])[1]
        for c in (cot, to_channels_last(contiguous_copy(to_channels_first(cot))), cot[::-1]):
            (got,) = mx.vjp(fn, [view], [c])[1]
            (ref,) = mx.vjp(fn, [xc], [contiguous_copy(c)])[1]
            assert bits(got) == bits(ref)
            assert_channels_first(got)
        assert bits(mx.vjp(fn, [view], [cot])[1][0]) == bits(want)
        # The same images of one channel, channels-last: each one is one
        # channel of the wide call.
        images = contiguous_copy(to_channels_first(view))[..., None]
        images = images.reshape(-1, *images.shape[2:])
        wide = contiguous_copy(mx.moveaxis(images[..., 0], 0, -1))[None]
        assert bits(fn(images)) == bits(mx.moveaxis(fn(wide)[0], -1, 0)[..., None])


# Channels-first memory that is not dense or in order: copied to channels-first
# memory, and the result is channels-first as well (its gradient too).
CF_MAJOR = [
    ("strided-batch", lambda x_cf: to_channels_last(x_cf[::2])),
    ("sliced-spatial", lambda x_cf: to_channels_last(x_cf[:, :, ::2, 1:])),
    ("reversed-spatial", lambda x_cf: to_channels_last(x_cf[:, :, ::-1])),
    ("channel-slice", lambda x_cf: to_channels_last(x_cf[:, 1:])),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout,make", CF_MAJOR, ids=[l[0] for l in CF_MAJOR])
@pytest.mark.parametrize("name,fn", GRAD_CALLS, ids=GRAD_IDS)
def test_channels_major_layouts(name, fn, layout, make, dtype):
    view = make(rand((4, 5, 8, 7), dtype, seed=97))
    xc = contiguous_copy(view)
    got = fn(view)
    assert bits(got) == bits(fn(xc))
    assert_channels_first(got)
    cot = rand(got.shape, dtype, seed=98)
    (g,) = mx.vjp(fn, [view], [cot])[1]
    assert bits(g) == bits(mx.vjp(fn, [xc], [cot])[1][0])
    assert_channels_first(g)
