"""Driven adapter: Redis Streams implementation of StreamLog (the "outgrow one machine" path).

Layout per stream (hash-tagged, so both keys live in one cluster slot): ``<prefix>{<id>}:meta`` is a hash (owner,
kind, gen, status, last_seq, created, seen, meta) and ``<prefix>{<id>}:log`` a Redis Stream whose entry ids are
``<seq>-0`` and whose fields are ``t`` (type), ``p`` (payload JSON), ``ts`` and, for an event with a binary
attachment, ``d``: the raw bytes (the client runs with ``decode_responses=False``, so nothing is encoded on the way).
Appends and the finalize run in one Lua script that checks the generation and the status before
``XADD ... MAXLEN ~ n``, so a superseded producer can never write, and both keys get their TTL refreshed. The
producer lease (``lease`` in meta) is kept on the Redis server's clock; ``reap`` checks and ends a lapsed stream in
one script, so two instances reaping at once write one terminal event. Readers
use ``XRANGE`` from their cursor and block in ``XREAD`` for new entries; any process sharing the Redis can read and
resume a stream another process produces.

The foundation's client has a bounded connection pool that raises when exhausted, so commands pass through a
semaphore and blocking reads through a smaller one (a reader that finds it full polls instead).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import CompletionOwnershipError, NotFoundError, ServiceUnavailableError
from domain.streaming import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    LogRead,
    Outcome,
    StreamClosedError,
    StreamEvent,
    StreamInfo,
    StreamStatus,
    check_attachment,
)
from domain.types import CustomerId, JsonValue, StreamId

__all__ = ["RedisStreamLog"]

T = TypeVar("T")
_LUA: Final = (Path(__file__).parent / "stream_log.lua").read_text()
_NOT_FOUND: Final = -1
_STALE: Final = -2
_CLOSED: Final = -3
_STATUSES: Final[dict[bytes, StreamStatus]] = {
    b"open": "open",
    b"done": "done",
    b"error": "error",
    b"cancelled": "cancelled",
}


def _script(name: str) -> str:
    """One named section (``-- @name``) of stream_log.lua."""
    sections = _LUA.split("-- @")
    for section in sections[1:]:
        head, _, body = section.partition("\n")
        if head.strip() == name:
            return body
    raise KeyError(name)


class RedisStreamLog:
    """StreamLog on Redis Streams; ``prefix`` namespaces the keys (tests use a unique one each)."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "switchyard:stream:",
        max_events: int = 10_000,
        ttl_s: float = 3600.0,
        lease_s: float = 10.0,
        max_block_s: float = 2.0,
        max_in_flight: int = 64,
        max_blocking: int = 16,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._max_events = max_events
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._lease_ms = max(1, int(lease_s * 1000))
        self._max_block_ms = max(1, int(max_block_s * 1000))
        self._max_attachment_bytes = max_attachment_bytes
        self._gate = asyncio.Semaphore(max_in_flight)
        self._blocking = asyncio.Semaphore(max_blocking)
        self._create = client.register_script(_script("create"))
        self._advance = client.register_script(_script("advance"))
        self._write = client.register_script(_script("write"))
        self._touch = client.register_script(_script("touch"))
        self._renew = client.register_script(_script("renew"))
        self._reap = client.register_script(_script("reap"))

    def _keys(self, stream_id: StreamId) -> tuple[str, str]:
        base = f"{self._prefix}{{{stream_id}}}"
        return f"{base}:meta", f"{base}:log"

    async def _call(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        try:
            async with self._gate:
                result = await call()
        except RedisError as exc:
            raise ServiceUnavailableError(
                f"redis did not answer ({op})", context={"backend": "redis", "operation": op}
            ) from exc
        # redis-py sends through asyncio.wait_for, which on Python 3.11 can swallow a cancellation that lands as the
        # send completes: the command returns as if nothing happened and a cancelled reader would read on forever.
        if task is not None and task.cancelling() > cancelling:
            raise asyncio.CancelledError
        return result

    async def create(self, info: StreamInfo) -> None:
        keys = self._keys(info.stream_id)
        args: list[str | int] = [
            info.owner,
            info.kind,
            info.generation,
            info.last_seq,
            repr(info.created_at),
            json.dumps(dict(info.meta), separators=(",", ":")),
            self._ttl_ms,
        ]
        created = await self._call("create", lambda: self._create(keys=[keys[0]], args=args))
        if not created:
            raise ValueError(f"stream {info.stream_id} exists")

    async def get(self, stream_id: StreamId) -> StreamInfo | None:
        raw = await self._call("get", lambda: self._client.hgetall(self._keys(stream_id)[0]))
        return self._info(stream_id, cast("Mapping[bytes, bytes]", raw)) if raw else None

    @staticmethod
    def _info(stream_id: StreamId, raw: Mapping[bytes, bytes]) -> StreamInfo:
        return StreamInfo(
            stream_id=stream_id,
            owner=CustomerId(raw[b"owner"].decode()),
            kind=raw[b"kind"].decode(),
            generation=int(raw[b"gen"]),
            status=_STATUSES[raw[b"status"]],
            last_seq=int(raw[b"last_seq"]),
            created_at=float(raw[b"created"]),
            last_seen=float(raw.get(b"seen", b"0")),
            meta=json.loads(raw.get(b"meta", b"{}")),
            lease_until=int(raw.get(b"lease", b"0")) / 1000,
        )

    async def advance_generation(self, stream_id: StreamId) -> int:
        meta, _ = self._keys(stream_id)
        args = [self._lease_ms]
        result = int(await self._call("advance_generation", lambda: self._advance(keys=[meta], args=args)))
        if result == _NOT_FOUND:
            raise NotFoundError("stream not found", context={"stream_id": stream_id})
        if result == _CLOSED:
            raise StreamClosedError(stream_id)
        return result

    async def _written(
        self,
        stream_id: StreamId,
        generation: int,
        type: str,
        payload: Mapping[str, JsonValue],
        data: bytes | None,
        status: str,
    ) -> StreamEvent:
        ts = time.time()
        body = json.dumps(dict(payload), separators=(",", ":"))
        args: list[str | int | bytes] = [generation, type, body, repr(ts), self._max_events, self._ttl_ms, status]
        args.append(self._lease_ms)
        if data is not None:
            args.append(data)  # ARGV[9]: present only for an event with an attachment
        result: Sequence[int] = await self._call("append", lambda: self._write(keys=self._keys(stream_id), args=args))
        seq, current = int(result[0]), int(result[1])
        if seq == _NOT_FOUND:
            raise NotFoundError("stream not found", context={"stream_id": stream_id})
        if seq == _STALE:
            raise CompletionOwnershipError(
                "stale generation: a newer producer owns this stream",
                context={"stream_id": stream_id, "generation": generation, "current": current},
            )
        if seq == _CLOSED:
            if status:
                raise CompletionOwnershipError("the stream has already ended", context={"stream_id": stream_id})
            raise StreamClosedError(stream_id)
        return StreamEvent(stream_id, seq, type, payload, ts, data)

    async def append(
        self,
        stream_id: StreamId,
        generation: int,
        type: str,
        payload: Mapping[str, JsonValue],
        data: bytes | None = None,
    ) -> StreamEvent:
        check_attachment(stream_id, data, self._max_attachment_bytes)  # before the round trip
        blob = None if data is None else bytes(data)
        return await self._written(stream_id, generation, type, payload, blob, "")

    async def finalize(self, stream_id: StreamId, generation: int, outcome: Outcome) -> StreamEvent:
        return await self._written(stream_id, generation, outcome.type, outcome.payload, None, outcome.type)

    async def renew(self, stream_id: StreamId, generation: int) -> None:
        meta, _ = self._keys(stream_id)
        args = [generation, self._lease_ms]
        result = int(await self._call("renew", lambda: self._renew(keys=[meta], args=args)))
        if result == _NOT_FOUND:
            raise NotFoundError("stream not found", context={"stream_id": stream_id})
        if result == _STALE:
            raise CompletionOwnershipError(
                "stale generation: a newer producer owns this stream",
                context={"stream_id": stream_id, "generation": generation},
            )
        if result == _CLOSED:
            raise StreamClosedError(stream_id)

    async def reap(self, stream_id: StreamId, outcome: Outcome) -> StreamEvent | None:
        ts = time.time()
        body = json.dumps(dict(outcome.payload), separators=(",", ":"))
        args: list[str | int] = [outcome.type, body, repr(ts), self._max_events, self._ttl_ms, outcome.type]
        seq = int(await self._call("reap", lambda: self._reap(keys=self._keys(stream_id), args=args)))
        if seq == _NOT_FOUND:
            raise NotFoundError("stream not found", context={"stream_id": stream_id})
        if seq == 0:
            return None
        return StreamEvent(stream_id, seq, outcome.type, outcome.payload, ts)

    async def read(self, stream_id: StreamId, after: int, limit: int) -> LogRead:
        meta, log = self._keys(stream_id)

        async def transaction() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hgetall(meta)
                pipe.xrange(log, min=f"{after + 1}-0", max="+", count=max(1, limit))
                pipe.xrange(log, min="-", max="+", count=1)
                return list(await pipe.execute())

        raw, entries, first = await self._call("read", transaction)
        if not raw:
            raise NotFoundError("stream not found", context={"stream_id": stream_id})
        info = self._info(stream_id, raw)
        events = tuple(self._event(stream_id, entry_id, fields) for entry_id, fields in entries) if limit > 0 else ()
        first_seq = _seq_of(first[0][0]) if first else 0
        return LogRead(events, first_seq, info.last_seq, info.status, info.lease_until)

    @staticmethod
    def _event(stream_id: StreamId, entry_id: bytes, fields: Mapping[bytes, bytes]) -> StreamEvent:
        return StreamEvent(
            stream_id,
            _seq_of(entry_id),
            fields[b"t"].decode(),
            json.loads(fields[b"p"]),
            float(fields[b"ts"]),
            fields.get(b"d"),
        )

    async def wait(self, stream_id: StreamId, after: int, timeout_s: float) -> bool:
        block_ms = max(1, min(self._max_block_ms, int(timeout_s * 1000)))
        if self._blocking.locked():  # every blocking slot is taken: poll instead of exhausting the pool
            await asyncio.sleep(min(timeout_s, 0.05))
            return False
        _, log = self._keys(stream_id)
        async with self._blocking:
            found = await self._call("wait", lambda: self._client.xread({log: f"{after}-0"}, count=1, block=block_ms))
        return bool(found)

    async def touch(self, stream_id: StreamId) -> None:
        meta, _ = self._keys(stream_id)
        await self._call("touch", lambda: self._touch(keys=[meta], args=[repr(time.time())]))

    async def trim(self, stream_id: StreamId, keep: int) -> None:
        _, log = self._keys(stream_id)
        await self._call("trim", lambda: self._client.xtrim(log, maxlen=max(1, keep), approximate=False))

    async def expire(self, stream_id: StreamId, ttl_s: float) -> None:
        keys = self._keys(stream_id)
        if ttl_s <= 0:
            await self._call("expire", lambda: self._client.delete(*keys))
            return

        async def both() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.pexpire(key, max(1, int(ttl_s * 1000)))
                await pipe.execute()

        await self._call("expire", both)


def _seq_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])
