"""Driven port: the metrics exposition page (what ``GET /metrics`` serves), apart from recording metrics."""

from __future__ import annotations

from typing import NamedTuple, Protocol

__all__ = ["MetricsExporter", "MetricsPage"]


class MetricsPage(NamedTuple):
    """A rendered scrape: the body and its content type."""

    body: bytes
    content_type: str


class MetricsExporter(Protocol):
    """Renders every metric of this process (or of all workers, in multiprocess mode)."""

    def render(self) -> MetricsPage:
        """The current exposition in the Prometheus text format."""
        ...
