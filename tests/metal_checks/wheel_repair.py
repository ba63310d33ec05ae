"""The release's macOS wheel repair, run on Linux as the Mac runner will run it.

cibuildwheel (release.yml) builds one wheel per CPython on macOS arm64 and
repairs each with pyproject.toml's [tool.cibuildwheel.macos]
repair-wheel-command. Its default, `delocate-wheel --require-archs
{delocate_archs} -w {dest_dir} -v {wheel}`, stops on our wheel ("Could not find
all dependencies"): the extension links @rpath/libmlx.dylib, which lives in the
mlx package (mlx-metal) and must stay out of our wheel.

This check makes what the Mac build makes, as far as delocate can tell:

* an arm64 Mach-O bundle linked by ld64.lld from the real objects
  (host_symbols.py's compile of every Mac source, for arm64-apple-macos<the
  deployment target>; reused when newer than csrc/, kernels/ and these
  scripts) against the real libmlx.dylib of the pinned mlx-metal wheel, with
  CMakeLists.txt's Apple INSTALL_RPATH, as a CMake MODULE (-bundle: no install
  name of its own, like the real extension) with the system libraries the MLX
  CMake target links (its frameworks, as libmlx.dylib names them; libc++;
  libSystem) as symbol-less .tbd stubs. Everything that is neither in our
  objects nor in libmlx.dylib (Python, libc++, the nanobind runtime, which the
  real build links statically) is left to dynamic lookup: the bundle is never
  loaded, only read;
* a wheel laid out like ours (mlx_upsample/_ext.cpython-312-darwin.so, the
  package's Python files, a placeholder mlx_upsample.metallib, dist-info);

then runs, with the delocate version cibuildwheel pins, both cibuildwheel's
default repair command and pyproject's, with {wheel}, {dest_dir},
{delocate_archs}=arm64 and {project} substituted as cibuildwheel does, in the
project directory, under pyproject's macOS environment (MACOSX_DEPLOYMENT_TARGET),
with llvm-otool-19, llvm-install-name-tool-19 and llvm-lipo-19 standing in
for Apple's tools and a `codesign` that records its calls and fails (there is
none on Linux). It asserts that the default command fails; that pyproject's
succeeds, leaves no libmlx.dylib and no .dylibs/ in the wheel, keeps the
metallib and the wheel's name, and leaves the extension byte for byte as
linked (its @rpath/libmlx.dylib load, its rpaths, its linker signature; no
install_name_tool or codesign call); that pyproject's command fails on a
bundle with one more, unrelated missing library; that cibuildwheel selects
exactly the intended build identifiers (and none on Linux), at the version
release.yml pins, with the delocate it pins; and that what its test step
installs (mlx==<pin> and test-requires, which must equal the [test] extra)
has macOS arm64 wheels on PyPI for every built CPython (and says whether the
torch pin has one for cp315, the reason cp315 is not built).

Codesigning: delocate runs `codesign --force --sign -` only on a file it
rewrote with install_name_tool (a copied library, a changed install name, a
deleted rpath). Here it rewrites nothing, on Linux as on a Mac, so the ad-hoc
signature the linker put on the extension (ld64.lld here, Apple's ld on the
Mac: both sign arm64 output) stays valid; the stand-in `codesign` fails, so a
change in that would show.

Needs clang-19, lld-19 and llvm-19 (Debian), cibuildwheel and delocate (pip).
Skips (exit 0, says so) only when a wheel cannot be downloaded.
"""

import base64
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import host_symbols
from common import (HERE, ROOT, WORK, CannotDownload, CheckFailed, deployment_target, extract,
                    macos_mlx, main, pinned, run, tool, wheel)

# What the release builds: CPython 3.10-3.14 for macOS arm64 (pyproject.toml
# says why not cp315, not free-threaded, not abi3, not Linux).
INTENDED = [f"cp3{minor}-macosx_arm64" for minor in range(10, 15)]
WHEEL_PY = "cp312"  # the wheel this check lays out stands for the cp312 build
LD, OTOOL, INSTALL_NAME_TOOL, LIPO, NM = (
    "ld64.lld-19", "llvm-otool-19", "llvm-install-name-tool-19", "llvm-lipo-19", "llvm-nm-19")
