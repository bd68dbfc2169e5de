"""Container wiring of the streaming core: the log follows streaming.backend; the manager is a resource."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from redis.asyncio import Redis

from adapters.memory.stream_log import InMemoryStreamLog
from adapters.redis.stream_log import RedisStreamLog
from container import _redis_stream_log
from domain.errors import ConfigurationError
from services.streaming.manager import StreamingManager
from settings.model import StreamingSettings
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


async def test_the_attachment_bound_reaches_the_manager_and_both_logs(tmp_path: Path) -> None:
    """streaming.max_attachment_bytes bounds attachments in the manager's config and in the memory and Redis logs."""
    container = make_container(make_settings(tmp_path, streaming={"max_attachment_bytes": 123}))
    log = container.stream_log()
    assert isinstance(log, InMemoryStreamLog)
    assert log._max_attachment_bytes == 123
    manager = container.streaming_manager()
    if inspect.isawaitable(manager):
        manager = await manager
    assert isinstance(manager, StreamingManager)
    assert manager.config.max_attachment_bytes == 123
    result = container.shutdown_resources()
    if result is not None:
        await result
    redis = _redis_stream_log(Redis.from_url("redis://127.0.0.1:1"), StreamingSettings(max_attachment_bytes=77))
    assert isinstance(redis, RedisStreamLog)
    assert redis._max_attachment_bytes == 77
    await redis._client.aclose()
