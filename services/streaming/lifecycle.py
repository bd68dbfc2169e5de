"""Use case wiring: the StreamingManager as a resource with a lifetime (its tasks end when the process stops)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ports.metrics import Metrics
from ports.stream_log import StreamLog
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig

__all__ = ["streaming_manager_resource"]


async def streaming_manager_resource(
    log: StreamLog, config: StreamingConfig, metrics: Metrics
) -> AsyncIterator[StreamingManager]:
    """Container resource: a manager over ``log``; on shutdown its streams end with ``cancelled`` (``shutdown``)."""
    manager = StreamingManager(log, config=config, metrics=metrics)
    try:
        yield manager
    finally:
        await manager.aclose()
