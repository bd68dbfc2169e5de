"""Fake: a manual clock (monotonic or wall, whichever the code under test takes) that moves only when told."""

from __future__ import annotations

__all__ = ["FakeClock", "no_sleep"]


class FakeClock:
    """Call it for the time; ``advance`` moves it forward."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.now += seconds


async def no_sleep(_seconds: float) -> None:
    """A ``sleep`` that returns at once (retry backoff in tests that are not about timing)."""
    return
