"""Builds the Metal emulator (kernels/*.metal compiled as C++ against the shim
in shim/) with the system C++ compiler and runs kernels through it.

`Emulator.run` takes the same operator parameters as the C++ op, asks the
shared launch plan (csrc/metal/launch_plan.cpp) which kernel eval_gpu would
launch and on which grid, and executes every thread of that grid.
"""

import ctypes
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence

import mlx.core as mx
import numpy as np
from mlx_upsample import _ext

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SOURCES = [
    HERE / "emulator.cpp",
    HERE / "kernels.cpp",
    ROOT / "csrc" / "metal" / "launch_plan.cpp",
    ROOT / "csrc" / "metal" / "tap_tables.cpp",
    ROOT / "csrc" / "gather_table.cpp",
    ROOT / "csrc" / "memory_check.cpp",
    ROOT / "csrc" / "upsample_params.cpp",
]
DEPENDENCIES = SOURCES + [
    HERE / "registry.h",
    HERE / "emulator_api.h",
    HERE / "grid_registry.h",
    HERE / "shim" / "metal_stdlib",
    ROOT / "csrc" / "metal" / "launch_plan.h",
    ROOT / "csrc" / "metal" / "tap_tables.h",
    ROOT / "csrc" / "gather_table.h",
    ROOT / "csrc" / "memory_check.h",
    ROOT / "csrc" / "upsample_params.h",
    *sorted((ROOT / "kernels").iterdir()),
]

# Raw storage for the bytes handed to the emulator: bfloat16 has no numpy type.
_STORAGE = {1: mx.uint8, 2: mx.uint16, 4: mx.uint32, 8: mx.uint64}


