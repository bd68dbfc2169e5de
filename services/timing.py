"""Service helper: ad-hoc timers and counters over the ``Metrics`` port (usable from services and entrypoints)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from ports.metrics import Metrics

__all__ = ["Stopwatch", "counted", "timed"]


class Stopwatch:
    """Elapsed seconds of a ``timed`` block (readable inside and after it)."""

    __slots__ = ("_started", "_stopped")

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._stopped: float | None = None

    @property
    def seconds(self) -> float:
        """Seconds since the start (frozen once the block ends)."""
        return (self._stopped if self._stopped is not None else time.perf_counter()) - self._started

    def stop(self) -> float:
        """Freeze the elapsed time; returns it."""
        if self._stopped is None:
            self._stopped = time.perf_counter()
        return self.seconds


@contextmanager
def timed(metrics: Metrics, name: str, **labels: str) -> Iterator[Stopwatch]:
    """Observe the block's duration in seconds into histogram ``name`` (also when the block raises)."""
    watch = Stopwatch()
    try:
        yield watch
    finally:
        metrics.observe(name, watch.stop(), **labels)


@contextmanager
def counted(metrics: Metrics, name: str, *, error_name: str | None = None, **labels: str) -> Iterator[None]:
    """Increment counter ``name`` once per block; when it raises, also ``error_name`` (if given)."""
    try:
        yield
    except BaseException:
        if error_name is not None:
            metrics.increment(error_name, 1.0, **labels)
        raise
    finally:
        metrics.increment(name, 1.0, **labels)
