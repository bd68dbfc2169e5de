"""Fakes and helpers for the streaming core: scripted and remote-controlled producers, readers, log factories."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from adapters.memory.stream_log import InMemoryStreamLog
from adapters.redis.stream_log import RedisStreamLog
from domain.streaming import DEFAULT_MAX_ATTACHMENT_BYTES, StreamEvent
from domain.types import CustomerId, JsonValue, StreamId
from ports.stream_log import StreamLog
from services.streaming.manager import Producer, StreamingManager, StreamPublisher

__all__ = [
    "ALICE",
    "BOB",
    "RemoteProducer",
    "collect",
    "redis_log",
    "scripted",
    "stream_log",
]

ALICE = CustomerId("alice")
BOB = CustomerId("bob")


def scripted(
    events: Sequence[tuple[str, Mapping[str, JsonValue]]],
    *,
    result: Mapping[str, JsonValue] | None = None,
    delay_s: float = 0.0,
    fail: BaseException | None = None,
    hang: bool = False,
) -> Producer:
    """A producer that publishes ``events`` (sleeping ``delay_s`` between them), then returns, raises or hangs."""

    async def produce(publisher: StreamPublisher) -> Mapping[str, JsonValue] | None:
        for type_, payload in events:
            await publisher.publish(type_, payload)
            if delay_s:
                await asyncio.sleep(delay_s)
        if fail is not None:
            raise fail
        if hang:
            await asyncio.Event().wait()
        return result

    return produce


class RemoteProducer:
    """A producer driven step by step from the test: ``emit`` publishes one event, ``finish`` returns."""

    def __init__(self) -> None:
        self._commands: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self._acks: asyncio.Queue[object] = asyncio.Queue()
        self.cancelled = False

    async def __call__(self, publisher: StreamPublisher) -> Mapping[str, JsonValue] | None:
        try:
            while True:
                kind, arg = await self._commands.get()
                if kind == "emit":
                    assert isinstance(arg, tuple)
                    try:
                        seq = await publisher.publish(arg[0], arg[1], arg[2])
                    except Exception as exc:
                        await self._acks.put(exc)
                        raise
                    await self._acks.put(seq)
                elif kind == "finish":
                    return arg if isinstance(arg, dict) else None
                elif kind == "fail":
                    assert isinstance(arg, BaseException)
                    raise arg
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def emit(self, type_: str, payload: Mapping[str, JsonValue], data: bytes | None = None) -> object:
        """Publish one event (with ``data`` as its attachment) through the producer; returns its seq (or the
        exception the publish raised)."""
        await self._commands.put(("emit", (type_, payload, data)))
        return await self._acks.get()

    def finish(self, result: Mapping[str, JsonValue] | None = None) -> None:
        """Let the producer return ``result``."""
        self._commands.put_nowait(("finish", dict(result or {})))

    def fail(self, error: BaseException) -> None:
        """Make the producer raise ``error``."""
        self._commands.put_nowait(("fail", error))


async def collect(
    manager: StreamingManager, stream_id: StreamId, *, owner: CustomerId = ALICE, after: int = 0
) -> list[StreamEvent]:
    """Every event a fresh subscriber receives until the stream ends."""
    return [event async for event in manager.subscribe(stream_id, owner=owner, after=after)]


@asynccontextmanager
async def redis_log(url: str, **kwargs: object) -> AsyncIterator[RedisStreamLog]:
    """A RedisStreamLog on ``url`` under a unique key prefix, whose keys are deleted afterwards."""
    client = Redis.from_url(url, decode_responses=False)
    prefix = f"test:{uuid.uuid4().hex}:"
    try:
        yield RedisStreamLog(client, prefix=prefix, **kwargs)  # type: ignore[arg-type]
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@asynccontextmanager
async def stream_log(
    backend: str,
    *,
    max_events: int = 10_000,
    ttl_s: float = 3600.0,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
) -> AsyncIterator[StreamLog]:
    """A fresh log of either backend (``redis`` needs the test Redis: the caller checks it with require_service)."""
    if backend == "memory":
        yield InMemoryStreamLog(max_events=max_events, ttl_s=ttl_s, max_attachment_bytes=max_attachment_bytes)
        return
    from tests.support.services import require_service

    url = require_service("redis")
    async with redis_log(url, max_events=max_events, ttl_s=ttl_s, max_attachment_bytes=max_attachment_bytes) as log:
        yield log
