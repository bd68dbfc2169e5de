"""Benchmark: the streaming core. Fan-out in process to 1/3/10 consumers, SSE end to end, the Redis path, and the
memory an idle open stream costs, each beside a baseline measured in the same run (a bare asyncio.Queue fan-out,
bare XADD round trips, a bare waiting task)."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx

from adapters.memory.stream_log import InMemoryStreamLog
from adapters.redis.stream_log import RedisStreamLog
from benchmarks.harness import Result
from domain.streaming import Outcome, StreamEvent
from domain.types import CustomerId, JsonValue, StreamId
from ports.stream_log import StreamLog
from services.streaming.manager import StreamingManager, StreamPublisher
from services.streaming.runs import StreamingConfig

OWNER = CustomerId("bench")
YIELD_EVERY = 16  # producers give the loop a turn this often (a real provider yields on every network read)
REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def _queue_fanout(events: int, consumers: int) -> float:
    """Baseline: one producer putting into ``consumers`` unbounded asyncio.Queues, each drained by a task."""
    queues: list[asyncio.Queue[object]] = [asyncio.Queue() for _ in range(consumers)]

    async def drain(queue: asyncio.Queue[object]) -> None:
        while await queue.get() is not None:
            pass

    started = time.perf_counter()
    tasks = [asyncio.create_task(drain(q)) for q in queues]
    payload = {"text": "tok"}
    for index in range(events):
        for queue in queues:
            queue.put_nowait(payload)
        if index % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return events / (time.perf_counter() - started)


async def _manager_fanout(log: StreamLog, events: int, consumers: int, *, local_tail: int = 0) -> float:
    """Events per second published and received by every one of ``consumers`` subscribers."""
    config = StreamingConfig(consumer_buffer=events + 10, read_batch=256, local_tail=local_tail)
    manager = StreamingManager(log, config=config)

    async def produce(publisher: StreamPublisher) -> Mapping[str, JsonValue]:
        for index in range(events):
            await publisher.publish("text", {"text": "tok"})
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return {}

    async def consume(stream_id: StreamId) -> int:
        count = 0
        async for _ in manager.subscribe(stream_id, owner=OWNER):
            count += 1
        return count

    started = time.perf_counter()
    stream_id = await manager.open(owner=OWNER)
    readers = [asyncio.create_task(consume(stream_id)) for _ in range(consumers)]
    await asyncio.sleep(0)
    token = await manager.create_completion_token(stream_id)
    result = await produce(manager.publisher(token))
    await manager.signal_completion(token, Outcome.done(result))
    counts = await asyncio.gather(*readers)
    elapsed = time.perf_counter() - started
    assert all(count == events + 1 for count in counts), counts
    await manager.aclose()
    return events / elapsed


def _fanout(quick: bool) -> list[Result]:
    events = 20_000 if quick else 200_000
    results = []
    for consumers in (1, 3, 10):
        baseline = asyncio.run(_queue_fanout(events, consumers))
        value = asyncio.run(_manager_fanout(InMemoryStreamLog(max_events=events + 10), events, consumers))
        results.append(
            Result(
                "streaming",
                f"fan-out in process, {consumers} consumer(s)",
                value,
                "events/s",
                baseline=baseline,
                baseline_name=f"bare asyncio.Queue fan-out to {consumers}",
                note=f"{events:,} events, memory log; each consumer gets every event",
            )
        )
    return results


async def _idle_stream_bytes(streams: int) -> tuple[float, float]:
    """Bytes per open idle stream (token held, one waiting subscriber) vs. a bare task waiting on an Event."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    event = asyncio.Event()
    waiting = [asyncio.create_task(event.wait()) for _ in range(streams)]
    await asyncio.sleep(0)
    baseline = (tracemalloc.get_traced_memory()[0] - before) / streams
    event.set()
    await asyncio.gather(*waiting)
    del waiting
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    manager = StreamingManager(InMemoryStreamLog(), config=StreamingConfig(resume_grace_s=3600, stall_timeout_s=3600))
    ids = []
    for _ in range(streams):
        stream_id = await manager.open(owner=OWNER)
        await manager.create_completion_token(stream_id)
        ids.append(stream_id)
    readers: list[asyncio.Task[StreamEvent]] = [
        asyncio.create_task(anext(manager.subscribe(sid, owner=OWNER)))  # type: ignore[arg-type]
        for sid in ids
    ]
    await asyncio.sleep(0.01)
    value = (tracemalloc.get_traced_memory()[0] - before) / streams
    tracemalloc.stop()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await manager.aclose()
    return value, baseline


def _memory(quick: bool) -> list[Result]:
    value, baseline = asyncio.run(_idle_stream_bytes(500 if quick else 2000))
    return [
        Result(
            "streaming",
            "memory per open idle stream (with one waiting subscriber)",
            value / 1024,
            "KiB",
            baseline=baseline / 1024,
            baseline_name="a bare task waiting on an Event",
            note="tracemalloc; target < 50 KB",
        )
    ]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def _redis(events: int) -> tuple[float, float]:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    prefix = f"bench:{uuid.uuid4().hex}:"
    try:
        key = f"{prefix}raw"
        started = time.perf_counter()
        for _ in range(events):
            await client.xadd(key, {"p": b'{"text":"tok"}'}, maxlen=events, approximate=True)
        baseline = events / (time.perf_counter() - started)
        log = RedisStreamLog(client, prefix=prefix, max_events=events + 10)
        value = await _manager_fanout(log, events, 1, local_tail=256)
        return value, baseline
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def _redis_path(quick: bool) -> list[Result]:
    if not _redis_up():
        return []
    events = 2_000 if quick else 20_000
    value, baseline = asyncio.run(_redis(events))
    return [
        Result(
            "streaming",
            "Redis Streams log, 1 consumer (fenced Lua append + XRANGE reads)",
            value,
            "events/s",
            baseline=baseline,
            baseline_name="bare sequential XADD round trips",
            note=f"{events:,} events, local Redis",
        )
    ]


def _sse(quick: bool, fanout_one: float) -> list[Result]:
    from tests.support.app import auth_headers
    from tests.support.server import running_server

    events = 5_000 if quick else 50_000
    env = {
        "SWITCHYARD_STREAMING_MAX_EVENTS_PER_STREAM": str(events + 100),
        "SWITCHYARD_LOGGING_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as folder, running_server(Path(folder), env, test_routes=True) as server:
        headers = auth_headers("bench")
        started = time.perf_counter()
        response = httpx.post(f"{server.base_url}/api/v1/streams/test", json={"events": events}, headers=headers)
        stream_id = response.json()["data"]["stream_id"]
        received = 0
        url = f"{server.base_url}/api/v1/streams/{stream_id}/events"
        with httpx.stream("GET", url, headers=headers, timeout=60) as sse:
            for line in sse.iter_lines():
                if line.startswith("id: "):
                    received += 1
        elapsed = time.perf_counter() - started
    assert received == events + 3, received
    return [
        Result(
            "streaming",
            "SSE end to end (real server, httpx client)",
            received / elapsed,
            "events/s",
            baseline=fanout_one,
            baseline_name="in-process fan-out to 1 consumer",
            note=f"{events:,} events, one live SSE client, loopback",
        )
    ]


def run(quick: bool = False) -> list[Result]:
    results = _fanout(quick)
    results += _sse(quick, results[0].value)
    results += _redis_path(quick)
    results += _memory(quick)
    return results
