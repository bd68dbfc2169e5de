"""Fake: metrics that remember every value, so tests assert on state instead of calls."""

from __future__ import annotations

from collections import defaultdict

__all__ = ["RecordingMetrics"]

LabelKey = tuple[str, tuple[tuple[str, str], ...]]


class RecordingMetrics:
    """Counters and gauges summed per (name, labels); histograms keep every observation."""

    def __init__(self) -> None:
        self.counters: defaultdict[LabelKey, float] = defaultdict(float)
        self.gauges: defaultdict[LabelKey, float] = defaultdict(float)
        self.observations: defaultdict[LabelKey, list[float]] = defaultdict(list)

    @staticmethod
    def _key(name: str, labels: dict[str, str]) -> LabelKey:
        return name, tuple(sorted(labels.items()))

    def increment(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self.counters[self._key(name, labels)] += amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        self.observations[self._key(name, labels)].append(value)

    def gauge_add(self, name: str, delta: float, **labels: str) -> None:
        self.gauges[self._key(name, labels)] += delta

    def total(self, name: str) -> float:
        """Sum of a counter over all label sets."""
        return sum(v for (n, _), v in self.counters.items() if n == name)
