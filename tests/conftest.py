"""Fixtures and hooks of the suite: every test runs on every device MLX has here (CPU;
CPU and GPU on a Mac), with MLX's random seed reset; the run ends by saying whether the
GPU was tested and, after tests/test_metal_emulation.py, how many Metal kernels ran.

The helpers the tests import are modules beside this file (pyproject.toml puts tests/
on the path): helpers.py (conversions, seeded inputs, assertions), references.py
(PyTorch and mlx.nn.Upsample references) and params.py (shared parametrisations).
"""

import mlx.core as mx
import pytest


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
