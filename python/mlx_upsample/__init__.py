"""mlx-upsample: fast nearest, linear, cubic, antialiased and area resampling for MLX.

Channels-last like all of MLX: inputs are ``(N, *spatial, C)``.

- :class:`Upsample` / :func:`upsample`: drop-in for ``mlx.nn.Upsample``
  (MLX's coordinate rules).
- :func:`interpolate`: PyTorch's ``F.interpolate`` semantics (PyTorch's
  coordinate rules, ``antialias=True`` and ``mode="area"``) on channels-last
  input.
- :func:`grid_sample`: PyTorch's ``F.grid_sample`` (sampling at arbitrary
  coordinates) on channels-last input.
"""

import sys
from importlib.metadata import version as _version

import mlx.core as mx

from ._build_config import MLX_VERSION as _BUILT_MLX_VERSION

__version__ = _version("mlx-upsample")

# The extension links MLX's C++ library, whose ABI changes between releases:
# against another MLX it would crash or misbehave, so refuse to load. The
# package pins the MLX it was built with, so reinstalling it brings that MLX
# back; a newer MLX needs a newer mlx-upsample.
if mx.__version__ != _BUILT_MLX_VERSION:
    _mlx = "mlx[cpu]" if sys.platform == "linux" else "mlx"
    raise ImportError(
        f"mlx-upsample {__version__} was built against MLX {_BUILT_MLX_VERSION}, but MLX "
        f"{mx.__version__} is installed, and the two must match exactly (MLX's C++ "
        f"ABI changes between releases). Install the MLX it was built for: "
        f"pip install '{_mlx}=={_BUILT_MLX_VERSION}'"
    )

from ._threads import get_num_threads, set_num_threads  # noqa: E402
from .grid_sample import grid_sample  # noqa: E402
from .interpolate import interpolate  # noqa: E402
from .upsample import Upsample, upsample  # noqa: E402

__all__ = [
    "Upsample",
    "upsample",
    "interpolate",
    "grid_sample",
    "set_num_threads",
    "get_num_threads",
]