# How the emulator is compiled (MLX_UPSAMPLE_EMULATOR picks one; .ci/run runs
# the emulation tests under each):
#  default   g++, FMA contraction off, like the extension's own build.
#  contract  clang with contraction on and FMA instructions, as the Metal
#            compiler may fuse `a * b + c`: the index math must still round
#            like the CPU path, which only the header's pragma guarantees.
#  asan      clang with AddressSanitizer and UndefinedBehaviorSanitizer: a
#            kernel that reads past its input (whose buffer ends where the
#            data does) or loads a vector from an address that is not a
#            multiple of its size (the shim's vec is aligned like Metal's)
#            stops the run with a report. Python must start with the ASan
#            runtime preloaded (asan_environment()).
VARIANTS = {
    "default": (["g++", "c++"], ["-O1", "-ffp-contract=off"]),
    "contract": (["clang++-19", "clang++"], ["-O1", "-ffp-contract=on", "-mfma"]),
    "asan": (
        ["clang++-19", "clang++"],
        ["-O0", "-g", "-ffp-contract=off", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-shared-libsan"],
    ),
}


def variant() -> str:
    name = os.environ.get("MLX_UPSAMPLE_EMULATOR", "default")
    if name not in VARIANTS:
        raise ValueError(
            f"MLX_UPSAMPLE_EMULATOR={name!r}; expected one of {', '.join(VARIANTS)}"
        )
    return name


def compiler(name: str) -> Optional[str]:
    """The first compiler of the variant that is installed (CXX overrides the
    default variant's), or None."""
    candidates, _ = VARIANTS[name]
    if name == "default" and os.environ.get("CXX"):
        candidates = [os.environ["CXX"]]
    return next((c for c in map(shutil.which, candidates) if c), None)


def asan_environment(cxx: str) -> dict:
    """The variables a Python process must start with to load the asan
    emulator: the sanitizer runtime `cxx` links against, first."""
    runtime = subprocess.run(
        [cxx, "-print-file-name=libclang_rt.asan-x86_64.so"], capture_output=True, text=True
    ).stdout.strip()
    return {"LD_PRELOAD": runtime, "ASAN_OPTIONS": "detect_leaks=0"}


def build(
    out_dir: Path, name: Optional[str] = None, sources: Sequence[Path] = SOURCES,
    dependencies: Sequence[Path] = DEPENDENCIES, stem: str = "libupsample_metal_emulator",
) -> Path:
    """Compiles the emulator variant (of `sources`, by default the upsample
    kernels') once per source content; returns the library."""
    name = name or variant()
    cxx = compiler(name)
    if cxx is None:
        raise RuntimeError(
            f"the {name} Metal emulator needs one of {VARIANTS[name][0]} (Debian: "
            "apt-get install clang-19 libclang-rt-19-dev)"
        )
    if name == "asan":
        wanted = asan_environment(cxx)
        if wanted["LD_PRELOAD"] not in os.environ.get("LD_PRELOAD", ""):
            raise RuntimeError(
                "the asan Metal emulator loads only into a Python started with "
                + " ".join(f"{k}={v}" for k, v in wanted.items())
            )
    flags = VARIANTS[name][1]
    digest = hashlib.sha256(" ".join([cxx, *flags]).encode())
    for path in dependencies:
        digest.update(path.read_bytes())
    lib = out_dir / f"{stem}_{name}_{digest.hexdigest()[:16]}.so"
    if lib.exists():
        return lib
    cmd = [
        cxx, "-std=c++17", "-shared", "-fPIC", *flags,
        f"-I{ROOT / 'kernels'}", f"-I{ROOT / 'csrc'}", f"-I{HERE}", f"-I{HERE / 'shim'}",
        *map(str, sources), "-o", str(lib),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building the {name} Metal emulator failed:\n{done.stderr}")
    return lib


class EmulatorError(RuntimeError):
    pass


def enum_values(family: str, method: str) -> tuple:
    """The values of the bound enums _ext.Family and _ext.Mode that the tests'
    names stand for ("pytorch", "antialias-cubic": Family.pytorch,
    Mode.antialias_cubic), as the emulator's C interface takes them."""
    return _ext.Family[family].value, _ext.Mode[method.replace("-", "_")].value


class Emulator:
    def __init__(self, lib_path: Path, name: str):
        self.name = name
        lib = ctypes.CDLL(str(lib_path))
        lib.emu_kernel_name.restype = ctypes.c_char_p
        lib.emu_executed_name.restype = ctypes.c_char_p
        self._lib = lib
        self._memory_limit = float("inf")

    def kernels(self) -> list:
        """Every kernel instantiated in kernels/*.metal."""
        return [self._lib.emu_kernel_name(i).decode() for i in range(self._lib.emu_kernel_count())]

    def set_memory_limit(self, limit: float) -> float:
        """Sets the memory limit, in bytes, that the launch plan refuses calls
        beyond (MLX's, mx.set_memory_limit, in the extension; none at first);
        returns the previous one."""
        previous, self._memory_limit = self._memory_limit, limit
        self._lib.emu_set_memory_limit(ctypes.c_double(limit))
        return previous

    def executed(self) -> list:
        return [self._lib.emu_executed_name(i).decode() for i in range(self._lib.emu_executed_count())]

    def run(
        self,
        src: mx.array,
        dst_shape: Sequence[int],
        *,
        family: str,
        method: str,
        align_corners: bool = False,
        recompute_scale: bool = False,
        scales: Optional[Sequence[float]] = None,
        sizes: Optional[Sequence[int]] = None,
        backward: bool = False,
        src_offset: int = 0,
        max_threads_per_group: int = 1024,
        passes: int = 0,
        view: Optional[tuple] = None,
    ):
        """Returns (result as an mx.array of src's dtype, kernel name).

        The kernel reads `src` from a page-aligned buffer of its own, placed
        `src_offset` bytes in (as a view that starts inside its buffer) with
        nothing after it; `max_threads_per_group` is the pipeline's limit;
        `passes` 1 or 2 forces one launch or two through a temporary (0: the
        plan's choice). The kernel name joins a plan's launches with '+'. `src`
        is (*batch, *spatial, C): the spatial dims are as many as `scales` or
        `sizes` has entries, every axis before them is a batch axis (one when
        neither is given).

        `view` = (memory, shape, strides, start): the kernels read, instead of
        src's values packed, the view of `shape` and `strides` (elements) that
        starts at element `start` of `memory` (any mx.array of src's dtype,
        read as its packed values: the buffer of a strided array), as eval_gpu
        hands a strided source over (_ext._strided_operand); `src` then only
        gives the dtype. The result is row-contiguous."""
        given = scales if scales is not None else sizes
        elem = src.dtype.size
        memory, shape, strides, start = view if view is not None else (src, src.shape, None, 0)
        dims = len(given) if given is not None else len(shape) - 2
        scales = list(scales) if scales is not None else [0.0] * dims
        sizes = list(sizes) if sizes is not None else [0] * dims
        src_np = np.ascontiguousarray(np.array(memory.view(_STORAGE[elem]))).reshape(-1)
        dst_np = np.zeros(tuple(dst_shape), dtype=src_np.dtype)
        longs = lambda v: (ctypes.c_longlong * len(v))(*v) if v is not None else None  # noqa: E731
        kernel = ctypes.create_string_buffer(256)
        error = ctypes.create_string_buffer(256)
        ints = lambda v: (ctypes.c_int * len(v))(*v)  # noqa: E731
        status = self._lib.emu_run(
            *enum_values(family, method), int(align_corners), int(recompute_scale),
            (ctypes.c_double * dims)(*scales), ints(sizes), dims, int(backward),
            len(shape), ints(list(shape)), longs(strides), ints(list(dst_shape)),
            str(src.dtype).split(".")[-1].encode(), elem,
            ctypes.c_longlong(src_offset + start * elem), ctypes.c_longlong(src_np.size),
            ctypes.c_longlong(start), ctypes.c_uint(max_threads_per_group), passes,
            src_np.ctypes.data_as(ctypes.c_void_p), dst_np.ctypes.data_as(ctypes.c_void_p),
            kernel, error, 256,
        )
        if status != 0:
            raise EmulatorError(error.value.decode())
        return mx.array(dst_np).view(src.dtype), kernel.value.decode()

    def lowest_taps(
        self, *, family: str, method: str, in_size: int, out_size: int,
        scale: float = 0.0, size: int = 0, align_corners: bool = False,
    ) -> np.ndarray:
        """The smallest input index each output reads along one axis, from the
        index math compiled like the kernels (a scale, or a size)."""
        taps = np.zeros(out_size, dtype=np.int32)
        error = ctypes.create_string_buffer(256)
        status = self._lib.emu_lowest_taps(
            *enum_values(family, method), int(align_corners), ctypes.c_double(scale),
            size, in_size, out_size, taps.ctypes.data_as(ctypes.c_void_p), error, 256,
        )
        if status != 0:
            raise EmulatorError(error.value.decode())
        return taps

    def plan(
        self, src_shape: Sequence[int], dst_shape: Sequence[int], *, family: str,
        method: str, scales: Sequence[float], backward: bool = False,
        dtype: str = "float32", elem_size: int = 4, max_threads_per_group: int = 1024,
        src_strides: Optional[Sequence[int]] = None,
    ) -> list:
        """The launches eval_gpu would plan, not run: a list of
        (kernel, grid, group), grid and group as (x, y, z). The shapes are
        (*batch, *spatial, C) with as many spatial dims as `scales` has; the
        source has `src_strides` (elements; None: row-contiguous)."""
        dims = len(scales)
        # Both hold the capacity emu_plan is told (1024).
        text = ctypes.create_string_buffer(1024)
        error = ctypes.create_string_buffer(1024)
        ints = lambda v: (ctypes.c_int * len(v))(*v)  # noqa: E731
        status = self._lib.emu_plan(
            *enum_values(family, method), (ctypes.c_double * dims)(*scales), dims,
            int(backward), len(src_shape), ints(list(src_shape)),
            (ctypes.c_longlong * len(src_strides))(*src_strides) if src_strides else None,
            ints(list(dst_shape)), dtype.encode(),
            elem_size, ctypes.c_uint(max_threads_per_group), text, error, 1024,
        )
        if status != 0:
            raise EmulatorError(error.value.decode())
        launches = []  # none: the result is the source (every axis the identity)
        for part in filter(None, text.value.decode().split(";")):
            name, *numbers = part.split()
            launches.append((name, tuple(map(int, numbers[:3])), tuple(map(int, numbers[3:]))))
        return launches

    def divide(self, numerators: np.ndarray, divisor: int) -> np.ndarray:
        """numerators // divisor through the kernels' magic-number division."""
        n = np.ascontiguousarray(numerators, dtype=np.uint32)
        q = np.zeros_like(n)
        error = ctypes.create_string_buffer(256)
        status = self._lib.emu_divide(
            n.ctypes.data_as(ctypes.c_void_p), len(n), ctypes.c_uint(divisor),
            q.ctypes.data_as(ctypes.c_void_p), error, 256,
        )
        if status != 0:
            raise EmulatorError(error.value.decode())
        return q
