"""What the Metal checks share: the project's pins, the macOS deployment
target the build declares, tools, and the wheels downloaded from PyPI."""

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# Under build/ (ignored by git): downloaded wheels, extracted files, objects.
WORK = ROOT / "build" / "metal_checks"


class CheckFailed(Exception):
    """The check found an error; the message says which."""


class CannotDownload(Exception):
    """A wheel the check needs could not be downloaded (no network)."""


def pinned(package: str) -> str:
    """The exact version pyproject.toml pins for `package`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for spec in project["build-system"]["requires"] + project["project"]["dependencies"]:
        m = re.fullmatch(rf"{re.escape(package)}==([\w.]+)", spec.strip())
        if m:
            return m.group(1)
    raise CheckFailed(f"pyproject.toml does not pin {package}==<version>")


def cibuildwheel_deployment_targets() -> dict:
    """MACOSX_DEPLOYMENT_TARGET in each environment of pyproject.toml's
    [tool.cibuildwheel] (the table, .macos, each override), by where it is set;
    an environment is a table or a string of NAME=value assignments."""
    cibw = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get(
        "cibuildwheel", {})
    places = [("[tool.cibuildwheel]", cibw), ("[tool.cibuildwheel.macos]", cibw.get("macos", {}))]
    places += [(f"[[tool.cibuildwheel.overrides]] {o.get('select')!r}", o)
               for o in cibw.get("overrides", [])]
    found = {}
    for where, table in places:
        env = table.get("environment")
        if isinstance(env, dict) and "MACOSX_DEPLOYMENT_TARGET" in env:
            found[where] = str(env["MACOSX_DEPLOYMENT_TARGET"])
        elif isinstance(env, str):
            m = re.search(r"(?:^|\s)MACOSX_DEPLOYMENT_TARGET=[\"']?([\d.]+)", env)
            if m:
                found[where] = m.group(1)
    return found


def deployment_target() -> str:
    """The macOS deployment target of the Mac build: mlx_build_metallib's
    DEPLOYMENT_TARGET in CMakeLists.txt (it decides the Metal language version:
    bfloat needs Metal 3.1, macOS 14), which every workflow's
    MACOSX_DEPLOYMENT_TARGET (the extension's and the wheel's) must repeat, and
    so must pyproject.toml's [tool.cibuildwheel.macos] environment, which sets
    it for the release wheels (without it cibuildwheel builds for macOS 11.0)."""
    cmake = (ROOT / "CMakeLists.txt").read_text()
    m = re.search(r"mlx_build_metallib\([^)]*?DEPLOYMENT_TARGET\s+([\d.]+)", cmake, re.S)
    if m is None:
        raise CheckFailed(
            "CMakeLists.txt: mlx_build_metallib pins no DEPLOYMENT_TARGET, so the Metal "
            "language version follows whatever MACOSX_DEPLOYMENT_TARGET the build machine has"
        )
    target = m.group(1)
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for other in re.findall(r"MACOSX_DEPLOYMENT_TARGET:\s*\"?([\d.]+)", workflow.read_text()):
            if other != target:
                raise CheckFailed(
                    f"{workflow.relative_to(ROOT)} builds for macOS {other}, the metallib "
                    f"for {target} (CMakeLists.txt)"
                )
    cibw = cibuildwheel_deployment_targets()
    if "[tool.cibuildwheel.macos]" not in cibw and "[tool.cibuildwheel]" not in cibw:
        raise CheckFailed(
            "pyproject.toml: [tool.cibuildwheel.macos] environment sets no "
            f"MACOSX_DEPLOYMENT_TARGET, so the release wheels build for cibuildwheel's "
            f"default macOS, not {target} (CMakeLists.txt)"
        )
    for where, other in cibw.items():
        if other != target:
            raise CheckFailed(
                f"pyproject.toml {where} environment builds for macOS {other}, the metallib "
                f"for {target} (CMakeLists.txt)"
            )
    return target


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CheckFailed(f"{name} is not installed (Debian: apt-get install clang-19 llvm-19)")
    return path


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


def wheel(requirement: str, platform: str = None) -> Path:
    """Downloads the wheel of `requirement` (e.g. "mlx-metal==0.32.4") once into
    build/metal_checks/wheels; raises CannotDownload when pip cannot."""
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    dest = WORK / "wheels"
    found = sorted(dest.glob(stem + "*.whl")) if dest.exists() else []
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", "-d", dest, requirement]
    if platform:
        cmd += ["--platform", platform]
    done = run(cmd)
    found = sorted(dest.glob(stem + "*.whl")) if dest.exists() else []
    if done.returncode != 0 or not found:
        raise CannotDownload(f"pip download {requirement} failed:\n{done.stderr.strip()}")
    return found[0]


def extract(wheel_path: Path, prefix: str, into: Path) -> Path:
    """Extracts the members of `wheel_path` under `prefix` into `into` once;
    returns into / prefix."""
    target = into / prefix
    stamp = into / (wheel_path.name + "." + prefix.strip("/").replace("/", "_") + ".done")
    if not stamp.exists():
        with zipfile.ZipFile(wheel_path) as z:
            members = [m for m in z.namelist() if m.startswith(prefix)]
            if not members:
                raise CheckFailed(f"{wheel_path.name} has nothing under {prefix}")
            z.extractall(into, members)
        stamp.touch()
    return target


def macos_mlx() -> Path:
    """The macOS MLX of the pinned version (mlx-metal's wheel holds the C++
    headers, metal-cpp, libmlx.dylib and the CMake package; the mlx wheel only
    the Python module), unpacked once without its 141 MB mlx.metallib;
    returns the directory that holds mlx/."""
    unpacked = WORK / "unpacked"
    metal = wheel(f"mlx-metal=={pinned('mlx')}", platform="macosx_14_0_arm64")
    for prefix in ("mlx/include/", "mlx/share/", "mlx/lib/cmake/", "mlx/lib/libmlx.dylib",
                   "mlx/lib/libjaccl.dylib"):
        extract(metal, prefix, unpacked)
    return unpacked


def main(check) -> None:
    """Runs `check()` (which returns its summary lines) and exits 1 on CheckFailed."""
    try:
        for line in check():
            print(line)
    except CannotDownload as e:
        print(f"SKIPPED: {e}")
    except CheckFailed as e:
        print(f"FAILED: {e}")
        sys.exit(1)
