"""Benchmark: time to the first audio byte of text-to-speech through Switchyard vs. the official SDK straight to the
same fake upstream (the emulator).

One run starts the vendor emulator and a real ``switchyard serve`` whose OpenAI provider points at it, then asks for
the same sentence N times, one request at a time, both ways: ``AsyncOpenAI``
``audio.speech.with_streaming_response.create`` to the emulator, and ``POST /api/v1/audio/speech`` (the OpenAI
speech adapter behind it, the audio streamed through). Reported: the median time from sending the request to the
first audio byte, and to the last, each beside the direct figure measured in the same run; the target is at most
2 ms added to the first byte at the median.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from openai import AsyncOpenAI

from benchmarks.bench_chat import _emulator
from benchmarks.harness import Result
from tests.support.app import mint
from tests.support.server import running_server

SUITE = "speech"
MODEL = "gpt-4o-mini-tts"
TEXT = "The lighthouse keeper spoke softly to the evening tide."


async def _direct(emulator: str, total: int) -> dict[str, float]:
    client = AsyncOpenAI(api_key="sk-bench", base_url=f"{emulator}/v1", max_retries=0)

    async def one() -> tuple[float, float]:
        started = time.perf_counter()
        first: float | None = None
        async with client.audio.speech.with_streaming_response.create(
            model=MODEL, voice="alloy", input=TEXT, response_format="mp3"
        ) as response:
            async for chunk in response.iter_bytes():
                if chunk and first is None:
                    first = time.perf_counter()
        assert first is not None
        return (first - started) * 1000, (time.perf_counter() - started) * 1000

    for _ in range(min(10, total)):  # warm-up: connections, the emulator's encoder
        await one()
    timings = [await one() for _ in range(total)]
    await client.close()
    return {"ttfb": statistics.median(t[0] for t in timings), "total": statistics.median(t[1] for t in timings)}


async def _switchyard(base_url: str, total: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {mint('bench')}"}
    body = {"model": f"openai/{MODEL}", "voice": "alloy", "input": TEXT, "format": "mp3"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0) as client:

        async def one() -> tuple[float, float]:
            started = time.perf_counter()
            first: float | None = None
            async with client.stream("POST", "/api/v1/audio/speech", json=body) as response:
                assert response.status_code == 200, await response.aread()
                async for chunk in response.aiter_raw():
                    if chunk and first is None:
                        first = time.perf_counter()
            assert first is not None
            return (first - started) * 1000, (time.perf_counter() - started) * 1000

        for _ in range(min(10, total)):
            await one()
        timings = [await one() for _ in range(total)]
    return {"ttfb": statistics.median(t[0] for t in timings), "total": statistics.median(t[1] for t in timings)}


def run(quick: bool = False) -> list[Result]:
    total = 20 if quick else 100
    with tempfile.TemporaryDirectory() as tmp, _emulator() as emulator:
        direct = asyncio.run(_direct(emulator, total))
        env = {
            "SWITCHYARD_PROVIDERS_OPENAI_API_KEY": "sk-bench",
            "SWITCHYARD_PROVIDERS_OPENAI_BASE_URL": f"{emulator}/v1",
            "SWITCHYARD_LOGGING_LEVEL": "WARNING",
        }
        with running_server(Path(tmp), env) as server:
            through = asyncio.run(_switchyard(server.base_url, total))
    base = "direct AsyncOpenAI -> emulator"
    note = f"{total} requests one at a time, {len(TEXT)} characters as MP3; target: <= 2 ms added to the first byte"
    print(json.dumps({"direct": direct, "switchyard": through}, indent=2))
    return [
        Result(SUITE, "p50 time to first audio byte via Switchyard", through["ttfb"], "ms", direct["ttfb"], base, note),
        Result(
            SUITE, "p50 time to last audio byte via Switchyard", through["total"], "ms", direct["total"], base, note
        ),
    ]
