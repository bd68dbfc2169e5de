"""Container wiring of the streaming core: the log follows streaming.backend; the manager is a resource."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import ConfigurationError
from services.streaming.manager import StreamingManager
from tests.support.app import make_container, make_settings


async def test_memory_backend_gives_the_in_memory_log_and_a_configured_manager(tmp_path: Path) -> None:
    """backend=memory builds InMemoryStreamLog; the manager gets the settings' grace, stall and buffer."""
    settings = make_settings(tmp_path, streaming={"resume_grace_s": 7.0, "stall_timeout_s": 9.0, "consumer_buffer": 11})
    container = make_container(settings)
    assert isinstance(container.stream_log(), InMemoryStreamLog)
    manager = container.streaming_manager()
    if inspect.isawaitable(manager):
        manager = await manager
    assert isinstance(manager, StreamingManager)
    assert (manager.config.resume_grace_s, manager.config.stall_timeout_s, manager.config.consumer_buffer) == (
        7.0,
        9.0,
        11,
    )
    result = container.shutdown_resources()
    if result is not None:
        await result


async def test_redis_backend_without_a_redis_url_names_the_missing_setting(tmp_path: Path) -> None:
    """backend=redis with no redis.url fails with a ConfigurationError naming redis.url."""
    container = make_container(make_settings(tmp_path, streaming={"backend": "redis"}))

    async def build() -> object:
        log = container.stream_log()
        return await log if inspect.isawaitable(log) else log

    with pytest.raises(ConfigurationError, match=r"redis\.url"):
        await build()