MLX_LOAD = "@rpath/libmlx.dylib"
UNRELATED = "@rpath/libunrelated.dylib"

TBD = """--- !tapi-tbd
tbd-version:     4
targets:         [ arm64-macos ]
install-name:    '{name}'
current-version: 1
...
"""

# Apple's otool -m ("no archive(member) syntax") has no llvm-otool counterpart
# and changes nothing for a Mach-O file, so the shim drops it.
OTOOL_SHIM = """#!{python}
import os, sys
with open(os.environ["WHEEL_REPAIR_LOG"], "a") as log:
    log.write("otool " + " ".join(sys.argv[1:]) + "\\n")
os.execvp("{otool}", ["{otool}", *[a for a in sys.argv[1:] if a != "-m"]])
"""
LOGGING_SHIM = """#!/bin/sh
echo "{name} $*" >> "$WHEEL_REPAIR_LOG"
exec {tool} "$@"
"""
CODESIGN_SHIM = """#!/bin/sh
echo "codesign $*" >> "$WHEEL_REPAIR_LOG"
echo "codesign: not available on Linux (wheel_repair.py's stand-in)" >&2
exit 1
"""


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def cibw_macos() -> dict:
    return pyproject().get("tool", {}).get("cibuildwheel", {}).get("macos", {})


def command_string(value) -> str:
    """A cibuildwheel command option: a string, or a list joined with ' && '."""
    return " && ".join(value) if isinstance(value, list) else value


def default_repair_command() -> str:
    import cibuildwheel
    defaults = Path(cibuildwheel.__file__).parent / "resources" / "defaults.toml"
    return tomllib.loads(defaults.read_text())["tool"]["cibuildwheel"]["macos"][
        "repair-wheel-command"]


def apple_rpaths() -> list:
    """The Apple INSTALL_RPATH of CMakeLists.txt's _ext."""
    cmake = (ROOT / "CMakeLists.txt").read_text()
    m = re.search(r'INSTALL_RPATH\s+"(@loader_path[^"]*)"', cmake)
    if m is None:
        raise CheckFailed("CMakeLists.txt: no Apple INSTALL_RPATH starting with @loader_path")
    rpaths = m.group(1).split(";")
    if "@loader_path/../mlx/lib" not in rpaths:
        raise CheckFailed(f"CMakeLists.txt's Apple rpaths {rpaths} lack @loader_path/../mlx/lib, "
                          "where the mlx package keeps libmlx.dylib")
    return rpaths


# --------------------------------------------------------------------------------------
# cibuildwheel: which identifiers, at which version, with which delocate
# --------------------------------------------------------------------------------------

