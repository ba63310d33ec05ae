"""The timing harness: how one contender's calls are timed, and a case's contenders together.

Each contender gets `warmup` untimed calls, then `repeats` timed calls, interleaved with
the other contenders of its case (the call order rotates every round). Each timed call
ends a burst of calls of the same contender (at least BURST calls and BURST_SECONDS, the
others untimed), so it measures a call in a loop of that op, not the cost of switching
from another library (whose data fills the cache), and each burst starts once the
process is idle (PyTorch's OpenMP workers spin on every core for milliseconds after each
call, which would slow whoever runs next). A contender whose first call takes more than
SLOW_SECONDS (in practice mlx.nn.Upsample cubic, worst in 3-D) gets a single warm-up and
at most SLOW_REPEATS timed calls. A case in which a fast contender's interquartile range
exceeds NOISY_SPREAD of its median is timed again, all its fast contenders together, up
to RETRIES times, keeping the steadiest attempt (time_rounds).
"""

import ctypes
import platform
import sys
import time

import numpy as np

SLOW_SECONDS = 1.0
# Each timed call ends a burst of calls of the same contender lasting at least BURST calls
# and BURST_SECONDS, so that it runs the way calls in a loop do: its threads awake, its
# data in cache and the cores up to speed (measured here: a 1 ms op needs 5-10 calls
# after a pause to settle).
BURST = 3
BURST_SECONDS = 0.02
# A burst starts only once the process has been idle for IDLE_STEP_SECONDS (less than
# IDLE_CPU of a core busy), waiting at most IDLE_MAX_SECONDS: PyTorch's OpenMP workers
# busy-wait on every core for several milliseconds after each call (measured: 6-8 ms at
# ~190% CPU on this 2-core box), which would otherwise slow whoever runs next.
IDLE_STEP_SECONDS = 0.002
IDLE_CPU = 0.1
IDLE_MAX_SECONDS = 0.1
SLOW_REPEATS = 3
# A case is timed again (up to RETRIES times) when a fast contender's interquartile range
# exceeds NOISY_SPREAD of its median (time_rounds).
NOISY_SPREAD = 0.5
RETRIES = 2


def wait_until_idle():
    """Sleeps until the process used under IDLE_CPU of a core for IDLE_STEP_SECONDS."""
    deadline = time.perf_counter() + IDLE_MAX_SECONDS
    while time.perf_counter() < deadline:
        wall, cpu = time.perf_counter(), time.process_time()
        time.sleep(IDLE_STEP_SECONDS)
        if time.process_time() - cpu < IDLE_CPU * (time.perf_counter() - wall):
            return


class Contender:
    """One timed callable; `run` is None when the implementation has no such mode."""

    def __init__(self, impl, pass_name, run):
        self.impl, self.pass_name, self.run = impl, pass_name, run
        self.times, self.repeats, self.slow, self.error = [], 0, False, None

    def warm_up(self, warmup, repeats):
        """Untimed calls; returns the last result (None on error or n/a)."""
        if self.run is None:
            return None
        try:
            start = time.perf_counter()
            result = self.run()
            self.slow = time.perf_counter() - start > SLOW_SECONDS
            for _ in range(0 if self.slow else warmup - 1):
                result = self.run()
        except Exception as exc:  # report and keep benchmarking the others
            self.error = f"{type(exc).__name__}: {exc}"
            print(f"\n{self.impl} {self.pass_name} failed: {self.error}", file=sys.stderr)
            return None
        self.repeats = min(repeats, SLOW_REPEATS) if self.slow else repeats
        return result

    def time_once(self):
        wait_until_idle()
        if not self.slow:
            start, calls = time.perf_counter(), 0
            while calls < BURST - 1 or time.perf_counter() - start < BURST_SECONDS:
                self.run()
                calls += 1
        start = time.perf_counter()
        self.run()
        self.times.append((time.perf_counter() - start) * 1e3)

    def stats(self):
        if not self.times:
            return {"status": "error" if self.error else "n/a", "error": self.error}
        t = np.array(self.times)
        q1, q3 = np.percentile(t, [25, 75])
        return {"status": "ok", "median_ms": float(np.median(t)), "min_ms": float(t.min()),
                "max_ms": float(t.max()), "q1_ms": float(q1), "q3_ms": float(q3),
                "repeats": len(t), "reduced_repeats": self.slow, "times_ms": self.times}


def spread(stats):
    """Interquartile range over the median, of a Contender.stats() (the table's ±%)."""
    return (stats["q3_ms"] - stats["q1_ms"]) / stats["median_ms"]


def time_rounds(contenders, repeats):
    """Times the contenders in interleaved rounds (the order rotates every round).

    On shared machines something outside the process sometimes stalls a whole stretch of
    a run (seen here: 4 of 7 runs of a 0.4 ms torch call at exactly 8.0 ms, the others
    normal). So when a fast contender's spread exceeds NOISY_SPREAD, all fast contenders
    are timed again together, up to RETRIES times, and the attempt with the smallest
    worst spread is kept: every contender of a case comes from the same attempt. Slow
    contenders (seconds per call) keep their first attempt. Returns the attempts made.
    """
    fast = [c for c in contenders if c.run is not None and not c.error and not c.slow]
    kept, kept_spread = None, np.inf
    for attempt in range(1 + RETRIES):
        if attempt > 0:
            for c in fast:
                c.times = []
        for round_index in range(repeats):
            shift = round_index % len(contenders)
            for c in contenders[shift:] + contenders[:shift]:
                if c.run is None or c.error or round_index >= c.repeats:
                    continue
                if attempt == 0 or c in fast:
                    c.time_once()
        worst = max((spread(c.stats()) for c in fast), default=0.0)
        if worst < kept_spread:
            kept, kept_spread = {c: c.times for c in fast}, worst
        if worst <= NOISY_SPREAD:
            break
    for c, times in kept.items():
        c.times = times
    return attempt + 1


def keep_freed_memory():
    """Make glibc serve large blocks from the heap and never trim it; True if applied.

    Otherwise every call of every contender page-faults a fresh mmap() for its output,
    which costs more than the op itself and depends on allocator history."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 2**30) and libc.mallopt(m_trim_threshold, 2**31 - 1))
