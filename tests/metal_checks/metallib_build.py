"""Checks the Metal compiler's command line that a Mac build would run.

Configures this project's CMakeLists.txt against the macOS MLX package (its
MLXConfig.cmake sets MLX_BUILD_METAL, its extension.cmake defines
mlx_build_metallib) with a stand-in `xcrun` on PATH that records each Metal
compiler call, builds the metallib target, and checks that every compile of
kernels/*.metal pins the deployment target to macOS 14 (bfloat needs Metal
3.1; without it the compiler follows MACOSX_DEPLOYMENT_TARGET, which is 11.0
under cibuildwheel) and turns FMA contraction off. What the real compiler
then does with those flags only a Mac can tell.

    python tests/metal_checks/metallib_build.py MACOS_MLX_DIR

MACOS_MLX_DIR holds the unpacked macOS wheels of mlx and mlx-metal (the
directory with mlx/share/cmake/MLX). Needs cmake, ninja and nanobind.
"""

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("-mmacosx-version-min=14.0", "-ffp-contract=off")

FAKE_XCRUN = """#!/bin/sh
# Records the call, then creates the file named after -o.
echo "$@" >> "{log}"
out=""
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then out="$2"; fi
  shift
done
[ -n "$out" ] && : > "$out"
exit 0
"""


def main(mlx_dir: Path) -> int:
    config = mlx_dir / "mlx" / "share" / "cmake" / "MLX"
    if not (config / "MLXConfig.cmake").exists():
        print(f"metallib build: no MLXConfig.cmake under {mlx_dir}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log = tmp / "xcrun.log"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        xcrun = bin_dir / "xcrun"
        xcrun.write_text(FAKE_XCRUN.format(log=log))
        xcrun.chmod(0o755)
        env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        build = tmp / "build"
        steps = [
            ["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
             f"-DMLX_DIR={config}", f"-DPython_EXECUTABLE={sys.executable}"],
            ["cmake", "--build", str(build), "--target", "mlx_upsample_metallib"],
        ]
        for cmd in steps:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"metallib build: {shlex.join(cmd)} failed:\n{done.stdout}{done.stderr}",
                      file=sys.stderr)
                return 1
        calls = log.read_text().splitlines() if log.exists() else []
    compiles = [c.split() for c in calls if " -c " in f" {c} " and ".metal" in c]
    sources = sorted(p.name for p in (ROOT / "kernels").glob("*.metal"))
    compiled = sorted(Path(a).name for c in compiles for a in c if a.endswith(".metal"))
    failures = []
    if compiled != sources:
        failures.append(f"compiled {compiled}, expected every kernels/*.metal: {sources}")
    for c in compiles:
        missing = [flag for flag in REQUIRED if flag not in c]
        if missing:
            failures.append(f"{' '.join(c)}\n  lacks {' '.join(missing)}")
    links = [c.split() for c in calls if c not in map(" ".join, compiles) and ".metallib" in c]
    if not any(REQUIRED[0] in c for c in links):
        failures.append("the metallib link does not pin -mmacosx-version-min=14.0")
    if failures:
        print("metallib build: FAILED\n" + "\n".join(failures), file=sys.stderr)
        return 1
    print(f"metallib build: {len(compiles)} Metal compile(s) pass {' '.join(REQUIRED)}, "
          f"the link {REQUIRED[0]} (CMake against the macOS MLX in {mlx_dir})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
