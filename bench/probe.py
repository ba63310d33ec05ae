"""One call of an MLX contender in a fresh process: how much its peak resident set grows.

MLX's allocator does not see the kernels' own heap memory (the CPU path's gather tables
and buffers), so measure.py runs each MLX contender once more through this script, in a
process of its own without the benchmark's heap reuse:

    python bench/probe.py '{"impl": "ours", "pass": "fwd", "shape": [8, 64, 64, 64],
        "scale": 2.0, "dtype": "float32", "mode": "linear", "antialias": false,
        "device": "cpu"}'

The input and cotangent are made first, and the same call on a small input warms up code
paths and thread pools; then it prints {"growth": bytes}, the growth over the call of
VmHWM after resetting it through /proc/self/clear_refs on Linux, of ru_maxrss elsewhere
(a lower bound).
"""

import ctypes
import json
import resource
import sys

import mlx.core as mx
import mlx.nn as nn

import mlx_upsample


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024


def peak():
    if sys.platform.startswith("linux"):
        return status("VmHWM:")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS


def main(spec):
    mx.set_default_device(mx.gpu if spec["device"] == "gpu" else mx.cpu)
    base, aa = spec["mode"], spec["antialias"]
    if spec["impl"] == "ours":
        def fn(a):
            return mlx_upsample.upsample(a, spec["scale"], mode=base, antialias=aa)
    else:
        fn = nn.Upsample(scale_factor=spec["scale"], mode=base, antialias=aa)
    dtype = getattr(mx, spec["dtype"])

    def prepare(shape):
        x = mx.random.normal(shape).astype(dtype)
        cot = mx.random.normal(fn(x).shape).astype(dtype)
        mx.eval(x, cot)
        if spec["pass"] == "fwd":
            return lambda: fn(x)
        return lambda: mx.vjp(fn, [x], [cot])[1][0]

    small = [spec["shape"][0]] + [8] * (len(spec["shape"]) - 2) + [spec["shape"][-1]]
    mx.eval(prepare(small)())
    run = prepare(spec["shape"])
    # Free memory goes back to the system first, so that what the call allocates shows.
    mx.clear_cache()
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        before = status("VmRSS:")
    else:
        before = peak()
    mx.eval(run())
    print(json.dumps({"growth": peak() - before}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