def cibuildwheel_identifiers(*options) -> list:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    done = run([sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", *options],
               cwd=ROOT, env=env)
    if done.returncode != 0:
        raise CheckFailed(f"cibuildwheel --print-build-identifiers {' '.join(options)}:\n"
                          f"{done.stderr}")
    return done.stdout.split()


def check_cibuildwheel() -> list:
    installed = importlib.metadata.version("cibuildwheel")
    release = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    pins = set(re.findall(r"uses:\s*pypa/cibuildwheel@v([\w.]+)", release))
    if pins != {installed}:
        raise CheckFailed(f"release.yml runs pypa/cibuildwheel {sorted(pins)}, this check "
                          f"cibuildwheel {installed}: the identifiers below may differ")
    lines = []
    for options in (["--platform", "macos"], ["--platform", "macos", "--archs", "arm64"]):
        found = cibuildwheel_identifiers(*options)
        if found != INTENDED:
            raise CheckFailed(f"cibuildwheel {' '.join(options)} selects {found}, "
                              f"intended {INTENDED}")
        lines.append(f"wheel repair: cibuildwheel {installed} {' '.join(options)} selects "
                     f"exactly {' '.join(found)}")
    linux = cibuildwheel_identifiers("--platform", "linux")
    if linux:
        raise CheckFailed(f"cibuildwheel --platform linux selects {linux}: Linux wheels are "
                          "not published (MLX's are manylinux_2_35)")
    lines.append("wheel repair: cibuildwheel --platform linux selects nothing (a Linux run "
                 "stops: 'No build identifiers selected')")

    import cibuildwheel
    resources = Path(cibuildwheel.__file__).parent / "resources"
    delocate = importlib.metadata.version("delocate")
    for ident in INTENDED:
        minor = ident[3:5]
        text = (resources / f"constraints-python3{minor}.txt").read_text()
        m = re.search(r"^delocate==([\w.]+)", text, re.M)
        if m is None or m.group(1) != delocate:
            raise CheckFailed(f"cibuildwheel {installed} repairs {ident} with delocate "
                              f"{m.group(1) if m else '(unpinned)'}, this check uses {delocate}")
    lines.append(f"wheel repair: delocate {delocate}, the version cibuildwheel {installed} "
                 f"pins for every identifier")
    return lines


def installable(minor: int, requirements: list) -> tuple:
    """(True, wheel names) when every requirement has a macOS 14 arm64 wheel for
    CPython 3.<minor> on PyPI, else (False, pip's reason); raises CannotDownload
    when pip cannot reach the index at all."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        done = run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                    "--ignore-installed", "--no-deps", "--only-binary=:all:",
                    "--platform", "macosx_14_0_arm64", "--implementation", "cp",
                    "--python-version", f"3.{minor}", "--abi", f"cp3{minor}",
                    "--target", Path(tmp) / "target", "--report", report, *requirements])
        if done.returncode == 0:
            found = json.loads(report.read_text())["install"]
            return True, [item["download_info"]["url"].rsplit("/", 1)[-1] for item in found]
    reasons = ("No matching distribution", "ResolutionImpossible", "conflicting dependencies")
    if not any(r in done.stderr for r in reasons):
        raise CannotDownload(f"pip could not resolve {requirements}:\n{done.stderr.strip()}")
    return False, done.stderr.strip().splitlines()[-1]


def check_test_requirements() -> list:
    """The test step installs the wheel (so mlx==<pin>) and test-requires on each
    built CPython: each must have wheels; and cp315, which cibuildwheel would
    build by default, is left out because the torch pin has none for it."""
    settings = pyproject()
    test_requires = settings["tool"]["cibuildwheel"].get("test-requires", [])
    test_extra = settings["project"].get("optional-dependencies", {}).get("test", [])
    if sorted(test_requires) != sorted(test_extra):
        raise CheckFailed(f"[tool.cibuildwheel] test-requires {test_requires} differs from the "
                          f"[test] extra {test_extra}: the wheels would be tested against "
                          "other versions than the README's test command uses")
    requirements = [f"mlx=={pinned('mlx')}", *test_requires]
    for ident in INTENDED:
        ok, detail = installable(int(ident[3:5]), requirements)
        if not ok:
            raise CheckFailed(f"{ident}: {' '.join(requirements)} cannot be installed on "
                              f"macOS arm64 for this CPython ({detail}): its test step would fail")
    lines = [f"wheel repair: {' '.join(requirements)} have macOS 14 arm64 wheels for every "
             f"built CPython ({', '.join(i.split('-')[0] for i in INTENDED)})"]
    torch = [r for r in test_requires if r.startswith("torch==")]
    if torch:
        ok, detail = installable(15, torch)
        lines.append("wheel repair: cp315 (built by default by cibuildwheel, left out here): "
                     + (f"{torch[0]} has no cp315 macOS arm64 wheel" if not ok else
                        f"{torch[0]} NOW has a cp315 wheel ({', '.join(detail)}): cp315 "
                        "could be built"))
    return lines


# --------------------------------------------------------------------------------------
# the bundle
# --------------------------------------------------------------------------------------

def mac_objects(target: str, mlx_root: Path) -> tuple:
    """host_symbols.py's objects of every Mac source; (paths, how many compiled now)."""
    unpacked = WORK / "unpacked"
    darwin = extract(wheel(host_symbols.ZIGLANG), host_symbols.DARWIN_HEADERS, unpacked)
    nanobind = extract(wheel(f"nanobind=={pinned('nanobind')}"), "nanobind/", unpacked)
    flags = host_symbols.compile_flags(target, mlx_root / "include", nanobind,
                                       host_symbols.sysroot(darwin))
    inputs = [p for d in ("csrc", "kernels") for p in (ROOT / d).rglob("*") if p.is_file()]
    inputs += [HERE / "common.py", HERE / "host_symbols.py", ROOT / "CMakeLists.txt"]
    newest = max(p.stat().st_mtime for p in inputs)
    objects, todo = [], []
    for source in host_symbols.mac_sources():
        obj = WORK / "host" / (source.replace("/", "_") + ".o")
        objects.append(obj)
        if not obj.exists() or obj.stat().st_mtime <= newest:
            todo.append((source, obj))

    def compile_one(item):
        source, obj = item
        obj.parent.mkdir(parents=True, exist_ok=True)
        return source, run([host_symbols.CXX, *flags, "-c", ROOT / source, "-o", obj])

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        failed = [f"{s}:\n{d.stderr}" for s, d in pool.map(compile_one, todo) if d.returncode]
    if failed:
        raise CheckFailed("compiling for macOS failed:\n" + "\n".join(failed))
    return objects, len(todo)


def load_commands(binary: Path) -> dict:
    """The dylib loads, rpaths, install name and code signature of a Mach-O file."""
    listing = run([OTOOL, "-l", binary])
    if listing.returncode != 0:
        raise CheckFailed(f"{OTOOL} -l {binary.name}: {listing.stderr}")
    text = listing.stdout
    return {
        "loads": re.findall(r"cmd LC_(?:LOAD|LOAD_WEAK|REEXPORT)_DYLIB\n\s+cmdsize \d+\n"
                            r"\s+name (\S+) \(offset", text),
        "rpaths": re.findall(r"cmd LC_RPATH\n\s+cmdsize \d+\n\s+path (\S+) \(offset", text),
        "id": re.findall(r"cmd LC_ID_DYLIB\n\s+cmdsize \d+\n\s+name (\S+) \(offset", text),
        "signed": "cmd LC_CODE_SIGNATURE" in text,
    }


def system_libraries(dylib: Path) -> list:
    """Install names of what the MLX CMake target links: its frameworks (as
    libmlx.dylib names them), libc++ and libSystem (the compiler driver's)."""
    targets = (dylib.parents[1] / "share" / "cmake" / "MLX" / "MLXTargets.cmake").read_text()
    m = re.search(r'INTERFACE_LINK_LIBRARIES "([^"]*)"', targets)
    frameworks = re.findall(r"/(\w+)\.framework(?:;|$)", m.group(1)) if m else []
    if not frameworks:
        raise CheckFailed("MLXTargets.cmake: the mlx target links no framework")
    mlx_loads = load_commands(dylib)["loads"]
    names = []
    for framework in frameworks:
        found = [n for n in mlx_loads if f"/{framework}.framework/" in n]
        if not found:
            raise CheckFailed(f"libmlx.dylib does not load {framework}.framework, which the "
                              "mlx CMake target links")
        names.append(found[0])
    return names + ["/usr/lib/libc++.1.dylib", "/usr/lib/libSystem.B.dylib"]


def link_bundle(out: Path, objects: list, dylib: Path, target: str, rpaths: list,
                libraries: list) -> None:
    stubs = out.parent / (out.name + ".stubs")
    stubs.mkdir(parents=True, exist_ok=True)
    tbds = []
    for i, name in enumerate(libraries):
        tbd = stubs / f"{i}_{Path(name).name}.tbd"
        tbd.write_text(TBD.format(name=name))
        tbds.append(tbd)
    # What CMake's MODULE library and nanobind_add_module's Release options pass
    # on a Mac (-bundle -headerpad_max_install_names; -dead_strip -x -S).
    cmd = [LD, "-arch", "arm64", "-platform_version", "macos", target, target, "-bundle",
           "-headerpad_max_install_names", "-dead_strip", "-x", "-S",
           "-undefined", "dynamic_lookup", "-o", out, *objects, dylib, *tbds]
    for rpath in rpaths:
        cmd += ["-rpath", rpath]
    done = run(cmd)
    if done.returncode != 0:
        raise CheckFailed(f"{LD} failed:\n{done.stderr}")


def mlx_bindings(bundle: Path) -> tuple:
    """(MLX/metal-cpp/project symbols bound to libmlx.dylib, those left to dynamic lookup)."""
    done = run([NM, "-m", "--undefined-only", bundle])
    if done.returncode != 0:
        raise CheckFailed(f"{NM} -m {bundle.name}: {done.stderr}")
    entries = [(line.split()[2], line) for line in done.stdout.splitlines() if line.strip()]
    names = host_symbols.demangle([name for name, _ in entries])
    ours = [(d, line) for (_, line), d in zip(entries, names) if host_symbols.OURS_OR_MLX.search(d)]
    bound = [d for d, line in ours if "(from libmlx)" in line]
    loose = [d for d, line in ours if "(from libmlx)" not in line]
    return bound, loose


# --------------------------------------------------------------------------------------
# the wheel
# --------------------------------------------------------------------------------------

def make_wheel(ext: Path, dest: Path) -> Path:
    """A wheel laid out like the cp312 macOS build of ours."""
    project = pyproject()["project"]
    name, version = project["name"].replace("-", "_"), project["version"]
    tag = f"{WHEEL_PY}-{WHEEL_PY}-macosx_{deployment_target().replace('.', '_')}_arm64"
    dist_info = f"{name}-{version}.dist-info"
    files = {}
    for path in sorted((ROOT / "python" / "mlx_upsample").iterdir()):
        if path.is_file() and not path.name.endswith(".in"):
            files[f"mlx_upsample/{path.name}"] = path.read_bytes()
    files["mlx_upsample/_build_config.py"] = f'MLX_VERSION = "{pinned("mlx")}"\n'.encode()
    files[f"mlx_upsample/_ext.cpython-{WHEEL_PY[2:]}-darwin.so"] = ext.read_bytes()
    files["mlx_upsample/mlx_upsample.metallib"] = b"placeholder for the Metal library\n"
    requires = "".join(f"Requires-Dist: {r}\n" for r in project.get("dependencies", []))
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.2\nName: {project['name']}\nVersion: {version}\n{requires}").encode()
    files[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: wheel_repair.py\nRoot-Is-Purelib: false\nTag: {tag}\n"
    ).encode()
    record = []
    for member, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in files.items():
            info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if member.endswith(".so") else 0o644) << 16
            z.writestr(info, data)
    return out


