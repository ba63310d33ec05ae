"""The code paths of the CPU kernels (csrc/cpu/), each against PyTorch in float64, forward
and gradient:

- channel counts around the vector widths: unrolled C <= 4, then 8- and 32-float chunks
  and their tails, and more than one half-precision conversion block (256);
- leading axes whose taps are a single unit weight (read in place, not blended), in
  every position of a 3-D input;
- the half types, read and written with in-register conversions, from the source (1-D)
  or at the first level (2-D);
- the two ways of computing the last two axes (blend a row into a buffer, then gather;
  or both at once for 8+ channels when the row's elements are read about once or both
  axes have two taps, as linear up- and downscales do): each channel alone (no lanes,
  always the buffer) gives bitwise what the channel gives among 40;
- thread splits that cut a cached slab in two: results are bitwise the same for any
  thread count;
- the two instruction sets the kernels are compiled for (csrc/cpu/isa.h): the baseline
  kernels, forced with MLX_UPSAMPLE_CPU_ISA=baseline in a subprocess, give bitwise the
  results of the default (AVX2 + F16C where the CPU has it), special values included;
  and the kernels compile without the x86 dispatch, as they must on macOS/Arm.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from helpers import assert_baseline_isa_bits, assert_close, rand, tol_for
from references import torch_forward_and_grad, torch_out_shape

import mlx_upsample
from mlx_upsample import interpolate

CHANNELS = [1, 2, 3, 4, 5, 8, 9, 31, 32, 33, 70, 300]
MODES = [
    dict(mode="nearest"),
    dict(mode="bilinear", align_corners=False),
    dict(mode="bicubic", align_corners=True),
    dict(mode="bilinear", antialias=True),
    dict(mode="area"),
]


def _forward_and_grad(x, kw, seed):
    cot = rand(torch_out_shape(x, **kw), dtype=x.dtype, seed=seed)

    def f(a):
        return interpolate(a, **kw)

    (out,), (grad,) = mx.vjp(f, [x], [cot])
    ref_out, ref_grad = torch_forward_and_grad(x, cot, **kw)
    return out, grad, ref_out, ref_grad


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("mode", MODES, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_channel_counts_vs_torch(channels, mode):
    x = rand((2, 7, 6, channels), seed=channels)
    size = (4, 5) if mode.get("antialias") or mode["mode"] == "area" else (12, 11)
    out, grad, ref_out, ref_grad = _forward_and_grad(x, dict(size=size, **mode), seed=500 + channels)
    assert_close(out, ref_out)
    assert_close(grad, ref_grad)


@pytest.mark.parametrize("size", [(4, 9, 8), (7, 5, 8), (7, 9, 6), (4, 5, 11)],
                         ids=["first-unchanged", "middle-unchanged", "last-unchanged", "two-unchanged"])
@pytest.mark.parametrize("mode", ["nearest", "trilinear", "cubic"])
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16])
@pytest.mark.parametrize("channels", [3, 9])
def test_unchanged_axes_vs_torch(size, mode, dtype, channels):
    x = rand((2, 4, 5, 6, channels), dtype=dtype, seed=510)
    kw = dict(size=size, mode=mode)
    if mode != "nearest":
        kw["align_corners"] = False
    out, grad, ref_out, ref_grad = _forward_and_grad(x, kw, seed=511)
    rtol, atol = tol_for(dtype)
    assert out.dtype == grad.dtype == dtype
    assert_close(out, ref_out, rtol=rtol, atol=atol)
    assert_close(grad, ref_grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("shape", [(3, 37, 3), (2, 29, 40), (2, 9, 300), (2, 6, 5, 3), (2, 7, 6, 40),
                                   (1, 5, 4, 300)])
@pytest.mark.parametrize("mode", ["linear", "cubic", "nearest-exact"])
def test_half_types_vs_torch(dtype, shape, mode):
    x = rand(shape, dtype=dtype, seed=520)
    kw = dict(scale_factor=1.7, mode=mode)
    out, grad, ref_out, ref_grad = _forward_and_grad(x, kw, seed=521)
    rtol, atol = tol_for(dtype)
    assert out.dtype == grad.dtype == dtype
    assert_close(out, ref_out, rtol=rtol, atol=atol)
    assert_close(grad, ref_grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape,size", [((2, 12, 10, 40), (6, 5)), ((2, 6, 5, 40), (12, 10)),
                                        ((1, 4, 6, 8, 40), (8, 3, 4))], ids=["down", "up", "3d"])
@pytest.mark.parametrize("mode", [dict(mode="nearest"), dict(mode="linear", align_corners=False),
                                  dict(mode="cubic", align_corners=False), dict(mode="area"),
                                  dict(mode="linear", antialias=True)],
                         ids=lambda kw: "-".join(str(v) for v in kw.values()))
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16])
def test_each_channel_alone_is_bitwise_equal(shape, size, mode, dtype):
    x = rand(shape, dtype=dtype, seed=550)
    kw = dict(size=size, **mode)
    cot = rand(interpolate(x, **kw).shape, dtype=dtype, seed=551)

    def run(a, c):
        (o,), (g,) = mx.vjp(lambda t: interpolate(t, **kw), [a], [c])
        return np.array(o), np.array(g)

    out, grad = run(x, cot)
    for ch in (0, 7, 8, 39):
        o, g = run(x[..., ch:ch + 1], cot[..., ch:ch + 1])
        np.testing.assert_array_equal(o[..., 0], out[..., ch])
        np.testing.assert_array_equal(g[..., 0], grad[..., ch])


@pytest.mark.parametrize("mode", ["nearest", "trilinear", "cubic"])
def test_thread_splits_inside_a_slab_are_exact(mode):
    # 3 x 31 output planes of 43 rows: 2 and 7 threads start their ranges inside a
    # plane, where each thread rebuilds the slabs it shares with its neighbour.
    x = rand((3, 5, 6, 7, 12), seed=530)
    kw = dict(size=(31, 43, 10), mode=mode)
    cot = rand(torch_out_shape(x, **kw), seed=531)

    def f(a):
        return interpolate(a, **kw)

    old = mlx_upsample.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3, 7):
            mlx_upsample.set_num_threads(n)
            (o,), (g,) = mx.vjp(f, [x], [cot])
            mx.eval(o, g)
            results.append((np.array(o), np.array(g)))
    finally:
        mlx_upsample.set_num_threads(old)
    for o, g in results[1:]:
        np.testing.assert_array_equal(o, results[0][0])
        np.testing.assert_array_equal(g, results[0][1])
    ref_out, ref_grad = torch_forward_and_grad(x, cot, **kw)
    assert_close(results[0][0], ref_out)
    assert_close(results[0][1], ref_grad)


# 1 to 3 channels take the kernels vectorised along the last axis (last_axis_narrow.inc).
ISA_SHAPES = [(2, 37, 3), (2, 9, 300), (2, 7, 6, 40), (1, 5, 4, 6, 9), (2, 7, 45, 1), (3, 50, 2)]
ISA_MODES = [
    dict(mode="nearest"),
    dict(mode="linear", align_corners=False),
    dict(mode="cubic", align_corners=True),
    dict(mode="linear", antialias=True),
    dict(mode="area"),
]


def isa_case_results():
    """Forward and gradient of every case, keyed by name, as numpy arrays (float32)."""
    results = {}
    for dtype in (mx.float32, mx.float16, mx.bfloat16):
        for shape in ISA_SHAPES:
            x = rand(shape, dtype=mx.float32, seed=540) * 3
            # Values the conversions must carry: NaN, infinities, float16's largest
            # finite value, its subnormals, and sums that overflow float16.
            flat = x.reshape(-1)
            flat[:6] = mx.array([float("nan"), float("inf"), -float("inf"), 65504.0, 3e-7, -6e-6])
            flat[-4:] = mx.array([65000.0, 65504.0, -65504.0, 60000.0])
            x = flat.reshape(shape).astype(dtype)
            for i, kw in enumerate(ISA_MODES):
                kw = dict(kw, size=tuple(2 * n + 1 for n in shape[1:-1]))
                if kw.get("antialias") or kw["mode"] == "area":
                    kw["size"] = tuple(max(1, n // 2) for n in shape[1:-1])
                cot = rand(interpolate(x, **kw).shape, dtype=dtype, seed=541)
                (o,), (g,) = mx.vjp(lambda a: interpolate(a, **kw), [x], [cot])
                key = f"{dtype}-{'x'.join(map(str, shape))}-{i}"
                results[key + "-out"] = np.array(o.astype(mx.float32))
                results[key + "-grad"] = np.array(g.astype(mx.float32))
    # uint8 linear/cubic: integer passes, also compiled per instruction set.
    for shape in ISA_SHAPES:
        x = mx.array(np.random.default_rng(542).integers(0, 256, shape).astype(np.uint8))
        for i, kw in enumerate(ISA_MODES[1:4]):
            for size in (tuple(2 * n + 1 for n in shape[1:-1]), tuple(max(1, n // 2) for n in shape[1:-1])):
                key = f"uint8-{'x'.join(map(str, shape))}-{i}-{'x'.join(map(str, size))}"
                results[key] = np.array(interpolate(x, size=size, **kw))
    return results


def test_baseline_isa_is_bitwise_equal_to_default(tmp_path):
    # This file run as a script (its folder, tests/, is then on the child's path).
    assert_baseline_isa_bits(__file__, isa_case_results(), tmp_path)


def test_kernels_compile_without_the_x86_dispatch():
    # Only x86 GCC builds compile the AVX2 kernels; every other build (macOS/Arm,
    # Clang) must compile the CPU sources without a single x86 intrinsic.
    # UPSAMPLE_PORTABLE_KERNELS makes this compiler build them that way.
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    assert compiler, "no C++ compiler found (set CXX)"
    root = Path(__file__).resolve().parents[1]
    mlx_include = Path(mx.__file__).parent / "include"
    for source in ["cpu/separable_gather.cpp", "cpu/upsample_cpu.cpp", "cpu/uint8_resample.cpp"]:
        result = subprocess.run(
            [compiler, "-std=c++20", "-fsyntax-only", "-DUPSAMPLE_PORTABLE_KERNELS",
             f"-I{root / 'csrc'}", f"-I{root / 'kernels'}", f"-I{mlx_include}",
             str(root / "csrc" / source)],
            capture_output=True, text=True)
        assert result.returncode == 0, f"{source}:\n{result.stderr[-3000:]}"


if __name__ == "__main__":
    # python tests/test_cpu_paths.py OUT.npz: isa_case_results() of the instruction set
    # this process dispatches to (test_baseline_isa_is_bitwise_equal_to_default).
    np.savez(sys.argv[1], **isa_case_results())
