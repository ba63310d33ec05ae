"""Builds the grid_sample Metal emulator (kernels/grid_sample.metal compiled as
C++ against the shim in shim/) and runs calls through it.

`GridEmulator.forward/tangent/backward` ask the shared launch plan
(csrc/metal/grid_launch_plan.cpp) which kernels eval_gpu would launch, on
which grids and with which buffers, and execute every thread of each, in
grid order or shuffled (`order_seed`).
"""

import ctypes
from pathlib import Path
from typing import Optional, Sequence

import mlx.core as mx
import numpy as np
from mlx_upsample import _ext

from .harness import HERE, ROOT, _STORAGE, EmulatorError, build, variant

SOURCES = [
    HERE / "grid_emulator.cpp",
    HERE / "grid_kernels.cpp",
    ROOT / "csrc" / "metal" / "grid_launch_plan.cpp",
    ROOT / "csrc" / "metal" / "launch_plan.cpp",
    ROOT / "csrc" / "metal" / "tap_tables.cpp",
    ROOT / "csrc" / "gather_table.cpp",
    ROOT / "csrc" / "grid_sample_params.cpp",
    ROOT / "csrc" / "memory_check.cpp",
    ROOT / "csrc" / "upsample_params.cpp",
]
DEPENDENCIES = SOURCES + [
    HERE / "grid_registry.h",
    HERE / "grid_emulator_api.h",
    HERE / "registry.h",
    HERE / "shim" / "metal_stdlib",
    ROOT / "csrc" / "metal" / "grid_launch_plan.h",
    ROOT / "csrc" / "metal" / "launch_plan.h",
    ROOT / "csrc" / "metal" / "tap_tables.h",
    ROOT / "csrc" / "gather_table.h",
    ROOT / "csrc" / "grid_sample_params.h",
    ROOT / "csrc" / "memory_check.h",
    ROOT / "csrc" / "upsample_params.h",
    *sorted((ROOT / "kernels").iterdir()),
]

# torch's names of the modes, as upsample::Mode values (the bound _ext.Mode).
MODES = {"nearest": _ext.Mode.nearest.value, "bilinear": _ext.Mode.linear.value,
         "bicubic": _ext.Mode.cubic.value}
PADDINGS = {name: _ext.Padding[name].value for name in ("zeros", "border", "reflection")}
PASSES = {"forward": 0, "tangent": 1, "backward": 2}


def build_grid(out_dir: Path, name: Optional[str] = None) -> Path:
    return build(out_dir, name, SOURCES, DEPENDENCIES, "libgrid_sample_metal_emulator")


def _raw(a: mx.array) -> np.ndarray:
    return np.ascontiguousarray(np.array(a.view(_STORAGE[a.dtype.size])))


class GridEmulator:
    def __init__(self, lib_path: Path, name: str):
        self.name = name
        lib = ctypes.CDLL(str(lib_path))
        lib.emu_grid_kernel_name.restype = ctypes.c_char_p
        lib.emu_grid_executed_name.restype = ctypes.c_char_p
        self._lib = lib

    def kernels(self) -> list:
        """Every kernel of kernels/grid_sample.metal."""
        lib = self._lib
        return [lib.emu_grid_kernel_name(i).decode() for i in range(lib.emu_grid_kernel_count())]

    def executed(self) -> list:
        lib = self._lib
        return [lib.emu_grid_executed_name(i).decode()
                for i in range(lib.emu_grid_executed_count())]

    def set_memory_limit(self, limit: float) -> None:
        self._lib.emu_grid_set_memory_limit(ctypes.c_double(limit))

    def _run(self, pass_name, x, grid, *, mode, padding, align_corners, tangent=None,
             cotangent=None, dx=True, dgrid=True, x_offset=0, cotangent_offset=0,
             max_threads_per_group=1024, order_seed=0):
        points = tuple(grid.shape[:-1])
        y_shape = (*points, x.shape[-1])
        x_np = _raw(x)
        grid_np = np.ascontiguousarray(np.array(grid, dtype=np.float32))
        tangent_np = None if tangent is None else np.ascontiguousarray(
            np.array(tangent, dtype=np.float32))
        cot_np = None if cotangent is None else _raw(cotangent)
        out_np = np.zeros(y_shape, dtype=x_np.dtype)
        dx_np = np.zeros(x.shape, dtype=x_np.dtype)
        dgrid_np = np.zeros(grid.shape, dtype=np.float32)
        kernel = ctypes.create_string_buffer(1024)
        error = ctypes.create_string_buffer(1024)
        ints = lambda v: (ctypes.c_int * len(v))(*v)  # noqa: E731
        ptr = lambda a: None if a is None else a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
        status = self._lib.emu_grid_run(
            PASSES[pass_name], MODES[mode], PADDINGS[padding], int(align_corners), int(dx),
            int(dgrid), x.ndim, ints(list(x.shape)), ints(list(grid.shape)),
            str(x.dtype).split(".")[-1].encode(), x.dtype.size, ctypes.c_longlong(x_offset),
            ctypes.c_longlong(cotangent_offset), ctypes.c_uint(max_threads_per_group),
            ctypes.c_ulonglong(order_seed), ptr(x_np), ptr(grid_np), ptr(tangent_np),
            ptr(cot_np), ptr(out_np), ptr(dx_np), ptr(dgrid_np), kernel, error, 1024,
        )
        if status != 0:
            raise EmulatorError(error.value.decode())
        view = lambda a: mx.array(a).view(x.dtype)  # noqa: E731
        return view(out_np), view(dx_np), mx.array(dgrid_np), kernel.value.decode()

    def forward(self, x, grid, **kw):
        """(out, kernel names joined by '+')."""
        out, _, _, names = self._run("forward", x, grid, **kw)
        return out, names

    def tangent(self, x, grid, tangent, **kw):
        out, _, _, names = self._run("tangent", x, grid, tangent=tangent, **kw)
        return out, names

    def backward(self, x, grid, cotangent, **kw):
        """(dx, dgrid, kernel names joined by '+')."""
        _, dx, dgrid, names = self._run("backward", x, grid, cotangent=cotangent, **kw)
        return dx, dgrid, names

    def plan(self, pass_name: str, x_shape: Sequence[int], grid_shape: Sequence[int], *,
             mode: str, padding: str = "zeros", dx: bool = True, dgrid: bool = True,
             dtype: str = "float32", elem_size: int = 4, max_threads_per_group: int = 1024):
        """The launches eval_gpu would plan, not run: ([(kernel, grid, group)],
        temporary bytes)."""
        text = ctypes.create_string_buffer(8192)
        error = ctypes.create_string_buffer(8192)
        ints = lambda v: (ctypes.c_int * len(v))(*v)  # noqa: E731
        status = self._lib.emu_grid_plan(
            PASSES[pass_name], MODES[mode], PADDINGS[padding], int(dx), int(dgrid),
            len(x_shape), ints(list(x_shape)), ints(list(grid_shape)), dtype.encode(),
            elem_size, ctypes.c_uint(max_threads_per_group), text, error, 8192,
        )
        if status != 0:
            raise EmulatorError(error.value.decode())
        launches_text, temporary = text.value.decode().split("|")
        launches = []
        for part in filter(None, launches_text.split(";")):
            name, *numbers = part.split()
            launches.append((name, tuple(map(int, numbers[:3])), tuple(map(int, numbers[3:]))))
        return launches, float(temporary)


def grid_emulator(out_dir: Path) -> GridEmulator:
    return GridEmulator(build_grid(out_dir), variant())