# --------------------------------------------------------------------------------------
# running a repair command
# --------------------------------------------------------------------------------------

def shims(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    scripts = {
        "otool": OTOOL_SHIM.format(python=sys.executable, otool=tool(OTOOL)),
        "install_name_tool": LOGGING_SHIM.format(name="install_name_tool",
                                                 tool=tool(INSTALL_NAME_TOOL)),
        "lipo": LOGGING_SHIM.format(name="lipo", tool=tool(LIPO)),
        "codesign": CODESIGN_SHIM,
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)


def repair(command: str, wheel_path: Path, work: Path, bin_dir: Path) -> dict:
    """Runs a cibuildwheel repair command on `wheel_path` as cibuildwheel's
    macOS build does: placeholders substituted, in the project directory,
    under pyproject's macOS environment."""
    dest = work / "repaired"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    log = work / "tools.log"
    log.write_text("")
    prepared = command.format(wheel=wheel_path, dest_dir=dest, delocate_archs="arm64",
                              project=".", package=".")
    env = dict(os.environ)
    env.update(cibw_macos().get("environment", {}))
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]])
    env["WHEEL_REPAIR_LOG"] = str(log)
    done = subprocess.run(prepared, shell=True, cwd=ROOT, env=env, capture_output=True, text=True)
    calls = [line.split()[0] for line in log.read_text().splitlines() if line.strip()]
    return {"rc": done.returncode, "output": done.stdout + done.stderr,
            "wheels": sorted(dest.glob("*.whl")), "calls": calls, "command": prepared}


