"""Host code against the real macOS MLX, on Linux.

Compiles every source the Mac build compiles (UPSAMPLE_SOURCES of
CMakeLists.txt with MLX_BUILD_METAL, so with -D_METAL_) the way CMake does on
a Mac: Debian's clang for arm64-apple-macos<deployment target>, gnu++20,
libc++, MLX's and metal-cpp's headers from the mlx-metal wheel for macOS,
Darwin's own C library headers (the macOS SDK's, as the ziglang wheel ships
them: int64_t is long long there, which the mangled names depend on) and
stubs for the two framework headers metal-cpp includes (darwin_frameworks/).
The bindings compile against nanobind's headers and this interpreter's
Python headers (Linux's pyconfig.h; both are LP64, enough to parse).

Then every symbol the objects leave undefined that names MLX, metal-cpp or
this project must be exported by the wheel's libmlx.dylib (llvm-nm on the
Mach-O file) or defined by one of the objects: what the Mac linker would
resolve. The deployment target must not be older than libmlx.dylib's.

Skips (exit 0, says so) only when a wheel cannot be downloaded.
"""

import os
import re
import sys
import sysconfig
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import (ROOT, WORK, HERE, CheckFailed, deployment_target, extract, macos_mlx,
                    main, pinned, run, tool, wheel)

CXX = "clang++-19"
NM = "llvm-nm-19"
ZIGLANG = "ziglang==0.17.1"  # its Darwin headers come from a macOS 26 SDK
DARWIN_HEADERS = "ziglang/lib/libc/include/any-darwin-any/"
LIBCXX = Path("/usr/lib/llvm-19/include/c++/v1")
# Namespaces whose symbols the Mac linker must find in libmlx.dylib or in our
# own objects (MLX, metal-cpp, this project).
OURS_OR_MLX = re.compile(r"(?<![\w:])(mlx|MTL|MTL4|NS|CA|MTLFX|mlx_upsample|upsample)::")


def mac_sources() -> list:
    """UPSAMPLE_SOURCES as CMakeLists.txt lists it for a Metal build."""
    cmake = (ROOT / "CMakeLists.txt").read_text()
    base = re.search(r"set\(\s*UPSAMPLE_SOURCES\s+([^)]*)\)", cmake)
    metal = re.search(r"list\(\s*APPEND\s+UPSAMPLE_SOURCES\s+([^)]*)\)", cmake)
    if base is None or metal is None:
        raise CheckFailed("CMakeLists.txt: cannot find UPSAMPLE_SOURCES and its Metal additions")
    return base.group(1).split() + metal.group(1).split()


def version_tuple(v: str) -> tuple:
    return tuple(int(x) for x in v.split("."))


def dylib_min_macos(dylib: Path) -> str:
    done = run(["llvm-objdump-19", "--macho", "--private-headers", dylib])
    m = re.search(r"cmd LC_BUILD_VERSION.*?minos ([\d.]+)", done.stdout, re.S)
    if done.returncode != 0 or m is None:
        raise CheckFailed(f"cannot read the minimum macOS of {dylib.name}: {done.stderr}")
    return m.group(1)


def sysroot(darwin_include: Path) -> Path:
    """A macOS-SDK-shaped directory whose usr/include is Darwin's C library."""
    root = WORK / "sysroot"
    link = root / "usr" / "include"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink() or link.resolve() != darwin_include.resolve():
        if link.is_symlink():
            link.unlink()
        link.symlink_to(darwin_include.resolve())
    return root


def compile_flags(target: str, mlx_include: Path, nanobind: Path, sdk: Path) -> list:
    python_include = Path(sysconfig.get_paths()["include"])
    if not (python_include / "Python.h").exists():
        raise CheckFailed(f"no Python.h in {python_include} (Debian: apt-get install python3-dev)")
    flags = [
        # CMake's Release build is -O3; -O1 compiles in half the time and left
        # the objects needing the same MLX symbols when both were compared.
        f"--target=arm64-apple-macos{target}", "-std=gnu++20", "-O1", "-DNDEBUG", "-fPIC",
        "-fvisibility=hidden", "-fno-stack-protector", "-ffp-contract=off",
        # What MLXConfig.cmake and nanobind_add_module(NB_DOMAIN mlx) add.
        "-D_METAL_", "-DACCELERATE_NEW_LAPACK", "-DNB_DOMAIN=mlx",
        "-isysroot", sdk, "-nostdinc++", "-isystem", LIBCXX,
        "-isystem", HERE / "darwin_frameworks",
        "-isystem", mlx_include, "-isystem", mlx_include / "metal_cpp",
        "-isystem", mlx_include / "mlx" / "backend" / "metal" / "kernels" / "metal_3_1",
        "-isystem", nanobind / "include", "-isystem", nanobind / "ext" / "robin_map" / "include",
        "-isystem", python_include,
        "-I", ROOT / "csrc", "-I", ROOT / "kernels",
        # An API newer than the deployment target would fail to load there.
        "-Werror=unguarded-availability", "-Werror=unguarded-availability-new",
        # Our own sources warning-free as clang builds them for a Mac (MLX's,
        # metal-cpp's, nanobind's and Python's headers are system headers
        # above, whose warnings are not ours).
        "-Wall", "-Wextra", "-Werror",
    ]
    if stable_abi() and sys.version_info >= (3, 12):
        flags.append("-DPy_LIMITED_API=0x030C0000")  # nanobind's STABLE_ABI
    return flags


