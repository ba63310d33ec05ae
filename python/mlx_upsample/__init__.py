"""mlx-upsample: fast nearest, linear, cubic, antialiased and area resampling for MLX.

Channels-last like all of MLX: inputs are ``(N, *spatial, C)``.

- :class:`Upsample` / :func:`upsample`: drop-in for ``mlx.nn.Upsample``
  (MLX's coordinate rules).
- :func:`interpolate`: PyTorch's ``F.interpolate`` semantics (PyTorch's
  coordinate rules, ``antialias=True`` and ``mode="area"``) on channels-last
  input.
"""

import mlx.core as mx

from ._build_config import MLX_VERSION as _BUILT_MLX_VERSION

if mx.__version__ != _BUILT_MLX_VERSION:
    raise ImportError(
        f"mlx_upsample was built against MLX {_BUILT_MLX_VERSION} but MLX "
        f"{mx.__version__} is installed; the C++ ABI must match exactly. Install "
        f"mlx=={_BUILT_MLX_VERSION} or rebuild: pip install --force-reinstall "
        "--no-cache-dir mlx-upsample (or `pip install .` in its source tree)."
    )

from ._threads import get_num_threads, set_num_threads  # noqa: E402
from .interpolate import interpolate  # noqa: E402
from .upsample import Upsample, upsample  # noqa: E402

__all__ = ["Upsample", "upsample", "interpolate", "set_num_threads", "get_num_threads"]
__version__ = "0.1.0"
