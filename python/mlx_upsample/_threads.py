"""The CPU kernels' thread count: checked here, kept in C++."""

import warnings
from numbers import Integral

from . import _ext
from ._checks import short_repr

MAX_THREADS = _ext.MAX_THREADS

_env_problem = _ext.num_threads_env_problem()
if _env_problem:
    warnings.warn(_env_problem, RuntimeWarning, stacklevel=2)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (1 to 1024) for the CPU kernels, from the next
    evaluated op on. The default is ``MLX_UPSAMPLE_NUM_THREADS`` when it is
    an integer in that range (anything else is ignored with a
    ``RuntimeWarning``), else the number of hardware threads. If the threads
    cannot be started, evaluating the op raises ``RuntimeError``."""
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"n must be an int, got {type(n).__name__} {short_repr(n)}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"n must be between 1 and {MAX_THREADS}, got {short_repr(n)}")
    _ext.set_num_threads(int(n))


def get_num_threads() -> int:
    """The number of threads the CPU kernels use (never waits for a running op)."""
    return _ext.get_num_threads()