def stable_abi() -> bool:
    """Whether the build makes a limited-API module: nanobind_add_module's
    STABLE_ABI takes effect only with Python::SABIModule, which CMakeLists.txt
    finds only when scikit-build-core's wheel.py-api asks for abi3 (it sets
    SKBUILD_SABI_COMPONENT); either one alone builds a version-specific module."""
    cmake = (ROOT / "CMakeLists.txt").read_text()
    call = re.search(r"nanobind_add_module\(([^)]*)\)", cmake)
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())
    py_api = settings.get("tool", {}).get("scikit-build", {}).get("wheel", {}).get("py-api", "")
    return bool(call and "STABLE_ABI" in call.group(1).split() and py_api.startswith("cp3"))


def symbols(path: Path, *options) -> list:
    done = run([NM, *options, path])
    if done.returncode != 0:
        raise CheckFailed(f"{NM} {path.name}: {done.stderr}")
    return [line.split()[-1] for line in done.stdout.splitlines() if line.strip()]


def demangle(names: list) -> list:
    done = run(["llvm-cxxfilt-19", "--strip-underscore"], input="\n".join(names))
    return done.stdout.splitlines()


def check():
    tool(CXX), tool(NM)
    mlx_version = pinned("mlx")
    mlx_root = macos_mlx() / "mlx"
    dylib = mlx_root / "lib" / "libmlx.dylib"
    unpacked = WORK / "unpacked"
    darwin = extract(wheel(ZIGLANG), DARWIN_HEADERS, unpacked)
    nanobind = extract(wheel(f"nanobind=={pinned('nanobind')}"), "nanobind/", unpacked)

    target = deployment_target()
    mlx_min = dylib_min_macos(dylib)
    if version_tuple(target) < version_tuple(mlx_min):
        raise CheckFailed(
            f"the deployment target {target} is older than libmlx.dylib's minimum macOS "
            f"{mlx_min}: the wheel would claim macOS versions MLX does not load on"
        )

    flags = compile_flags(target, mlx_root / "include", nanobind, sysroot(darwin))
    sources = mac_sources()
    objects = WORK / "host"

    def compile_one(source: str):
        obj = objects / (source.replace("/", "_") + ".o")
        obj.parent.mkdir(parents=True, exist_ok=True)
        done = run([CXX, *flags, "-c", ROOT / source, "-o", obj])
        return source, obj, done

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        results = list(pool.map(compile_one, sources))
    errors = [f"{src}:\n{done.stderr}" for src, _, done in results if done.returncode != 0]
    if errors:
        raise CheckFailed("compiling for macOS failed:\n" + "\n".join(errors))

    exported = set(symbols(dylib, "--extern-only", "--defined-only"))
    defined, needed = set(), {}
    for src, obj, _ in results:
        defined.update(symbols(obj, "--extern-only", "--defined-only"))
        for name in symbols(obj, "--undefined-only"):
            needed.setdefault(name, set()).add(src)
    names = sorted(needed)
    ours_or_mlx = [n for n, d in zip(names, demangle(names)) if OURS_OR_MLX.search(d)]
    missing = [n for n in ours_or_mlx if n not in exported and n not in defined]
    if missing:
        lines = [f"  {d}  (needed by {', '.join(sorted(needed[n]))})"
                 for n, d in zip(missing, demangle(missing))]
        raise CheckFailed(
            f"{len(missing)} symbol(s) the objects need are neither exported by "
            f"mlx-metal {mlx_version}'s libmlx.dylib nor defined by our sources:\n"
            + "\n".join(lines)
        )
    from_mlx = sum(1 for n in ours_or_mlx if n in exported)
    return [
        f"metal host check: compiled {len(sources)} sources ({', '.join(sources)}) for "
        f"arm64-apple-macos{target} with -D_METAL_ against mlx-metal {mlx_version}'s headers",
        f"metal host check: {len(ours_or_mlx)} MLX/metal-cpp/project symbols needed: "
        f"{from_mlx} exported by libmlx.dylib ({len(exported)} exports, minimum macOS "
        f"{mlx_min}), {len(ours_or_mlx) - from_mlx} defined by our objects; none missing",
    ]


if __name__ == "__main__":
    main(check)
