"""Checks an installed mlx_upsample the way a user gets it. cibuildwheel's test
step runs it against each wheel it built (pyproject.toml's test-command, with
the wheel's path), .github/workflows/macos-metal.yml after `pip install .`:

* mlx_upsample.metallib is installed next to the extension (on macOS, where
  the build compiles the Metal kernels);
* on macOS, the process holds exactly one libmlx.dylib, the one in the mlx
  package that the extension's rpath @loader_path/../mlx/lib points at (a
  second MLX, e.g. one copied into our wheel, would have its own allocator,
  streams and nanobind types);
* given the wheel: it carries the extension and the metallib, no libmlx.dylib
  and no .dylibs/ directory, and its tags name this interpreter (cpXY-cpXY),
  not abi3.

    python tests/installed_package.py [WHEEL]

Prints one line per fact; exits 1 on the first failure. Not a pytest module
(pytest collects test_*.py only): it checks the installation, not the code.
"""

import ctypes
import sys
import zipfile
from pathlib import Path

import mlx.core as mx

import mlx_upsample
from mlx_upsample import _ext

PY_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


def fail(message: str) -> None:
    print(f"installed package: FAILED: {message}")
    sys.exit(1)


def loaded_images() -> list:
    """The paths of every Mach-O image dyld has loaded into this process."""
    libc = ctypes.CDLL("/usr/lib/libSystem.B.dylib")
    libc._dyld_image_count.restype = ctypes.c_uint32
    libc._dyld_get_image_name.restype = ctypes.c_char_p
    libc._dyld_get_image_name.argtypes = [ctypes.c_uint32]
    return [libc._dyld_get_image_name(i).decode() for i in range(libc._dyld_image_count())]


def check_installed() -> None:
    ext = Path(_ext.__file__).resolve()
    package = Path(mlx_upsample.__file__).resolve().parent
    print(f"installed package: mlx_upsample {getattr(mlx_upsample, '__version__', '?')} "
          f"in {package}, extension {ext.name}, MLX {mx.__version__}")
    if sys.platform != "darwin":
        print("installed package: not macOS: no metallib or dyld checks")
        return
    metallib = package / "mlx_upsample.metallib"
    if not metallib.is_file():
        fail(f"{metallib} is missing: the Metal kernels cannot load")
    print(f"installed package: {metallib.name} next to the extension "
          f"({metallib.stat().st_size} bytes)")
    mlx_lib = (Path(mx.__file__).resolve().parent / "lib").resolve()
    mlx_dylibs = [Path(p).resolve() for p in loaded_images() if Path(p).name == "libmlx.dylib"]
    if mlx_dylibs != [mlx_lib / "libmlx.dylib"]:
        fail(f"libmlx.dylib loaded from {[str(p) for p in mlx_dylibs]}, expected exactly "
             f"{mlx_lib / 'libmlx.dylib'} (the mlx package's)")
    print(f"installed package: one libmlx.dylib in the process, the mlx package's "
          f"({mlx_lib / 'libmlx.dylib'})")


def check_wheel(wheel: Path) -> None:
    parts = wheel.name[:-len(".whl")].split("-")
    if len(parts) != 5:
        fail(f"{wheel.name} is not a name-version-python-abi-platform wheel name")
    py_tag, abi_tag, platform_tag = parts[2:]
    if (py_tag, abi_tag) != (PY_TAG, PY_TAG):
        fail(f"{wheel.name} is tagged {py_tag}-{abi_tag}, expected {PY_TAG}-{PY_TAG} "
             f"(the extension is built per CPython version, not for the limited API)")
    names = zipfile.ZipFile(wheel).namelist()
    exts = [n for n in names if n.startswith("mlx_upsample/_ext.") and n.endswith(".so")]
    expected_ext = f"mlx_upsample/_ext.cpython-{PY_TAG[2:]}-darwin.so"
    if sys.platform == "darwin" and exts != [expected_ext]:
        fail(f"{wheel.name} holds the extension(s) {exts}, expected {expected_ext}")
    if sys.platform == "darwin" and "mlx_upsample/mlx_upsample.metallib" not in names:
        fail(f"{wheel.name} has no mlx_upsample/mlx_upsample.metallib")
    vendored = [n for n in names if Path(n).name.startswith("libmlx") or "/.dylibs/" in f"/{n}"]
    if vendored:
        fail(f"{wheel.name} vendors {vendored}: libmlx.dylib must come from the mlx package")
    metallib = "the metallib" if sys.platform == "darwin" else "(not macOS: no metallib)"
    print(f"installed package: {wheel.name} ({platform_tag}) holds {', '.join(exts)} and "
          f"{metallib}, no libmlx.dylib, no .dylibs/")


if __name__ == "__main__":
    check_installed()
    if len(sys.argv) > 1:
        check_wheel(Path(sys.argv[1]))
