"""Prints the directory of the unpacked macOS MLX (the directory holding
mlx/share/cmake/MLX) for metallib_build.py; prints nothing, and says why on
stderr, when its wheel cannot be downloaded."""

import sys

from common import CannotDownload, macos_mlx

if __name__ == "__main__":
    try:
        print(macos_mlx())
    except CannotDownload as e:
        print(f"metallib build SKIPPED: {e}", file=sys.stderr)
