"""Benchmark: chat through Switchyard vs. the official SDK straight to the same fake upstream (the vendor emulator).

One run starts the emulator (``python -m tests.emulator``, its own process) and a real ``switchyard serve`` whose
OpenAI provider points at it, then measures on the same machine:

- non-streaming: requests/s and median latency, N requests at fixed concurrency. Baseline: ``AsyncOpenAI`` to the
  emulator. Through Switchyard: ``POST /api/v1/chat`` (``stream: false``) with the same model, served by the
  OpenAI adapter (which, like the baseline, calls the vendor without streaming);
- streaming: time to first token and mean inter-token gap over a paced 40-token stream (5 ms apart). Baseline: SDK
  stream; through Switchyard: the SSE ``text`` events of ``POST /api/v1/chat`` with ``stream: true``.

The load generator shares the cores with both servers, so absolute numbers are pessimistic; the ratios are the point.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI

from adapters.openai import build_openai_text_provider
from benchmarks.harness import Result
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message, TextDelta
from tests.support.app import mint
from tests.support.server import free_port, running_server

SUITE = "chat"
ROOT = Path(__file__).resolve().parents[1]
CATALOG = """
[[models]]
id = "bench-text"
provider = "openai"
vendor_model = "text"
api = "chat"
capabilities = ["text"]

[[models]]
id = "bench-stream"
provider = "openai"
vendor_model = "bench-stream"
api = "chat"
capabilities = ["text"]
"""
MESSAGES = [{"role": "user", "content": "Say hello."}]


@contextmanager
def _emulator() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the vendor emulator did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _load(call: Callable[[], Awaitable[None]], total: int, concurrency: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in ms) for ``total`` calls, ``concurrency`` at a time."""
    latencies: list[float] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), latencies


def _gaps(arrivals: list[float]) -> float:
    return statistics.fmean(b - a for a, b in itertools.pairwise(arrivals)) if len(arrivals) > 1 else 0.0


async def _direct(emulator: str, total: int, concurrency: int, streams: int) -> dict[str, float]:
    client = AsyncOpenAI(api_key="sk-bench", base_url=f"{emulator}/v1", max_retries=0)

    async def one() -> None:
        reply = await client.chat.completions.create(model="text", messages=MESSAGES)  # type: ignore[arg-type]
        assert reply.choices[0].message.content

    await _load(one, min(20, total), concurrency)  # warm-up
    rate, latencies = await _load(one, total, concurrency)
    ttfts, gaps = [], []
    for _ in range(streams):
        started = time.perf_counter()
        arrivals: list[float] = []
        stream: Any = await client.chat.completions.create(model="bench-stream", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter())
        ttfts.append((arrivals[0] - started) * 1000)
        gaps.append(_gaps(arrivals) * 1000)
    await client.close()
    return {
        "rps": rate,
        "p50": statistics.median(latencies),
        "ttft": statistics.median(ttfts),
        "itl": statistics.fmean(gaps),
    }


async def _switchyard(base_url: str, total: int, concurrency: int, streams: int) -> dict[str, float]:
    """Through ``POST /api/v1/chat``; without ``ttft``/``itl`` when this build answers streams with 503."""
    headers = {"Authorization": f"Bearer {mint('bench')}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0, limits=limits) as client:

        async def one() -> None:
            reply = await client.post("/api/v1/chat", json={"model": "openai/bench-text", "messages": MESSAGES})
            assert reply.status_code == 200, reply.text

        await _load(one, min(20, total), concurrency)
        rate, latencies = await _load(one, total, concurrency)
        measured = {"rps": rate, "p50": statistics.median(latencies)}
        ttfts, gaps = [], []
        body = {"model": "openai/bench-stream", "messages": MESSAGES, "stream": True}
        for _ in range(streams):
            started = time.perf_counter()
            arrivals: list[float] = []
            event = ""
            async with client.stream("POST", "/api/v1/chat", json=body) as response:
                if response.status_code == 503:  # SSE delivery not wired in this build: measured in-process instead
                    return measured
                if response.status_code != 200:
                    raise RuntimeError(f"stream refused: {response.status_code} {(await response.aread())[:500]!r}")
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line.removeprefix("event:").strip()
                    elif line.startswith("data:") and event == "text":
                        arrivals.append(time.perf_counter())
                    elif line.startswith("data:") and event in ("done", "error"):
                        assert event == "done", line
                        break
            ttfts.append((arrivals[0] - started) * 1000)
            gaps.append(_gaps(arrivals) * 1000)
    return measured | {"ttft": statistics.median(ttfts), "itl": statistics.fmean(gaps)}


async def _adapter_streams(emulator: str, streams: int) -> dict[str, float]:
    """Streaming through the OpenAI adapter in-process (no HTTP hop of ours): the fallback measurement."""
    provider = build_openai_text_provider(
        name="openai", api_key="sk-bench", base_url=f"{emulator}/v1", timeout_s=30.0, connect_timeout_s=5.0
    )
    model = ModelSpec(id="bench-stream", provider="openai", capabilities=frozenset({"text"}), api="chat")
    request = ChatRequest(model="openai/bench-stream", messages=[Message("user", "Say hello.")])
    ttfts, gaps = [], []
    for _ in range(streams):
        started = time.perf_counter()
        arrivals = [time.perf_counter() async for e in provider.stream(request, model) if isinstance(e, TextDelta)]
        ttfts.append((arrivals[0] - started) * 1000)
        gaps.append(_gaps(arrivals) * 1000)
    await provider.aclose()
    return {"ttft": statistics.median(ttfts), "itl": statistics.fmean(gaps)}


def run(quick: bool = False) -> list[Result]:
    total, concurrency, streams = (100, 10, 5) if quick else (1000, 20, 30)
    with tempfile.TemporaryDirectory() as tmp, _emulator() as emulator:
        catalog = Path(tmp) / "catalog.toml"
        catalog.write_text(CATALOG)
        direct = asyncio.run(_direct(emulator, total, concurrency, streams))
        env = {
            "SWITCHYARD_PROVIDERS_OPENAI_API_KEY": "sk-bench",
            "SWITCHYARD_PROVIDERS_OPENAI_BASE_URL": f"{emulator}/v1",
            "SWITCHYARD_PROVIDERS_CATALOG_PATH": str(catalog),
            "SWITCHYARD_LOGGING_LEVEL": "WARNING",
        }
        with running_server(Path(tmp), env) as server:
            through = asyncio.run(_switchyard(server.base_url, total, concurrency, streams))
        stream_via = "via Switchyard"
        if "ttft" not in through:
            through |= asyncio.run(_adapter_streams(emulator, streams))
            stream_via = "via the OpenAI adapter in-process (SSE chat not wired in this build)"
    base = "direct AsyncOpenAI -> emulator"
    note = f"{total} requests, concurrency {concurrency}"
    stream_note = f"{streams} streams of 40 tokens paced 5 ms"
    print(json.dumps({"direct": direct, "switchyard": through}, indent=2))
    return [
        Result(SUITE, "non-stream requests/s via Switchyard", through["rps"], "req/s", direct["rps"], base, note),
        Result(SUITE, "non-stream p50 latency via Switchyard", through["p50"], "ms", direct["p50"], base, note),
        Result(
            SUITE, f"stream time to first token {stream_via}", through["ttft"], "ms", direct["ttft"], base, stream_note
        ),
        Result(
            SUITE, f"stream mean inter-token gap {stream_via}", through["itl"], "ms", direct["itl"], base, stream_note
        ),
    ]
