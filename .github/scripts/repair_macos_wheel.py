"""The macOS wheel repair: delocate-wheel, with libmlx.dylib kept out.

pyproject.toml's [tool.cibuildwheel.macos] repair-wheel-command runs this
instead of cibuildwheel's default `delocate-wheel --require-archs
{delocate_archs} -w {dest_dir} -v {wheel}`, which stops with "DelocationError:
Could not find all dependencies" on our wheel: the extension links
@rpath/libmlx.dylib, which it finds at run time through its rpath
@loader_path/../mlx/lib in the mlx package the wheel depends on (mlx-metal
installs it there). That library must stay out of our wheel: a copy would put
a second MLX into the process, next to the one mlx.core loads.

delocate 0.13 has no option that says exactly that. `--exclude libmlx.dylib`
filters only the libraries delocate has found, so a missing libmlx.dylib
still stops it; `--ignore-missing-dependencies` lets every missing library
through, not just this one. So this script first resolves every dependency of
every Mach-O file in the wheel the way delocate does (delocate.libsana's
get_dependencies: the file's rpaths, DYLD_LIBRARY_PATH and
DYLD_FALLBACK_LIBRARY_PATH, /usr/local/lib, /usr/lib) and fails on any missing
one other than @rpath/libmlx.dylib; then it runs delocate-wheel with the given
options plus `--ignore-missing-dependencies --exclude libmlx.dylib` (the
exclusion also covers a libmlx.dylib that happens to be found, e.g. in
/usr/local/lib, which would otherwise be copied in).

    python .github/scripts/repair_macos_wheel.py [delocate-wheel options] WHEEL

tests/metal_checks/wheel_repair.py runs it on Linux against an arm64 bundle
linked like the real extension.
"""

import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from delocate.libsana import get_dependencies

# The one dependency that may be missing from the unpacked wheel.
ALLOWED_MISSING = "@rpath/libmlx.dylib"
EXTRA_OPTIONS = ["--ignore-missing-dependencies", "--exclude", "libmlx.dylib"]
# Mach-O 32/64-bit (either byte order) and universal ("fat") headers.
MACHO_MAGICS = {bytes.fromhex(m) for m in
                ("feedface", "cefaedfe", "feedfacf", "cffaedfe", "cafebabe", "bebafeca")}


def missing_dependencies(wheel: Path) -> list:
    """(file in the wheel, install name) for every dependency delocate cannot find."""
    missing = []
    # get_dependencies logs each missing library as an ERROR; this script
    # reports them itself.
    logging.getLogger("delocate").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
        for path in sorted(Path(tmp).rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            with open(path, "rb") as f:
                if f.read(4) not in MACHO_MAGICS:
                    continue
            # delocate-wheel's default --executable-path.
            for found, install_name in get_dependencies(
                    path, executable_path=os.path.dirname(sys.executable)):
                if found is None:
                    missing.append((path.relative_to(tmp).as_posix(), install_name))
    logging.getLogger("delocate").setLevel(logging.NOTSET)
    return missing


def main(args: list) -> int:
    if not args or not args[-1].endswith(".whl"):
        print(__doc__, file=sys.stderr)
        return 2
    wheel = Path(args[-1])
    missing = missing_dependencies(wheel)
    others = [(f, name) for f, name in missing if name != ALLOWED_MISSING]
    if others:
        for f, name in others:
            print(f"repair_macos_wheel: {f} needs {name}, which cannot be found "
                  f"(only {ALLOWED_MISSING} may be missing)", file=sys.stderr)
        return 1
    for f, name in missing:
        print(f"repair_macos_wheel: {f} needs {name}: left out of the wheel, found at "
              f"run time in the mlx package (the rpath @loader_path/../mlx/lib)")
    cmd = [sys.executable, "-m", "delocate.cmd.delocate_wheel", *EXTRA_OPTIONS, *args]
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
