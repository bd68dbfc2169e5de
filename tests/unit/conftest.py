"""Unit-test fixtures shared by the chat and streaming suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from services.streaming import StreamingManager


@pytest.fixture
async def manager() -> AsyncIterator[StreamingManager]:
    """A StreamingManager on a fresh in-memory log with default settings, closed after the test."""
    streams = StreamingManager(InMemoryStreamLog())
    yield streams
    await streams.aclose()