def last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line or "FAILED" in line]
    return (errors or lines or ["(no output)"])[-1]


def tool_calls(result: dict) -> str:
    counts = {name: result["calls"].count(name) for name in ("install_name_tool", "codesign")}
    return ", ".join(f"{name} {n}x" for name, n in counts.items())


def check_repaired(result: dict, built: Path, ext_bytes: bytes, rpaths: list) -> list:
    if result["rc"] != 0:
        raise CheckFailed(f"pyproject's repair command failed ({result['command']}):\n"
                          f"{result['output']}")
    if [w.name for w in result["wheels"]] != [built.name]:
        raise CheckFailed(f"the repair left {[w.name for w in result['wheels']]} in dest_dir, "
                          f"expected {built.name}")
    repaired = result["wheels"][0]
    with zipfile.ZipFile(repaired) as z:
        names = z.namelist()
        ext_name = f"mlx_upsample/_ext.cpython-{WHEEL_PY[2:]}-darwin.so"
        repaired_ext = z.read(ext_name) if ext_name in names else b""
    vendored = [n for n in names if Path(n).name.startswith("libmlx") or "/.dylibs/" in f"/{n}"]
    if vendored:
        raise CheckFailed(f"the repaired wheel vendors {vendored}")
    if "mlx_upsample/mlx_upsample.metallib" not in names:
        raise CheckFailed("the repaired wheel lost mlx_upsample/mlx_upsample.metallib")
    if not repaired_ext:
        raise CheckFailed(f"the repaired wheel has no {ext_name}")
    with tempfile.TemporaryDirectory() as tmp:
        ext_file = Path(tmp) / "ext.so"
        ext_file.write_bytes(repaired_ext)
        commands = load_commands(ext_file)
    if MLX_LOAD not in commands["loads"]:
        raise CheckFailed(f"the repaired extension no longer loads {MLX_LOAD}: "
                          f"{commands['loads']}")
    if commands["rpaths"] != rpaths:
        raise CheckFailed(f"the repaired extension's rpaths are {commands['rpaths']}, "
                          f"linked with {rpaths}")
    if result["calls"].count("install_name_tool") or result["calls"].count("codesign"):
        raise CheckFailed(f"the repair rewrote the extension ({tool_calls(result)})")
    if repaired_ext != ext_bytes:
        raise CheckFailed("the repair changed the extension's bytes although it called "
                          "neither install_name_tool nor codesign")
    return [
        f"wheel repair: pyproject's command succeeds: {repaired.name}, no libmlx.dylib, "
        f"no .dylibs/, mlx_upsample.metallib kept, {len(names)} files",
        f"wheel repair: the repaired extension loads {MLX_LOAD} with rpaths "
        f"{', '.join(commands['rpaths'])}, byte for byte as linked "
        f"(install_name_tool 0x, codesign 0x), so its linker signature "
        f"({'present' if commands['signed'] else 'ABSENT'}) stands",
    ]


