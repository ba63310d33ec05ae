"""Fixtures and hooks of the suite: every test runs on every device MLX has here (CPU;
CPU and GPU on a Mac), with MLX's random seed reset; the run ends by saying whether the
GPU was tested and, after tests/test_metal_emulation.py, how many Metal kernels ran.

The helpers the tests import are modules beside this file (pyproject.toml puts tests/
on the path): helpers.py (conversions, seeded inputs, assertions), references.py
(PyTorch and mlx.nn.Upsample references) and params.py (shared parametrisations).

PyTorch runs its default CPU kernels (ATEN_CPU_CAPABILITY=default, below), whatever the CPU.
"""

import os

# PyTorch's AVX2 and AVX-512 CPU kernels fuse multiply-adds such as s * (i + 0.5) - 0.5
# (one rounding), its default kernels round each operation, as mlx-upsample does on every
# backend; which set runs would otherwise depend on the CPU. Torch reads the variable when
# it is first imported, so it is set before that, here; child processes inherit it.
os.environ["ATEN_CPU_CAPABILITY"] = "default"

import mlx.core as mx  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
    raise RuntimeError(
        "torch was imported before tests/conftest.py set ATEN_CPU_CAPABILITY=default: it runs "
        f"its {torch.backends.cpu.get_cpu_capability()} kernels"
    )


@pytest.fixture(autouse=True)
def _seed_mlx():
    mx.random.seed(0)
    yield


# --------------------------------------------------------------------------------------
# devices: the whole suite runs on every device MLX has here (CPU; CPU and GPU on a Mac)
# --------------------------------------------------------------------------------------

DEVICES = ["cpu"] + (["gpu"] if mx.metal.is_available() else [])


@pytest.fixture(autouse=True, params=DEVICES)
def device(request):
    previous = mx.default_device()
    mx.set_default_device(mx.gpu if request.param == "gpu" else mx.cpu)
    yield request.param
    mx.set_default_device(previous)


_GPU_TESTS_PASSED = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Counts the tests that passed on the GPU (`device` parameter "gpu")."""
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    if report.when == "call" and report.passed and callspec is not None:
        if callspec.params.get("device") == "gpu":
            _GPU_TESTS_PASSED.append(item.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """Says whether the GPU was tested: where MLX has Metal, a run in which no
    GPU test passed fails (a broken GPU path must not pass as a CPU-only run);
    elsewhere the run says that it tested the CPU only."""
    if not mx.metal.is_available():
        message = "GPU tests: none, Metal is not available here (the CPU path was tested)"
    else:
        message = f"GPU tests: {len(_GPU_TESTS_PASSED)} passed on the Metal GPU"
        if not _GPU_TESTS_PASSED and session.testscollected and exitstatus == 0:
            message += ": none passed, failing the run"
            session.exitstatus = 1
    session.config._gpu_tests_message = message


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    message = getattr(config, "_gpu_tests_message", None)
    if message:
        terminalreporter.write_line(message)


def pytest_unconfigure(config):
    """Ends the run with the Metal emulation coverage line (tests/test_metal_emulation.py)."""
    emulator = getattr(config, "_metal_emulator", None)
    if emulator is not None:
        print(
            f"metal kernels executed: {len(emulator.executed())} of "
            f"{len(emulator.kernels())} (emulator: {emulator.name})"
        )
