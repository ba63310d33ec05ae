"""Resident memory of one call: its result and little else.

MLX's allocator only sees the output; the CPU path's own gather tables are ordinary heap
memory. A whole table for a 1-D resampling of a long signal would be 4 bytes of index per
output for nearest (plus a copy) and 32 bytes of indices and weights for cubic, i.e.
+4 GiB of resident memory for a 0.25 GiB uint8 output, +2.5 GiB for a 0.25 GiB bicubic
one: such tables are built in pieces, and these tests hold the growth to the result.
Each case runs in a fresh process that measures the growth of its peak resident set (Linux:
VmHWM after resetting it through /proc/self/clear_refs) over the one call.
"""

import json
import subprocess
import sys

import pytest

PROBE = r"""
import json, sys
import mlx.core as mx
import mlx_upsample

spec = json.loads(sys.argv[1])
mx.set_default_device(mx.cpu)
op = getattr(mlx_upsample, spec["fn"])
dtype = getattr(mx, spec["dtype"])

def call(x):
    if not spec["backward"]:
        return op(x, **spec["kw"])
    out_shape = op(x, **spec["kw"]).shape  # lazy: never evaluated
    cot = mx.ones(out_shape, dtype)
    mx.eval(cot)
    return lambda: mx.vjp(lambda a: op(a, **spec["kw"]), [x], [cot])[1][0]

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

# The same call on a small input first: code paths, thread pool and MLX's
# own one-time state are in place before the measurement.
for shape in (spec["warmup_shape"], spec["shape"]):
    x = mx.zeros(shape, dtype)
    mx.eval(x)
    run = call(x)
    run = run if callable(run) else (lambda y=run: y)
    if shape is spec["shape"]:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        before = status("VmRSS:")
    y = run()
    mx.eval(y)
print(json.dumps({"growth": status("VmHWM:") - before, "result": y.nbytes}))
"""

# Slack over the result: the kernels' per-thread pieces of table and buffers
# (measured: 0.05-0.4 MiB here).
SLACK = 4 << 20


def peak_growth(**spec):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(spec)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resets the peak RSS through /proc")
@pytest.mark.parametrize(
    "fn,dtype,kw,backward",
    [
        ("interpolate", "uint8", dict(scale_factor=2, mode="nearest"), False),
        ("upsample", "float32", dict(scale_factor=2, mode="cubic"), False),
        ("interpolate", "float32", dict(scale_factor=0.5, mode="linear", antialias=True), False),
        ("interpolate", "float32", dict(scale_factor=2, mode="linear"), True),
    ],
    ids=["nearest-uint8", "cubic", "antialias", "linear-backward"],
)
def test_long_1d_call_grows_resident_memory_by_its_result(fn, dtype, kw, backward, device):
    if device != "cpu":
        pytest.skip("measures the CPU path (the probe runs on the CPU)")
    # Outputs of 32 MiB, to which whole tables would add 64-256 MiB.
    n = (2**24 if dtype == "uint8" else 2**22) * (4 if kw["scale_factor"] < 1 else 1)
    r = peak_growth(
        fn=fn, dtype=dtype, kw=kw, backward=backward, shape=[1, n, 1], warmup_shape=[1, 64, 1]
    )
    assert r["growth"] <= r["result"] + SLACK, (
        f"peak RSS grew by {r['growth'] / 2**20:.1f} MiB for a {r['result'] / 2**20:.1f} MiB result"
    )
