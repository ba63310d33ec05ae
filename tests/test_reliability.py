"""No crash, no hang, no cryptic error: empty vmaps, fork, thread counts, huge sizes, odd
argument types and GPU streams without Metal.

Anything that could kill or hang the interpreter runs in a child process with a timeout,
so that such a failure fails its test instead of the whole run."""

import functools
import os
import subprocess
import sys
import textwrap
import threading
import time

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch

from helpers import assert_close, raises_with, rand
from references import torch_forward

import mlx_upsample
from mlx_upsample import Upsample, interpolate, upsample

X2 = rand((1, 4, 4, 2), seed=1501)


# Every child tests the CPU path (also on a Mac, where the suite's default device may be
# the GPU).
_CHILD_PRELUDE = "import mlx.core as _mx\n_mx.set_default_device(_mx.cpu)\n"


def run_python(code, timeout=120, env=None):
    """Runs `code` (dedented) in a fresh interpreter on the CPU; returns the CompletedProcess.
    A hang fails the test through the timeout."""
    full_env = dict(os.environ)
    full_env.pop("MLX_UPSAMPLE_NUM_THREADS", None)
    full_env.update(env or {})
    try:
        return subprocess.run(
            [sys.executable, "-W", "ignore::DeprecationWarning", "-c", _CHILD_PRELUDE + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"child process hung (killed after {timeout} s); stderr:\n{e.stderr}")


def assert_ran(proc):
    assert proc.returncode == 0, (
        f"child process failed (returncode {proc.returncode})\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


# ======================================================================================
# 1. vmap over an empty axis: an empty result of the right shape, nothing divided by 0
# ======================================================================================

# name: (function, input shape, vmapped axis, expected shape, mlx.nn.Upsample equivalent)
_VMAP_CASES = {
    "upsample-nearest": (
        "lambda z: upsample(z, 2)", (0, 1, 4, 4, 3), 0, (0, 1, 8, 8, 3), lambda z: nn.Upsample(2)(z)
    ),
    "upsample-linear-axis2": (
        "lambda z: upsample(z, 2, 'linear')",
        (1, 4, 0, 4, 3),
        2,
        (0, 1, 8, 8, 3),
        lambda z: nn.Upsample(2, "linear")(z),
    ),
    "interpolate-bicubic": (
        "lambda z: interpolate(z, scale_factor=2, mode='bicubic')",
        (0, 1, 4, 4, 3),
        0,
        (0, 1, 8, 8, 3),
        lambda z: nn.Upsample(2, "cubic")(z),
    ),
    "interpolate-area-batch0": (
        "lambda z: interpolate(z, size=(2, 3), mode='area')", (3, 0, 4, 4, 3), 0, (3, 0, 2, 3, 3), None
    ),
    "grad-upsample-linear": (
        "mx.grad(lambda z: upsample(z, 2, 'linear').sum())",
        (0, 1, 4, 4, 3),
        0,
        (0, 1, 4, 4, 3),
        mx.grad(lambda z: nn.Upsample(2, "linear")(z).sum()),
    ),
    "grad-interpolate-antialias": (
        "mx.grad(lambda z: interpolate(z, scale_factor=0.5, mode='bilinear', antialias=True).sum())",
        (0, 1, 4, 4, 3),
        0,
        (0, 1, 4, 4, 3),
        None,
    ),
}


@pytest.mark.parametrize("name", list(_VMAP_CASES))
def test_vmap_over_empty_axis(name):
    fn_text, shape, axis, expected, mlx_fn = _VMAP_CASES[name]
    if mlx_fn is not None:
        assert tuple(mx.vmap(mlx_fn, in_axes=axis)(mx.zeros(shape)).shape) == expected
    out = assert_ran(
        run_python(
            f"""
            import mlx.core as mx
            from mlx_upsample import upsample, interpolate
            y = mx.vmap({fn_text}, in_axes={axis})(mx.zeros({shape}))
            mx.eval(y)
            print("SHAPE", tuple(y.shape), y.dtype)
            """
        )
    )
    assert out.strip().splitlines()[-1] == f"SHAPE {expected} mlx.core.float32", out


def test_vmap_over_empty_axis_of_a_jvp():
    out = assert_ran(
        run_python(
            """
            import mlx.core as mx
            from mlx_upsample import upsample
            f = lambda z: mx.jvp(lambda a: upsample(a, 1.5, "cubic"), [z], [z])[1][0]
            y = mx.vmap(f)(mx.zeros((0, 2, 4, 4, 3)))
            mx.eval(y)
            print("SHAPE", tuple(y.shape))
            """
        )
    )
    assert out.strip().endswith("SHAPE (0, 2, 6, 6, 3)")


def test_vmap_values_over_a_middle_axis():
    """A non-empty vmap over a middle axis (batch 2) matches the reference."""
    x = rand((2, 5, 3, 4, 2), seed=1502)  # vmapped axis 2 of size 3
    out = mx.vmap(lambda z: upsample(z, 1.5, "linear"), in_axes=2)(x)
    ref = mx.vmap(lambda z: nn.Upsample(1.5, "linear")(z), in_axes=2)(x)
    assert_close(out, ref)


# ======================================================================================
# 2. fork: the child never joins the parent's threads nor inherits a locked mutex
# ======================================================================================

# MLX's own default CPU stream does not survive fork (its worker thread is not copied:
# any mx.eval on it hangs in the child, with or without mlx_upsample), so the children
# evaluate on a stream of their own.
_FORK_PRELUDE = """
import os, sys, threading, time
import mlx.core as mx, mlx.nn as nn, numpy as np
import mlx_upsample
from mlx_upsample import upsample

x = mx.random.normal((2, 96, 96, 8), key=mx.random.key(7))
ref = np.array(nn.Upsample(2, "linear")(x))
np.testing.assert_allclose(np.array(upsample(x, 2, "linear")), ref, rtol=1e-5, atol=1e-5)

def child(threads):
    try:
        with mx.stream(mx.new_stream(mx.cpu)):
            if threads:
                mlx_upsample.set_num_threads(threads)
            y = np.array(upsample(x, 2, "linear"))
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
        os._exit(0)
    except BaseException as e:
        print("child:", type(e).__name__, e, flush=True)
        os._exit(3)

def wait(pid, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"
"""


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_fork_after_the_op(threads):
    """Parent runs the op (its pool has threads), forks; the child sets a thread count
    (it joins none of the parent's threads, which fork did not copy) and runs the op."""
    out = assert_ran(
        run_python(
            _FORK_PRELUDE
            + textwrap.dedent(
                f"""
            mlx_upsample.set_num_threads(2)
            mx.eval(upsample(x, 2, "linear"))
            pid = os.fork()
            if pid == 0:
                child({threads})
            print("STATUS", wait(pid))
            """
            )
        )
    )
    assert out.strip().endswith("STATUS 0"), out


def test_fork_while_another_thread_runs_the_op():
    """Forks while a parent thread keeps evaluating the op, 5 times: the child never
    inherits the pool's mutex locked. Every child must finish with the right values, and
    the parent's pool keeps working."""
    out = assert_ran(
        run_python(
            _FORK_PRELUDE
            + textwrap.dedent(
                """
            mlx_upsample.set_num_threads(2)
            big = mx.random.normal((2, 512, 512, 8))
            stop = threading.Event()
            def busy():
                while not stop.is_set():
                    mx.eval(upsample(big, 2, "linear"))
            t = threading.Thread(target=busy)
            t.start()
            statuses = []
            for k in range(5):
                time.sleep(0.05)
                pid = os.fork()
                if pid == 0:
                    child(3 if k % 2 else 0)
                statuses.append(wait(pid))
            stop.set()
            t.join()
            np.testing.assert_allclose(np.array(upsample(x, 2, "linear")), ref, rtol=1e-5, atol=1e-5)
            print("STATUS", statuses)
            """
            )
        )
    )
    assert out.strip().endswith("STATUS [0, 0, 0, 0, 0]"), out


# ======================================================================================
# 3. thread counts
# ======================================================================================


@pytest.fixture
def restore_threads():
    old = mlx_upsample.get_num_threads()
    yield
    mlx_upsample.set_num_threads(old)


@pytest.mark.parametrize("n", [True, False, 1.5, 2.0, "2", None, mx.array(2), [2]], ids=repr)
def test_set_num_threads_needs_an_int(n, restore_threads):
    old = mlx_upsample.get_num_threads()
    msg = raises_with(TypeError, lambda: mlx_upsample.set_num_threads(n), "n must be an int")
    assert "incompatible function arguments" not in msg
    assert mlx_upsample.get_num_threads() == old


@pytest.mark.parametrize("n", [0, -1, 1025, 10**6, 2**31, 10**400], ids=lambda n: str(n)[:12])
def test_set_num_threads_range(n, restore_threads):
    old = mlx_upsample.get_num_threads()
    raises_with(ValueError, lambda: mlx_upsample.set_num_threads(n), "n must be between 1 and 1024")
    assert mlx_upsample.get_num_threads() == old


def test_set_num_threads_accepts_numpy_ints(restore_threads):
    mlx_upsample.set_num_threads(np.int64(3))
    assert mlx_upsample.get_num_threads() == 3
    assert_close(upsample(X2, 2, "linear"), nn.Upsample(2, "linear")(X2))


@functools.lru_cache(maxsize=None)
def _threads_in_child(value):
    env = {} if value is None else {"MLX_UPSAMPLE_NUM_THREADS": value}
    proc = run_python(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import mlx_upsample
        import mlx.core as mx, mlx.nn as nn, numpy as np
        x = mx.random.normal((1, 64, 64, 8))
        np.testing.assert_allclose(
            np.array(mlx_upsample.upsample(x, 2, "linear")), np.array(nn.Upsample(2, "linear")(x)),
            rtol=1e-5, atol=1e-5)
        for w in caught:
            print("WARNING", w.category.__name__, w.message)
        print("THREADS", mlx_upsample.get_num_threads())
        """,
        env=env,
    )
    lines = assert_ran(proc).strip().splitlines()
    warnings_seen = [line for line in lines if line.startswith("WARNING")]
    return int(lines[-1].split()[1]), tuple(warnings_seen)


def test_env_threads_valid():
    default, warned = _threads_in_child(None)
    assert default >= 1 and not warned
    for value, n in (("3", 3), (" 5 ", 5), ("1", 1), ("64", 64)):
        got, warned = _threads_in_child(value)
        assert (got, warned) == (n, ()), value


@pytest.mark.parametrize("value", ["99999999999", "abc", "0", "-3", "2x", "1.5", "1025", "0x10"])
def test_env_threads_garbage_warns_and_uses_the_default(value):
    """Only a decimal integer in [1, 1024] counts: '99999999999' is not wrapped into
    1215752191 threads, '2x' is not read as 2; anything else warns and the default is used."""
    default, _ = _threads_in_child(None)
    got, warned = _threads_in_child(value)
    assert got == default
    assert len(warned) == 1 and "RuntimeWarning" in warned[0], warned
    assert f"MLX_UPSAMPLE_NUM_THREADS='{value}'" in warned[0], warned


def test_thread_start_failure_raises_and_recovers():
    """When the OS refuses a thread part-way (here: an address-space limit that leaves
    room for a few dozen stacks), evaluating the op raises instead of waiting for the
    missing threads, and fewer threads work again."""
    out = assert_ran(
        run_python(
            """
            import resource
            import mlx.core as mx, mlx.nn as nn, numpy as np
            import mlx_upsample
            x = mx.random.normal((1, 64, 64, 8))
            ref = np.array(nn.Upsample(2, "linear")(x))
            mx.eval(mlx_upsample.upsample(x, 2, "linear"))
            with open("/proc/self/status") as f:
                vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
            resource.setrlimit(resource.RLIMIT_AS, (vm + 300 * 2**20, resource.RLIM_INFINITY))
            mlx_upsample.set_num_threads(1000)
            try:
                mx.eval(mlx_upsample.upsample(x, 2, "linear"))
                print("NO ERROR")
            except RuntimeError as e:
                print("RAISED", e)
            mlx_upsample.set_num_threads(2)
            np.testing.assert_allclose(np.array(mlx_upsample.upsample(x, 2, "linear")), ref,
                                       rtol=1e-5, atol=1e-5)
            print("RECOVERED")
            """,
            timeout=120,
        )
    )
    lines = out.strip().splitlines()
    assert lines[-1] == "RECOVERED", out
    assert lines[-2].startswith("RAISED [upsample] could not start CPU thread"), out
    assert "of 1000" in lines[-2] and "fewer threads" in lines[-2], out


def test_get_num_threads_does_not_wait_for_a_running_op(restore_threads):
    """get_num_threads does not take the mutex a job holds from start to end: a call made
    during an op does not wait for the op, and no call takes a noticeable part of its time."""
    mlx_upsample.set_num_threads(2)
    x = rand((1, 1024, 1024, 32), seed=1503)
    mx.eval(x)
    mx.eval(interpolate(x, scale_factor=2, mode="bicubic", stream=mx.cpu))  # first touch of the memory
    durations, latencies = [], []
    running = threading.Event()

    def work():
        for _ in range(2):
            t = time.perf_counter()
            mx.eval(interpolate(x, scale_factor=2, mode="bicubic", stream=mx.cpu))
            durations.append(time.perf_counter() - t)
        running.clear()

    running.set()
    worker = threading.Thread(target=work)
    worker.start()
    while running.is_set():
        t = time.perf_counter()
        assert mlx_upsample.get_num_threads() == 2
        latencies.append(time.perf_counter() - t)
    worker.join()
    assert len(latencies) > 10
    assert max(latencies) < 0.5 * min(durations), (max(latencies), durations)


# ======================================================================================
# 7. huge sizes and scales, unsupported dtypes, bad streams: clear errors, before any work
# ======================================================================================

_HUGE_SCALES = [1e308, 10**400, 10**5000, (1e308, 1.0), (1.0, 10**400)]


@pytest.mark.parametrize("scale", _HUGE_SCALES, ids=["1e308", "10**400", "10**5000", "(1e308,1)", "(1,10**400)"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_huge_scales_are_value_errors(scale, mode):
    """ValueError naming scale_factor and the limit, not OverflowError, where the output
    size has no float (floor(n * 1e308) = floor(inf); float(10**400))."""
    for fn in (
        lambda: upsample(X2, scale, mode=mode),
        lambda: Upsample(scale, mode=mode)(X2),
        lambda: interpolate(X2, scale_factor=scale, mode="bilinear" if mode == "linear" else mode),
    ):
        msg = raises_with(ValueError, fn, "scale_factor", "2147483647")
        assert len(msg) < 400, msg


def test_huge_scale_size_is_exact():
    """Just past the axis limit with a scale whose product with n is far from any rounding."""
    x = mx.zeros((1, 2, 1))
    raises_with(ValueError, lambda: interpolate(x, scale_factor=2**30 + 0.5), "scale_factor", "2147483649")
    raises_with(ValueError, lambda: interpolate(x, size=10**400), "size")


def test_largest_axis_that_passes_the_size_check_fails_clearly():
    """interpolate(uint8 (1, 1, 1), size=2**31 - 1), the largest axis the size check lets
    through, fails clearly, not through an int overflow sizing a table. A 1-D call builds
    its table in pieces, so only its output counts: with MLX's memory limit set to 1 GiB
    (the same rule on every machine) nearest and linear raise MemoryError naming it; in
    2-D, where tables are built whole, linear and cubic raise a ValueError (a table would
    have more entries than int32 indices address). All before anything is allocated. In a
    child process: if the rule broke, the child, not the test run, would run out of memory."""
    out = assert_ran(
        run_python(
            """
            import mlx.core as mx, mlx.nn as nn, numpy as np
            from mlx_upsample import interpolate
            mx.set_memory_limit(2**30)
            before = mx.get_peak_memory()
            for mode, dtype, shape, size in (
                ("nearest", mx.uint8, (1, 1, 1), 2**31 - 1),
                ("bilinear", mx.float32, (1, 1, 1), 2**31 - 1),
                ("bilinear", mx.float32, (1, 1, 1, 1), (1, 2**31 - 1)),
                ("bicubic", mx.float32, (1, 1, 1, 1), (1, 2**31 - 1)),
            ):
                try:
                    mx.eval(interpolate(mx.zeros(shape, dtype), size=size, mode=mode))
                    print("NO ERROR", mode)
                except (MemoryError, ValueError) as e:
                    print(type(e).__name__, e)
            assert mx.get_peak_memory() - before < 2**20, mx.get_peak_memory()
            x = mx.random.normal((1, 5, 3))
            y = interpolate(x, size=7, mode="linear")
            np.testing.assert_allclose(np.array(y), np.array(nn.Upsample(7 / 5, "linear")(x)), rtol=1e-5, atol=1e-6)
            print("USABLE")
            """
        )
    )
    lines = out.strip().splitlines()
    assert lines[-1] == "USABLE"
    nearest, linear, linear_2d, cubic_2d = lines[-5:-1]
    for line in (nearest, linear):
        assert line.startswith("MemoryError [upsample] resampling (1, 1, 1) to (1, 2147483647, 1)"), line
        assert "memory limit of 1.1 GB" in line and "mx.set_memory_limit" in line, line
    for line in (linear_2d, cubic_2d):
        assert line.startswith("ValueError [upsample] resampling spatial axis 1 from 1 to 2147483647"), line
        assert "2**31 - 1" in line, line


def test_memory_limit_rule(restore_threads):
    """The same rule at a small scale, in this process: a call whose tables, output and
    buffers exceed MLX's memory limit raises MemoryError at eval; under the limit it runs."""
    x = rand((1, 64, 64, 4), seed=1504)
    mx.eval(x)
    old = mx.set_memory_limit(2**16)  # the input's cotangent alone fills it
    try:
        y = upsample(x, 2, "linear", stream=mx.cpu)
        raises_with(MemoryError, lambda: mx.eval(y), "memory limit of 65.5 KB", "(1, 64, 64, 4) to (1, 128, 128, 4)")
        g = mx.grad(lambda a: upsample(a, 4, "cubic", stream=mx.cpu).sum())
        raises_with(MemoryError, lambda: mx.eval(g(x)), "backward")
    finally:
        mx.set_memory_limit(old)
    assert_close(upsample(x, 2, "linear"), nn.Upsample(2, "linear")(x))


@pytest.mark.parametrize("dtype", [mx.float64, mx.complex64], ids=str)
@pytest.mark.parametrize(
    "call",
    [
        lambda x: upsample(x, 2, "linear"),
        lambda x: upsample(x, 0.5, "cubic", antialias=True),
        lambda x: Upsample(2, "bicubic")(x),
        lambda x: interpolate(x, scale_factor=2, mode="bilinear"),
        lambda x: interpolate(x, size=(2, 3), mode="area"),
        lambda x: interpolate(x, scale_factor=0.5, mode="bicubic", antialias=True),
    ],
    ids=["up-linear", "up-aa-cubic", "Up-bicubic", "bilinear", "area", "aa-bicubic"],
)
def test_weighted_modes_name_the_unsupported_dtype(dtype, call):
    name = str(dtype).split(".")[-1]
    raises_with(ValueError, lambda: call(X2.astype(dtype)), "x has dtype", name, "float32")


def test_nearest_copies_float64_like_the_references():
    x = rand((2, 5, 3, 2), seed=1505).astype(mx.float64)
    ref = nn.Upsample(1.5, "nearest")(x)
    assert upsample(x, 1.5).dtype == mx.float64
    np.testing.assert_array_equal(np.array(upsample(x, 1.5)), np.array(ref))
    out = interpolate(x, size=(7, 4), mode="nearest-exact")
    np.testing.assert_array_equal(np.array(out), torch_forward(x, size=(7, 4), mode="nearest-exact"))


@pytest.mark.parametrize("stream", ["cpu", 3, object(), [mx.cpu]], ids=["str", "int", "object", "list"])
def test_bad_stream_is_a_type_error(stream):
    for fn in (
        lambda: upsample(X2, 2, stream=stream),
        lambda: interpolate(X2, scale_factor=2, stream=stream),
    ):
        msg = raises_with(TypeError, fn, "stream must be None, an mlx.core.Stream or an mlx.core.Device")
        assert "_ext" not in msg and "incompatible function arguments" not in msg


@pytest.mark.parametrize("stream", [mx.cpu, mx.Device(mx.cpu), mx.default_stream(mx.cpu)], ids=["type", "device", "stream"])
def test_cpu_stream_forms(stream):
    assert_close(upsample(X2, 1.5, "linear", stream=stream), nn.Upsample(1.5, "linear")(X2))


# ======================================================================================
# 8. align_corners (and the other flags) accept numpy bools and 0-d arrays
# ======================================================================================

_TRUE_FLAGS = [np.bool_(True), np.array(True), mx.array(True), np.int64(1), torch.tensor(True)]


@pytest.mark.parametrize("flag", _TRUE_FLAGS, ids=lambda f: type(f).__module__ + "." + type(f).__name__)
def test_numpy_and_array_bools_are_accepted(flag):
    x = rand((1, 5, 6, 2), seed=1506)
    ref = nn.Upsample(1.5, "linear", align_corners=True)(x)
    assert_close(upsample(x, 1.5, "linear", align_corners=flag), ref)
    assert_close(Upsample(1.5, "linear", align_corners=flag)(x), ref)
    kw = dict(scale_factor=1.5, mode="bilinear", align_corners=True)
    assert_close(interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=flag), torch_forward(x, **kw))
    aa = dict(scale_factor=0.5, mode="bilinear", antialias=True)
    assert_close(interpolate(x, scale_factor=0.5, mode="bilinear", antialias=flag), torch_forward(x, **aa))


def test_numpy_false_is_false():
    x = rand((1, 5, 6, 2), seed=1507)
    ref = nn.Upsample(1.5, "linear")(x)
    assert_close(upsample(x, 1.5, "linear", align_corners=np.bool_(False)), ref)
    assert_close(upsample(x, 1.5, "linear", antialias=mx.array(False)), ref)


@pytest.mark.parametrize(
    "flag", [np.float64(1.0), mx.array(0.5), np.array([True]), mx.array([True]), "True", 2, None],
    ids=["np.float64", "mx-float", "np-1d", "mx-1d", "str", "two", "None"],
)
def test_non_bool_flags_are_rejected(flag):
    for fn in (
        lambda: upsample(X2, 2, "linear", align_corners=flag),
        lambda: Upsample(2, "linear", align_corners=flag),
    ):
        raises_with(TypeError, fn, "align_corners must be a bool")
    if flag is not None:  # None is interpolate's default
        raises_with(TypeError, lambda: interpolate(X2, scale_factor=2, mode="bilinear", align_corners=flag), "align_corners")


def test_numpy_bool_align_corners_with_nearest_follows_each_reference():
    """upsample ignores align_corners with nearest, as mlx.nn.Upsample does; interpolate
    raises, as PyTorch does (see both docstrings)."""
    x = rand((1, 5, 6, 2), seed=1508)
    out = upsample(x, 1.5, "nearest", align_corners=np.bool_(True))
    np.testing.assert_array_equal(np.array(out), np.array(nn.Upsample(1.5, "nearest", align_corners=True)(x)))
    with pytest.raises(ValueError, match="align_corners"):
        torch.nn.functional.interpolate(torch.zeros(1, 2, 5, 6), scale_factor=1.5, mode="nearest", align_corners=True)
    raises_with(ValueError, lambda: interpolate(x, scale_factor=1.5, align_corners=np.bool_(True)), "align_corners")


# ======================================================================================
# 11. the GPU without Metal: a clear error when the op is built, not at mx.eval
# ======================================================================================


@pytest.mark.skipif(mx.metal.is_available(), reason="a Metal build runs on the GPU")
@pytest.mark.parametrize("stream", [mx.gpu, mx.Device(mx.gpu)], ids=["mx.gpu", "Device(gpu)"])
def test_gpu_stream_without_metal_is_refused_at_build(stream):
    for fn in (
        lambda: upsample(X2, 2, "linear", stream=stream),
        lambda: interpolate(X2, scale_factor=2, mode="bicubic", stream=stream),
    ):
        # Raised by the call itself: nothing is returned to evaluate.
        raises_with(ValueError, fn, "stream=Device(gpu, 0)", "Metal", "pass stream=mx.cpu")



# ======================================================================================
# 12. vmapped batches of 2**31 entries and more: shapes, not an overflowed int
# ======================================================================================


def test_vmap_batch_of_2_31_entries_has_its_shape():
    """vmap over 65536 entries of a (32769, 2, 1) signal: 2**31 + 65536 batch entries in
    all, more than an int holds. The vmapped axis stays an axis of its own, so forward,
    vjp and a shapeless-compiled graph infer their shapes; nothing is evaluated or
    allocated here (the CPU kernels count the batch in 64 bits, the Metal plan refuses
    more than 2**31 - 1 rows: test_metal_emulation)."""
    active = mx.get_active_memory()
    x = mx.zeros((65536, 32769, 2, 1))
    f = lambda z: upsample(z, 2, "linear")  # noqa: E731
    assert mx.vmap(f)(x).shape == (65536, 32769, 4, 1)
    g = lambda z: interpolate(z, size=3, mode="nearest")  # noqa: E731
    assert mx.vmap(g, in_axes=1)(mx.zeros((32769, 65536, 2, 1))).shape == (65536, 32769, 3, 1)
    vjp = lambda z, c: mx.vjp(f, [z], [c])[1][0]  # noqa: E731
    assert mx.vmap(vjp)(x, mx.zeros((65536, 32769, 4, 1))).shape == x.shape
    cf = mx.compile(mx.vmap(f), shapeless=True)
    assert_close(cf(X2[None]), nn.Upsample(2, "linear")(X2)[None])
    assert cf(x).shape == (65536, 32769, 4, 1)
    assert mx.get_active_memory() - active < 2**20


# ======================================================================================
# 13. tangents and cotangents of other dtypes than x: named as such
# ======================================================================================

_WEIGHTED = [
    lambda z: upsample(z, 2, "linear"),
    lambda z: upsample(z, 0.5, "cubic", antialias=True),
    lambda z: interpolate(z, scale_factor=2, mode="bicubic"),
    lambda z: interpolate(z, size=(2, 3), mode="area"),
]
_WEIGHTED_IDS = ["up-linear", "up-aa-cubic", "bicubic", "area"]


@pytest.mark.parametrize("dtype", [mx.float64, mx.complex64], ids=str)
@pytest.mark.parametrize("call", _WEIGHTED, ids=_WEIGHTED_IDS)
def test_weighted_jvp_names_the_tangent_and_its_dtype(dtype, call):
    """The weighted modes compute in float32, so a float64 (or complex) tangent cannot be
    computed exactly: a ValueError about the tangent, not about x, which is float32."""
    name = str(dtype).split(".")[-1]
    msg = raises_with(
        ValueError, lambda: mx.jvp(call, [X2], [X2.astype(dtype)]), "the tangent has dtype " + name,
        "x has float32",
    )
    assert "x has dtype" not in msg, msg


def test_nearest_jvp_keeps_a_float64_tangent_like_mlx():
    t = rand(X2.shape, seed=1506).astype(mx.float64)
    (out,) = mx.jvp(lambda z: upsample(z, 1.5), [X2], [t])[1]
    (ref,) = mx.jvp(lambda z: nn.Upsample(1.5)(z), [X2], [t])[1]
    assert out.dtype == ref.dtype == mx.float64
    np.testing.assert_array_equal(np.array(out), np.array(ref))


@pytest.mark.parametrize("dtype", [mx.uint8, mx.int32, mx.bool_], ids=str)
@pytest.mark.parametrize(
    "call",
    _WEIGHTED + [lambda z: interpolate(z, scale_factor=2, mode="bilinear")],
    ids=_WEIGHTED_IDS + ["bilinear"],
)
def test_integer_tangents_are_computed_in_float32(dtype, call):
    """An integer or bool tangent of a float x goes through the float op (as integer inputs
    do), not through interpolate's uint8 passes, which round and clamp."""
    t = (rand(X2.shape, seed=1507) * 100).astype(dtype)
    (out,) = mx.jvp(call, [X2], [t])[1]
    (ref,) = mx.jvp(call, [X2], [t.astype(mx.float32)])[1]
    assert out.dtype == mx.float32
    np.testing.assert_allclose(np.array(out), np.array(ref), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [mx.float64, mx.int32], ids=str)
def test_nearest_gradient_names_the_cotangent_and_its_dtype(dtype):
    """MLX hands the vjp a cotangent of the output's dtype, which for nearest is x's: the
    float32 kernels cannot sum a float64 or int32 gradient exactly, and say so."""
    name = str(dtype).split(".")[-1]
    x = (X2 * 10).astype(dtype)
    for f in (lambda z: upsample(z, 2), lambda z: interpolate(z, size=(3, 5), mode="nearest-exact")):
        raises_with(ValueError, lambda: mx.grad(lambda z: f(z).sum())(x), "the cotangent has dtype " + name)


# ======================================================================================
# 14. out of memory while allocating: MemoryError naming the call, the process lives on
# ======================================================================================


def test_out_of_memory_is_a_memory_error():
    """Under an address-space limit the system refuses the memory MLX's limit allows:
    interpolate's uint8 passes (their intermediate arrays, then their result) and a nearest
    result raise MemoryError naming the call, before any work starts, and the process goes
    on. In a child process, with the limit a little above what it uses."""
    out = assert_ran(
        run_python(
            """
            import resource
            import mlx.core as mx, numpy as np
            from mlx_upsample import interpolate, upsample
            x = mx.full((1, 4096, 4096, 4), 7, dtype=mx.uint8)
            small = mx.full((1, 8, 8, 4), 7, dtype=mx.uint8)
            mx.eval(x, interpolate(small, size=(16, 16), mode="bilinear"))  # threads started
            with open("/proc/self/status") as f:
                vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
            for extra, call in (
                (100, lambda: interpolate(x, size=(8192, 8192), mode="bilinear")),
                (200, lambda: interpolate(x, size=(8192, 8192), mode="bilinear")),
                (100, lambda: upsample(x, 2)),
            ):
                resource.setrlimit(resource.RLIMIT_AS, (vm + extra * 2**20, resource.RLIM_INFINITY))
                try:
                    mx.eval(call())
                    print("NO ERROR")
                except MemoryError as e:
                    print("MemoryError", e)
                resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
            y = interpolate(small, size=(16, 16), mode="bilinear")
            assert (np.array(y) == 7).all()
            print("USABLE")
            """
        )
    )
    lines = out.strip().splitlines()
    assert lines[-1] == "USABLE", out
    call = "MemoryError [upsample] resampling (1, 4096, 4096, 4) to (1, 8192, 8192, 4) "
    passes, result, nearest = lines[-4:-1]
    assert passes.startswith(call + "(pytorch, linear"), passes
    assert "uint8) on the CPU: out of memory for its intermediate passes" in passes, passes
    assert result.startswith(call + "(pytorch, linear"), result
    assert "uint8) on the CPU: out of memory for its result (268.4 MB)" in result, result
    assert nearest.startswith(call + "(mlx, nearest"), nearest
    assert nearest.endswith("on the CPU: out of memory for its result (268.4 MB)"), nearest