# --------------------------------------------------------------------------------------

def check():
    for name in (LD, OTOOL, INSTALL_NAME_TOOL, LIPO, NM, host_symbols.CXX):
        tool(name)
    for package in ("cibuildwheel", "delocate"):
        try:
            importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            raise CheckFailed(f"{package} is not installed here (pip install cibuildwheel "
                              "delocate, at release.yml's cibuildwheel version)") from None
    lines = check_cibuildwheel() + check_test_requirements()

    target = deployment_target()
    env_target = cibw_macos().get("environment", {}).get("MACOSX_DEPLOYMENT_TARGET")
    mlx_root = macos_mlx() / "mlx"
    dylib = mlx_root / "lib" / "libmlx.dylib"
    rpaths = apple_rpaths()
    objects, compiled = mac_objects(target, mlx_root)
    work = WORK / "wheel_repair"
    shutil.rmtree(work, ignore_errors=True)
    libraries = system_libraries(dylib)

    ext = work / "bundle" / f"_ext.cpython-{WHEEL_PY[2:]}-darwin.so"
    ext.parent.mkdir(parents=True)
    link_bundle(ext, objects, dylib, target, rpaths, [*libraries])
    commands = load_commands(ext)
    if commands["loads"][:1] != [MLX_LOAD] or commands["rpaths"] != rpaths or commands["id"]:
        raise CheckFailed(f"the linked bundle's load commands are not the extension's: "
                          f"{commands}")
    bound, loose = mlx_bindings(ext)
    if loose or not bound:
        raise CheckFailed(f"ld64.lld bound {len(bound)} MLX/project symbols to libmlx.dylib and "
                          f"left {len(loose)} to dynamic lookup: {loose[:10]}")
    lines.append(
        f"wheel repair: linked {ext.name} (arm64 bundle, macOS {target}) with ld64.lld from "
        f"the {len(objects)} Mac objects ({compiled} compiled now) against mlx-metal "
        f"{pinned('mlx')}'s libmlx.dylib: loads {', '.join(commands['loads'])}; rpaths "
        f"{', '.join(rpaths)}; no install name (a bundle); "
        f"{'ad-hoc linker signature' if commands['signed'] else 'UNSIGNED'}")
    lines.append(f"wheel repair: ld64.lld bound all {len(bound)} MLX/metal-cpp/project "
                 f"symbols the objects need to libmlx.dylib (two-level), none to dynamic lookup")

    built = make_wheel(ext, work / "built")
    bin_dir = work / "bin"
    shims(bin_dir)

    # cibuildwheel's default: must fail, on libmlx.dylib.
    default = repair(default_repair_command(), built, work / "default", bin_dir)
    if default["rc"] == 0:
        raise CheckFailed(f"cibuildwheel's default repair ({default['command']}) succeeded: "
                          "this check no longer shows why pyproject overrides it")
    if "Could not find all dependencies" not in default["output"] or \
            f"{MLX_LOAD} not found" not in default["output"]:
        raise CheckFailed(f"cibuildwheel's default repair failed, but not on {MLX_LOAD}:\n"
                          f"{default['output']}")
    lines.append(f"wheel repair: cibuildwheel's default `{default_repair_command()}` fails "
                 f"on {built.name}: {MLX_LOAD} not found -> {last_line(default['output'])}")

    # What the two plain delocate options do (why pyproject uses neither alone).
    exclude = repair(default_repair_command().replace("-v {wheel}",
                                                      "--exclude libmlx.dylib -v {wheel}"),
                     built, work / "exclude", bin_dir)
    lines.append(f"wheel repair: `--exclude libmlx.dylib` alone "
                 f"{'fails likewise (delocate applies it only to libraries it has found)' if exclude['rc'] else 'SUCCEEDS now: a simpler command would do'}"
                 f" -> {last_line(exclude['output'])}")

    command = command_string(cibw_macos().get("repair-wheel-command", ""))
    if not command:
        raise CheckFailed("pyproject.toml has no [tool.cibuildwheel.macos] repair-wheel-command")
    if env_target != target:
        raise CheckFailed(f"[tool.cibuildwheel.macos] environment's MACOSX_DEPLOYMENT_TARGET "
                          f"is {env_target}, the build's {target}")
    chosen = repair(command, built, work / "chosen", bin_dir)
    lines += check_repaired(chosen, built, ext.read_bytes(), rpaths)

    # One more missing library: pyproject's command must fail on it.
    ext2 = work / "bundle_unrelated" / ext.name
    ext2.parent.mkdir(parents=True)
    link_bundle(ext2, objects, dylib, target, rpaths, [*libraries, UNRELATED])
    if UNRELATED not in load_commands(ext2)["loads"]:
        raise CheckFailed(f"the second bundle does not load {UNRELATED}")
    built2 = make_wheel(ext2, work / "built_unrelated")
    second = repair(command, built2, work / "chosen_unrelated", bin_dir)
    if second["rc"] == 0 or second["wheels"]:
        raise CheckFailed(f"pyproject's repair command accepted a wheel whose extension also "
                          f"needs the missing {UNRELATED}:\n{second['output']}")
    if UNRELATED not in second["output"]:
        raise CheckFailed(f"pyproject's repair command failed, but not on {UNRELATED}:\n"
                          f"{second['output']}")
    lines.append(f"wheel repair: with one more missing library ({UNRELATED}) pyproject's "
                 f"command fails -> {last_line(second['output'])}")
    ignore = repair(default_repair_command().replace(
        "-v {wheel}", "--ignore-missing-dependencies -v {wheel}"), built2, work / "ignore", bin_dir)
    lines.append(f"wheel repair: `--ignore-missing-dependencies` alone "
                 f"{'would accept that wheel (why it is not used alone)' if ignore['rc'] == 0 else 'rejects that wheel too'}")
    return lines


if __name__ == "__main__":
    main(check)
